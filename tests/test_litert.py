"""LiteRT export: the converted models answer like the Keras model in the ai-edge-litert interpreter.

Tiny models made here (random weights); tolerances: float32 LiteRT 1e-4 on probabilities,
int8 a top-1 agreement, since quantization changes the numbers by design.
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from conftest import tiny_resnet
from tfx_transfer.config import ConfigError
from tfx_transfer.data.base import DataSplits
from tfx_transfer.evaluate import predict_probabilities
from tfx_transfer.litert import as_input_dtype, convert_to_litert, export_litert
from tfx_transfer.model import build_model
from tfx_transfer.recipe import HeadConfig, LiteRTConfig, recipe_from_dict

CLASSES = ["cat", "dog", "fox"]


def class_images(n, size=16, seed=0):
    """Images whose mean colour depends on the class, so a trained model can tell them apart."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(CLASSES)
    images = np.clip(rng.normal(60 + 60 * labels[:, None, None, None], 25, (n, size, size, 3)), 0, 255)
    return images.astype("float32"), labels.astype("int32")


@pytest.fixture(scope="module")
def image_export(tmp_path_factory):
    model, _ = build_model(tiny_resnet(image_size=(16, 16)), 3, HeadConfig(dropout=0.0))
    images, labels = class_images(30)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    splits = DataSplits(dataset, None, dataset, CLASSES)
    export_dir = str(tmp_path_factory.mktemp("export") / "1")
    metrics = export_litert(model, splits, HeadConfig(), export_dir, LiteRTConfig(latency_runs=3))
    return {"model": model, "splits": splits, "export_dir": export_dir, "metrics": metrics, "images": images}


def test_image_model_takes_uint8_pixels_and_matches_keras_in_the_litert_interpreter(image_export):
    path = os.path.join(image_export["export_dir"], "litert", "model.tflite")
    interpreter = Interpreter(model_path=path)
    runner = interpreter.get_signature_runner("serving_default")
    (detail,) = runner.get_input_details().values()
    assert list(runner.get_input_details()) == ["image"]
    assert detail["dtype"] == np.uint8 and detail["shape_signature"].tolist() == [-1, 16, 16, 3]
    pixels = image_export["images"][:5].round().astype(np.uint8)
    out = runner(image=pixels)
    expected = image_export["model"].predict(pixels.astype("float32"), verbose=0)
    np.testing.assert_allclose(out["probabilities"], expected, atol=1e-4)
    np.testing.assert_array_equal(out["class_id"], expected.argmax(1))


def test_labels_and_metrics_sit_next_to_the_keras_model(image_export):
    litert_dir = os.path.join(image_export["export_dir"], "litert")
    assert open(os.path.join(litert_dir, "labels.txt")).read().splitlines() == CLASSES
    metrics = image_export["metrics"]
    json.dumps(metrics, allow_nan=False)
    entry = metrics["models"]["none"]
    assert entry["size_bytes"] == os.path.getsize(os.path.join(litert_dir, "model.tflite"))
    assert set(entry["latency_ms"]) == {"1_thread", "2_threads"} and all(v > 0 for v in entry["latency_ms"].values())
    assert entry["test"]["examples"] == metrics["keras"]["test"]["examples"] == 30
    keras_probabilities, labels = predict_probabilities(image_export["model"], image_export["splits"].test, 8, "multiclass")
    assert metrics["keras"]["test"]["accuracy"] == pytest.approx(float(np.mean(keras_probabilities.argmax(1) == labels)))
    assert entry["agreement_with_keras"] == 1.0 and entry["max_probability_difference"] < 1e-3
    assert metrics["inputs"] == {"image": {"shape": [None, 16, 16, 3], "dtype": "uint8"}}


def test_float_pixels_round_to_uint8_instead_of_truncating():
    assert as_input_dtype(np.array([0.4, 0.6, 254.5001, 300.0, -3.0]), np.uint8).tolist() == [0, 1, 255, 255, 0]
    assert as_input_dtype(np.array([1.5], np.float32), np.float32).dtype == np.float32


def test_int8_calibration_examples_come_from_every_class_of_a_class_ordered_split():
    from tfx_transfer.litert.export import spread_examples

    labels = np.repeat(np.arange(3), 50)  # how stratified splits list a class-folder dataset
    dataset = tf.data.Dataset.from_tensor_slices((np.zeros((150, 2), "float32"), labels))
    picked = [int(y) for _, y in spread_examples(dataset, 30).as_numpy_iterator()]
    assert len(picked) == 30 and np.bincount(picked).tolist() == [10, 10, 10]


def test_int8_needs_representative_inputs_and_quantization_names_are_checked():
    model, _ = build_model(tiny_resnet(image_size=(8, 8), blocks=1), 2, HeadConfig(dropout=0.0))
    with pytest.raises(ValueError, match="representative_inputs"):
        convert_to_litert(model, "int8")
    with pytest.raises(ValueError, match="int4"):
        convert_to_litert(model, "int4")


@pytest.mark.parametrize(
    "export, message",
    [
        ({"formats": ["litert"]}, "must include 'saved_model'"),
        ({"formats": ["saved_model", "tflite"]}, "export.formats"),
        ({"litert": {"quantization": ["int4"]}}, "export.litert.quantization"),
        ({"litert": {"quantization": []}}, "at least one"),
        ({"litert": {"representative_examples": 0}}, "representative_examples"),
    ],
)
def test_bad_export_settings_name_the_key(export, message):
    with pytest.raises(ConfigError, match=message):
        recipe_from_dict({"export": export})


@pytest.mark.slow
def test_every_quantization_of_an_image_model_runs_and_int8_is_integer_only(tmp_path):
    model, _ = build_model(tiny_resnet(image_size=(16, 16), width=32), 3, HeadConfig(dropout=0.0))
    images, labels = class_images(24, seed=1)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    config = LiteRTConfig(quantization=["none", "float16", "dynamic_range", "int8"], latency_runs=3)
    metrics = export_litert(model, DataSplits(dataset, None, dataset, CLASSES), HeadConfig(), str(tmp_path), config)
    models = metrics["models"]
    assert models["float16"]["size_bytes"] < models["none"]["size_bytes"]
    assert models["dynamic_range"]["size_bytes"] < models["none"]["size_bytes"]
    assert models["int8"]["size_bytes"] < models["none"]["size_bytes"] and not models["int8"]["float_fallback"]
    for name, entry in models.items():
        assert entry["agreement_with_keras"] >= 0.9, name
    interpreter = Interpreter(model_path=models["int8"]["path"])
    weight_types = {d["dtype"] for d in interpreter.get_tensor_details() if "conv" in d["name"].lower()}
    assert np.int8 in weight_types


@pytest.mark.slow
def test_text_model_takes_token_ids_and_matches_keras(tmp_path):
    """Text goes in as token ids: the ai-edge-litert interpreter has no Select TF ops for TF Text tokenizers."""
    from harness.text import VOCABULARY, save_tiny_bert_preset
    from tfx_transfer.backbones.kerashub import build_kerashub_backbone

    backbone = build_kerashub_backbone(save_tiny_bert_preset(tmp_path / "preset"), sequence_length=16)
    model, _ = build_model(backbone, 3, HeadConfig(dropout=0.0))
    features = backbone.preprocessor(tf.constant(["goal match team", "market shares profit bank", "the vote"] * 4))
    inputs = {name: tf.cast(features[name], tf.int32).numpy() for name in backbone.input_config["inputs"]}
    dataset = tf.data.Dataset.from_tensor_slices((inputs, np.arange(12) % 3))
    metrics = export_litert(
        model, DataSplits(dataset, None, dataset, CLASSES), HeadConfig(), str(tmp_path / "1"),
        LiteRTConfig(latency_runs=3), vocabulary=VOCABULARY,
    )
    assert (tmp_path / "1" / "litert" / "vocab.txt").read_text().splitlines() == VOCABULARY
    runner = Interpreter(model_path=metrics["models"]["none"]["path"]).get_signature_runner("serving_default")
    assert set(runner.get_input_details()) == set(inputs)
    out = runner(**inputs)
    np.testing.assert_allclose(out["probabilities"], model.predict(inputs, verbose=0), atol=1e-4)


@pytest.mark.slow
def test_audio_model_takes_the_waveform_and_matches_keras(tmp_path):
    from tfx_transfer.backbones.speech_embedding import build_speech_embedding

    model, _ = build_model(build_speech_embedding("mean", weights=None), 3, HeadConfig(dropout=0.0))
    t = np.arange(16000) / 16000
    waveforms = np.stack([0.3 * np.sin(2 * np.pi * (100 + 50 * k) * t) for k in range(6)]).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices((waveforms, np.arange(6) % 3))
    metrics = export_litert(
        model, DataSplits(dataset, None, dataset, CLASSES), HeadConfig(), str(tmp_path), LiteRTConfig(latency_runs=3)
    )
    runner = Interpreter(model_path=metrics["models"]["none"]["path"]).get_signature_runner("serving_default")
    assert list(runner.get_input_details()) == ["waveform"]
    out = runner(waveform=waveforms)
    np.testing.assert_allclose(out["probabilities"], model.predict(waveforms, verbose=0), atol=1e-4)


@pytest.mark.slow
def test_train_with_litert_format_then_export_more_from_the_run_dir(tmp_path, capsys):
    """`export.formats: [saved_model, litert]` in `train`, then `tfx-transfer export RUN_DIR --format litert`."""
    from tfx_transfer.cli import main
    from tfx_transfer.pipeline import train

    recipe = recipe_from_dict({
        "name": "stripes",
        "run_dir": str(tmp_path / "run"),
        "data": {"source": "synthetic", "batch_size": 16},
        "backbone": {"source": "keras_apps", "name": "MobileNetV2", "weights": "none", "image_size": [32, 32]},
        "phases": [{"name": "head", "epochs": 1}],
        "export": {"base_dir": str(tmp_path / "exports"), "formats": ["saved_model", "litert"],
                   "litert": {"latency_runs": 2}},
    })
    result = train(recipe)
    litert = json.loads((tmp_path / "run" / "metrics.json").read_text())["litert"]
    assert litert["models"]["none"]["path"] == os.path.join(result.export_dir, "litert", "model.tflite")
    assert litert["keras"]["test"]["accuracy"] == pytest.approx(result.metrics["test"]["accuracy"])
    assert litert["keras"]["size_bytes"] == os.path.getsize(tmp_path / "run" / "model.keras")
    assert litert["models"]["none"]["agreement_with_keras"] == 1.0

    code = main(["export", str(tmp_path / "run"), "--format", "litert",
                 "--set", "export.litert.quantization=[dynamic_range]", "--set", "export.litert.latency_runs=2"])
    assert code == 0, capsys.readouterr().err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert list(metrics["litert"]["models"]) == ["dynamic_range"]
    assert metrics["litert"]["keras"]["test"]["accuracy"] == pytest.approx(result.metrics["test"]["accuracy"])
    assert os.path.exists(os.path.join(result.export_dir, "litert", "model_dynamic_range.tflite"))
    assert main(["export", str(tmp_path / "run"), "--format", "litert", "--set", "data.batch_size=3"]) == 2
    assert "only export.litert" in capsys.readouterr().err


def test_the_litert_interpreter_cannot_run_select_tf_ops_so_text_goes_in_as_token_ids():
    """Why text LiteRT models take token ids: string ops need Select TF ops, which ai-edge-litert lacks.

    Fails when the interpreter gains the Flex delegate: then raw-string text models become possible.
    """

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def lowercase_length(text):
        return {"length": tf.strings.length(tf.strings.lower(text))}

    converter = tf.lite.TFLiteConverter.from_concrete_functions([lowercase_length.get_concrete_function()])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    interpreter = Interpreter(model_content=converter.convert())
    with pytest.raises(RuntimeError, match="Select TensorFlow op"):
        interpreter.allocate_tensors()
        interpreter.get_signature_runner()(text=np.array([b"Ab"]))

