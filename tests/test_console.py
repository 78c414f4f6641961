"""Console helpers: progress lines with ETA for slow steps, epoch lines whose time is the recorded one, how a phase ended."""

import csv
import logging

import keras
import numpy as np
import pytest

from tfx_transfer.best_epoch import BestEpoch
from tfx_transfer.console import Progress, track
from tfx_transfer.epoch_log import EpochLog
from tfx_transfer.log import logger


@pytest.fixture
def messages():
    lines = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    handler = Collect()
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(level)


def fake_clock(times):
    values = iter(times)
    return lambda: next(values)


def test_a_fast_step_prints_nothing(messages):
    list(track(range(5), "reading", total=5, clock=fake_clock([0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6])))
    assert messages == []


def test_a_slow_step_prints_count_and_eta_every_interval_and_a_final_line(messages):
    # one item every 4 s: quiet for 3 s, then a line at most every 10 s
    clock = fake_clock([0] + [4 * i for i in range(1, 7)] + [24])
    assert list(track(range(6), "tokenizing", total=6, unit="texts", interval=10, clock=clock)) == list(range(6))
    assert messages == [
        "tokenizing: 1/6 texts (17%), 4 s, about 20 s left",
        "tokenizing: 4/6 texts (67%), 16 s, about 8 s left",
        "tokenizing: 6/6 texts (100%), 24 s",
    ]


def test_the_finished_count_is_said_once(messages):
    # the last item arrives after the interval: the line of the full count comes from the end, not twice
    clock = fake_clock([0, 4, 30, 31])
    list(track(range(2), "caching", total=2, interval=10, clock=clock))
    assert messages == ["caching: 1/2 examples (50%), 4 s, about 4 s left", "caching: 2/2 examples (100%), 31 s"]


def test_progress_without_a_total_counts_and_times(messages):
    progress = Progress("exporting", unit="signatures", clock=fake_clock([0, 5, 9]))
    progress.update(2)
    progress.close()
    assert messages == ["exporting: 2 signatures, 5 s", "exporting: 2 signatures, 9 s"]


def test_predictions_log_their_count_with_what_they_are_for(messages, monkeypatch):
    import functools

    import tensorflow as tf

    from tfx_transfer import console, evaluate

    monkeypatch.setattr(evaluate, "track", functools.partial(console.track, interval=0.0))
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    data = tf.data.Dataset.from_tensor_slices((np.ones((10, 2), "float32"), np.zeros(10, "int32")))
    evaluate.predict_dataset(model, data, batch_size=4, what="evaluating", quiet_seconds=60.0)
    assert messages == []  # a pass quicker than quiet_seconds says nothing
    evaluate.predict_dataset(model, data, batch_size=4, what="evaluating", quiet_seconds=0.0)
    assert messages[0].startswith("evaluating: 4/10 examples (40%)") and "left" in messages[0]
    assert messages[-1].startswith("evaluating: 10/10 examples (100%)")


def test_epoch_lines_print_the_recorded_epoch_time(messages, tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    log = EpochLog("head", epochs=3, clock=fake_clock([0.0, 1.0, 3.5, 4.0, 4.25, 5.0, 7.0, 7.5]))
    history = model.fit(
        np.ones((8, 2)), np.ones((8, 1)), validation_data=(np.ones((4, 2)), np.ones((4, 1))), epochs=3, verbose=0,
        callbacks=[log, keras.callbacks.CSVLogger(str(tmp_path / "history.csv"))],
    )
    assert history.history["epoch_seconds"] == log.epoch_seconds == [2.5, 0.25, 2.0]
    assert [m.split(" - ")[0] for m in messages] == [
        "phase 'head' epoch 1/3: 2.5 s", "phase 'head' epoch 2/3: 0.2 s", "phase 'head' epoch 3/3: 2.0 s"]
    assert "val_loss" in messages[0]
    with open(tmp_path / "history.csv") as f:
        assert [float(row["epoch_seconds"]) for row in csv.DictReader(f)] == [2.5, 0.25, 2.0]
    assert log.fit_seconds == 7.5


class ScriptedValidationLoss(keras.callbacks.Callback):
    """Replaces `val_loss` with a scripted sequence, so early stopping's decisions are known in advance."""

    def __init__(self, losses):
        super().__init__()
        self.losses = losses

    def on_epoch_end(self, epoch, logs=None):
        logs["val_loss"] = self.losses[epoch]


def test_early_stopping_says_when_it_stopped_and_which_epoch_it_kept(caplog):
    caplog.set_level("INFO", logger="tfx_transfer")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    best = BestEpoch(patience=2)
    model.fit(
        np.ones((8, 2)), np.ones((8, 1)), validation_data=(np.ones((4, 2)), np.ones((4, 1))), epochs=10, verbose=0,
        callbacks=[ScriptedValidationLoss([1.0, 0.5, 0.7, 0.8, 0.9, 1.0]), best],
    )
    assert best.outcome["stopped_early"] and best.outcome["epochs_run"] == 4 and best.outcome["kept_epoch"] == 2
    assert "early stopping after epoch 4: val_loss did not improve for 2 epochs; kept epoch 2 (val_loss 0.5000)" in caplog.text


def test_a_phase_that_ran_all_epochs_says_so(caplog):
    caplog.set_level("INFO", logger="tfx_transfer")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    best = BestEpoch(patience=5)
    model.fit(np.ones((8, 2)), np.ones((8, 1)), validation_data=(np.ones((4, 2)), np.ones((4, 1))), epochs=3,
              verbose=0, callbacks=[ScriptedValidationLoss([1.0, 0.5, 0.7]), best])
    assert not best.outcome["stopped_early"] and best.outcome["kept_epoch"] == 2
    assert "ran all 3 epochs; kept epoch 2 (val_loss 0.5000)" in caplog.text


@pytest.mark.parametrize("module_name", ["tfx_transfer.console", "tfx_transfer.epoch_log"])
def test_docstring_examples_run(module_name):
    import doctest
    import importlib

    assert doctest.testmod(importlib.import_module(module_name)).failed == 0
