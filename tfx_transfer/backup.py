"""Crash-safe backups of a running `fit`: a phase killed at any moment resumes without repeated or lost epochs.

Also the crash-safe reads and writes of a run's other recovery files (phase checkpoints,
`state.json`): a truncated or corrupt file stops the run with its path and the command that
recovers, never with a bare traceback.
"""

import csv
import hashlib
import io
import time
import uuid

import keras
import numpy as np

from tfx_transfer import storage
from tfx_transfer.compat.keras_fit import clear_initial_epoch, set_initial_epoch
from tfx_transfer.log import logger

RECORD = "backup.json"
PREVIOUS_RECORD = "backup.previous.json"
WEIGHTS_SUFFIX = ".weights.h5"


class RunFileUnreadable(ValueError):
    """A backup, checkpoint or state file cannot be read; the message names it and the command that recovers."""


class EpochBackup(keras.callbacks.Callback):
    """Backs up model and optimizer at epoch ends; a later `fit` with the same directory resumes.

    What `keras.callbacks.BackupAndRestore` does, with what a run killed at any moment needs:

    - each backup is a new weights file plus a JSON record (`backup.json`) replaced atomically,
      and the previous backup is kept (`backup.previous.json`): a torn, truncated or corrupt
      backup falls back to the previous one (a checksum catches silent corruption);
    - the record keeps the finished epochs' logs, so the resumed run's `history` is complete,
      and with `history_csv` the history file is rewritten from it, so it never repeats epochs;
    - the first epoch is always backed up, later ones at most once per `min_interval_seconds`
      (writing checkpoints should not eat short epochs); `save_finished_epoch()` writes the last
      finished epoch when a stop is requested, and `fit`'s end always writes it;
    - `rewind()` puts the model and optimizer back to the last finished epoch (used when a
      phase diverges).

    With `writes=False` (non-chief workers of a multi-worker run) it only restores.
    `discard(backup_dir)` removes the backups once the phase's result is committed.

    Example:

    >>> import keras, numpy as np, tempfile
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> backup = EpochBackup(tempfile.mkdtemp(), min_interval_seconds=0)
    >>> _ = model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=2, callbacks=[backup], verbose=0)
    >>> len(backup.history["loss"]), backup.backed_up_epoch
    (2, 2)
    """

    def __init__(self, backup_dir, min_interval_seconds=60.0, writes=True, history_csv=None):
        super().__init__()
        self.backup_dir = str(backup_dir)
        self.min_interval_seconds = min_interval_seconds
        self.writes = writes
        self.history_csv = history_csv
        self.history = {}
        self.initial_epoch = 0
        self.finished_epochs = 0
        self.backed_up_epoch = 0
        self._record = None
        self._finished_values = None

    def on_train_begin(self, logs=None):
        self._record = self._restore()
        record = self._record or {}
        self.history = {key: list(values) for key, values in record.get("history", {}).items()}
        self.initial_epoch = self.finished_epochs = self.backed_up_epoch = record.get("epoch", 0)
        if self._record:
            set_initial_epoch(self.model, self.initial_epoch)
            logger.info(f"resuming after epoch {self.initial_epoch} from {self.backup_dir}")
        self._write_history()
        self._remember_finished_epoch()
        self._last_backup = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        self.finished_epochs = epoch + 1
        self._write_history()
        self._remember_finished_epoch()
        if self.writes and (
            not self.backed_up_epoch or time.monotonic() - self._last_backup >= self.min_interval_seconds
        ):
            self._write()

    def on_train_end(self, logs=None):
        clear_initial_epoch(self.model)
        self.save_finished_epoch()

    def save_finished_epoch(self) -> int:
        """Backs up the last finished epoch if it is not on disk yet; returns the epoch on disk.

        The model is rewound to that epoch first: this is called between batches of the next one.
        """
        if self.writes and self.finished_epochs > self.backed_up_epoch:
            self.rewind()
            self._write()
        return self.backed_up_epoch

    def rewind(self) -> None:
        """Puts model and optimizer back to the end of the last finished epoch (or to the phase's start)."""
        for variable, value in self._finished_values:
            variable.assign(value)

    def _variables(self):
        optimizer = self.model.optimizer
        built = optimizer is not None and optimizer.built
        return list(self.model.weights) + (list(optimizer.variables) if built else [])

    def _remember_finished_epoch(self):
        self._finished_values = [(v, np.array(v)) for v in self._variables()]

    def _write(self):
        weights = f"epoch-{self.finished_epochs}{WEIGHTS_SUFFIX}"
        path = storage.join(self.backup_dir, weights)
        save_weights_atomic(self.model, path)
        history = {key: list(values) for key, values in self.history.items()}  # a copy: self.history grows
        record = {"epoch": self.finished_epochs, "weights": weights, "sha256": _sha256(path), "history": history}
        if self._record:
            storage.write_json_atomic(storage.join(self.backup_dir, PREVIOUS_RECORD), self._record)
        storage.write_json_atomic(storage.join(self.backup_dir, RECORD), record)
        kept = {weights, (self._record or {}).get("weights")}
        for name in storage.listdir(self.backup_dir):
            if name.endswith(WEIGHTS_SUFFIX) and name not in kept:
                storage.remove(storage.join(self.backup_dir, name))
        self._record = record
        self.backed_up_epoch = self.finished_epochs
        self._last_backup = time.monotonic()

    def _restore(self) -> dict | None:
        """Loads the newest readable backup and returns its record; None when there is none."""
        problems = []
        for name in (RECORD, PREVIOUS_RECORD):
            path = storage.join(self.backup_dir, name)
            if not storage.exists(path):
                continue
            try:
                record = _checked_record(storage.read_json(path), path)
                weights = storage.join(self.backup_dir, record["weights"])
                if record.get("sha256") not in (None, _sha256(weights)):
                    raise ValueError(f"{weights} does not match the checksum in {name}: it is truncated or corrupt")
                optimizer = self.model.optimizer
                if optimizer is not None and not optimizer.built:
                    optimizer.build(self.model.trainable_variables)
                self.model.load_weights(weights)
            except Exception as e:  # any failure to read a backup means: try the previous one
                problems.append(f"{path}: {_one_line(e)}")
                continue
            if problems:
                logger.warning(f"the newest backup is unreadable ({problems[0]}); using the previous one (epoch {record['epoch']}).")
            return record
        if problems:
            raise RunFileUnreadable(
                f"cannot resume from {self.backup_dir}: every backup is unreadable ({'; '.join(problems)}). "
                f"Delete {self.backup_dir} to restart this phase at epoch 1 (finished phases are kept), "
                "or start a new run with --set run_dir=<new directory>."
            )
        return None

    def _write_history(self):
        if not (self.writes and self.history_csv):
            return
        rows = max((len(values) for values in self.history.values()), default=0)
        if not rows:
            storage.remove(self.history_csv)
            return
        keys = sorted(self.history)
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(["epoch", *keys])
        for epoch in range(rows):
            writer.writerow([epoch, *(_cell(self.history[key], epoch) for key in keys)])
        storage.write_text_atomic(self.history_csv, text.getvalue())


def discard(backup_dir) -> None:
    """Removes a phase's backups; call it once the phase's checkpoint and state are committed."""
    storage.rmtree(backup_dir)


def save_weights_atomic(model, path) -> None:
    """`model.save_weights(path)` so that a kill leaves the old file or the new one, never a part."""
    path = str(path)
    if not path.endswith(WEIGHTS_SUFFIX):
        raise ValueError(f"weights files must end in {WEIGHTS_SUFFIX!r}, received {path!r}.")
    tmp = f"{path[: -len(WEIGHTS_SUFFIX)]}.tmp-{uuid.uuid4().hex[:8]}{WEIGHTS_SUFFIX}"
    storage.makedirs(storage.parent(path) or ".")
    try:
        model.save_weights(tmp)
        storage.rename(tmp, path, overwrite=True)
    finally:
        storage.remove(tmp)


def load_weights_or_explain(model, path, recovery: str) -> None:
    """`model.load_weights(path)`; an unreadable file raises `RunFileUnreadable` naming it and `recovery`."""
    try:
        model.load_weights(str(path))
    except Exception as e:
        raise RunFileUnreadable(f"{path} is unreadable ({_one_line(e)}); it may be truncated or corrupt. {recovery}") from None


def read_json_or_explain(path, recovery: str):
    """The JSON document at `path`; an unreadable one raises `RunFileUnreadable` naming it and `recovery`."""
    try:
        return storage.read_json(path)
    except (ValueError, OSError) as e:
        raise RunFileUnreadable(f"{_one_line(e)} {recovery}") from None


def _checked_record(record, path) -> dict:
    epoch, weights = (record.get("epoch"), record.get("weights")) if isinstance(record, dict) else (None, None)
    if not (isinstance(epoch, int) and epoch >= 1 and isinstance(weights, str) and weights.endswith(WEIGHTS_SUFFIX)
            and "/" not in weights and "\\" not in weights and isinstance(record.get("history", {}), dict)):
        raise ValueError(f"{path} is not a backup record (expected epoch >= 1, a weights file name and a history)")
    return record


def _sha256(path) -> str:
    return hashlib.sha256(storage.read_bytes(path)).hexdigest()


def _cell(values, index):
    value = values[index] if index < len(values) else None
    return "" if value is None else value


def _one_line(error) -> str:
    return " ".join((str(error).strip() or type(error).__name__).split())
