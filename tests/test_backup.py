"""Epoch backups: the first epoch always, a stop writes the last finished epoch, corrupt backups fall back, history
files never repeat epochs, and a resumed fit not leaking its start epoch."""

import csv
import json
import logging

import keras
import numpy as np
import pytest

from tfx_transfer.backup import PREVIOUS_RECORD, RECORD, EpochBackup, RunFileUnreadable

X = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
Y = X.sum(axis=1, keepdims=True)


def _model():
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, name="hidden"), keras.layers.Dense(1, name="out")], name="m"
    )
    model.compile(keras.optimizers.Adam(0.01), "mse")
    return model


class _Killed(Exception):
    pass


class _KillAt(keras.callbacks.Callback):
    """Raises `_Killed` at the end of epoch `epoch` (1-based), or after batch `batch` of it."""

    def __init__(self, epoch, batch=None, before_kill=None):
        super().__init__()
        self.epoch, self.batch, self.before_kill = epoch, batch, before_kill
        self.weights_at_epoch_end = {}
        self._current = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._current = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        if self.batch is not None and self._current == self.epoch and batch + 1 == self.batch:
            if self.before_kill:
                self.before_kill()
            raise _Killed

    def on_epoch_end(self, epoch, logs=None):
        self.weights_at_epoch_end[epoch + 1] = [w.numpy() for w in self.model.weights]
        if self.batch is None and epoch + 1 == self.epoch:
            raise _Killed


class _Starts(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights, self.epochs = None, []

    def on_train_begin(self, logs=None):
        self.weights = [w.numpy() for w in self.model.weights]

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def _killed(backup_dir, kill, interval, history_csv=None):
    backup = EpochBackup(backup_dir, min_interval_seconds=interval, history_csv=history_csv)
    with pytest.raises(_Killed):
        _model().fit(X, Y, epochs=5, batch_size=8, callbacks=[backup, kill], verbose=0)
    return backup


def _resumed(backup_dir, history_csv=None, epochs=5):
    backup, starts = EpochBackup(backup_dir, min_interval_seconds=3600, history_csv=history_csv), _Starts()
    _model().fit(X, Y, epochs=epochs, batch_size=8, callbacks=[backup, starts], verbose=0)
    return backup, starts


def test_the_first_epoch_is_backed_up_at_once_and_later_ones_are_rate_limited(tmp_path):
    _killed(tmp_path, _KillAt(3), interval=3600)
    assert json.loads((tmp_path / RECORD).read_text())["epoch"] == 1
    _, starts = _resumed(tmp_path)
    assert starts.epochs == [1, 2, 3, 4]


def test_a_stop_between_batches_backs_up_the_last_finished_epoch(tmp_path):
    backup = None
    kill = _KillAt(3, batch=2, before_kill=lambda: backup.save_finished_epoch())
    backup = EpochBackup(tmp_path, min_interval_seconds=3600)
    with pytest.raises(_Killed):
        _model().fit(X, Y, epochs=5, batch_size=8, callbacks=[backup, kill], verbose=0)
    assert json.loads((tmp_path / RECORD).read_text())["epoch"] == 2
    resumed, starts = _resumed(tmp_path)
    assert starts.epochs == [2, 3, 4]
    for at_epoch_end, at_resume in zip(kill.weights_at_epoch_end[2], starts.weights):
        np.testing.assert_array_equal(at_epoch_end, at_resume)
    assert len(resumed.history["loss"]) == 5


def _corrupt_record(backup_dir):
    (backup_dir / RECORD).write_text('{"epoch": 3, "weights": "epoch-3.weigh')


def _flip_a_byte_of_the_newest_weights(backup_dir):
    path = backup_dir / "epoch-3.weights.h5"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate_the_newest_weights(backup_dir):
    path = backup_dir / "epoch-3.weights.h5"
    path.write_bytes(path.read_bytes()[:100])


@pytest.mark.parametrize("corrupt", [_corrupt_record, _flip_a_byte_of_the_newest_weights, _truncate_the_newest_weights])
def test_a_corrupt_newest_backup_falls_back_to_the_previous_one(tmp_path, corrupt, caplog):
    _killed(tmp_path, _KillAt(3), interval=0)
    assert json.loads((tmp_path / PREVIOUS_RECORD).read_text())["epoch"] == 2
    corrupt(tmp_path)
    with caplog.at_level(logging.WARNING, logger="tfx_transfer"):
        resumed, starts = _resumed(tmp_path)
    assert starts.epochs == [2, 3, 4]
    assert "using the previous one (epoch 2)" in caplog.text
    assert len(resumed.history["loss"]) == 5


def test_when_every_backup_is_unreadable_the_error_names_the_files_and_the_fix(tmp_path):
    _killed(tmp_path, _KillAt(3), interval=0)
    (tmp_path / RECORD).write_text("{")
    (tmp_path / PREVIOUS_RECORD).write_text("[]")
    with pytest.raises(RunFileUnreadable) as error:
        _resumed(tmp_path)
    message = str(error.value)
    assert str(tmp_path / RECORD) in message and str(tmp_path / PREVIOUS_RECORD) in message
    assert f"Delete {tmp_path} to restart this phase at epoch 1" in message


def test_the_history_file_never_repeats_epochs_after_a_resume(tmp_path):
    history_csv = tmp_path / "history.csv"
    _killed(tmp_path / "backup", _KillAt(3), interval=3600, history_csv=history_csv)
    assert [row["epoch"] for row in csv.DictReader(history_csv.open())] == ["0", "1", "2"]
    resumed, _ = _resumed(tmp_path / "backup", history_csv=history_csv)
    rows = list(csv.DictReader(history_csv.open()))
    assert [row["epoch"] for row in rows] == ["0", "1", "2", "3", "4"]
    assert [float(row["loss"]) for row in rows] == pytest.approx(resumed.history["loss"])


def test_a_resumed_fit_does_not_leak_its_start_epoch_into_the_next_fit(tmp_path):
    _killed(tmp_path, _KillAt(2), interval=0)
    backup = EpochBackup(tmp_path, min_interval_seconds=0)
    model = _model()
    assert len(model.fit(X, Y, epochs=3, batch_size=8, callbacks=[backup], verbose=0).history["loss"]) == 1
    assert len(model.fit(X, Y, epochs=3, batch_size=8, verbose=0).history["loss"]) == 3
