"""Image input pipelines (folders, TFDS, Fashion-MNIST, synthetic) and the one image preprocessing function.

`ImagePreprocessor.prepare` (convert to RGB, resize to the backbone's size,
float32 0..255) is used by every pipeline here and by both serving signatures,
so training and serving see the same pixels.
"""

import os
import sys
import time

import numpy as np
import tensorflow as tf

from tfx_transfer.config import ConfigError
from tfx_transfer.data.base import DataSplits
from tfx_transfer.data.image_header import decode_bounded_image
from tfx_transfer.data.skipped import raise_if_classes_lost
from tfx_transfer.data.splits import class_counts, stratified_split
from tfx_transfer.safe_text import is_valid_utf8_name, printable

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp")
SPLIT_DIRS = ("train", "validation", "test")


class ImagePreprocessor:
    """Decodes JPEG/PNG/GIF/BMP bytes and resizes to the backbone's input, with core TF ops only.

    >>> pre = ImagePreprocessor((32, 32))
    >>> png = tf.io.encode_png(tf.zeros((10, 20, 1), tf.uint8))
    >>> pre.raw_to_inputs(tf.stack([png])).shape
    TensorShape([1, 32, 32, 3])
    """

    raw_key = "image_bytes"
    tensor_key = "image"

    def __init__(self, image_size):
        self.image_size = (int(image_size[0]), int(image_size[1]))

    @property
    def tensor_spec(self) -> tf.TensorSpec:
        return tf.TensorSpec([None, *self.image_size, 3], tf.float32)

    def decode(self, image_bytes):
        """One encoded image -> uint8 `[h, w, 3]` (first frame of a GIF); InvalidArgument above `MAX_PIXELS`."""
        return decode_bounded_image(image_bytes)

    def prepare(self, image):
        """One decoded image `[h, w, 1 or 3]` of any size -> float32 `[H, W, 3]` in 0..255."""
        image = tf.convert_to_tensor(image)
        if image.shape.rank == 2:
            image = image[..., tf.newaxis]
        if image.shape[-1] == 1:
            image = tf.image.grayscale_to_rgb(image)
        image = tf.image.resize(tf.cast(image, tf.float32), self.image_size, antialias=True)
        return tf.clip_by_value(image, 0.0, 255.0)

    def raw_to_inputs(self, raw):
        return tf.map_fn(
            lambda b: self.prepare(self.decode(b)),
            raw,
            fn_output_signature=tf.TensorSpec([*self.image_size, 3], tf.float32),
        )

    def tensor_to_inputs(self, tensor):
        return tf.cast(tensor, tf.float32)

    def example_raw_input(self) -> bytes:
        return tf.io.encode_jpeg(tf.fill([*self.image_size, 3], tf.constant(128, tf.uint8))).numpy()


def make_preprocessor(recipe, backbone) -> ImagePreprocessor:
    return ImagePreprocessor(backbone.input_config["image_size"])


def make_augmentation(recipe):
    """Keras random-augmentation layers from `recipe.augment`, applied to training batches; None if off."""
    import keras

    config, seed = recipe.augment, recipe.seed
    if not config.enabled:
        return None
    layers = []
    if config.flip != "none":
        layers.append(keras.layers.RandomFlip(config.flip, seed=seed))
    if config.rotation:
        layers.append(keras.layers.RandomRotation(config.rotation, seed=seed))
    if config.zoom:
        layers.append(keras.layers.RandomZoom(config.zoom, seed=seed))
    if config.translation:
        layers.append(keras.layers.RandomTranslation(config.translation, config.translation, seed=seed))
    if config.contrast:
        layers.append(keras.layers.RandomContrast(config.contrast, value_range=(0, 255), seed=seed))
    return keras.Sequential(layers, name="augmentation")


def load_data(recipe, backbone) -> DataSplits:
    """The recipe's image dataset as unbatched `(float32 [H, W, 3], label)` splits."""
    config = recipe.data
    preprocessor = make_preprocessor(recipe, backbone)
    loaders = {
        "folder": _load_folder,
        "tfds": _load_tfds,
        "fashion_mnist": _load_fashion_mnist,
        "synthetic": _load_synthetic,
    }
    if config.source not in loaders:
        raise ConfigError(
            f"data.source: {config.source!r} is not an image source. Expected one of: {', '.join(loaders)}."
        )
    return loaders[config.source](config, preprocessor, recipe.seed)


# --- folders ---------------------------------------------------------------------------------


def list_image_folder(root: str):
    """`(paths, labels, class_names, ignored)` of a `root/<class>/*.<image ext>` tree, classes sorted."""
    if not root:
        raise ConfigError("data.path: an image folder is required for data.source 'folder'.")
    if not os.path.isdir(root):
        raise ConfigError(f"data.path: image folder {root!r} does not exist.")
    class_names = sorted(
        d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith(".")
    )
    if len(class_names) < 2:
        raise ConfigError(
            f"data.path: {root!r} holds {len(class_names)} class folder(s) {class_names}; a classifier "
            "needs at least 2, one sub-folder of images per class."
        )
    paths, labels, ignored = [], [], []
    for label, name in enumerate(class_names):
        files = []
        for dirpath, _, filenames in sorted(os.walk(os.path.join(root, name))):
            for filename in sorted(filenames):
                path = os.path.join(dirpath, filename)
                (files if filename.lower().endswith(IMAGE_EXTENSIONS) else ignored).append(path)
        if not files:
            raise ConfigError(
                f"data.path: class folder {os.path.join(root, name)!r} has no images "
                f"({', '.join(IMAGE_EXTENSIONS)}). Add images or remove the folder."
            )
        paths += files
        labels += [label] * len(files)
    return paths, np.asarray(labels, np.int32), class_names, ignored


def find_corrupt_images(paths, preprocessor: ImagePreprocessor) -> list[str]:
    """Paths that TensorFlow cannot decode, found by decoding every file once in parallel."""
    checked = (
        tf.data.Dataset.from_tensor_slices(list(paths))
        .map(lambda p: (p, tf.shape(preprocessor.decode(tf.io.read_file(p)))), num_parallel_calls=tf.data.AUTOTUNE)
        .ignore_errors()
    )
    readable = {p.decode() for p, _ in checked.as_numpy_iterator()}
    return [p for p in paths if p not in readable]


def _load_folder(config, preprocessor, seed) -> DataSplits:
    root = config.path
    predefined = os.path.isdir(root or "") and os.path.isdir(os.path.join(root, "train"))
    start = time.perf_counter()
    if predefined:
        listed = {s: list_image_folder(os.path.join(root, s)) for s in SPLIT_DIRS if os.path.isdir(os.path.join(root, s))}
        class_names = listed["train"][2]
        for split, (_, _, names, _) in listed.items():
            if names != class_names:
                raise ConfigError(
                    f"data.path: {os.path.join(root, split)!r} has classes {names} but train/ has "
                    f"{class_names}; every split needs the same class folders."
                )
        parts = {s: (p, l) for s, (p, l, _, _) in listed.items()}
        ignored = [f for (_, _, _, ign) in listed.values() for f in ign]
    else:
        paths, labels, class_names, ignored = list_image_folder(root)
        parts = {"all": (paths, labels)}

    all_paths = [p for paths, _ in parts.values() for p in paths]
    badly_named = {p for p in all_paths if not is_valid_utf8_name(p)}
    corrupt = set(find_corrupt_images([p for p in all_paths if p not in badly_named], preprocessor))
    skipped = [{"file": printable(f), "reason": "the file name is not valid UTF-8; rename the file"}
               for f in sorted(badly_named)]
    skipped += [{"file": printable(f), "reason": "cannot be decoded as an image (or declares too many pixels)"}
                for f in sorted(corrupt)]
    corrupt |= badly_named
    if corrupt:
        print(
            f"[tfx-transfer] skipped {len(corrupt)} image file(s), e.g. {skipped[0]['file']}: {skipped[0]['reason']} "
            "(listed in metrics.json under data.skipped).",
            file=sys.stderr,
        )
    for paths, labels in parts.values():
        kept = [class_names[label] for path, label in zip(paths, labels) if path not in corrupt]
        raise_if_classes_lost({class_names[label] for label in labels}, kept, skipped, "image")

    def keep(paths, labels):
        mask = np.array([p not in corrupt for p in paths], bool)
        return list(np.asarray(paths)[mask]), np.asarray(labels)[mask]

    if predefined:
        split_parts = {s: keep(*parts[s]) for s in parts}
        if "validation" not in split_parts:
            p, l = split_parts["train"]
            train_idx, val_idx, _ = stratified_split(l, config.validation_fraction, 0.0, seed)
            split_parts["train"] = ([p[i] for i in train_idx], l[train_idx])
            split_parts["validation"] = ([p[i] for i in val_idx], l[val_idx])
    else:
        paths, labels = keep(*parts["all"])
        train_idx, val_idx, test_idx = stratified_split(
            labels, config.validation_fraction, config.test_fraction, seed
        )
        split_parts = {
            name: ([paths[i] for i in idx], labels[idx])
            for name, idx in (("train", train_idx), ("validation", val_idx), ("test", test_idx))
        }
    missing = [c for c, n in class_counts(split_parts["train"][1], class_names).items() if n == 0]
    if missing:
        raise ConfigError(
            f"data.path: after skipping unreadable files, classes {missing} have no training images."
        )
    split_parts["train"] = _limit(split_parts["train"], config.max_train_examples, seed)

    def dataset(paths, labels):
        if not len(paths):
            return None
        ds = tf.data.Dataset.from_tensor_slices((list(paths), np.asarray(labels, np.int32)))
        return ds.map(
            lambda p, y: (preprocessor.prepare(preprocessor.decode(tf.io.read_file(p))), y),
            num_parallel_calls=tf.data.AUTOTUNE,
        )

    report = {
        "source": "folder",
        "path": root,
        "counts": {s: class_counts(l, class_names) for s, (_, l) in split_parts.items()},
        "skipped": skipped,
        "ignored_non_image_files": len(ignored),
        "seconds_to_list_and_validate": round(time.perf_counter() - start, 2),
    }
    return DataSplits(
        train=dataset(*split_parts["train"]),
        validation=dataset(*split_parts["validation"]) if "validation" in split_parts else None,
        test=dataset(*split_parts["test"]) if "test" in split_parts else None,
        class_names=class_names,
        report=report,
    )


def _limit(part, max_examples, seed):
    paths, labels = part
    if not max_examples or len(labels) <= max_examples:
        return part
    keep_fraction = max_examples / len(labels)
    _, _, kept = stratified_split(labels, 0.0, keep_fraction, seed)
    return [paths[i] for i in kept], labels[kept]


# --- arrays (Fashion-MNIST, synthetic) ---------------------------------------------------------


def array_splits(train, test, class_names, config, seed, preprocessor, source) -> DataSplits:
    """Splits in-memory `(images uint8 [N, h, w(, c)], labels)` arrays into prepared datasets.

    Validation comes out of `train` by a stratified split; `test` may be None,
    in which case it is also carved out of `train`.
    """
    x, y = train
    train_idx, val_idx, test_idx = stratified_split(
        y, config.validation_fraction, 0.0 if test is not None else config.test_fraction, seed
    )
    if config.max_train_examples and len(train_idx) > config.max_train_examples:
        _, _, kept = stratified_split(y[train_idx], 0.0, config.max_train_examples / len(train_idx), seed)
        train_idx = train_idx[kept]
    parts = {"train": (x[train_idx], y[train_idx]), "validation": (x[val_idx], y[val_idx])}
    parts["test"] = test if test is not None else (x[test_idx], y[test_idx])

    def dataset(images, labels):
        ds = tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int32)))
        return ds.map(lambda im, lab: (preprocessor.prepare(im), lab), num_parallel_calls=tf.data.AUTOTUNE)

    return DataSplits(
        train=dataset(*parts["train"]),
        validation=dataset(*parts["validation"]) if len(parts["validation"][1]) else None,
        test=dataset(*parts["test"]),
        class_names=list(class_names),
        report={"source": source, "counts": {s: class_counts(l, class_names) for s, (_, l) in parts.items()},
                "skipped": []},
    )


def _load_fashion_mnist(config, preprocessor, seed) -> DataSplits:
    from tfx_transfer.data.fashion_mnist import load_fashion_mnist

    data = load_fashion_mnist(root=config.path)
    return array_splits(
        (data.train_images, data.train_labels), (data.test_images, data.test_labels),
        data.class_names, config, seed, preprocessor, "fashion_mnist",
    )


def synthetic_images(num_per_class: int = 60, num_classes: int = 3, size: int = 32, seed: int = 0):
    """Small generated images whose class is the orientation of a noisy stripe pattern.

    Learnable from scratch and by pretrained features alike; used by smoke tests
    and the offline quick start, never as a benchmark.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    images, labels = [], []
    for label in range(num_classes):
        angle = np.pi * label / num_classes
        for _ in range(num_per_class):
            phase = rng.uniform(0, 2 * np.pi)
            freq = rng.uniform(3, 6)
            stripes = np.sin(2 * np.pi * freq * (np.cos(angle) * xx + np.sin(angle) * yy) + phase)
            colour = rng.uniform(0.3, 1.0, size=3)
            image = (stripes[..., None] * 0.5 + 0.5) * colour + rng.normal(0, 0.1, (size, size, 3))
            images.append(np.clip(image * 255, 0, 255).astype(np.uint8))
            labels.append(label)
    return np.stack(images), np.asarray(labels, np.int32), [f"stripes_{k}" for k in range(num_classes)]


def _load_synthetic(config, preprocessor, seed) -> DataSplits:
    images, labels, class_names = synthetic_images(seed=seed)
    return array_splits((images, labels), None, class_names, config, seed, preprocessor, "synthetic")


def _load_tfds(config, preprocessor, seed) -> DataSplits:
    from tfx_transfer.data.tfds import label_names, load_tfds_splits

    datasets, info = load_tfds_splits(config)

    def prepare(ds):
        return ds.map(
            lambda image, label: (preprocessor.prepare(image), tf.cast(label, tf.int32)),
            num_parallel_calls=tf.data.AUTOTUNE,
        )

    train = datasets["train"]
    if config.max_train_examples:
        train = train.take(config.max_train_examples)
    return DataSplits(
        train=prepare(train),
        validation=prepare(datasets["validation"]) if datasets["validation"] is not None else None,
        test=prepare(datasets["test"]) if datasets["test"] is not None else None,
        class_names=label_names(info),
        report={"source": "tfds", "name": config.tfds_name, "skipped": []},
    )
