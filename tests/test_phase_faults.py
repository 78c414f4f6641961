"""Faults in a phase run: divergence stops at the last finite weights, a stop request ends a phase between batches
with a backup, unreadable run files stop with their path and the fix, and run files are strict JSON."""

import csv
import json
import math
import os
import signal

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_resnet
from tfx_transfer import stop
from tfx_transfer.data.base import DataSplits
from tfx_transfer.backup import RunFileUnreadable
from tfx_transfer.guards import TrainingDiverged
from tfx_transfer.model import build_model
from tfx_transfer.recipe import recipe_from_dict
from tfx_transfer.training import PhaseRunner


def _splits(n=48, num_classes=3):
    rng = np.random.default_rng(0)
    labels = (np.arange(n) % num_classes).astype("int32")
    images = rng.uniform(0, 255, (n, 16, 16, 3)).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    return DataSplits(train=dataset, validation=dataset.take(12), test=None, class_names=["a", "b", "c"])


def _runner(run_dir, epochs=3, callbacks=()):
    recipe = recipe_from_dict({
        "name": "t", "run_dir": str(run_dir), "backup_interval_seconds": 3600,
        "data": {"source": "synthetic", "batch_size": 8, "shuffle_buffer": 64},
        "phases": [{"name": "head", "epochs": epochs, "learning_rate": 0.01, "cache_features": False}],
    })
    backbone = tiny_resnet()
    model, head = build_model(backbone, 3, recipe.head)
    return PhaseRunner(model, head, backbone, _splits(), recipe, recipe.run_dir, callbacks=callbacks), model


class _PoisonWeights(keras.callbacks.Callback):
    """Sets one kernel to NaN before batch 2 of epoch 2, as an exploding update would; records epoch-end weights."""

    def __init__(self):
        super().__init__()
        self.at_epoch_end, self._epoch = {}, 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch + 1

    def on_train_batch_begin(self, batch, logs=None):
        if self._epoch == 2 and batch == 1:
            kernel = self.model.get_layer("head").get_layer("probabilities").kernel
            kernel.assign(np.full(kernel.shape, np.nan, "float32"))

    def on_epoch_end(self, epoch, logs=None):
        self.at_epoch_end[epoch + 1] = [w.numpy() for w in self.model.weights]


def test_a_non_finite_loss_stops_the_phase_at_the_last_finite_epoch(tmp_path):
    poison = _PoisonWeights()
    runner, model = _runner(tmp_path / "run", callbacks=[poison])
    with pytest.raises(TrainingDiverged) as error:
        runner.run()
    message = str(error.value)
    assert "phase 'head' diverged: the training loss became nan in epoch 2, batch 2" in message
    assert "back at the end of epoch 1" in message and "--set phases.0.learning_rate=0.001" in message
    for expected, actual in zip(poison.at_epoch_end[1], [w.numpy() for w in model.weights]):
        np.testing.assert_array_equal(expected, actual)
    assert not os.path.exists(tmp_path / "run" / "state.json")  # the phase is not recorded as finished


class _RequestStop(keras.callbacks.Callback):
    """Sends the process `signum` after batch `batch` of epoch `epoch` (1-based)."""

    def __init__(self, signum, epoch, batch):
        super().__init__()
        self.signum, self.epoch, self.batch, self._epoch = signum, epoch, batch, 0
        self.at_epoch_end = {}

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        if (self._epoch, batch + 1) == (self.epoch, self.batch):
            signal.raise_signal(self.signum)

    def on_epoch_end(self, epoch, logs=None):
        self.at_epoch_end[epoch + 1] = [w.numpy() for w in self.model.weights]


class _Starts(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights, self.epochs = None, []

    def on_train_begin(self, logs=None):
        self.weights = [w.numpy() for w in self.model.weights]

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def test_a_stop_request_backs_up_the_last_finished_epoch_and_says_what_is_redone(tmp_path):
    request = _RequestStop(signal.SIGTERM, epoch=3, batch=2)
    runner, _ = _runner(tmp_path / "run", epochs=4, callbacks=[request])
    with stop.handling_signals(), pytest.raises(stop.Interrupted) as error:
        runner.run()
    assert error.value.exit_code == 143
    assert str(error.value) == (
        "stopped on SIGTERM; phase 'head' is backed up after epoch 2: the same command resumes it there and "
        "redoes the 3 finished batches of epoch 3 (finished phases are kept)."
    )  # the request arrives after batch 2; batch 3 finishes before the check that honours it
    record = json.loads((tmp_path / "run" / "backup" / "head" / "backup.json").read_text())
    assert record["epoch"] == 2  # although the interval (3600 s) had not passed since epoch 1's backup

    starts = _Starts()
    runner, _ = _runner(tmp_path / "run", epochs=4, callbacks=[starts])
    (result,) = runner.run()
    assert starts.epochs == [2, 3]
    for expected, actual in zip(request.at_epoch_end[2], starts.weights):
        np.testing.assert_array_equal(expected, actual)
    assert result.epochs_run == 4
    with open(tmp_path / "run" / "history_head.csv") as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["0", "1", "2", "3"]


def test_the_run_state_is_strict_json_even_with_a_nan_validation_loss(tmp_path):
    runner, _ = _runner(tmp_path / "run", epochs=1)
    images, labels = next(iter(runner.splits.validation.batch(12)))
    images = images.numpy()
    images[0, 0, 0, 0] = np.nan
    runner.splits.validation = tf.data.Dataset.from_tensor_slices((images, labels))
    (result,) = runner.run()
    assert math.isnan(result.history["val_loss"][0])
    text = (tmp_path / "run" / "state.json").read_text()

    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    state = json.loads(text, parse_constant=refuse)
    assert state["completed"]["head"]["history"]["val_loss"] == [None]


@pytest.mark.parametrize("damage", ["state.json", "checkpoints/head.weights.h5"])
def test_an_unreadable_state_or_checkpoint_stops_with_its_path_and_the_fix(tmp_path, damage):
    runner, _ = _runner(tmp_path / "run", epochs=1)
    runner.run()
    path = tmp_path / "run" / damage
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    runner, _ = _runner(tmp_path / "run", epochs=1)
    with pytest.raises(RunFileUnreadable) as error:
        runner.run()
    message = str(error.value)
    assert str(path) in message and "truncated or corrupt" in message
    assert f"Delete {tmp_path / 'run' / 'state.json'} and {tmp_path / 'run' / 'checkpoints'}" in message
    assert "--set run_dir=" in message
