"""Pins Keras' `CSVLogger` failing on `tf.io.gfile` paths, and tests `compat.keras_csv_logger.CSVLogger`."""

import uuid

import keras
import numpy as np
import pytest

import tfx_transfer.storage as storage
from tfx_transfer.compat.keras_csv_logger import CSVLogger


def _fit(logger, epochs=2):
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(np.ones((4, 1)), np.ones((4, 1)), epochs=epochs, verbose=0, callbacks=[logger])


def test_csv_logger_appends_history_on_the_ram_filesystem_across_fits():
    path = f"ram://csv_{uuid.uuid4().hex[:8]}/history.csv"
    _fit(CSVLogger(path, append=True))
    _fit(CSVLogger(path, append=True), epochs=1)
    lines = storage.read_text(path).splitlines()
    assert lines[0] == "epoch,loss,val_loss" and [line.split(",")[0] for line in lines[1:]] == ["0", "1", "0"]


def test_keras_csv_logger_still_fails_on_a_gfile_path():
    """When this fails, Keras' own CSVLogger closes gfile files and `compat.keras_csv_logger` can go."""
    with pytest.raises(AttributeError, match="'GFile' object has no attribute 'closed'"):
        _fit(keras.callbacks.CSVLogger(f"ram://csv_{uuid.uuid4().hex[:8]}/history.csv"))
