"""`EpochLog`: one console line per epoch whose time is the time recorded in the history.

Keras' progress bar times an epoch from its first batch, while a phase's
recorded `seconds` also hold iterator setup, tracing and validation; the two
never match. `EpochLog` times each epoch once (training and validation), puts
it in the epoch's logs as `epoch_seconds` (so `History`, `CSVLogger` and the
run's backups record it), prints that same number, and times the whole `fit`
as `fit_seconds` for the phase's record. Put it first in the callback list,
so that the callbacks after it see `epoch_seconds`.

>>> import keras, numpy as np
>>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
>>> model.compile("sgd", "mse")
>>> log = EpochLog("head", epochs=2)
>>> history = model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=2, callbacks=[log], verbose=0)
>>> history.history["epoch_seconds"] == log.epoch_seconds and len(log.epoch_seconds) == 2
True
"""

import math
import time

import keras

from tfx_transfer.log import logger


class EpochLog(keras.callbacks.Callback):
    """Logs `phase 'head' epoch 3/40: 12.4 s - loss 0.4100 - accuracy 0.8800 - val_loss ...` at each epoch end."""

    def __init__(self, phase: str, epochs: int, clock=time.perf_counter):
        super().__init__()
        self.phase, self.epochs, self.clock = phase, epochs, clock
        self.epoch_seconds = []
        self.fit_seconds = None

    def on_train_begin(self, logs=None):
        self._fit_start = self.clock()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = self.clock()

    def on_epoch_end(self, epoch, logs=None):
        seconds = round(self.clock() - self._epoch_start, 3)
        self.epoch_seconds.append(seconds)
        if logs is not None:
            logs["epoch_seconds"] = seconds
        values = " - ".join(f"{k} {_number(v)}" for k, v in (logs or {}).items() if k != "epoch_seconds")
        logger.info(f"phase {self.phase!r} epoch {epoch + 1}/{self.epochs}: {seconds:.1f} s" + (f" - {values}" if values else ""))

    def on_train_end(self, logs=None):
        self.fit_seconds = round(self.clock() - self._fit_start, 3)


def _number(value) -> str:
    value = float(value)
    return f"{value:.4f}" if math.isfinite(value) else str(value)
