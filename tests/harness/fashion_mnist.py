"""Fashion-MNIST idx files made inside tests: 28x28 images whose grey level gives away the class."""

import gzip
import struct

import numpy as np


def write_idx(path, array, compress):
    """Writes `array` (uint8) as an idx file at `path` (`path.gz`, gzipped, when `compress`)."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(f"{path}.gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def write_fake_fashion_mnist(root, compress=True, train_per_class=5, test_per_class=2):
    """The four idx files of a Fashion-MNIST with `train_per_class` / `test_per_class` images of each of 10 classes."""
    rng = np.random.default_rng(1)
    for split, per_class in (("train", train_per_class), ("t10k", test_per_class)):
        labels = np.repeat(np.arange(10), per_class)
        rng.shuffle(labels)
        images = (labels[:, None, None] * 20 + rng.integers(0, 5, (len(labels), 28, 28))).astype(np.uint8)
        write_idx(root / f"{split}-images-idx3-ubyte", images, compress)
        write_idx(root / f"{split}-labels-idx1-ubyte", labels, compress)
