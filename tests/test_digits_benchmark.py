"""`benchmarks/digits.py` writes scikit-learn's digits as a class-folder tree the toolkit's folder source reads."""

import importlib.util
import pathlib

import numpy as np
import tensorflow as tf
from sklearn.datasets import load_digits

from tfx_transfer.data.image import ImagePreprocessor, list_image_folder

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "digits.py"


def test_png_tree_holds_every_digit_in_its_class_folder(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPT.parent))  # the script imports its sibling benchmarks
    spec = importlib.util.spec_from_file_location("benchmark_digits", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    root = script.write_digits(tmp_path / "digits")

    digits = load_digits()
    listed = list_image_folder(str(root))
    assert listed.class_names == [str(d) for d in range(10)]
    assert np.bincount(listed.label_ids).tolist() == np.bincount(digits.target).tolist()
    # Grey 8x8 PNG in, RGB out, the 0..16 pixel values scaled to 0..255.
    preprocessor = ImagePreprocessor((64, 64))
    decoded = preprocessor.decode(tf.io.read_file(str(root / str(digits.target[5]) / "5.png"))).numpy()
    assert decoded.shape == (8, 8, 3)
    np.testing.assert_array_equal(decoded[..., 0], np.round(digits.images[5] * 255 / 16))
    np.testing.assert_array_equal(decoded[..., 0], decoded[..., 2])
    assert preprocessor.prepare(decoded).shape == (64, 64, 3)
