"""Pins Keras `fit` keeping `model._initial_epoch`, and tests `compat.keras_fit`, which sets and clears it."""

import keras
import numpy as np

from tfx_transfer.compat.keras_fit import clear_initial_epoch, set_initial_epoch


class _StartAfter(keras.callbacks.Callback):
    def __init__(self, epoch, clear=False):
        super().__init__()
        self.epoch, self.clear, self.epochs_run = epoch, clear, []

    def on_train_begin(self, logs=None):
        set_initial_epoch(self.model, self.epoch)

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs_run.append(epoch)

    def on_train_end(self, logs=None):
        if self.clear:
            clear_initial_epoch(self.model)


def _fit(model, callbacks=()):
    record = _StartAfter(0)
    record.on_train_begin = lambda logs=None: None  # only records epochs
    model.fit(np.ones((4, 1)), np.ones((4, 1)), epochs=3, verbose=0, callbacks=[*callbacks, record])
    return record.epochs_run


def _model():
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    return model


def test_fit_reads_the_initial_epoch_set_in_on_train_begin():
    model = _model()
    assert _fit(model, [_StartAfter(2, clear=True)]) == [2]
    assert _fit(model) == [0, 1, 2]  # cleared: the next fit runs every epoch


def test_fit_still_keeps_the_initial_epoch_after_training():
    """When this fails, Keras clears `_initial_epoch` itself and `clear_initial_epoch` can go."""
    model = _model()
    assert _fit(model, [_StartAfter(2)]) == [2]
    assert _fit(model) == [2], "Keras now clears model._initial_epoch after fit: remove clear_initial_epoch"
