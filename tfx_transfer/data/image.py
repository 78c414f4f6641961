"""Image input pipelines (folders, TFDS, Fashion-MNIST, synthetic) and the one image preprocessing function.

`ImagePreprocessor.prepare` (convert to RGB, resize to the backbone's size,
float32 0..255) is used by every pipeline here and by both serving signatures,
so training and serving see the same pixels.
"""

import time

import numpy as np
import tensorflow as tf

from tfx_transfer.config import ConfigError
from tfx_transfer.data.base import DataSplits, ServingPreprocessor
from tfx_transfer.data.image_header import decode_bounded_image
from tfx_transfer.data.sources import (
    ClassFolders,
    PooledExamples,
    SkippedReport,
    choose_splits,
    list_class_folders,
    predefined_split_dirs,
)
from tfx_transfer.data.split_manifest import portable_source
from tfx_transfer.data.splits import class_counts
from tfx_transfer.safe_text import is_valid_utf8_name

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp")
IMAGE_PATTERNS = tuple(f"*{extension}" for extension in IMAGE_EXTENSIONS)


class ImagePreprocessor(ServingPreprocessor):
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


def list_image_folder(root: str) -> ClassFolders:
    """The images of a `root/<class>/*.<image ext>` tree, classes sorted (any `tf.io.gfile` path)."""
    return list_class_folders(root, IMAGE_PATTERNS, "image", "images")


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
    split_dirs = predefined_split_dirs(root)
    start = time.perf_counter()
    if "train" in split_dirs:
        listed = {s: list_image_folder(d) for s, d in split_dirs.items()}
        class_names = listed["train"].class_names
        for split, folders in listed.items():
            if folders.class_names != class_names:
                raise ConfigError(
                    f"data.path: {split_dirs[split]!r} has classes {folders.class_names} but train/ has "
                    f"{class_names}; every split needs the same class folders."
                )
    else:
        listed = {"all": list_image_folder(root)}
        class_names = listed["all"].class_names
    ignored = [f for folders in listed.values() for f in folders.ignored]

    all_paths = [p for folders in listed.values() for p in folders.paths]
    badly_named = {p for p in all_paths if not is_valid_utf8_name(p)}
    undecodable = set(find_corrupt_images([p for p in all_paths if p not in badly_named], preprocessor))
    skipped = SkippedReport()
    for path in sorted(badly_named):
        skipped.add(path, "the file name is not valid UTF-8; rename the file")
    for path in sorted(undecodable):
        skipped.add(path, "cannot be decoded as an image (or declares too many pixels)")
    skipped.log("image file(s)")
    corrupt = badly_named | undecodable
    for folders in listed.values():
        kept = [folders.class_names[label] for path, label in zip(folders.paths, folders.label_ids) if path not in corrupt]
        skipped.raise_if_classes_lost({folders.class_names[label] for label in folders.label_ids}, kept, "image")

    def keep(folders):
        mask = np.array([p not in corrupt for p in folders.paths], bool)
        return list(np.asarray(folders.paths)[mask]), folders.label_ids[mask]

    kept = {s: keep(f) for s, f in listed.items()}
    paths = [p for split_paths, _ in kept.values() for p in split_paths]
    labels = np.concatenate([split_labels for _, split_labels in kept.values()])
    examples = PooledExamples(
        [portable_source(p, root) for p in paths], labels,
        data_splits=None if "all" in kept else [s for s, (split_paths, _) in kept.items() for _ in split_paths],
    )
    chosen = choose_splits(examples, class_names, config, seed)
    split_parts = {s: _take(paths, labels, idx) for s, idx in chosen.indices.items()}
    read_parts = {s: _take(paths, labels, idx) for s, idx in chosen.read.items()}

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
        "counts": {s: class_counts(l, class_names) for s, (_, l) in split_parts.items() if len(l)},
        "skipped": skipped.items,
        "ignored_non_image_files": len(ignored),
        "seconds_to_list_and_validate": round(time.perf_counter() - start, 2),
    }
    return DataSplits(
        train=dataset(*read_parts["train"]),
        validation=dataset(*read_parts["validation"]),
        test=dataset(*read_parts["test"]),
        class_names=class_names,
        report=report,
        manifest=chosen.manifest,
    )


def _take(paths, labels, indices):
    return [paths[i] for i in indices], labels[indices]


# --- arrays (Fashion-MNIST, synthetic) ---------------------------------------------------------


def array_splits(arrays: dict, class_names, config, seed, preprocessor, source) -> DataSplits:
    """Splits in-memory `{"train": (images uint8 [N, h, w(, c)], labels), "test": (...)}` into prepared datasets.

    A `test` array is the test split and validation is drawn from `train`;
    without one, validation and test are both drawn from `train`
    (`sources.choose_splits`, which also honours `data.split_manifest`).
    Example `i` of array `name` has the source `<source>:<name>[i]`.
    """
    names = list(arrays)
    images = np.concatenate([arrays[name][0] for name in names])
    labels = np.concatenate([arrays[name][1] for name in names]).astype(np.int32)
    origins = [name for name in names for _ in range(len(arrays[name][1]))]
    examples = PooledExamples(
        [f"{source}:{name}[{i}]" for name in names for i in range(len(arrays[name][1]))], labels,
        data_splits=origins if "test" in arrays else None,
    )
    chosen = choose_splits(examples, class_names, config, seed)

    def dataset(indices):
        if not len(indices):
            return None
        ds = tf.data.Dataset.from_tensor_slices((images[indices], labels[indices]))
        return ds.map(lambda im, lab: (preprocessor.prepare(im), lab), num_parallel_calls=tf.data.AUTOTUNE)

    return DataSplits(
        train=dataset(chosen.read["train"]),
        validation=dataset(chosen.read["validation"]),
        test=dataset(chosen.read["test"]),
        class_names=list(class_names),
        report={
            "source": source,
            "counts": {s: class_counts(labels[idx], class_names) for s, idx in chosen.indices.items() if len(idx)},
            "skipped": [],
        },
        manifest=chosen.manifest,
    )


def _load_fashion_mnist(config, preprocessor, seed) -> DataSplits:
    from tfx_transfer.data.fashion_mnist import load_fashion_mnist

    data = load_fashion_mnist(root=config.path)
    return array_splits(
        {"train": (data.train_images, data.train_labels), "test": (data.test_images, data.test_labels)},
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
    return array_splits({"train": (images, labels)}, class_names, config, seed, preprocessor, "synthetic")


def _load_tfds(config, preprocessor, seed) -> DataSplits:
    from tfx_transfer.data.tfds import example_sources, label_names, load_tfds_splits, select_examples

    read, info = load_tfds_splits(config, decode_inputs=False)
    read = {split: ds for split, ds in read.items() if ds is not None}
    class_names = label_names(info)
    # Labels without decoding a single image: the inputs are read as encoded bytes.
    labels = {split: np.fromiter(ds.map(lambda image, label: label).as_numpy_iterator(), np.int32) for split, ds in read.items()}
    examples = PooledExamples(
        [source for split in read for source in example_sources(config, info, split, len(labels[split]))],
        np.concatenate(list(labels.values())),
        data_splits=[split for split in read for _ in labels[split]],
    )
    chosen = choose_splits(examples, class_names, config, seed)
    decode = info.features[info.supervised_keys[0]].decode_example

    def dataset(indices):
        if not len(indices):
            return None
        selected = select_examples(list(read.values()), [len(y) for y in labels.values()], indices)
        return selected.map(
            lambda image, label: (preprocessor.prepare(decode(image)), tf.cast(label, tf.int32)),
            num_parallel_calls=tf.data.AUTOTUNE,
        )

    return DataSplits(
        train=dataset(chosen.read["train"]),
        validation=dataset(chosen.read["validation"]),
        test=dataset(chosen.read["test"]),
        class_names=class_names,
        report={
            "source": "tfds",
            "name": config.tfds_name,
            "counts": {
                s: class_counts(examples.labels[idx], class_names) for s, idx in chosen.indices.items() if len(idx)
            },
            "skipped": [],
        },
        manifest=chosen.manifest,
    )
