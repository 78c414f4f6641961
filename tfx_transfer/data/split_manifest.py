"""The split manifest: one CSV row per example (`source,label,split`), written by every run, read back by a recipe.

Every run writes `splits.csv` into its run directory: each example the data
source read, where it came from, its label (class names; several joined by
`LABEL_SEPARATOR` for multi-label tasks) and its split. `train`, `validation`
and `test` are the run's splits; `unused` examples were read but left out of
training by `data.max_train_examples`. `data.split_manifest: path/to/splits.csv`
makes the loader put every example in the split its row names instead of
drawing a split with the seed, so a split can be audited for leakage and
reproduced exactly.

Sources are portable: a file under the data folder is its path relative to
`data.path` (relative to the folder of `data.path` for a table or audio
manifest), with `/` separators, so a moved dataset still matches; a table row
is `table.csv:row N`, a TFDS example `tfds:name/split[i]` (its index in the
whole TFDS split), an array example `fashion_mnist:train[i]`.

>>> manifest = SplitManifest.from_indices(
...     ["cat/1.png", "dog/1.png", "cat/2.png"], ["cat", "dog", "cat"],
...     {"train": [0, 1], "test": [2]})
>>> print(manifest.to_csv(), end="")
source,label,split
cat/1.png,cat,train
dog/1.png,dog,train
cat/2.png,cat,test
>>> storage.write_text_atomic("ram://doc_manifest/splits.csv", manifest.to_csv())
>>> parts = splits_from_manifest("ram://doc_manifest/splits.csv", ["cat/1.png", "cat/2.png", "dog/1.png"],
...                              ["cat", "cat", "dog"])
>>> {split: indices.tolist() for split, indices in parts.items() if len(indices)}
{'train': [0, 2], 'test': [1]}
"""

import csv
import dataclasses
import io
import os
import posixpath

import numpy as np
import tensorflow as tf

from tfx_transfer import storage
from tfx_transfer.config import ConfigError
from tfx_transfer.safe_text import printable

SPLIT_MANIFEST_FILE = "splits.csv"
COLUMNS = ("source", "label", "split")
MANIFEST_SPLITS = ("train", "validation", "test", "unused")
# Joins the class names of a multi-label example; a single-label example's label is its class name.
LABEL_SEPARATOR = "|"
# About two million rows of 120 bytes; a larger file is refused before it is read.
MAX_SPLIT_MANIFEST_BYTES = 256 << 20
# How many sources an error about missing, unknown or mislabelled examples quotes.
_QUOTED = 3


@dataclasses.dataclass(frozen=True)
class ManifestRow:
    """One row of `splits.csv`: where an example came from, its label text and its split."""

    source: str
    label: str
    split: str


@dataclasses.dataclass
class SplitManifest:
    """The rows of `splits.csv`: every example's source, label and split, each split in dataset order."""

    rows: list[ManifestRow]

    @classmethod
    def from_indices(cls, sources, labels, indices: dict) -> "SplitManifest":
        """Rows for `indices[split]` (indices into `sources` and `labels`), splits in `MANIFEST_SPLITS` order."""
        return cls([
            ManifestRow(sources[i], labels[i], split)
            for split in MANIFEST_SPLITS
            for i in indices.get(split, ())
        ])

    def sources(self, split: str) -> list[str]:
        """The sources of `split`'s examples, in dataset order."""
        return [row.source for row in self.rows if row.split == split]

    def to_csv(self) -> str:
        """The text of `splits.csv`: the header, then one row per example."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows((row.source, row.label, row.split) for row in self.rows)
        return buffer.getvalue()


def label_texts(labels, class_names) -> list[str]:
    """Class ids `[N]` or multi-hot rows `[N, classes]` -> the `label` column (names joined by `LABEL_SEPARATOR`).

    >>> label_texts(np.array([[1, 0, 1], [0, 0, 0]]), ["a", "b", "c"])
    ['a|c', '']
    """
    labels = np.asarray(labels)
    if labels.ndim == 1:
        return [class_names[i] for i in labels.tolist()]
    return [LABEL_SEPARATOR.join(class_names[i] for i in np.flatnonzero(row > 0.5)) for row in labels]


def data_root(path) -> str | None:
    """The folder that sources are relative to: `path` itself if it is a folder, else the folder holding it."""
    if not path:
        return None
    return os.fspath(path) if storage.isdir(path) else storage.parent(_absolute(path))


def portable_source(source: str, root: str | None) -> str:
    """`source` relative to `root` with `/` separators when it lies under `root`; otherwise as it is (absolute).

    A table row keeps its suffix: `root/news.csv:row 3` -> `news.csv:row 3`.

    >>> portable_source("/data/pets/cat/1.png", "/data/pets")
    'cat/1.png'
    >>> portable_source("/elsewhere/x.wav", "/data/pets")
    '/elsewhere/x.wav'
    """
    if root is None:
        return source
    if "://" in source or "://" in root:
        prefix = root.rstrip("/") + "/"
        return source[len(prefix):] if source.startswith(prefix) else source
    source, root = _absolute(source), _absolute(root)
    try:
        relative = os.path.relpath(source, root)
    except ValueError:  # another drive (Windows)
        return source
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        return source
    return relative.replace(os.sep, posixpath.sep)


def _absolute(path) -> str:
    path = os.fspath(path)
    return path if "://" in path else os.path.normpath(os.path.abspath(path))


# --- reading back -----------------------------------------------------------------------------


def read_split_manifest(path) -> dict[str, tuple[int, ManifestRow]]:
    """`{source: (line number, row)}` of a split manifest, every row checked; ConfigError naming file and line."""
    text = _read_text(path)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = {}
    try:
        columns = reader.fieldnames or []
        missing = [c for c in COLUMNS if c not in columns]
        if missing:
            raise ConfigError(
                f"data.split_manifest: {path!r} has no column(s) {missing}; it needs a header row "
                f"{','.join(COLUMNS)}. Found: {[printable(c) for c in columns]}."
            )
        for record in reader:
            line = reader.line_num
            source, label, split = (record[c] if record[c] is not None else "" for c in COLUMNS)
            if not source:
                raise ConfigError(f"data.split_manifest: {path}:{line}: the source is empty.")
            if split not in MANIFEST_SPLITS:
                raise ConfigError(
                    f"data.split_manifest: {path}:{line}: split must be one of {', '.join(MANIFEST_SPLITS)} "
                    f"('unused' leaves the example out), received {printable(split)!r}."
                )
            if source in rows:
                raise ConfigError(
                    f"data.split_manifest: {path}:{line}: source {printable(source)!r} is also on line "
                    f"{rows[source][0]}; give each example one row."
                )
            rows[source] = (line, ManifestRow(source, label, split))
    except csv.Error as e:
        # DictReader updates its own line_num only after a row was read; the csv reader's is the failing line.
        raise ConfigError(f"data.split_manifest: {path}:{reader.reader.line_num}: not valid CSV ({e}).") from None
    if not rows:
        raise ConfigError(f"data.split_manifest: {path!r} has a header but no rows.")
    return rows


def _read_text(path) -> str:
    """The manifest's text: an existing UTF-8 file of at most `MAX_SPLIT_MANIFEST_BYTES`."""
    if not storage.exists(path):
        raise ConfigError(f"data.split_manifest: {path!r} does not exist (a splits.csv written by an earlier run).")
    if storage.isdir(path):
        raise ConfigError(f"data.split_manifest: {path!r} is a folder; give the path of a splits.csv file.")
    try:
        size = storage.size(path)
        if size > MAX_SPLIT_MANIFEST_BYTES:
            raise ConfigError(
                f"data.split_manifest: {path!r} is {size:,} bytes, more than the {MAX_SPLIT_MANIFEST_BYTES:,} "
                "bytes a split manifest may have."
            )
        data = storage.read_bytes(path)
    except (OSError, tf.errors.OpError) as e:
        reason = getattr(e, "strerror", None) or getattr(e, "message", None) or e
        raise ConfigError(f"data.split_manifest: {path!r} cannot be read: {reason}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(f"data.split_manifest: {path!r} is not UTF-8 text ({e.reason} at byte {e.start}).") from None
    if not text.strip():
        raise ConfigError(f"data.split_manifest: {path!r} is empty; it needs a header row {','.join(COLUMNS)}.")
    return text


def splits_from_manifest(path, sources, labels) -> dict[str, np.ndarray]:
    """Indices (into `sources`, in data order) of each split in `MANIFEST_SPLITS`, as the manifest at `path` names them.

    `sources` and `labels` (label texts, see `label_texts`) describe every example
    the data source read. The manifest must name each of them exactly once with
    the same label, and nothing else: otherwise a ConfigError lists the rows
    whose source is not in the data, the examples without a row and the labels
    that disagree (how many, and the first few with their lines).
    """
    rows = read_split_manifest(path)
    position = {}
    for i, source in enumerate(sources):
        if source in position:
            raise ConfigError(
                f"data.split_manifest: the data has two examples from {printable(source)!r}; a split manifest "
                "cannot tell them apart. Remove the duplicate from the data."
            )
        position[source] = i
    unknown = [(line, source) for source, (line, _) in rows.items() if source not in position]
    missing = [source for source in sources if source not in rows]
    mislabelled = [
        (line, row.source, row.label, labels[position[row.source]])
        for line, row in rows.values()
        if row.source in position and row.label != labels[position[row.source]]
    ]
    if unknown or missing or mislabelled:
        raise ConfigError(_mismatch_message(path, len(sources), unknown, missing, mislabelled))
    split_of = np.empty(len(sources), np.int8)
    for line, row in rows.values():
        split_of[position[row.source]] = MANIFEST_SPLITS.index(row.split)
    return {split: np.flatnonzero(split_of == k) for k, split in enumerate(MANIFEST_SPLITS)}


def _mismatch_message(path, examples, unknown, missing, mislabelled) -> str:
    problems = []
    if unknown:
        quoted = ", ".join(f"line {line}: {printable(s)!r}" for line, s in unknown[:_QUOTED])
        problems.append(
            f"{len(unknown)} row(s) name a source the data does not have ({quoted}{_more(unknown)}): "
            "the file was moved, deleted or skipped as unreadable, or the manifest belongs to other data"
        )
    if missing:
        quoted = ", ".join(repr(printable(s)) for s in missing[:_QUOTED])
        problems.append(
            f"{len(missing)} example(s) of the data have no row ({quoted}{_more(missing)}): add a row for each, "
            "with split train, validation, test, or unused to leave it out"
        )
    if mislabelled:
        quoted = ", ".join(
            f"line {line}: {printable(s)!r} is {printable(listed)!r} in the manifest but {printable(actual)!r} "
            "in the data"
            for line, s, listed, actual in mislabelled[:_QUOTED]
        )
        problems.append(f"{len(mislabelled)} label(s) disagree ({quoted}{_more(mislabelled)})")
    return (
        f"data.split_manifest: {path!r} does not match the {examples} example(s) the data source read: "
        + "; ".join(problems)
        + ". Sources are relative to data.path (or to the folder of a table or manifest file)."
    )


def _more(items) -> str:
    return f", and {len(items) - _QUOTED} more" if len(items) > _QUOTED else ""
