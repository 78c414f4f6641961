"""Pins keras-team/keras#23364 and tests `compat.feature_extractor.FeatureExtractor`, which works around it."""

import keras
import numpy as np
import pytest

from conftest import tiny_resnet
from tfx_transfer.freezing import apply_freeze_policy
from tfx_transfer.model import build_model
from tfx_transfer.recipe import FreezeConfig, HeadConfig


def test_frozen_backbone_runs_in_inference_mode_during_fit():
    """Pins the workaround for keras-team/keras#23364 (training=False ignored by fit in 3.15.1).

    A fully frozen backbone with dropout must give the same features in `fit`
    as in `predict`; if FeatureExtractor stops forcing inference mode, the
    loss in fit (dropout active) differs from evaluate and this fails.
    """
    backbone = tiny_resnet(dropout=0.9)
    model, _ = build_model(backbone, 3, HeadConfig(dropout=0.0))
    apply_freeze_policy(backbone, FreezeConfig())
    x = np.random.default_rng(1).uniform(0, 255, (8, 16, 16, 3)).astype("float32")
    y = keras.utils.to_categorical(np.arange(8) % 3, 3)
    model.compile(keras.optimizers.SGD(0.0), "categorical_crossentropy")
    fit_loss = model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False).history["loss"][0]
    assert fit_loss == pytest.approx(model.evaluate(x, y, batch_size=8, verbose=0), rel=1e-5)


def test_plain_functional_training_false_is_still_ignored_upstream():
    """Documents keras-team/keras#23364: when Keras fixes it, this fails and FeatureExtractor can go."""
    inputs = keras.Input((4,))
    base = keras.Sequential([keras.layers.Dropout(0.9)])
    model = keras.Model(inputs, keras.layers.Dense(1)(base(inputs, training=False)))
    x, y = np.ones((64, 4), "float32"), np.zeros((64, 1), "float32")
    model.compile(keras.optimizers.SGD(0.0), "mse")
    fit_loss = model.fit(x, y, batch_size=64, epochs=1, verbose=0).history["loss"][0]
    assert fit_loss != pytest.approx(model.evaluate(x, y, verbose=0), rel=1e-3)
