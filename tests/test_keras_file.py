"""A saved `.keras` model reloads in safe mode after a plain `import tfx_transfer`."""

import os
import subprocess
import sys

import keras

from tfx_transfer.backbones.keras_apps import build_keras_app
from tfx_transfer.model import build_model
from tfx_transfer.recipe import HeadConfig


def test_keras_file_with_pixel_normalization_loads_in_a_fresh_process(tmp_path):
    backbone = build_keras_app("MobileNetV2", weights=None, image_size=(32, 32))
    assert any(layer.name == "pixel_normalization" for layer in backbone.model.layers)
    model, _ = build_model(backbone, 3, HeadConfig())
    path = tmp_path / "model.keras"
    model.save(path)
    script = (
        "import keras, numpy as np, tfx_transfer\n"
        f"m = keras.saving.load_model({str(path)!r}, safe_mode=True)\n"
        "print(m.predict(np.zeros((1, 32, 32, 3), 'float32'), verbose=0).shape)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "(1, 3)"
