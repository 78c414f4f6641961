"""Audio input pipeline: WAV folders or CSV manifests -> fixed-length 16 kHz mono waveforms."""

import csv
import dataclasses
import io
import os
import re
import time
from typing import Literal

import numpy as np
import tensorflow as tf

from tfx_transfer import storage
from tfx_transfer.config import ConfigError
from tfx_transfer.data.base import DataSplits, ServingPreprocessor
from tfx_transfer.data.sources import (
    PooledExamples,
    SkippedReport,
    choose_splits,
    files_under,
    list_class_folders,
    predefined_split_dirs,
)
from tfx_transfer.data.split_manifest import data_root, portable_source
from tfx_transfer.data.splits import class_counts
from tfx_transfer.data.wav import MAX_SECONDS, MAX_WAV_FILE_BYTES, assert_waveform_length, decode_bounded_wav
from tfx_transfer.head_kinds import head_kind
from tfx_transfer.safe_text import is_valid_utf8_name, tf_error_reason


@dataclasses.dataclass
class AudioOptions:
    """How WAV files become the fixed-length waveforms an audio backbone takes.

    Every file is decoded, mixed down to mono and resampled to `sample_rate`.
    Clips shorter than `clip_seconds` are zero-padded; longer ones are cropped
    (`long_clips: crop`, centred) or cut into `clip_seconds` windows every
    `window_hop_seconds` (`long_clips: windows`), each a training example of
    the same group; test metrics and the exported model average the windows'
    predictions per file (the export then takes clips of any length).

    Augmentation (training split only): a random gain in `[-gain_db, +gain_db]`,
    a random shift by up to `time_shift_seconds` (zero-filled), and, with
    probability `noise_probability`, a random segment of a WAV from `noise_dir`
    mixed in at a signal-to-noise ratio drawn from `noise_snr_db` (low, high).

    Groups: clips of one group never land in two splits. A CSV manifest names
    the group in `group_column` (default `group`, e.g. the speaker or voice);
    otherwise `group_pattern`, a regex whose first capture group is taken from
    the file name (e.g. `"^(.+?)_nohash_"` for Speech Commands), or else the
    file itself is the group.
    """

    clip_seconds: float = 1.0
    sample_rate: int = 16000
    long_clips: Literal["crop", "windows"] = "crop"
    window_hop_seconds: float | None = None
    gain_db: float = 0.0
    time_shift_seconds: float = 0.0
    noise_dir: str | None = None
    noise_snr_db: list[float] = dataclasses.field(default_factory=lambda: [5.0, 20.0])
    noise_probability: float = 0.5
    group_column: str = "group"
    group_pattern: str | None = None

    def __post_init__(self):
        if self.clip_seconds <= 0:
            raise ConfigError(f"data.audio.clip_seconds must be positive, received {self.clip_seconds}.")
        if self.sample_rate < 1000:
            raise ConfigError(
                f"data.audio.sample_rate must be at least 1000 Hz, received {self.sample_rate}."
            )
        if self.window_hop_seconds is not None and self.window_hop_seconds <= 0:
            raise ConfigError(
                f"data.audio.window_hop_seconds must be positive, received {self.window_hop_seconds}."
            )
        if self.gain_db < 0 or self.time_shift_seconds < 0:
            raise ConfigError(
                "data.audio.gain_db and data.audio.time_shift_seconds are maximum magnitudes and must "
                f"be >= 0, received {self.gain_db} and {self.time_shift_seconds}."
            )
        if len(self.noise_snr_db) != 2 or self.noise_snr_db[0] > self.noise_snr_db[1]:
            raise ConfigError(
                f"data.audio.noise_snr_db must be [low, high] with low <= high, received {self.noise_snr_db}."
            )
        if not 0.0 <= self.noise_probability <= 1.0:
            raise ConfigError(
                f"data.audio.noise_probability must be in [0, 1], received {self.noise_probability}."
            )

    @property
    def clip_samples(self) -> int:
        return int(round(self.clip_seconds * self.sample_rate))

    @property
    def hop_samples(self) -> int:
        hop = self.window_hop_seconds if self.window_hop_seconds is not None else self.clip_seconds / 2
        return max(1, int(round(hop * self.sample_rate)))


SPLITS = ("train", "validation", "test")
WAV_EXTENSIONS = (".wav", ".wave")
WAV_PATTERNS = tuple(f"*{extension}" for extension in WAV_EXTENSIONS)
_WAV_HINT = "Only 16-bit PCM WAV is read (tf.audio.decode_wav); convert with: sox IN -b 16 -e signed OUT.wav"


# --- in-graph decoding, shared by tf.data and the serving signatures ---------------------------


def resample(waveform, rate_in, rate_out: int):
    """Resamples a 1-D float32 waveform from `rate_in` Hz (a tensor) to `rate_out` Hz, band-limited.

    The FFT method of `scipy.signal.resample`: the spectrum is cut (or
    zero-extended) at the new Nyquist frequency, so downsampling does not
    alias. Core TF ops only (RFFT/IRFFT), so TF Serving runs it.
    """
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    n = tf.shape(waveform)[0]
    m = tf.cast(tf.round(tf.cast(n, tf.float64) * rate_out / tf.cast(rate_in, tf.float64)), tf.int32)

    def band_limited():
        spectrum = tf.signal.rfft(waveform)
        bins = m // 2 + 1
        spectrum = tf.pad(spectrum, [[0, tf.maximum(0, bins - tf.shape(spectrum)[0])]])[:bins]
        # The shorter signal's Nyquist bin stands for both +f and -f (scipy does the same).
        shorter = tf.minimum(n, m)
        nyquist_gain = tf.where(m < n, 2.0, 0.5)
        gain = tf.where(
            tf.logical_and(shorter % 2 == 0, tf.range(bins) == shorter // 2), nyquist_gain, 1.0
        )
        spectrum *= tf.cast(gain, tf.complex64)
        return tf.signal.irfft(spectrum, fft_length=[m]) * (tf.cast(m, tf.float32) / tf.cast(n, tf.float32))

    return tf.cond(tf.logical_and(n > 0, m > 0), band_limited, lambda: tf.zeros([m], tf.float32))


def window_at(waveform, offset, samples: int):
    """`samples` samples of a 1-D waveform from `offset` (`< 0`: centred), zero-padded at the end."""
    n = tf.shape(waveform)[0]
    offset = tf.cast(offset, tf.int32)
    start = tf.where(offset < 0, tf.maximum(0, (n - samples) // 2), offset)
    clip = waveform[start : start + samples]
    clip = tf.pad(clip, [[0, samples - tf.shape(clip)[0]]])
    return tf.ensure_shape(clip, [samples])


def window_starts(num_samples, clip_samples: int, hop_samples: int):
    """Starts of the `clip_samples` windows, every `hop_samples`, that cover a clip (the last ends at its end).

    >>> window_starts(40000, 16000, 8000).numpy().tolist()
    [0, 8000, 16000, 24000]
    >>> window_starts(9000, 16000, 8000).numpy().tolist()
    [0]
    """
    last = tf.maximum(0, tf.cast(num_samples, tf.int32) - clip_samples)
    starts = tf.range(0, last + 1, hop_samples)
    return tf.cond(starts[-1] < last, lambda: tf.concat([starts, [last]], 0), lambda: starts)


class AudioPreprocessor(ServingPreprocessor):
    """WAV bytes -> mono waveform at `sample_rate`, centre-cropped or zero-padded to `clip_samples`.

    With `hop_samples`, a clip is instead cut into `clip_samples` windows every
    `hop_samples` (`raw_to_windows`), and the exported model averages the
    windows' predictions per clip (`tfx_transfer.data.windows`).

    >>> pre = AudioPreprocessor(16000, 8000)
    >>> wav = tf.audio.encode_wav(tf.zeros((4000, 2)), 8000)  # stereo, 8 kHz, 0.5 s
    >>> pre.raw_to_inputs(tf.stack([wav])).shape
    TensorShape([1, 8000])
    >>> windows, clip_ids = AudioPreprocessor(16000, 8000, hop_samples=4000).raw_to_windows(
    ...     tf.stack([tf.audio.encode_wav(tf.zeros((16000, 1)), 16000), wav]))
    >>> windows.shape, clip_ids.numpy().tolist()
    (TensorShape([4, 8000]), [0, 0, 0, 1])
    """

    raw_key = "audio_wav"
    tensor_key = "waveform"

    def __init__(self, sample_rate: int, clip_samples: int, hop_samples: int | None = None,
                 max_seconds: float = MAX_SECONDS):
        self.sample_rate = int(sample_rate)
        self.clip_samples = int(clip_samples)
        self.hop_samples = hop_samples
        self.max_seconds = float(max_seconds)

    @property
    def windows(self) -> bool:
        """Whether long clips are cut into windows whose predictions are averaged."""
        return self.hop_samples is not None

    @property
    def tensor_spec(self) -> tf.TensorSpec:
        return tf.TensorSpec([None, None if self.windows else self.clip_samples], tf.float32)

    def decode(self, wav_bytes):
        """One WAV file's bytes -> float32 `[samples]` in [-1, 1], mono, at `sample_rate`."""
        audio, rate = decode_bounded_wav(wav_bytes, self.max_seconds)
        mono = tf.reduce_mean(audio, axis=1)
        return tf.cond(
            tf.equal(rate, self.sample_rate), lambda: mono, lambda: resample(mono, rate, self.sample_rate)
        )

    def prepare(self, waveform, offset=-1):
        """A decoded waveform -> float32 `[clip_samples]` (the window at `offset`, centred by default)."""
        return window_at(waveform, offset, self.clip_samples)

    def split_windows(self, waveform):
        """A decoded waveform -> float32 `[windows, clip_samples]`, as `window_starts` places them."""
        starts = window_starts(tf.shape(waveform)[0], self.clip_samples, self.hop_samples)
        padded = tf.pad(waveform, [[0, self.clip_samples]])
        return tf.gather(padded, starts[:, None] + tf.range(self.clip_samples)[None, :])

    def raw_to_inputs(self, raw):
        return tf.map_fn(
            lambda b: self.prepare(self.decode(b)),
            raw,
            fn_output_signature=tf.TensorSpec([self.clip_samples], tf.float32),
        )

    def raw_to_windows(self, raw):
        """tf.string `[B]` of WAV files -> (windows `[N, clip_samples]`, clip index `[N]` of each window)."""
        return self._all_windows(lambda b: self.split_windows(self.decode(b)), raw)

    def tensor_to_inputs(self, tensor):
        return tf.cast(tensor, tf.float32)

    def tensor_to_windows(self, tensor):
        """float32 `[B, samples]` (any length) -> (windows `[N, clip_samples]`, clip index `[N]`)."""
        waveforms = assert_waveform_length(tf.cast(tensor, tf.float32), self.sample_rate, self.max_seconds)
        return self._all_windows(self.split_windows, waveforms)

    def _all_windows(self, clip_to_windows, batch):
        windows = tf.map_fn(
            clip_to_windows,
            batch,
            fn_output_signature=tf.RaggedTensorSpec([None, self.clip_samples], tf.float32, ragged_rank=0),
        )
        return windows.values, windows.value_rowids()

    def example_raw_input(self) -> bytes:
        return tf.audio.encode_wav(tf.zeros([self.clip_samples, 1]), self.sample_rate).numpy()


def _target_rate(options: AudioOptions, backbone) -> int:
    wanted = (backbone.input_config or {}).get("sample_rate") if backbone is not None else None
    if wanted is not None and int(wanted) != options.sample_rate:
        raise ConfigError(
            f"data.audio.sample_rate is {options.sample_rate} but backbone {backbone.name!r} takes "
            f"{wanted} Hz audio. Set data.audio.sample_rate: {wanted} (files at other rates are resampled)."
        )
    return options.sample_rate


def make_preprocessor(recipe, backbone) -> AudioPreprocessor:
    options = recipe.data.audio
    hop = options.hop_samples if options.long_clips == "windows" else None
    return AudioPreprocessor(_target_rate(options, backbone), options.clip_samples, hop)


# --- listing and checking files ------------------------------------------------------------------


@dataclasses.dataclass
class _Files:
    """Audio files with their class name, group and (when the data fixes it) split."""

    paths: list[str] = dataclasses.field(default_factory=list)
    labels: list[str] = dataclasses.field(default_factory=list)
    groups: list[str] = dataclasses.field(default_factory=list)
    splits: list[str | None] = dataclasses.field(default_factory=list)

    def add(self, path, label, group, split):
        self.paths.append(path)
        self.labels.append(label)
        self.groups.append(group)
        self.splits.append(split)

    def subset(self, keep):
        return _Files(*([getattr(self, f.name)[i] for i in keep] for f in dataclasses.fields(self)))


def _group_of(path: str, options: AudioOptions) -> str:
    if options.group_pattern:
        match = re.search(options.group_pattern, os.path.basename(path))
        if match:
            return match.group(1)
    return path


def _list_folder(root: str, options: AudioOptions) -> tuple[_Files, int]:
    """Files of `root/<class>/**.wav`, or of `root/{train,validation,test}/<class>/**.wav`.

    Folders starting with `_` or `.` are not classes (`_background_noise`, as in Speech Commands).
    """
    if not root or not storage.isdir(root):
        raise ConfigError(f"data.path: audio folder {root!r} does not exist.")
    files, ignored = _Files(), 0
    for split, base in (predefined_split_dirs(root) or {None: root}).items():
        folders = list_class_folders(
            base, WAV_PATTERNS, "audio", "WAV files", hidden_prefixes=(".", "_"), every_class_needs_files=False
        )
        for path, label_id in zip(folders.paths, folders.label_ids):
            files.add(path, folders.class_names[label_id], _group_of(path, options), split)
        ignored += len(folders.ignored)
    if not files.paths:
        raise ConfigError(f"data.path: no WAV files under {root!r}.")
    return files, ignored


def _list_manifest(manifest: str, options: AudioOptions) -> _Files:
    """Rows `path,label[,group][,split]` of a CSV (or TSV) file; paths relative to the file."""
    if not manifest or not storage.exists(manifest) or storage.isdir(manifest):
        raise ConfigError(f"data.path: audio manifest {manifest!r} does not exist.")
    delimiter = "\t" if manifest.lower().endswith(".tsv") else ","
    base = storage.parent(manifest if "://" in manifest else os.path.abspath(manifest))
    files = _Files()
    reader = csv.DictReader(io.StringIO(storage.read_text(manifest), newline=""), delimiter=delimiter)
    columns = reader.fieldnames or []
    missing = [c for c in ("path", "label") if c not in columns]
    if missing:
        raise ConfigError(
            f"data.path: manifest {manifest!r} has no column(s) {missing}; it needs a header row "
            f"with path,label (optional: {options.group_column}, split). Found: {columns}."
        )
    for line, row in enumerate(reader, start=2):
        if not row["path"] or not row["label"]:
            raise ConfigError(f"{manifest}:{line}: empty path or label.")
        split = (row.get("split") or "").strip() or None
        if split is not None and split not in SPLITS:
            raise ConfigError(f"{manifest}:{line}: split must be one of {SPLITS}, received {split!r}.")
        path = storage.join(base, row["path"])
        group = (row.get(options.group_column) or "").strip() or _group_of(path, options)
        files.add(path, row["label"].strip(), group, split)
    if not files.paths:
        raise ConfigError(f"data.path: manifest {manifest!r} lists no files.")
    return files


@tf.function(input_signature=[tf.TensorSpec([], tf.string)])
def _probe(wav_bytes):
    audio, rate = decode_bounded_wav(wav_bytes)
    return tf.shape(audio)[0], tf.shape(audio)[1], rate


def check_wav_files(paths) -> tuple[dict[str, tuple[int, int, int]], SkippedReport]:
    """Decodes each file once: `{path: (samples, channels, rate)}`, and the report of the files left out."""
    info, skipped = {}, SkippedReport()
    for path in paths:
        if not is_valid_utf8_name(path):
            skipped.add(path, "the file name is not valid UTF-8; rename the file")
            continue
        try:
            if storage.size(path) > MAX_WAV_FILE_BYTES:
                skipped.add(path, f"larger than {MAX_WAV_FILE_BYTES} bytes; not read")
                continue
            data = storage.read_bytes(path)
        except (OSError, tf.errors.OpError) as e:
            skipped.add(path, f"cannot be read: {getattr(e, 'strerror', None) or getattr(e, 'message', e)}")
            continue
        try:
            samples, channels, rate = (int(v) for v in _probe(tf.constant(data)))
        except tf.errors.InvalidArgumentError as e:
            reason = tf_error_reason(e.message)
            skipped.add(path, f"not a readable WAV ({reason}). {_WAV_HINT}")
            continue
        except UnicodeDecodeError:  # TF's message quoted bytes of the file that are not UTF-8
            skipped.add(path, f"not a readable WAV (malformed chunk headers). {_WAV_HINT}")
            continue
        if samples == 0:
            skipped.add(path, "holds no audio samples")
            continue
        info[path] = (samples, channels, rate)
    return info, skipped


# --- splits and datasets -------------------------------------------------------------------------


def _windows(num_samples: int, preprocessor: AudioPreprocessor) -> list[int]:
    """Start offsets of the windows cut from one clip: `[-1]` (centred crop) unless `long_clips: windows`."""
    if not preprocessor.windows:
        return [-1]
    return window_starts(num_samples, preprocessor.clip_samples, preprocessor.hop_samples).numpy().tolist()


def load_data(recipe, backbone) -> DataSplits:
    """The recipe's WAV folder or CSV manifest as unbatched `(float32 [clip_samples], int32 label)` splits.

    Files TensorFlow cannot decode are skipped and listed in `report["skipped"]`
    with the reason; files at another sample rate are resampled; stereo is
    mixed down. Groups (speaker, voice, source file) never cross splits.
    """
    config, options = recipe.data, recipe.data.audio
    preprocessor = make_preprocessor(recipe, backbone)
    start = time.perf_counter()
    ignored = 0
    if config.source == "folder":
        files, ignored = _list_folder(config.path, options)
    elif config.source == "csv":
        files = _list_manifest(config.path, options)
    else:
        raise ConfigError(
            f"data.source: {config.source!r} is not an audio source. Expected 'folder' (one sub-folder of "
            "WAV files per class) or 'csv' (a manifest with path,label[,group][,split] columns)."
        )
    info, skipped = check_wav_files(files.paths)
    skipped.log("audio file(s)")
    listed_classes = set(files.labels)
    files = files.subset([i for i, p in enumerate(files.paths) if p in info])
    if not files.paths:
        raise ConfigError(f"data.path: none of the audio files under {config.path!r} could be decoded.")
    skipped.raise_if_classes_lost(listed_classes, files.labels, "audio")
    class_names = sorted(set(files.labels))
    head_kind(recipe.head.kind).check_class_count(
        len(class_names), source=f"data.path {config.path!r} ({class_names})", hint="Put one sub-folder of clips per class."
    )
    label_ids = np.asarray([class_names.index(label) for label in files.labels], np.int32)
    root = data_root(config.path)
    examples = PooledExamples(
        [portable_source(p, root) for p in files.paths], label_ids, data_splits=files.splits,
        groups=np.asarray(files.groups),
    )
    chosen = choose_splits(examples, class_names, config, recipe.seed)
    parts = chosen.indices

    def resampled_length(path):
        samples, _, rate = info[path]
        return int(round(samples * preprocessor.sample_rate / rate))

    def dataset(indices):
        """One example per window and the index (within `indices`) of the file each came from."""
        if not len(indices):
            return None, None
        rows = [
            (files.paths[i], offset, label_ids[i], clip)
            for clip, i in enumerate(indices)
            for offset in _windows(resampled_length(files.paths[i]), preprocessor)
        ]
        paths, offsets, labels, clips = (list(column) for column in zip(*rows))
        ds = tf.data.Dataset.from_tensor_slices((paths, np.int32(offsets), np.int32(labels)))

        def load(path, offset, label):
            return preprocessor.prepare(preprocessor.decode(tf.io.read_file(path)), offset), label

        return ds.map(load, num_parallel_calls=tf.data.AUTOTUNE), np.asarray(clips, np.int64)

    rates = {}
    for samples, channels, rate in info.values():
        if rate != preprocessor.sample_rate:
            rates[str(rate)] = rates.get(str(rate), 0) + 1
    report = {
        "source": config.source,
        "path": config.path,
        "counts": {s: class_counts(label_ids[idx], class_names) for s, idx in parts.items() if len(idx)},
        "groups": {s: len({files.groups[i] for i in idx}) for s, idx in parts.items() if len(idx)},
        "skipped": skipped.items,
        "ignored_non_wav_files": ignored,
        "resampled_files_by_rate": rates,
        "multichannel_files": sum(1 for _, channels, _ in info.values() if channels > 1),
        "seconds_to_list_and_validate": round(time.perf_counter() - start, 2),
    }
    splits = {s: dataset(idx) for s, idx in chosen.read.items()}
    if preprocessor.windows:
        report["windows"] = {  # of whole splits, also where this worker reads a share of the training split
            s: sum(len(_windows(resampled_length(files.paths[i]), preprocessor)) for i in idx)
            for s, idx in parts.items() if len(idx)
        }
    return DataSplits(
        train=splits["train"][0],
        validation=splits["validation"][0],
        test=splits["test"][0],
        class_names=class_names,
        report=report,
        test_groups=splits["test"][1] if preprocessor.windows else None,
        validation_groups=splits["validation"][1] if preprocessor.windows else None,
        manifest=chosen.manifest,
    )


# --- augmentation --------------------------------------------------------------------------------


def load_noise_bank(noise_dir: str, preprocessor: AudioPreprocessor) -> np.ndarray:
    """Every readable WAV under `noise_dir`, decoded to the target rate and concatenated (float32 1-D)."""
    if not storage.isdir(noise_dir):
        raise ConfigError(f"data.audio.noise_dir: folder {noise_dir!r} does not exist.")
    paths = sorted(p for p in files_under(noise_dir) if p.lower().endswith(WAV_EXTENSIONS))
    info, _ = check_wav_files(paths)
    if not info:
        raise ConfigError(f"data.audio.noise_dir: {noise_dir!r} holds no readable 16-bit PCM WAV files.")
    pieces = [preprocessor.decode(tf.io.read_file(p)).numpy() for p in paths if p in info]
    bank = np.concatenate(pieces).astype(np.float32)
    repeats = int(np.ceil((preprocessor.clip_samples + 1) / len(bank)))
    return np.tile(bank, repeats) if repeats > 1 else bank


class WaveformAugmentation:
    """Random gain, time shift and background noise for training batches `[B, samples]`.

    Seeded (`tf.random.Generator`), so a run is reproducible; identity when
    called with `training=False`. Output is clipped to [-1, 1] like a WAV.
    """

    def __init__(self, options: AudioOptions, sample_rate: int, seed: int, noise_bank=None):
        self.gain_db = float(options.gain_db)
        self.max_shift = int(round(options.time_shift_seconds * sample_rate))
        self.noise_probability = float(options.noise_probability)
        self.snr_db = tuple(float(v) for v in options.noise_snr_db)
        self.noise_bank = None if noise_bank is None else tf.constant(noise_bank, tf.float32)
        self.generator = tf.random.Generator.from_seed(seed)

    def __call__(self, batch, training=True):
        if not training:
            return batch
        x = tf.cast(batch, tf.float32)
        size, samples = tf.shape(x)[0], tf.shape(x)[1]
        uniform = self.generator.uniform
        if self.gain_db:
            x *= 10.0 ** (uniform([size, 1], -self.gain_db, self.gain_db) / 20.0)
        if self.max_shift:
            shift = uniform([size, 1], -self.max_shift, self.max_shift + 1, dtype=tf.int32)
            source = tf.range(samples)[tf.newaxis, :] - shift
            inside = tf.logical_and(source >= 0, source < samples)
            x = tf.where(inside, tf.gather(x, tf.clip_by_value(source, 0, samples - 1), batch_dims=1), 0.0)
        if self.noise_bank is not None and self.noise_probability > 0:
            starts = uniform([size, 1], 0, tf.shape(self.noise_bank)[0] - samples, dtype=tf.int32)
            noise = tf.gather(self.noise_bank, starts + tf.range(samples)[tf.newaxis, :])
            snr_db = uniform([size, 1], *self.snr_db)
            signal_power = tf.reduce_mean(tf.square(x), axis=1, keepdims=True)
            noise_power = tf.reduce_mean(tf.square(noise), axis=1, keepdims=True) + 1e-12
            scale = tf.sqrt(signal_power / (noise_power * 10.0 ** (snr_db / 10.0)))
            mixed = uniform([size, 1]) < self.noise_probability
            x += tf.where(mixed, scale * noise, 0.0)
        return tf.clip_by_value(x, -1.0, 1.0)


def make_augmentation(recipe) -> WaveformAugmentation | None:
    """The training-batch augmentation `data.audio` asks for, or None when it asks for none."""
    options = recipe.data.audio
    wants_noise = options.noise_dir is not None and options.noise_probability > 0
    if not (options.gain_db or options.time_shift_seconds or wants_noise):
        return None
    preprocessor = AudioPreprocessor(options.sample_rate, options.clip_samples)
    bank = load_noise_bank(options.noise_dir, preprocessor) if wants_noise else None
    return WaveformAugmentation(options, options.sample_rate, recipe.seed, bank)
