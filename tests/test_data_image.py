"""Image folders: splits, predefined splits, and clear errors for bad data."""

import os

import numpy as np
import pytest

from harness import write_image_folder
from tfx_transfer.config import ConfigError
from tfx_transfer.data.image import ImagePreprocessor, array_splits, load_data, synthetic_images
from tfx_transfer.data.shares import WorkerShare, reading_share
from tfx_transfer.data.splits import stratified_split
from tfx_transfer.recipe import recipe_from_dict


class _Backbone:
    input_config = {"image_size": (16, 16)}


def _load(path, **data):
    recipe = recipe_from_dict({"data": {"source": "folder", "path": str(path), **data}})
    return load_data(recipe, _Backbone())


def test_folder_is_split_stratified_and_reproducibly(tmp_path, caplog):
    write_image_folder(tmp_path, classes=("a", "b", "c"), per_class=10)
    with caplog.at_level("WARNING", logger="tfx_transfer"):
        splits = _load(tmp_path, validation_fraction=0.2, test_fraction=0.2)
    assert not caplog.messages
    assert splits.class_names == ["a", "b", "c"]
    assert splits.report["counts"] == {
        "train": {"a": 6, "b": 6, "c": 6},
        "validation": {"a": 2, "b": 2, "c": 2},
        "test": {"a": 2, "b": 2, "c": 2},
    }
    x, y = next(iter(splits.train))
    assert x.shape == (16, 16, 3) and x.dtype.name == "float32" and 0 <= float(np.min(x)) <= float(np.max(x)) <= 255
    again = _load(tmp_path, validation_fraction=0.2, test_fraction=0.2)
    first = [int(y) for _, y in splits.test]
    assert first == [int(y) for _, y in again.test]


def test_predefined_split_folders_are_used(tmp_path):
    write_image_folder(tmp_path / "train", per_class=5)
    write_image_folder(tmp_path / "test", per_class=2, seed=1)
    splits = _load(tmp_path, validation_fraction=0.2)
    assert splits.report["counts"]["test"] == {"cat": 2, "dog": 2}
    assert splits.report["counts"]["validation"] == {"cat": 1, "dog": 1}
    assert splits.report["counts"]["train"] == {"cat": 4, "dog": 4}


def test_classes_too_small_for_a_validation_or_test_example_are_named_in_a_warning(tmp_path, caplog):
    write_image_folder(tmp_path / "some", classes=("a",), per_class=10)
    write_image_folder(tmp_path / "some", classes=("b",), per_class=2)
    with caplog.at_level("WARNING", logger="tfx_transfer"):
        splits = _load(tmp_path / "some")
    assert splits.report["counts"] == {
        "train": {"a": 6, "b": 2}, "validation": {"a": 2, "b": 0}, "test": {"a": 2, "b": 0},
    }
    for split in ("validation", "test"):
        assert (f"data: classes ['b'] have no {split} example: data.{split}_fraction 0.15 of their few examples "
                f"rounds to none, so {split} metrics leave them out. Add examples of these classes or raise "
                f"data.{split}_fraction.") in caplog.messages

    caplog.clear()
    write_image_folder(tmp_path / "tiny", per_class=3)
    with caplog.at_level("WARNING", logger="tfx_transfer"):
        splits = _load(tmp_path / "tiny")
    assert splits.report["counts"] == {"train": {"cat": 3, "dog": 3}}
    assert caplog.messages == [
        f"data: the {split} split is empty: data.{split}_fraction 0.15 of each class of the 6 examples rounds to "
        f"none. Add examples or raise data.{split}_fraction."
        for split in ("validation", "test")
    ]


def test_corrupt_and_truncated_images_are_skipped_counted_and_named(tmp_path, caplog):
    write_image_folder(tmp_path, per_class=6, fmt="jpg")
    bad = tmp_path / "cat" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    empty = tmp_path / "dog" / "empty.png"
    empty.write_bytes(b"")
    (tmp_path / "dog" / "notes.txt").write_text("ignored")
    splits = _load(tmp_path)
    skipped = {os.path.basename(s["source"]) for s in splits.report["skipped"]}
    assert skipped == {"broken.jpg", "empty.png"}
    assert splits.report["ignored_non_image_files"] == 1
    assert sum(sum(c.values()) for c in splits.report["counts"].values()) == 12
    assert "skipped 2 image file(s)" in caplog.text
    assert sum(1 for _ in splits.train) == splits.report["counts"]["train"]["cat"] + splits.report["counts"]["train"]["dog"]


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="image folder .*missing.* does not exist"):
        _load(tmp_path / "missing")


def test_one_class_folder_is_a_clear_error(tmp_path):
    write_image_folder(tmp_path, classes=("only",))
    with pytest.raises(ConfigError, match=r"holds 1 class folder\(s\) \['only'\]; a classifier needs at least 2"):
        _load(tmp_path)


def test_empty_class_folder_is_named(tmp_path):
    write_image_folder(tmp_path)
    os.makedirs(tmp_path / "empty")
    with pytest.raises(ConfigError, match="class folder .*empty.* has no images"):
        _load(tmp_path)


def test_grayscale_rgba_gif_and_bmp_decode_to_rgb():
    import io

    import tensorflow as tf
    from PIL import Image

    def encoded(mode, fmt, value):
        buffer = io.BytesIO()
        Image.new(mode, (6, 5), value).save(buffer, format=fmt)
        return buffer.getvalue()

    pre = ImagePreprocessor((8, 8))
    raw = [encoded("L", "PNG", 0), encoded("RGBA", "PNG", (200, 200, 200, 255)),
           encoded("RGB", "GIF", (255, 0, 0)), encoded("RGB", "BMP", (0, 0, 255))]
    out = pre.raw_to_inputs(tf.constant(raw)).numpy()
    assert out.shape == (4, 8, 8, 3)
    np.testing.assert_allclose(out[1], 200.0, atol=1e-3)
    np.testing.assert_allclose(out[2].mean(axis=(0, 1)), [255, 0, 0], atol=2)
    np.testing.assert_allclose(out[3].mean(axis=(0, 1)), [0, 0, 255], atol=1e-3)


def test_stratified_split_keeps_groups_together():
    labels = np.repeat([0, 1], 20)
    groups = np.repeat(np.arange(8), 5)
    train, val, test = stratified_split(labels, 0.25, 0.25, seed=3, groups=groups)
    for a, b in ((train, val), (train, test), (val, test)):
        assert not set(groups[a]) & set(groups[b])
    assert len(train) + len(val) + len(test) == 40


def test_synthetic_images_are_reproducible():
    a, la, names = synthetic_images(num_per_class=4, seed=1)
    b, lb, _ = synthetic_images(num_per_class=4, seed=1)
    np.testing.assert_array_equal(a, b)
    assert names == ["stripes_0", "stripes_1", "stripes_2"] and list(la) == list(lb)


def test_array_sources_read_the_worker_share_of_the_training_split():
    images, labels, class_names = synthetic_images(num_per_class=7, num_classes=2, size=8)
    arrays = {"train": (images, labels)}
    config = recipe_from_dict({"data": {"validation_fraction": 0.2, "test_fraction": 0.2}}).data
    whole = array_splits(arrays, class_names, config, 0, ImagePreprocessor((8, 8)), "synthetic")
    shares = []
    for worker in range(2):
        with reading_share(WorkerShare(worker, 2)):
            share = array_splits(arrays, class_names, config, 0, ImagePreprocessor((8, 8)), "synthetic")
        assert share.report == whole.report and share.manifest == whole.manifest
        assert len(list(share.test)) == len(list(whole.test)) and len(list(share.validation)) == len(list(whole.validation))
        shares.append([x.numpy().tobytes() for x, _ in share.train])
    assert not set(shares[0]) & set(shares[1])
    assert sorted(shares[0] + shares[1]) == sorted(x.numpy().tobytes() for x, _ in whole.train)
