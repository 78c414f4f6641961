"""Crash-safe, rate-limited backups of a running `fit`, so a killed phase resumes where it stopped."""

import json
import os
import shutil
import time

import keras

RECORD = "backup.json"


class EpochBackup(keras.callbacks.Callback):
    """Backs up model and optimizer at epoch ends; a later `fit` with the same directory resumes.

    What `keras.callbacks.BackupAndRestore` does, with three differences a killed run
    needs: every backup goes to a new file and is committed by atomically replacing a
    small JSON record, so a kill in the middle of a write leaves the previous backup
    usable; the record keeps the finished epochs' logs, so the resumed run's history is
    complete; and a backup is written at most once per `min_interval_seconds`, so short
    epochs do not spend their time writing checkpoints (a kill loses at most that much
    training). The directory is removed when `fit` ends normally. With
    `writes=False` (non-chief workers of a multi-worker run) it only restores.

    Example:

    >>> import keras, numpy as np, tempfile
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> backup = EpochBackup(tempfile.mkdtemp(), min_interval_seconds=0)
    >>> _ = model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=2, callbacks=[backup], verbose=0)
    >>> len(backup.history["loss"])
    2
    """

    def __init__(self, backup_dir, min_interval_seconds=60.0, writes=True):
        super().__init__()
        self.backup_dir = backup_dir
        self.min_interval_seconds = min_interval_seconds
        self.writes = writes
        self.history = {}
        self.initial_epoch = 0

    def on_train_begin(self, logs=None):
        record = self._read_record()
        self.history = {key: list(values) for key, values in record.get("history", {}).items()}
        self.initial_epoch = record.get("epoch", 0)
        self._weights_file = record.get("weights")
        if record:
            if self.model.optimizer is not None and not self.model.optimizer.built:
                self.model.optimizer.build(self.model.trainable_variables)
            self.model.load_weights(os.path.join(self.backup_dir, record["weights"]))
            # The attribute `BackupAndRestore` sets for the same purpose; `fit` reads it once.
            self.model._initial_epoch = self.initial_epoch
            print(f"[tfx-transfer] resuming after epoch {self.initial_epoch} from {self.backup_dir}")
        self._last_backup = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        if self.writes and time.monotonic() - self._last_backup >= self.min_interval_seconds:
            self._write(epoch + 1)
            self._last_backup = time.monotonic()

    def on_train_end(self, logs=None):
        # `fit` never clears it, so the next `fit` on this model would skip epochs.
        self.model._initial_epoch = None
        if self.writes:
            shutil.rmtree(self.backup_dir, ignore_errors=True)

    def _write(self, epochs_done):
        os.makedirs(self.backup_dir, exist_ok=True)
        previous = self._weights_file
        weights = f"epoch-{epochs_done}.weights.h5"
        self.model.save_weights(os.path.join(self.backup_dir, weights))
        record_path = os.path.join(self.backup_dir, RECORD)
        with open(record_path + ".tmp", "w", encoding="utf-8") as f:
            json.dump({"epoch": epochs_done, "weights": weights, "history": self.history}, f)
        os.replace(record_path + ".tmp", record_path)
        self._weights_file = weights
        if previous and previous != weights:
            os.remove(os.path.join(self.backup_dir, previous))

    def _read_record(self):
        path = os.path.join(self.backup_dir, RECORD)
        if not os.path.exists(path):
            return {}
        with open(path, encoding="utf-8") as f:
            return json.load(f)
