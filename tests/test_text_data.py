"""Text loaders: folders, CSV/TSV/JSONL, TFDS, BBC News; skipped inputs reported; tokenized in tf.data."""

import json
import logging
import types

import numpy as np
import pytest
import tensorflow as tf

from harness.text import save_tiny_bert_preset, write_topic_folder
from tfx_transfer.backbones.kerashub import build_kerashub_backbone
from tfx_transfer.config import ConfigError
from tfx_transfer.data.shares import WorkerShare, reading_share
from tfx_transfer.data.text import load_data, make_preprocessor
from tfx_transfer.data.text_bounds import MAX_TEXT_BYTES
from tfx_transfer.recipe import recipe_from_dict


@pytest.fixture(scope="module")
def backbone(tmp_path_factory):
    preset = save_tiny_bert_preset(tmp_path_factory.mktemp("preset") / "tiny_bert")
    return build_kerashub_backbone(preset, sequence_length=16)


def _recipe(data, head="multiclass", seed=3):
    return recipe_from_dict({"modality": "text", "seed": seed, "data": data, "head": {"kind": head}})


def _labels(ds):
    return np.array([y for _, y in ds.as_numpy_iterator()])


def test_folder_source_sorted_classes_stratified_split_and_skips(backbone, tmp_path):
    root = write_topic_folder(tmp_path / "topics", per_class=20)
    recipe = _recipe({"source": "folder", "path": root, "validation_fraction": 0.2, "test_fraction": 0.2})
    splits = load_data(recipe, backbone)
    assert splits.class_names == ["business", "politics", "sport"]
    assert splits.report["counts"]["test"] == {"business": 4, "politics": 4, "sport": 4}
    assert splits.report["skipped_counts"] == {"empty text": 1, "invalid UTF-8": 1}
    skipped = {item["source"].split("/")[-1]: item["reason"] for item in splits.report["skipped"]}
    assert skipped["empty.txt"] == "empty text" and skipped["latin1.txt"].startswith("invalid UTF-8")
    json.dumps(splits.report)  # goes into metrics.json

    inputs, label = next(iter(splits.train))
    assert {k: (v.dtype, v.shape) for k, v in inputs.items()} == {
        "token_ids": (tf.int32, (16,)), "padding_mask": (tf.int32, (16,)), "segment_ids": (tf.int32, (16,)),
    }
    assert label.dtype == tf.int32
    # Lengths are known without a pass over the data (progress bars, no "ran out of data").
    assert int(splits.test.cardinality()) == 12 == len(list(splits.test))
    def test_split(data):
        return [(x["token_ids"].tolist(), int(y)) for x, y in data.test.as_numpy_iterator()]

    assert test_split(load_data(recipe, backbone)) == test_split(splits)  # seeded: same split again


def test_csv_multilabel_delimited_and_jsonl_lists(backbone, tmp_path):
    csv_path = tmp_path / "news.csv"
    rows = ["body,tags", '"Shares and profit, bank",business|politics', "Vote vote,politics", ",sport", "Goal,"]
    rows += [f"Goal match {i},sport" for i in range(6)] + [f"Market {i},business" for i in range(6)]
    csv_path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    data = {"source": "csv", "path": str(csv_path), "validation_fraction": 0.0, "test_fraction": 0.0,
            "text": {"text_column": "body", "label_column": "tags", "label_delimiter": "|"}}
    splits = load_data(_recipe(data, head="multilabel"), backbone)
    assert splits.class_names == ["business", "politics", "sport"]
    labels = _labels(splits.train)
    assert labels.dtype == np.float32 and labels.shape == (14, 3)
    assert labels[0].tolist() == [1.0, 1.0, 0.0]
    assert splits.report["skipped_counts"] == {"empty text": 1, "missing label": 1}

    jsonl = tmp_path / "news.jsonl"
    jsonl.write_text("".join(json.dumps({"body": f"vote {i}", "tags": ["politics", "business"][: 1 + i % 2]}) + "\n"
                             for i in range(8)), encoding="utf-8")
    data |= {"path": str(jsonl)}
    labels = _labels(load_data(_recipe(data, head="multilabel"), backbone).train)
    assert labels.sum(axis=0).tolist() == [4.0, 8.0]


def test_csv_directory_with_predefined_splits_and_tsv(backbone, tmp_path):
    for split, n in (("train", 10), ("dev", 4), ("test", 4)):
        lines = ["text\tlabel"] + [f"goal {i}\tsport" if i % 2 else f"vote {i}\tpolitics" for i in range(n)]
        (tmp_path / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    splits = load_data(_recipe({"source": "csv", "path": str(tmp_path)}), backbone)
    assert {s: sum(c.values()) for s, c in splits.report["counts"].items()} == {"train": 10, "validation": 4, "test": 4}


def test_copies_of_training_texts_in_validation_and_test_are_counted_named_and_warned(backbone, tmp_path, caplog):
    rows = {
        "train": ["goal scored late,sport", "vote counted,politics", "cup final,sport", "tax vote,politics"],
        "validation": ["cup  final,sport", "new vote,politics"],
        "test": ['"goal scored\nlate",sport', "election day,politics", "tax vote,politics"],
    }
    for split, lines in rows.items():
        (tmp_path / f"{split}.csv").write_text("text,label\n" + "\n".join(lines) + "\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="tfx_transfer"):
        splits = load_data(_recipe({"source": "csv", "path": str(tmp_path)}), backbone)
    copies = splits.report["copies_of_training_texts"]
    assert copies["counts"] == {"validation": 1, "test": 2}
    assert copies["examples"][0] == {"source": "validation.csv:row 2", "copy_of": "train.csv:row 4"}
    assert {s: sum(c.values()) for s, c in splits.report["counts"].items()} == {"train": 4, "validation": 2, "test": 3}
    assert "1 validation text(s) are copies and 2 test text(s) are copies of training texts" in caplog.text
    assert "data.split_manifest" in caplog.text

    caplog.clear()
    for split in ("validation", "test"):
        (tmp_path / f"{split}.csv").write_text("text,label\nnew goal,sport\nnew vote,politics\n", encoding="utf-8")
    assert load_data(_recipe({"source": "csv", "path": str(tmp_path)}), backbone).report["copies_of_training_texts"] == {
        "counts": {}, "examples": [],
    }
    assert "copies" not in caplog.text


def test_bad_tables_give_errors_naming_file_and_key(backbone, tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("content,label\nhello,x\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"a.csv:1: the header has no column 'text'.*Columns found: \['content', 'label'\]"):
        load_data(_recipe({"source": "csv", "path": str(path)}), backbone)
    bad = tmp_path / "b.jsonl"
    bad.write_text('{"text": "a", "label": "x"}\n{oops\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="b.jsonl:2: not valid JSON"):
        load_data(_recipe({"source": "csv", "path": str(bad)}), backbone)
    with pytest.raises(ConfigError, match="not a text source"):
        load_data(_recipe({"source": "fashion_mnist"}), backbone)


def _table(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return str(path)


def _ten_rows(extra=""):
    return "".join(f"goal {i},sport\nvote {i},politics\n" for i in range(5)) + extra


def test_a_class_only_the_validation_file_has_is_named_with_an_example(backbone, tmp_path):
    (tmp_path / "train.csv").write_text("text,label\n" + _ten_rows(), encoding="utf-8")
    (tmp_path / "validation.csv").write_text("text,label\ngoal,sport\nodd one,zzz\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"classes \['zzz'\] have no training examples \(an example of 'zzz': "
                                          r".*validation\.csv:row 3\)"):
        load_data(_recipe({"source": "csv", "path": str(tmp_path)}), backbone)


@pytest.mark.parametrize(
    "name, content, message",
    [
        # An unclosed quote would otherwise swallow every row after it into one text.
        ("quote.csv", "text,label\n" + _ten_rows('"an open quote,sport\n') + "more,politics\n",
         r"quote.csv:12: not valid CSV \(unexpected end of data\)\. A field that opens a quote must close it"),
        ("quote.tsv", 'text\tlabel\n"open\tsport\nnext\tpolitics\n"closed" late\tsport\n',
         r"quote.tsv:2: not valid TSV"),
        ("twice.csv", "text,label,text\n" + _ten_rows().replace(",sport", ",sport,x").replace(",politics", ",politics,y"),
         r"twice.csv:1: the header names column 'text' 2 times"),
        ("header.csv", "text,label\n", r"header.csv has no usable text: it holds no rows"),
        ("empty_texts.csv", "text,label\n ,sport\n\t,politics\n",
         r"empty_texts.csv has no usable text: all 2 of its text\(s\) were skipped \(\{'empty text': 2\}; first: .*empty_texts.csv:row 2"),
        ("object.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "label": {"a": 1}}\n',
         r"object.jsonl:2: 'label' must be a class name, a whole number or \(multi-label\) a list of them, received \{'a': 1\}"),
        ("bool.jsonl", '{"text": "a", "label": true}\n', r"bool.jsonl:1: 'label' must be a class name"),
        ("list.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "label": ["x", "y"]}\n',
         r"list.jsonl:row 2: several labels \['x', 'y'\]; set head.kind: multilabel"),
    ],
)
def test_malformed_tables_stop_with_the_file_and_line_at_fault(backbone, tmp_path, name, content, message):
    with pytest.raises(ConfigError, match=message):
        load_data(_recipe({"source": "csv", "path": _table(tmp_path, name, content)}), backbone)


def test_table_quirks_are_read_as_their_writers_meant(backbone, tmp_path, caplog):
    """A byte-order mark, blank labels, a text over the byte bound and fields over csv's default limit."""
    huge = "word " * (MAX_TEXT_BYTES // 4)  # 1.25 MiB: over MAX_TEXT_BYTES and csv's 128 KiB field limit
    content = "\ufefftext,label\n" + _ten_rows(f"{huge},sport\nno label,  \n")
    with caplog.at_level(logging.WARNING, logger="tfx_transfer"):
        splits = load_data(_recipe({"source": "csv", "path": _table(tmp_path, "quirks.csv", content)}), backbone)
    assert sorted(splits.class_names) == ["politics", "sport"]  # no class named '' from the blank label
    assert {s: sum(c.values()) for s, c in splits.report["counts"].items()} == {"train": 7, "validation": 2, "test": 2}
    assert splits.report["skipped"] == [{"source": f"{tmp_path}/quirks.csv:row 13", "reason": "missing label"}]
    assert splits.report["cut_to_max_bytes"] == [f"{tmp_path}/quirks.csv:row 12"]
    assert "skipped 1 text(s): " in caplog.text and "quirks.csv:row 13: missing label" in caplog.text
    assert "1 text(s) longer than 1,048,576 bytes of UTF-8 were cut to their first 1,048,576" in caplog.text


def test_tfds_text_dataset(backbone, monkeypatch):
    """The TFDS branch on supervised (text, label) pairs, as `load_tfds_splits` returns them."""
    from tfx_transfer.data import tfds as tfds_module

    class Info:  # split sizes: the whole TFDS split that each example's source indexes
        splits = {name: types.SimpleNamespace(num_examples=n) for name, n in (("train", 18), ("validation", 0), ("test", 2))}
        supervised_keys = ("text", "label")
        features = {"label": type("ClassLabel", (), {"names": ["neg", "pos"]})()}

    texts = [b"good film", b"bad film", b"", b"\xff\xfe broken", b"great", b"awful"] * 3
    train = tf.data.Dataset.from_tensor_slices((texts, [1, 0, 1, 1, 1, 0] * 3))
    test = tf.data.Dataset.from_tensor_slices(([b"nice", b"poor"], [1, 0]))
    monkeypatch.setattr(tfds_module, "load_tfds_splits", lambda config: ({"train": train, "validation": None, "test": test}, Info()))
    splits = load_data(_recipe({"source": "tfds", "tfds_name": "reviews", "validation_fraction": 0.25}), backbone)
    assert splits.class_names == ["neg", "pos"]
    assert splits.report["skipped_counts"] == {"empty text": 3, "invalid UTF-8": 3}
    assert {s: sum(c.values()) for s, c in splits.report["counts"].items()} == {"train": 8, "validation": 4, "test": 2}
    assert splits.sources["test"] == ["tfds:reviews/test[0]", "tfds:reviews/test[1]"]
    assert {s["source"] for s in splits.report["skipped"]} >= {"tfds:reviews/train[2]", "tfds:reviews/train[3]"}


def test_bbc_news_reads_package_folders_in_sorted_order(backbone):
    recipe = _recipe({"source": "bbc_news", "validation_fraction": 0.15, "test_fraction": 0.15}, seed=42)
    splits = load_data(recipe, backbone)
    assert splits.class_names == ["business", "entertainment", "politics", "sports", "tech"]
    totals = {name: sum(splits.report["counts"][s][name] for s in ("train", "validation", "test"))
              for name in splits.class_names}
    assert totals == {"business": 510, "entertainment": 386, "politics": 417, "sports": 510, "tech": 401}
    assert [i["source"].split("data/")[-1] for i in splits.report["skipped"]] == ["sports/199.txt"]
    assert sum(splits.report["counts"]["test"].values()) == 333


def test_preprocessor_serves_raw_strings_safely(backbone):
    recipe = _recipe({"source": "folder", "text": {"lowercase": True}})
    preprocessor = make_preprocessor(recipe, backbone)
    assert (preprocessor.raw_key, preprocessor.tensor_key) == ("text", "text")
    assert (preprocessor.tensor_spec.shape.as_list(), preprocessor.tensor_spec.dtype) == ([None], tf.string)
    inputs = preprocessor.raw_to_inputs(tf.constant([b"THE CAT", b"", b"\xff\xfe cat", "Zürich".encode()]))
    ids = inputs["token_ids"].numpy()
    assert ids.shape == (4, 16) and ids.dtype == np.int32
    np.testing.assert_array_equal(ids[0, :4], [2, 5, 15, 3])  # [CLS] the cat [SEP], lowercased
    np.testing.assert_array_equal(ids[1, :2], [2, 3])  # empty string: [CLS] [SEP]
    assert inputs["padding_mask"].dtype == tf.int32


@pytest.mark.parametrize("long_texts", ["truncate", "windows"])
def test_a_worker_reads_its_share_of_the_training_texts_and_reports_whole_splits(backbone, tmp_path, long_texts):
    root = write_topic_folder(tmp_path / "topics", per_class=20)
    data = {"source": "folder", "path": root, "validation_fraction": 0.2, "test_fraction": 0.2,
            "text": {"long_texts": long_texts, **({"window_stride": 4} if long_texts == "windows" else {})}}
    recipe = _recipe(data)
    whole = load_data(recipe, backbone)
    shares = []
    for worker in range(2):
        with reading_share(WorkerShare(worker, 2)):
            share = load_data(recipe, backbone)
        assert share.report == whole.report and share.manifest == whole.manifest  # whole splits, as metrics.json
        for split in ("validation", "test"):
            assert _token_rows(getattr(share, split)) == _token_rows(getattr(whole, split))
        shares.append(_token_rows(share.train))
    assert sorted(shares[0] + shares[1]) == sorted(_token_rows(whole.train))  # together the whole training split
    assert shares[0] and shares[1]


def _token_rows(dataset):
    return [(tuple(x["token_ids"].tolist()), int(y)) for x, y in dataset.as_numpy_iterator()]
