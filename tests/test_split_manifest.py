"""The split manifest: every loader lists each input once with its label and split, `data.split_manifest`
puts every example back in that split (another seed, a moved folder), and a bad manifest is an error
naming its file and line."""

import collections
import csv
import io
import os
import shutil
import types

import numpy as np
import pytest
import tensorflow as tf

from harness import write_image_folder
from harness.fashion_mnist import write_fake_fashion_mnist
from harness.text import save_tiny_bert_preset
from tfx_transfer import storage
from tfx_transfer.config import ConfigError
from tfx_transfer.data import audio, image, split_manifest, text
from tfx_transfer.data.split_manifest import splits_from_manifest
from tfx_transfer.recipe import recipe_from_dict

SPLITS = ("train", "validation", "test")
IMAGE_BACKBONE = types.SimpleNamespace(input_config={"image_size": (16, 16)})
AUDIO_BACKBONE = types.SimpleNamespace(name="fake_16k", input_config={"sample_rate": 16000})


def recipe(seed, data, **fields):
    return recipe_from_dict({"seed": seed, "data": {"validation_fraction": 0.25, "test_fraction": 0.25, **data}, **fields})


def manifest_rows(splits) -> list[dict]:
    return list(csv.DictReader(io.StringIO(splits.manifest.to_csv())))


def saved_manifest(splits, path) -> str:
    storage.write_text_atomic(str(path), splits.manifest.to_csv())
    return str(path)


def labels_of(splits) -> dict:
    """Each split's labels in dataset order, as the model sees them."""
    return {s: [np.asarray(y).tolist() for _, y in getattr(splits, s)] for s in SPLITS if getattr(splits, s) is not None}


def assert_same_split(again, first):
    assert again.manifest.rows == first.manifest.rows  # every source, label and split, in dataset order
    assert again.sources == first.sources
    assert labels_of(again) == labels_of(first)


# --- what a loader lists -------------------------------------------------------------------------


def test_image_folder_rows_name_each_image_once_with_its_label_and_the_split_whose_dataset_holds_it(tmp_path):
    paths = write_image_folder(tmp_path / "pets", classes=("cat", "dog", "fox"), per_class=6)
    splits = image.load_data(recipe(1, {"source": "folder", "path": str(tmp_path / "pets")}), IMAGE_BACKBONE)
    rows = manifest_rows(splits)
    assert sorted(r["source"] for r in rows) == sorted(os.path.relpath(p, tmp_path / "pets") for p in paths)
    assert all(r["label"] == r["source"].split("/")[0] for r in rows)
    preprocessor = image.ImagePreprocessor((16, 16))
    for split in SPLITS:
        listed = [r for r in rows if r["split"] == split]
        assert len(listed) == sum(splits.report["counts"][split].values())
        decoded = [preprocessor.prepare(preprocessor.decode(tf.io.read_file(str(tmp_path / "pets" / r["source"]))))
                   for r in listed]
        held = list(getattr(splits, split))
        np.testing.assert_array_equal(np.stack([x for x, _ in held]), np.stack(decoded))
        assert [splits.class_names[int(y)] for _, y in held] == [r["label"] for r in listed]


def test_examples_left_out_by_max_train_examples_are_unused_rows_and_read_back(tmp_path):
    write_image_folder(tmp_path / "pets" / "train", per_class=8)
    write_image_folder(tmp_path / "pets" / "test", per_class=2, seed=1)
    data = {"source": "folder", "path": str(tmp_path / "pets"), "max_train_examples": 6}
    first = image.load_data(recipe(1, data), IMAGE_BACKBONE)
    rows = manifest_rows(first)
    assert collections.Counter(r["split"] for r in rows) == {"train": 6, "validation": 4, "test": 4, "unused": 6}
    assert all(r["source"].startswith("test/") == (r["split"] == "test") for r in rows)
    again = image.load_data(recipe(2, {**data, "split_manifest": saved_manifest(first, tmp_path / "s.csv")}),
                            IMAGE_BACKBONE)
    assert_same_split(again, first)


# --- reading a manifest back reproduces the split --------------------------------------------------


def test_a_manifest_reproduces_an_image_split_drawn_with_another_seed(tmp_path):
    write_image_folder(tmp_path / "pets", classes=("cat", "dog", "fox"), per_class=8)
    data = {"source": "folder", "path": str(tmp_path / "pets")}
    first = image.load_data(recipe(1, data), IMAGE_BACKBONE)
    assert image.load_data(recipe(2, data), IMAGE_BACKBONE).sources != first.sources  # the seed alone differs
    again = image.load_data(recipe(2, {**data, "split_manifest": saved_manifest(first, tmp_path / "s.csv")}),
                            IMAGE_BACKBONE)
    assert_same_split(again, first)
    pixels = [x.numpy() for x, _ in again.test]
    np.testing.assert_array_equal(pixels, [x.numpy() for x, _ in first.test])


def test_a_moved_data_folder_given_by_a_relative_path_still_matches(tmp_path, monkeypatch):
    write_image_folder(tmp_path / "old" / "pets", per_class=8)
    first = image.load_data(recipe(1, {"source": "folder", "path": str(tmp_path / "old" / "pets")}), IMAGE_BACKBONE)
    saved_manifest(first, tmp_path / "splits.csv")
    shutil.move(tmp_path / "old" / "pets", tmp_path / "moved")
    monkeypatch.chdir(tmp_path)
    again = image.load_data(recipe(2, {"source": "folder", "path": "moved", "split_manifest": "splits.csv"}),
                            IMAGE_BACKBONE)
    assert again.manifest.rows == first.manifest.rows
    assert all(not source.startswith(("/", "old", "moved")) for source in again.sources["train"])


@pytest.fixture(scope="module")
def text_backbone(tmp_path_factory):
    from tfx_transfer.backbones.kerashub import build_kerashub_backbone

    return build_kerashub_backbone(save_tiny_bert_preset(tmp_path_factory.mktemp("preset") / "bert"), sequence_length=16)


def write_news_csv(path, rows=24):
    topics = ("sport", "politics", "business")
    lines = ["text,label"] + [f"{'goal match vote profit'.split()[i % 4]} {i},{topics[i % 3]}" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_a_manifest_reproduces_a_text_csv_split_with_rows_named_relative_to_the_table(text_backbone, tmp_path):
    data = {"source": "csv", "path": write_news_csv(tmp_path / "news.csv")}
    first = text.load_data(recipe(1, data, modality="text"), text_backbone)
    rows = manifest_rows(first)
    assert sorted(r["source"] for r in rows) == sorted(f"news.csv:row {n}" for n in range(2, 26))
    assert rows[0]["label"] in ("sport", "politics", "business")
    manifest = saved_manifest(first, tmp_path / "s.csv")
    again = text.load_data(recipe(7, {**data, "split_manifest": manifest}, modality="text"), text_backbone)
    assert_same_split(again, first)


def test_multi_label_rows_join_class_names_and_windows_are_one_row_per_text(text_backbone, tmp_path):
    lines = ["body,tags"] + [f"{'goal match ' * (1 + 9 * (i % 2))}vote,{'sport|politics' if i % 3 else 'sport'}"
                             for i in range(12)]
    (tmp_path / "tags.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = {"source": "csv", "path": str(tmp_path / "tags.csv"),
            "text": {"text_column": "body", "label_column": "tags", "label_delimiter": "|",
                     "long_texts": "windows", "window_stride": 4}}
    first = text.load_data(recipe(1, data, modality="text", head={"kind": "multilabel"}), text_backbone)
    rows = manifest_rows(first)
    assert split_manifest.LABEL_SEPARATOR == "|"
    assert collections.Counter(r["label"] for r in rows) == {"politics|sport": 8, "sport": 4}  # class-id order
    assert len(rows) == 12 < sum(first.report["windows"].values())
    assert len(first.sources["test"]) == len(set(first.test_groups.tolist()))
    again = text.load_data(recipe(5, {**data, "split_manifest": saved_manifest(first, tmp_path / "s.csv")},
                                  modality="text", head={"kind": "multilabel"}), text_backbone)
    assert_same_split(again, first)


def test_a_manifest_reproduces_an_audio_split_of_windowed_clips_one_row_per_file(tmp_path):
    for word, freq in (("high", 1200), ("low", 300)):
        for n in range(6):
            waveform = 0.5 * np.sin(2 * np.pi * freq * np.arange(16000) / 16000, dtype=np.float32)
            (tmp_path / "clips" / word).mkdir(parents=True, exist_ok=True)
            tf.io.write_file(str(tmp_path / "clips" / word / f"{n}.wav"), tf.audio.encode_wav(waveform[:, None], 16000))
    data = {"source": "folder", "path": str(tmp_path / "clips"),
            "audio": {"clip_seconds": 0.5, "long_clips": "windows", "window_hop_seconds": 0.25}}
    first = audio.load_data(recipe(1, data, modality="audio"), AUDIO_BACKBONE)
    rows = manifest_rows(first)
    assert sorted(r["source"] for r in rows) == sorted(f"{w}/{n}.wav" for w in ("high", "low") for n in range(6))
    assert sum(first.report["windows"].values()) == 3 * len(rows)
    again = audio.load_data(recipe(2, {**data, "split_manifest": saved_manifest(first, tmp_path / "s.csv")},
                                   modality="audio"), AUDIO_BACKBONE)
    assert_same_split(again, first)
    np.testing.assert_array_equal(again.test_groups, first.test_groups)


def test_a_manifest_reproduces_a_fashion_mnist_split_across_seeds(tmp_path):
    write_fake_fashion_mnist(tmp_path, train_per_class=4, test_per_class=1)
    data = {"source": "fashion_mnist", "path": str(tmp_path)}
    first = image.load_data(recipe(1, data), IMAGE_BACKBONE)
    rows = manifest_rows(first)
    assert collections.Counter(r["source"].split("[")[0] for r in rows) == {"fashion_mnist:train": 40, "fashion_mnist:test": 10}
    assert {r["split"] for r in rows if r["source"].startswith("fashion_mnist:test")} == {"test"}
    again = image.load_data(recipe(2, {**data, "split_manifest": saved_manifest(first, tmp_path / "s.csv")}),
                            IMAGE_BACKBONE)
    assert_same_split(again, first)


@pytest.fixture(scope="module")
def tiny_tfds(tmp_path_factory):
    """A real prepared TFDS dataset (`split_manifest_tiny_images`: 20 train and 6 test 8x8 images, 2 classes)."""
    import tensorflow_datasets as tfds

    class SplitManifestTinyImages(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            features = tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(8, 8, 3)), "label": tfds.features.ClassLabel(names=["dark", "light"]),
            })
            return tfds.core.DatasetInfo(builder=self, features=features, supervised_keys=("image", "label"))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(20), "test": self._generate_examples(6)}

        def _generate_examples(self, count):
            for i in range(count):
                yield i, {"image": np.full((8, 8, 3), 200 * (i % 2) + i, np.uint8), "label": i % 2}

    data_dir = str(tmp_path_factory.mktemp("tfds"))
    tfds.builder("split_manifest_tiny_images", data_dir=data_dir).download_and_prepare()
    return {"source": "tfds", "tfds_name": "split_manifest_tiny_images", "data_dir": data_dir}


def test_tfds_sources_index_the_whole_tfds_split_so_other_fractions_read_the_manifest_back(tiny_tfds, tmp_path):
    first = image.load_data(recipe(1, tiny_tfds), IMAGE_BACKBONE)  # validation carved as train[75%:100%]
    rows = manifest_rows(first)
    assert sorted(r["source"] for r in rows) == sorted(
        [f"tfds:split_manifest_tiny_images/train[{i}]" for i in range(20)]
        + [f"tfds:split_manifest_tiny_images/test[{i}]" for i in range(6)]
    )
    assert first.sources["validation"] == [f"tfds:split_manifest_tiny_images/train[{i}]" for i in range(15, 20)]
    brighter = {s: sorted(int(x.numpy().mean() > 100) for x, _ in getattr(first, s)) for s in SPLITS}
    assert {s: sorted(int(y) for _, y in getattr(first, s)) for s in SPLITS} == brighter  # labels match images
    data = {**tiny_tfds, "validation_fraction": 0.5, "split_manifest": saved_manifest(first, tmp_path / "s.csv")}
    again = image.load_data(recipe(2, data), IMAGE_BACKBONE)
    assert_same_split(again, first)


# --- errors ------------------------------------------------------------------------------------------

SOURCES = ["cat/0.png", "cat/1.png", "dog/0.png", "dog/1.png", "dog/2.png"]
LABELS = ["cat", "cat", "dog", "dog", "dog"]
HEADER = "source,label,split\n"
COMPLETE = "".join(f"{s},{y},train\n" for s, y in zip(SOURCES, LABELS))


def read_back(tmp_path, content):
    path = tmp_path / "splits.csv"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return splits_from_manifest(str(path), SOURCES, LABELS)


@pytest.mark.parametrize("content, message", [
    ("source,label\ncat/0.png,cat\n", r"splits\.csv' has no column\(s\) \['split'\]; it needs a header row "
                                      r"source,label,split\. Found: \['source', 'label'\]"),
    (HEADER + "cat/0.png,cat,train\ncat/1.png,cat,holdout\n",
     r"splits\.csv:3: split must be one of train, validation, test, unused .*received 'holdout'"),
    (HEADER + "cat/0.png,cat,train\ncat/0.png,cat,test\n", r"splits\.csv:3: source 'cat/0\.png' is also on line 2"),
    (HEADER + ",cat,train\n", r"splits\.csv:2: the source is empty"),
    (HEADER, r"splits\.csv' has a header but no rows"),
    ("", r"splits\.csv' is empty"),
    (HEADER + "cat/0.png,cat,train\n" + "x" * 200_000 + ",cat,train\n", r"splits\.csv:3: not valid CSV \(field larger"),
    (b"source,label,split\ncaf\xe9.png,cat,train\n", r"splits\.csv' is not UTF-8 text \(invalid continuation byte"),
])
def test_malformed_manifests_are_errors_naming_the_file_and_line(tmp_path, content, message):
    with pytest.raises(ConfigError, match=f"^data.split_manifest: .*{message}"):
        read_back(tmp_path, content)


def test_rows_whose_source_is_not_in_the_data_are_named_with_their_lines(tmp_path):
    with pytest.raises(ConfigError, match=r"splits\.csv' does not match the 5 example\(s\) the data source read: "
                                          r"1 row\(s\) name a source the data does not have \(line 7: 'cat/9\.png'\)"):
        read_back(tmp_path, HEADER + COMPLETE + "cat/9.png,cat,test\n")


def test_examples_without_a_row_are_an_error_that_counts_them_names_the_first_and_says_what_to_do(tmp_path):
    with pytest.raises(ConfigError, match=r"4 example\(s\) of the data have no row \('cat/1\.png', 'dog/0\.png', "
                                          r"'dog/1\.png', and 1 more\): add a row for each, with split train, "
                                          r"validation, test, or unused to leave it out"):
        read_back(tmp_path, HEADER + "cat/0.png,cat,train\n")
    parts = read_back(tmp_path, HEADER + COMPLETE.replace("dog/2.png,dog,train", "dog/2.png,dog,unused"))
    assert parts["unused"].tolist() == [4] and parts["train"].tolist() == [0, 1, 2, 3]


def test_a_label_that_disagrees_with_the_data_is_named_with_its_line(tmp_path):
    with pytest.raises(ConfigError, match=r"1 label\(s\) disagree \(line 3: 'cat/1\.png' is 'dog' in the manifest "
                                          r"but 'cat' in the data\)"):
        read_back(tmp_path, HEADER + COMPLETE.replace("cat/1.png,cat", "cat/1.png,dog"))


def test_a_missing_folder_or_oversized_manifest_is_named_before_it_is_read(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match=f"data.split_manifest: '{tmp_path / 'nowhere.csv'}' does not exist"):
        splits_from_manifest(str(tmp_path / "nowhere.csv"), SOURCES, LABELS)
    with pytest.raises(ConfigError, match=f"data.split_manifest: '{tmp_path}' is a folder"):
        splits_from_manifest(str(tmp_path), SOURCES, LABELS)
    monkeypatch.setattr(split_manifest, "MAX_SPLIT_MANIFEST_BYTES", 64)
    size = len(HEADER + COMPLETE)
    with pytest.raises(ConfigError, match=f"splits.csv' is {size} bytes, more than the 64 bytes a split manifest may have"):
        read_back(tmp_path, HEADER + COMPLETE)


def test_a_loader_given_a_bad_manifest_stops_with_the_error(tmp_path):
    write_image_folder(tmp_path / "pets", per_class=3)
    (tmp_path / "splits.csv").write_text(HEADER + "cat/0.png,cat,train\n")
    data = {"source": "folder", "path": str(tmp_path / "pets"), "split_manifest": str(tmp_path / "splits.csv")}
    with pytest.raises(ConfigError, match=r"5 example\(s\) of the data have no row \('cat/1\.png', 'cat/2\.png', "
                                          r"'dog/0\.png', and 2 more\)"):
        image.load_data(recipe(1, data), IMAGE_BACKBONE)


def test_a_manifest_that_leaves_a_class_out_of_train_is_an_error(tmp_path):
    write_image_folder(tmp_path / "pets", per_class=3)
    rows = [f"{c}/{i}.png,{c},{'test' if c == 'dog' else 'train'}" for c in ("cat", "dog") for i in range(3)]
    (tmp_path / "splits.csv").write_text(HEADER + "\n".join(rows) + "\n")
    data = {"source": "folder", "path": str(tmp_path / "pets"), "split_manifest": str(tmp_path / "splits.csv")}
    with pytest.raises(ConfigError, match=r"classes \['dog'\] have no training examples \(an example of 'dog': "
                                          r".*dog/0\.png\) \(as data.split_manifest "
                                          r"'.*splits\.csv' assigns them\)"):
        image.load_data(recipe(1, data), IMAGE_BACKBONE)
