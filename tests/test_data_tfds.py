"""TFDS sources: offline-safe loading, splits carved from train, and the mocked tf_flowers dataset."""

import pytest

from tfx_transfer.config import ConfigError
from tfx_transfer.data.image import load_data
from tfx_transfer.data.tfds import _default_splits
from tfx_transfer.recipe import recipe_from_dict


class _Backbone:
    input_config = {"image_size": (24, 24)}


def _recipe(tmp_path, **data):
    return recipe_from_dict({"data": {"source": "tfds", "data_dir": str(tmp_path), **data}})


def test_unprepared_dataset_offline_fails_at_once_with_advice(tmp_path):
    with pytest.raises(ConfigError, match="not prepared under data_dir .* data.download is false"):
        load_data(_recipe(tmp_path, tfds_name="tf_flowers"), _Backbone())


def test_unknown_dataset_name_is_named(tmp_path):
    with pytest.raises(ConfigError, match="'no_such_dataset_xyz' could not be loaded"):
        load_data(_recipe(tmp_path, tfds_name="no_such_dataset_xyz"), _Backbone())


def test_missing_splits_are_carved_from_train():
    config = recipe_from_dict({"data": {"validation_fraction": 0.1, "test_fraction": 0.2}}).data
    assert _default_splits({"train": 1}, config) == {
        "train": "train[:70%]", "validation": "train[70%:80%]", "test": "train[80%:100%]"
    }
    assert _default_splits({"train": 1, "test": 1}, config) == {
        "train": "train[:90%]", "validation": "train[90%:100%]", "test": "test"
    }


def test_mocked_tf_flowers_loads_resized_rgb_with_class_names(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=20):
        splits = load_data(_recipe(tmp_path, tfds_name="tf_flowers", download=True), _Backbone())
        image, label = next(iter(splits.train))
    assert image.shape == (24, 24, 3) and image.dtype.name == "float32"
    assert splits.class_names == ["dandelion", "daisy", "tulips", "sunflowers", "roses"]
    assert 0 <= int(label) < 5
