"""Every Keras object the toolkit registers survives serialization (safe mode) and computes the same."""

import keras
import numpy as np
import pytest

from tfx_transfer.saving import register_serializables

# Layers that wrap a SavedModel on disk: their round trip (through a `.keras` file) is in
# test_hub_layer.py and test_audio_hub.py, next to the SavedModels they need.
ROUND_TRIPPED_ELSEWHERE = {"tfx_transfer>SavedModelLayer", "tfx_transfer>HubAudioEncoder"}


def _cases():
    from tfx_transfer.backbones.audio_layers import FramePooling
    from tfx_transfer.backbones.kerashub import SequencePooling
    from tfx_transfer.backbones.layers import PixelNormalization
    from tfx_transfer.backbones.speech_embedding import FlooredLeakyReLU, LogMelSpectrogram
    from tfx_transfer.model import FeatureExtractor
    from tfx_transfer.training import WarmupDecay

    rng = np.random.default_rng(0)
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    return {
        "tfx_transfer>PixelNormalization": (
            lambda: PixelNormalization(mean=(1.0, 2.0, 3.0), std=(2.0, 2.0, 2.0), reverse_channels=True),
            rng.uniform(0, 255, (2, 4, 4, 3)).astype("float32")),
        "tfx_transfer>FramePooling": (lambda: FramePooling("mean+max"), rng.normal(size=(2, 5, 3)).astype("float32")),
        "tfx_transfer>SequencePooling": (
            lambda: SequencePooling("max"),
            [rng.normal(size=(2, 4, 3)).astype("float32"), np.array([[1, 1, 0, 0], [1, 1, 1, 1]])]),
        "tfx_transfer>LogMelSpectrogram": (lambda: LogMelSpectrogram(), rng.normal(size=(1, 16000)).astype("float32") * 0.1),
        "tfx_transfer>FlooredLeakyReLU": (lambda: FlooredLeakyReLU(0.1, -0.3), rng.normal(size=(2, 6)).astype("float32")),
        "tfx_transfer>FeatureExtractor": (lambda: FeatureExtractor(inner), rng.normal(size=(2, 4)).astype("float32")),
        "tfx_transfer>WarmupDecay": (lambda: WarmupDecay(0.01, 5, 20, decay="linear"), np.arange(25)),
    }


def _optimizer_and_metric_cases():
    from tfx_transfer import layerwise_optimizers
    from tfx_transfer.macro_f1 import MacroF1

    optimizers = {
        f"tfx_transfer>{cls.__name__}": lambda cls=cls: cls(0.01, lr_multipliers={"dense/kernel": 0.5})
        for cls in layerwise_optimizers.LAYERWISE_OPTIMIZERS.values()
    }
    return {**optimizers, "tfx_transfer>MacroF1": lambda: MacroF1(3, kind="multilabel", threshold=0.3)}


def test_every_registered_object_has_a_round_trip():
    register_serializables()
    registered = {name for name in keras.saving.get_custom_objects() if name.startswith("tfx_transfer>")}
    assert registered == set(_cases()) | set(_optimizer_and_metric_cases()) | ROUND_TRIPPED_ELSEWHERE


@pytest.mark.parametrize("name", sorted(_optimizer_and_metric_cases()))
def test_optimizers_and_metrics_keep_their_settings_in_safe_mode(name):
    original = _optimizer_and_metric_cases()[name]()
    config = keras.saving.serialize_keras_object(original)
    assert config["registered_name"] == name
    restored = keras.saving.deserialize_keras_object(config, safe_mode=True)
    assert type(restored) is type(original) and restored.get_config() == original.get_config()


@pytest.mark.parametrize("name", sorted(_cases()))
def test_round_trip_in_safe_mode(name):
    make, inputs = _cases()[name]
    original = make()
    before = np.asarray(original(inputs))
    config = keras.saving.serialize_keras_object(original)
    assert config["registered_name"] == name
    restored = keras.saving.deserialize_keras_object(config, safe_mode=True)
    assert type(restored) is type(original)
    if isinstance(restored, keras.layers.Layer):
        restored(inputs)  # builds the weights, which then get the original's values
        restored.set_weights(original.get_weights())
    np.testing.assert_allclose(np.asarray(restored(inputs)), before, rtol=1e-6, atol=1e-6)


def test_layers_are_registered_when_keras_is_imported_after_tfx_transfer():
    import subprocess
    import sys

    script = (
        "import sys, tfx_transfer\n"
        "assert 'keras' not in sys.modules\n"
        "import keras\n"
        "print(keras.saving.get_registered_object('tfx_transfer>PixelNormalization').__name__)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "PixelNormalization"
