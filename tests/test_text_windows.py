"""Long texts in token windows: same tensors as the preprocessor for short texts, every token covered,
a bound counted, in tf.data and in the exported model."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from harness.text import WORDS, save_tiny_bert_preset, write_topic_folder
from tfx_transfer.backbones.kerashub import build_kerashub_backbone
from tfx_transfer.config import ConfigError
from tfx_transfer.data.text import TextOptions, TextPreprocessor, load_data, make_preprocessor
from tfx_transfer.data.text_windows import TextWindows, window_examples
from tfx_transfer.recipe import recipe_from_dict

SEQUENCE_LENGTH = 12
CONTENT = SEQUENCE_LENGTH - 2


@pytest.fixture(scope="module")
def backbone(tmp_path_factory):
    preset = save_tiny_bert_preset(tmp_path_factory.mktemp("preset") / "tiny_bert")
    return build_kerashub_backbone(preset, sequence_length=SEQUENCE_LENGTH)


def preprocessor_with_windows(backbone, stride=None, max_windows=8):
    windows = TextWindows(backbone.preprocessor.tokenizer, SEQUENCE_LENGTH, stride, max_windows)
    return TextPreprocessor(backbone.preprocessor, backbone.input_config["inputs"], text_windows=windows)


def words(n, offset=0):
    return " ".join(WORDS[(offset + i) % len(WORDS)] for i in range(n))


def token_ids(backbone, text):
    return list(backbone.preprocessor.tokenizer([text])[0])  # eager KerasHub tokenizers return lists


def test_texts_that_fit_one_window_give_exactly_the_preprocessor_tensors(backbone):
    preprocessor = preprocessor_with_windows(backbone)
    texts = tf.constant(["", "cat", "The cat sat on the mat.", words(CONTENT), "Caf\xe9 vote".encode("latin-1")])
    expected = preprocessor.raw_to_inputs(texts)
    windows, document = preprocessor.raw_to_windows(texts)
    assert document.numpy().tolist() == [0, 1, 2, 3, 4]
    assert sorted(windows) == sorted(expected)
    for name in expected:
        assert windows[name].dtype == tf.int32
        np.testing.assert_array_equal(windows[name], expected[name], err_msg=name)


@pytest.mark.parametrize("stride", [CONTENT, 4, 1])
def test_windows_cover_every_token_in_order_with_their_special_tokens(backbone, stride):
    text = words(37)
    ids = token_ids(backbone, text)
    windower = TextWindows(backbone.preprocessor.tokenizer, SEQUENCE_LENGTH, stride, max_windows=64)
    inputs, document, truncated = windower(tf.constant([text, "cat"]))
    tokens, mask = inputs["token_ids"].numpy(), inputs["padding_mask"].numpy()
    rows = np.flatnonzero(document.numpy() == 0)
    assert len(rows) == 1 + -(-(len(ids) - CONTENT) // stride)
    covered = []
    for k, row in enumerate(rows):
        real = tokens[row][mask[row] == 1].tolist()
        assert real[0] == windower.start_id and real[-1] == windower.end_id
        assert real[1:-1] == ids[k * stride:k * stride + CONTENT]
        covered.extend(range(k * stride, k * stride + len(real) - 2))
    assert sorted(set(covered)) == list(range(len(ids)))
    assert not truncated.numpy().any()
    assert (inputs["segment_ids"].numpy() == 0).all()


def test_long_texts_keep_their_first_windows_and_are_flagged(backbone):
    windower = TextWindows(backbone.preprocessor.tokenizer, SEQUENCE_LENGTH, max_windows=3)
    long_text = words(5 * CONTENT)
    inputs, document, truncated = windower(tf.constant([long_text, words(3 * CONTENT), "cat"]))
    assert document.numpy().tolist() == [0, 0, 0, 1, 1, 1, 2]
    assert truncated.numpy().tolist() == [True, False, False]
    ids = token_ids(backbone, long_text)
    np.testing.assert_array_equal(inputs["token_ids"][2, 1:-1], ids[2 * CONTENT:3 * CONTENT])


def test_a_huge_request_is_cut_by_characters_and_flagged(backbone):
    windower = TextWindows(backbone.preprocessor.tokenizer, SEQUENCE_LENGTH, max_windows=1)
    spaces = "cat" + " " * 10_000 + "dog"  # two tokens, but far more characters than one window needs
    inputs, document, truncated = windower(tf.constant([spaces]))
    assert document.numpy().tolist() == [0] and truncated.numpy().tolist() == [True]


def test_bad_window_settings_are_clear_errors(backbone):
    tokenizer = backbone.preprocessor.tokenizer
    with pytest.raises(ValueError, match=r"between 1 and sequence_length - 2 = 10 .*received 11"):
        TextWindows(tokenizer, SEQUENCE_LENGTH, stride=11)
    with pytest.raises(ValueError, match="max_windows must be between 1 and 256, received 0"):
        TextWindows(tokenizer, SEQUENCE_LENGTH, max_windows=0)
    with pytest.raises(ValueError, match="start_token_id.*or set data.text.long_texts: truncate"):
        TextWindows(object(), SEQUENCE_LENGTH)
    with pytest.raises(ConfigError, match="data.text.max_windows must be between 1 and 256, received 1000"):
        TextOptions(long_texts="windows", max_windows=1000)
    with pytest.raises(ConfigError, match="data.text.window_stride is set.*long_texts: windows"):
        TextOptions(window_stride=64)
    with pytest.raises(ConfigError, match="window_stride must be a positive"):
        TextOptions(long_texts="windows", window_stride=0)
    recipe = recipe_from_dict({"modality": "text", "data": {"text": {"long_texts": "windows", "window_stride": 50}}})
    with pytest.raises(ConfigError, match=r"backbone.sequence_length 12, data.text.window_stride 50"):
        make_preprocessor(recipe, backbone)
    with pytest.raises(ConfigError, match="long_texts"):
        recipe_from_dict({"modality": "text", "data": {"text": {"long_texts": "chunks"}}})


def test_window_examples_label_every_window_and_list_truncated_texts(backbone):
    preprocessor = preprocessor_with_windows(backbone, max_windows=2)
    texts = [words(3), words(15), words(40)]
    windowed = window_examples(texts, np.array([2, 0, 1], np.int32), preprocessor, batch_size=2)
    assert windowed.document.tolist() == [0, 1, 1, 2, 2]
    assert windowed.truncated == [2]
    examples = list(windowed.dataset.as_numpy_iterator())
    assert windowed.dataset.cardinality().numpy() == len(examples) == 5
    assert [int(y) for _, y in examples] == [2, 0, 0, 1, 1]
    first, _ = preprocessor.raw_to_windows(tf.constant(texts[1:2]))
    np.testing.assert_array_equal(examples[1][0]["token_ids"], first["token_ids"][0])


def test_load_data_with_windows_reports_windows_and_per_text_test_ids(backbone, tmp_path):
    root = write_topic_folder(tmp_path / "topics", per_class=10)
    with open(os.path.join(root, "sport", "long.txt"), "w", encoding="utf-8") as f:
        f.write("goal match team score " * 30)  # 120 words: more than 3 windows of 10 tokens
    recipe = recipe_from_dict({
        "modality": "text", "seed": 3,
        "data": {"source": "folder", "path": root, "text": {"long_texts": "windows", "max_windows": 3}},
    })
    splits = load_data(recipe, backbone)
    report = splits.report
    assert report["truncated_texts"] and sum(report["truncated_texts"].values()) == 1
    test_texts = sum(report["counts"]["test"].values())
    assert len(splits.test_groups) == report["windows"]["test"] >= test_texts
    assert sorted(set(splits.test_groups.tolist())) == list(range(test_texts))
    assert splits.train.cardinality().numpy() == report["windows"]["train"]


LOAD_AND_SERVE = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    import tensorflow_text  # registers the tokenizer ops

    export_dir, texts = sys.argv[1], json.loads(sys.argv[2])
    loaded = tf.saved_model.load(export_dir)
    result = loaded.signatures["serving_default"](text=tf.constant(texts))
    ops = {node.op for f in loaded.signatures["serving_default"].graph.as_graph_def().library.function
           for node in f.node_def}
    print("RESULT " + json.dumps({"probabilities": result["probabilities"].numpy().tolist(),
                                  "pyfunc": sorted(op for op in ops if "PyFunc" in op)}))
    """
)


@pytest.mark.slow
def test_exported_model_takes_whole_texts_and_averages_their_windows(tmp_path):
    from tfx_transfer.pipeline import train

    recipe = recipe_from_dict({
        "name": "topics", "modality": "text", "run_dir": str(tmp_path / "run"),
        "data": {"source": "folder", "path": write_topic_folder(tmp_path / "topics"), "batch_size": 8,
                 "text": {"long_texts": "windows", "window_stride": 5, "max_windows": 4}},
        "backbone": {"source": "kerashub", "name": save_tiny_bert_preset(tmp_path / "preset"),
                     "sequence_length": SEQUENCE_LENGTH},
        "phases": [{"name": "head", "epochs": 1}],
        "export": {"base_dir": str(tmp_path / "exports")},
    })
    result = train(recipe)
    texts = ["Goal match team score", "", "market profit " * 40]
    process = subprocess.run(
        [sys.executable, "-c", LOAD_AND_SERVE, result.export_dir, json.dumps(texts)],
        capture_output=True, text=True, timeout=300,
    )
    lines = [line for line in process.stdout.splitlines() if line.startswith("RESULT ")]
    assert process.returncode == 0 and lines, process.stderr[-3000:]
    served = json.loads(lines[-1][len("RESULT "):])
    preprocessor = make_preprocessor(recipe, build_kerashub_backbone(recipe.backbone.name, SEQUENCE_LENGTH))
    windows, document = preprocessor.raw_to_windows(tf.constant(texts))
    assert document.numpy().tolist().count(2) == 4  # the long text: 4 windows, the bound
    per_window = result.model.predict(windows, verbose=0)
    expected = tf.math.unsorted_segment_mean(per_window, document, len(texts)).numpy()
    np.testing.assert_allclose(served["probabilities"], expected, atol=1e-5)
    assert served["pyfunc"] == []
    assert result.metrics["data"]["windows"]["test"] >= sum(result.metrics["data"]["counts"]["test"].values())
