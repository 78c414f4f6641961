"""What every modality's data source shares: class folders, the split choice, the training-set limit, skipped inputs.

>>> report = SkippedReport()
>>> report.add("data/cat/broken.jpg", "cannot be decoded as an image")
>>> report.summary()
{'cannot be decoded as an image': 1}
"""

import dataclasses
import fnmatch

import numpy as np

from tfx_transfer import storage
from tfx_transfer.config import ConfigError
from tfx_transfer.data.shares import current_share
from tfx_transfer.data.split_manifest import SplitManifest, label_texts, splits_from_manifest
from tfx_transfer.data.splits import stratified_split
from tfx_transfer.log import logger
from tfx_transfer.safe_text import printable

SPLIT_NAMES = ("train", "validation", "test")


@dataclasses.dataclass
class ClassFolders:
    """Files of a `root/<class>/**` tree: one path and class id per file, classes in sorted order."""

    paths: list[str]
    label_ids: np.ndarray
    class_names: list[str]
    ignored: list[str]  # files under class folders that the modality does not read


def list_class_folders(
    root: str,
    patterns: tuple[str, ...],
    modality: str,
    what: str,
    hidden_prefixes: tuple[str, ...] = (".",),
    every_class_needs_files: bool = True,
) -> ClassFolders:
    """Lists `root/<class>/**/<file matching one of patterns>`, classes and files sorted.

    Works on any `tf.io.gfile` filesystem. Folders whose names start with one of
    `hidden_prefixes` are not classes. `modality` and `what` name the folder and
    the files in errors ("image", "images").

    >>> storage.write_text_atomic("ram://doc_folders/a/1.txt", "x")
    >>> storage.write_text_atomic("ram://doc_folders/b/2.txt", "y")
    >>> listed = list_class_folders("ram://doc_folders", ("*.txt",), "text", "text files")
    >>> listed.class_names, listed.label_ids.tolist()
    (['a', 'b'], [0, 1])
    """
    if not root:
        raise ConfigError(f"data.path is required: the {modality} folder, with one sub-folder of {what} per class.")
    if not storage.isdir(root):
        raise ConfigError(f"data.path: {modality} folder {root!r} does not exist.")
    class_names = [
        name for name in storage.listdir(root)
        if storage.isdir(storage.join(root, name)) and not name.startswith(hidden_prefixes)
    ]
    if len(class_names) < 2:
        raise ConfigError(
            f"data.path: {root!r} holds {len(class_names)} class folder(s) {class_names}; a classifier "
            f"needs at least 2, one sub-folder of {what} per class."
        )
    paths, label_ids, ignored = [], [], []
    for label_id, name in enumerate(class_names):
        folder = storage.join(root, name)
        files = []
        for path in files_under(folder):
            filename = path.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
            matches = any(fnmatch.fnmatch(filename.lower(), p.lower()) for p in patterns)
            (files if matches and not filename.startswith(".") else ignored).append(path)
        if not files and every_class_needs_files:
            raise ConfigError(
                f"data.path: class folder {folder!r} has no {what} ({', '.join(patterns)}). "
                "Add some or remove the folder."
            )
        paths += files
        label_ids += [label_id] * len(files)
    return ClassFolders(paths, np.asarray(label_ids, np.int32), class_names, ignored)


def files_under(folder: str) -> list[str]:
    """Every file below `folder` (any `tf.io.gfile` path), in the order of a sorted recursive walk."""
    found = []
    for directory, subdirs, filenames in storage.walk(folder):
        subdirs.sort()
        found += [storage.join(directory, f) for f in sorted(filenames)]
    return found


def predefined_split_dirs(root: str) -> dict[str, str]:
    """`{split: root/split}` for the `train/`, `validation/`, `test/` folders that exist in `root`."""
    if not root or not storage.isdir(root):
        return {}
    return {s: storage.join(root, s) for s in SPLIT_NAMES if storage.isdir(storage.join(root, s))}


@dataclasses.dataclass
class PooledExamples:
    """Every example a data source read, in data order, before it is split.

    `sources` are portable (`split_manifest.portable_source`); `labels` are
    class ids `[N]` or multi-hot rows `[N, classes]`; `data_splits` is the split
    the data itself gives each example (`train/`, `validation/`, `test/` folders,
    a split column or file, a TFDS split), or None when it gives none; `groups`
    (speakers, source files) never cross a drawn split.
    """

    sources: list[str]
    labels: np.ndarray
    data_splits: list[str | None] | None = None
    groups: np.ndarray | None = None


@dataclasses.dataclass
class ChosenSplits:
    """Indices into the pooled examples of each of `train`, `validation`, `test` (data order), and the manifest.

    `indices` are whole splits (for counts and reports); `read` are the ones this worker reads: the
    same, except that under `multi_worker` the training split is this worker's share (`data.shares`).
    """

    indices: dict[str, np.ndarray]
    manifest: SplitManifest
    read: dict[str, np.ndarray]


def choose_splits(examples: PooledExamples, class_names, config, seed: int) -> ChosenSplits:
    """The split of every example, from `config.split_manifest` or else from the data and a seeded draw.

    With `data.split_manifest` each example goes to the split its row names
    (`split_manifest.splits_from_manifest`; the data's own splits are not used).
    Otherwise the data's own splits are kept and a missing validation split is
    drawn from train (`validation_fraction`); data without splits is drawn
    three ways (`validation_fraction`, `test_fraction`). Draws are stratified,
    seeded and keep groups together. Finally `max_train_examples` limits the
    training split; the examples it leaves out are `unused` in the manifest.
    Under `multi_worker` (inside `shares.reading_share`) `read["train"]` is this
    worker's share of the training split. An empty training split, one without
    some class (single-label data), or one with fewer examples than workers is a
    ConfigError.

    >>> from tfx_transfer.recipe import DataConfig
    >>> config = DataConfig(validation_fraction=0.25, test_fraction=0.25)
    >>> chosen = choose_splits(PooledExamples([f"{i}.png" for i in range(8)], np.array([0, 1] * 4)), ["a", "b"],
    ...                        config, seed=0)
    >>> {split: len(indices) for split, indices in chosen.indices.items()}
    {'train': 4, 'validation': 2, 'test': 2}
    >>> chosen.manifest.rows[0]
    ManifestRow(source='1.png', label='b', split='train')
    """
    labels = np.asarray(examples.labels)
    texts = label_texts(labels, class_names)
    if config.split_manifest:
        parts = splits_from_manifest(config.split_manifest, examples.sources, texts)
    else:
        strata = labels.argmax(axis=1) if labels.ndim == 2 else labels
        parts = _drawn_splits(examples, strata, class_names, config, seed)
    train = parts["train"]
    kept = limit_examples(labels[train], config.max_train_examples, seed)
    parts["unused"] = np.sort(np.concatenate([parts.get("unused", np.empty(0, np.int64)), np.delete(train, kept)]))
    parts["train"] = train[kept]
    _check_training_classes(labels, parts["train"], examples.sources, class_names, config)
    manifest = SplitManifest.from_indices(examples.sources, texts, parts)
    indices = {s: parts[s] for s in SPLIT_NAMES}
    return ChosenSplits(indices, manifest, {**indices, "train": _training_share(indices["train"])})


def _training_share(train: np.ndarray) -> np.ndarray:
    """This worker's share of the training indices; a ConfigError when a worker would get none."""
    share = current_share()
    if len(train) < share.count:
        raise ConfigError(
            f"data: the training split has {len(train)} example(s), fewer than the {share.count} workers "
            "of distribute.strategy multi_worker; every worker needs at least one."
        )
    return share.take(train)


def _check_training_classes(labels, train, sources, class_names, config) -> None:
    """Raises ConfigError when the training split (indices `train` of `labels`) is empty or (single-label
    data) lacks a class, naming an example of the first class it lacks."""
    train_labels = labels[train]
    missing = [] if labels.ndim == 2 else [i for i in range(len(class_names)) if not np.any(train_labels == i)]
    if not len(train_labels):
        problem = "the training split is empty"
    elif missing:
        names = [class_names[i] for i in missing]
        problem = f"classes {names} have no training examples (an example of {names[0]!r}: "
        problem += f"{sources[np.flatnonzero(labels == missing[0])[0]]})"
    else:
        return
    cause = (
        f"as data.split_manifest {config.split_manifest!r} assigns them" if config.split_manifest
        else "after skipping unreadable inputs and drawing the splits"
    )
    raise ConfigError(f"data.path: {problem} ({cause}).")


def _drawn_splits(examples: PooledExamples, strata, class_names, config, seed) -> dict[str, np.ndarray]:
    given = examples.data_splits or [None] * len(strata)
    fixed = [s for s in given if s is not None]
    if not fixed:
        indices = stratified_split(strata, config.validation_fraction, config.test_fraction, seed, examples.groups)
        parts = dict(zip(SPLIT_NAMES, indices))
        _warn_about_thin_splits(examples.labels, parts, ("validation", "test"), class_names, config)
        return parts
    if len(fixed) != len(given):
        raise ConfigError(
            "data.path: either every example has a split (train/validation/test folders or a split column) "
            "or none does; some have one and some do not."
        )
    given = np.asarray(given)
    parts = {s: np.flatnonzero(given == s) for s in SPLIT_NAMES}
    if not parts["train"].size:
        raise ConfigError("data.path: the data fixes splits but has no 'train' examples.")
    if not parts["validation"].size and config.validation_fraction:
        train = parts["train"]
        groups = None if examples.groups is None else np.asarray(examples.groups)[train]
        kept, drawn, _ = stratified_split(strata[train], config.validation_fraction, 0.0, seed, groups)
        parts["train"], parts["validation"] = train[kept], train[drawn]
        _warn_about_thin_splits(examples.labels, parts, ("validation",), class_names, config)
    return parts


def _warn_about_thin_splits(labels, parts, drawn, class_names, config) -> None:
    """Warns about each split in `drawn` that came out empty or (single-label data) without a class.

    The draw rounds each class's share, so a class with few examples gets none of a small
    fraction (0.15 of 2 rounds to 0) and that split's metrics leave the class out.
    """
    labels = np.asarray(labels)
    pool = np.concatenate([parts["train"], *(parts[s] for s in drawn)])
    for split in drawn:
        fraction = getattr(config, f"{split}_fraction")
        if not fraction:
            continue
        if not parts[split].size:
            logger.warning(
                f"data: the {split} split is empty: data.{split}_fraction {fraction} of each class of the "
                f"{len(pool)} examples rounds to none. Add examples or raise data.{split}_fraction."
            )
        elif labels.ndim == 1:
            missing = [class_names[i] for i in np.setdiff1d(labels[pool], labels[parts[split]])]
            if missing:
                logger.warning(
                    f"data: classes {missing} have no {split} example: data.{split}_fraction {fraction} of their "
                    f"few examples rounds to none, so {split} metrics leave them out. Add examples of these "
                    f"classes or raise data.{split}_fraction."
                )


def limit_examples(labels, max_examples: int | None, seed: int) -> np.ndarray:
    """Sorted indices of at most `max_examples` examples, stratified by label and seeded (all if no limit).

    `labels` are class ids, or multi-hot rows (stratified by their first class).

    >>> limit_examples([0, 0, 0, 0, 1, 1, 1, 1], 4, seed=0).size
    4
    """
    labels = np.asarray(labels)
    if not max_examples or len(labels) <= max_examples:
        return np.arange(len(labels))
    strata = labels if labels.ndim == 1 else labels.argmax(axis=1)
    _, _, kept = stratified_split(strata, 0.0, max_examples / len(labels), seed)
    return np.sort(kept)


def reason_counts(items) -> dict[str, int]:
    """How many of `items` (`SkippedReport.items`) were skipped for each reason (the text before any parenthesis).

    >>> reason_counts([{"source": "a", "reason": "empty text"}, {"source": "b", "reason": "invalid UTF-8 (at byte 3)"}])
    {'empty text': 1, 'invalid UTF-8': 1}
    """
    counts = {}
    for item in items:
        reason = item["reason"].split(" (")[0]
        counts[reason] = counts.get(reason, 0) + 1
    return counts


class SkippedReport:
    """Inputs left out of the data, each with where it came from and why; one format for every modality.

    `items` go into `metrics.json` under `data.skipped` as `{"source", "reason"}`, the
    source made printable (a file name that is not valid UTF-8 keeps its bytes as escapes);
    `summary()` counts them by reason (the text before any parenthesis).
    """

    def __init__(self):
        self.items: list[dict] = []

    def add(self, source: str, reason: str) -> None:
        self.items.append({"source": printable(str(source)), "reason": reason})

    def __len__(self) -> int:
        return len(self.items)

    def sources(self) -> set[str]:
        return {item["source"] for item in self.items}

    def summary(self) -> dict[str, int]:
        return reason_counts(self.items)

    def raise_if_classes_lost(self, listed_classes, kept_labels, modality: str) -> None:
        """Raises ConfigError naming the classes of `listed_classes` that no kept example has.

        Without it, two classes whose second holds only broken files fail later with
        "the data has 1 class", which hides the cause.

        >>> report = SkippedReport()
        >>> report.add("dog/1.wav", "empty")
        >>> report.raise_if_classes_lost({"cat", "dog"}, ["cat", "cat"], "audio")
        Traceback (most recent call last):
        ...
        tfx_transfer.config.ConfigError: data.path: every audio file of class 'dog' was skipped (1 file(s) skipped in all; first: dog/1.wav: empty). Fix or remove those files, or remove the class folder.
        """
        lost = sorted(set(listed_classes) - set(kept_labels), key=str)
        if not lost:
            return
        names = ", ".join(repr(printable(str(c))) for c in lost)
        first = f"; first: {self.items[0]['source']}: {self.items[0]['reason']}" if self.items else ""
        raise ConfigError(
            f"data.path: every {modality} file of class {names} was skipped ({len(self.items)} file(s) skipped in "
            f"all{first}). Fix or remove those files, or remove the class folder."
        )

    def log(self, what: str) -> None:
        """Logs one line naming the first skipped inputs (all of them are in metrics.json)."""
        if self.items:
            first = self.items[0]
            logger.warning(
                f"skipped {len(self.items)} {what}: {first['source']}: {first['reason']}"
                + (" (all listed in metrics.json under data.skipped)" if len(self.items) > 1 else "")
            )
