"""One export-contract test for every modality: signatures, labels, no PyFunc, warm-up replay, parity."""

import io
import wave

import keras
import numpy as np
import pytest
import tensorflow as tf

from harness import check_export_contract, tiny_resnet
from harness.text import save_tiny_bert_preset
from tfx_transfer.backbones.base import Backbone, Block
from tfx_transfer.data.audio import AudioPreprocessor
from tfx_transfer.data.image import ImagePreprocessor
from tfx_transfer.data.text import TextPreprocessor
from tfx_transfer.export import export_saved_model
from tfx_transfer.model import build_model
from tfx_transfer.recipe import HeadConfig

CLASSES = ["first", "second", "third"]


def _image(tmp_path):
    preprocessor = ImagePreprocessor((16, 16))
    rng = np.random.default_rng(0)
    raw = [tf.io.encode_png(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).numpy() for h, w in ((20, 30), (16, 16))]
    return tiny_resnet(image_size=(16, 16)), preprocessor, raw


def _text(tmp_path):
    from tfx_transfer.backbones.kerashub import build_kerashub_backbone

    backbone = build_kerashub_backbone(save_tiny_bert_preset(tmp_path / "preset"), sequence_length=16)
    preprocessor = TextPreprocessor(backbone.preprocessor, backbone.input_config["inputs"])
    return backbone, preprocessor, ["the cat sat on the mat", "market shares and profit \xff".encode("latin-1")]


def _wav(samples, rate):
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def _audio(tmp_path):
    inputs = keras.Input((800,), name="waveform")
    x = keras.layers.Reshape((800, 1))(inputs)
    x = keras.layers.Conv1D(4, 9, strides=4, activation="relu", name="conv")(x)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    model = keras.Model(inputs, x)
    backbone = Backbone("tiny_audio", "audio", model, [Block("all", [layer.name for layer in model.layers])],
                        {"sample_rate": 8000})
    t = np.arange(1000) / 8000
    raw = [_wav(0.5 * np.sin(2 * np.pi * 440 * t), 8000), _wav(0.3 * np.sin(2 * np.pi * 200 * t[:500]), 16000)]
    return backbone, AudioPreprocessor(8000, 800), raw


@pytest.mark.parametrize("modality,make", [("image", _image), ("text", _text), ("audio", _audio)])
def test_export_contract(modality, make, tmp_path):
    backbone, preprocessor, raw = make(tmp_path)
    model, _ = build_model(backbone, len(CLASSES), HeadConfig(dropout=0.0))
    path = export_saved_model(model, preprocessor, CLASSES, str(tmp_path / "export"), modality)
    if modality == "text":
        import tensorflow_text  # noqa: F401  (TF Text ops of the tokenizer, as TF Serving links them)
    check_export_contract(path, model, preprocessor, CLASSES, modality, raw)
