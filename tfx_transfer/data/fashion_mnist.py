"""Fashion-MNIST read from its idx files (Debian package `dataset-fashion-mnist`), with a seeded stratified subset.

Fashion-MNIST has 60,000 training and 10,000 test images of clothing, 28x28
grey levels, in 10 balanced classes. The files are the original idx format,
gzipped or plain.
"""

import dataclasses
import gzip
import os
import pathlib

import numpy as np

DEFAULT_ROOT = pathlib.Path("/usr/share/datasets/fashion-mnist")
CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# idx type code -> big-endian NumPy dtype.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclasses.dataclass
class FashionMnist:
    """The images as uint8 `[N, 28, 28]`, labels as int32 `[N]` class ids into `class_names`."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: list[str]


def read_idx(path: os.PathLike) -> np.ndarray:
    """Reads one idx file (`.gz` or plain) into an array of its stored type and shape."""
    path = pathlib.Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise ValueError(f"Cannot read idx file {path}: {e}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an idx file (bad magic number {data[:4].hex()}).")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int(n) for n in np.frombuffer(data[4:header], dtype=">u4"))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(f"{path} has {len(data) - header} data bytes; its header {shape} needs {expected}.")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def load_fashion_mnist(root: os.PathLike | None = None, train_examples: int | None = None, seed: int = 0) -> FashionMnist:
    """Loads Fashion-MNIST from `root` (default `/usr/share/datasets/fashion-mnist`).

    `train_examples` keeps a seeded subset of the training images with the
    class proportions of the full set; the test set is always complete.
    """
    root = pathlib.Path(root) if root is not None else DEFAULT_ROOT
    arrays = {key: read_idx(_find(root, name)) for key, name in _FILES.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(
                f"Fashion-MNIST {split} files in {root} do not match: images {images.shape}, labels {labels.shape}."
            )
        if labels.size and (labels.min() < 0 or labels.max() >= len(CLASS_NAMES)):
            raise ValueError(f"Fashion-MNIST {split} labels in {root} must be 0..9, found {labels.max()}.")
    train_images, train_labels = arrays["train_images"], arrays["train_labels"].astype(np.int32)
    if train_examples is not None:
        keep = stratified_subset(train_labels, train_examples, seed)
        train_images, train_labels = train_images[keep], train_labels[keep]
    return FashionMnist(
        train_images=train_images.astype(np.uint8),
        train_labels=train_labels,
        test_images=arrays["test_images"].astype(np.uint8),
        test_labels=arrays["test_labels"].astype(np.int32),
        class_names=list(CLASS_NAMES),
    )


def stratified_subset(labels: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Sorted indices of `count` examples drawn at random (seeded) with the class proportions of `labels`.

    >>> stratified_subset(np.array([0, 0, 0, 0, 1, 1]), 3, seed=0).size
    3
    """
    if not 1 <= count <= len(labels):
        raise ValueError(f"train_examples must be between 1 and {len(labels)}, received {count}.")
    rng = np.random.default_rng(seed)
    classes, sizes = np.unique(labels, return_counts=True)
    quota = sizes * count / len(labels)
    take = np.floor(quota).astype(int)
    # Largest remainders get the examples rounding left over.
    for i in np.argsort(-(quota - take), kind="stable")[: count - take.sum()]:
        take[i] += 1
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:n] for c, n in zip(classes, take)]
    return np.sort(np.concatenate(chosen))


def _find(root: pathlib.Path, name: str) -> pathlib.Path:
    for candidate in (root / f"{name}.gz", root / name):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"Fashion-MNIST file {name}(.gz) is not in {root}. On Debian/Ubuntu install it with "
        "`apt-get install dataset-fashion-mnist`; elsewhere download the four idx files "
        "(train-images, train-labels, t10k-images, t10k-labels) and pass their folder as data.path."
    )
