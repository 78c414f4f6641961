"""Exports go through tf.io.gfile: a model exported to TF's in-memory filesystem loads back and answers."""

import numpy as np
import tensorflow as tf

from harness import tiny_resnet
from tfx_transfer import storage
from tfx_transfer.data.image import ImagePreprocessor
from tfx_transfer.export import export_saved_model, load_labels, resolve_export_dir
from tfx_transfer.model import build_model
from tfx_transfer.recipe import HeadConfig


def test_export_to_ram_filesystem_loads_back_and_matches_keras():
    model, _ = build_model(tiny_resnet(image_size=(16, 16)), 2, HeadConfig(dropout=0.0))
    base = "ram://exports_test"
    path = export_saved_model(model, ImagePreprocessor((16, 16)), ["cat", "dog"], base, "pets", recipe_yaml="name: pets\n")

    assert path == "ram://exports_test/pets/1"
    assert storage.listdir("ram://exports_test/pets") == ["1"]  # no temporary directory left behind
    assert resolve_export_dir("ram://exports_test/pets") == path
    assert load_labels(path) == ["cat", "dog"]
    assert storage.read_text(path + "/assets/recipe.yaml") == "name: pets\n"
    image = np.random.default_rng(0).uniform(0, 255, (1, 16, 16, 3)).astype("float32")
    served = tf.saved_model.load(path).signatures["serve_tensor"](image=tf.constant(image))
    np.testing.assert_allclose(served["probabilities"].numpy(), model.predict(image, verbose=0), atol=1e-5)
    second = export_saved_model(model, ImagePreprocessor((16, 16)), ["cat", "dog"], base, "pets", warmup_requests=False)
    assert second == "ram://exports_test/pets/2"
