"""Tests for reading Fashion-MNIST idx files and drawing stratified training subsets."""

import numpy as np
import pytest

from harness.fashion_mnist import write_fake_fashion_mnist
from tfx_transfer.data import fashion_mnist


@pytest.mark.parametrize("compress", [True, False], ids=["gz", "plain"])
def test_reads_idx_files(tmp_path, compress):
    write_fake_fashion_mnist(tmp_path, compress)
    data = fashion_mnist.load_fashion_mnist(tmp_path)
    assert data.train_images.shape == (50, 28, 28) and data.train_images.dtype == np.uint8
    assert data.test_images.shape == (20, 28, 28)
    assert data.train_labels.dtype == np.int32
    np.testing.assert_array_equal(data.train_images[:, 0, 0] // 20, data.train_labels)
    assert data.class_names[0] == "T-shirt/top" and data.class_names[9] == "Ankle boot"


def test_stratified_subset_is_seeded_and_keeps_class_balance(tmp_path):
    write_fake_fashion_mnist(tmp_path, compress=True, train_per_class=20)
    first = fashion_mnist.load_fashion_mnist(tmp_path, train_examples=30, seed=3)
    again = fashion_mnist.load_fashion_mnist(tmp_path, train_examples=30, seed=3)
    other = fashion_mnist.load_fashion_mnist(tmp_path, train_examples=30, seed=4)
    assert np.bincount(first.train_labels, minlength=10).tolist() == [3] * 10
    np.testing.assert_array_equal(first.train_images, again.train_images)
    assert not np.array_equal(first.train_images, other.train_images)
    assert len(first.test_labels) == 20  # the test set is never subsampled


def test_subset_rounding_gives_exactly_the_requested_count():
    labels = np.array([0] * 7 + [1] * 2 + [2] * 1)
    subset = fashion_mnist.stratified_subset(labels, 5, seed=0)
    assert subset.size == 5 and len(set(subset)) == 5
    with pytest.raises(ValueError, match="between 1 and 10"):
        fashion_mnist.stratified_subset(labels, 11, seed=0)


def test_missing_folder_says_how_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist") as error:
        fashion_mnist.load_fashion_mnist(tmp_path / "nowhere")
    assert "data.path" in str(error.value)


def test_corrupt_file_is_named(tmp_path):
    write_fake_fashion_mnist(tmp_path, compress=False)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x63")  # 99 labels, no data
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte"):
        fashion_mnist.load_fashion_mnist(tmp_path)


@pytest.mark.skipif(not fashion_mnist.DEFAULT_ROOT.is_dir(), reason="apt-get install dataset-fashion-mnist")
def test_reads_the_debian_package():
    data = fashion_mnist.load_fashion_mnist(train_examples=1000, seed=0)
    assert data.train_images.shape == (1000, 28, 28)
    assert data.test_images.shape == (10000, 28, 28)
    assert np.bincount(data.train_labels).tolist() == [100] * 10
    assert np.bincount(data.test_labels).tolist() == [1000] * 10
