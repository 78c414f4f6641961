"""The LR finder: an exponential sweep that leaves model and optimizer exactly as they were."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfx_transfer.layerwise_optimizers import LayerwiseAdam
from tfx_transfer.lr_find import find_learning_rate, steepest, suggest, valley


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 4)).astype("float32")
    y = np.eye(3, dtype="float32")[(x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)]
    return tf.data.Dataset.from_tensor_slices((x, y)).shuffle(256, seed=0).batch(16)


def _model(optimizer):
    inputs = keras.Input((4,))
    x = keras.layers.BatchNormalization(name="bn")(keras.layers.Dense(16, activation="relu", name="hidden")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="out")(keras.layers.Dropout(0.1)(x)))
    model.compile(optimizer, "categorical_crossentropy", metrics=["accuracy"])
    return model


def test_sweep_restores_weights_and_optimizer_state_bit_exactly_and_writes_csv_and_png(tmp_path):
    model = _model(keras.optimizers.Adam(1e-3))
    model.fit(_data(), epochs=1, verbose=0)  # the optimizer has moments and a step count to keep
    weights = [v.numpy() for v in model.weights]
    optimizer_state = [v.numpy() for v in model.optimizer.variables]
    result = find_learning_rate(model, _data(), steps=60, out_dir=str(tmp_path / "lr"))
    for before, variable in zip(weights, model.weights):
        np.testing.assert_array_equal(variable.numpy(), before)
    for before, variable in zip(optimizer_state, model.optimizer.variables):
        np.testing.assert_array_equal(variable.numpy(), before)
    assert len(result.learning_rates) <= 60
    assert min(result.learning_rates) <= result.valley <= max(result.learning_rates)
    assert min(result.learning_rates) <= result.steepest <= max(result.learning_rates)
    assert 1e-5 < result.valley < 1.0  # this problem trains well at ordinary Adam rates
    lines = (tmp_path / "lr" / "lr_find.csv").read_text().splitlines()
    assert lines[0] == "step,learning_rate,loss,smoothed_loss" and len(lines) == len(result.learning_rates) + 1
    assert (tmp_path / "lr" / "lr_find.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rates = np.array(result.learning_rates)
    np.testing.assert_allclose(rates[1:] / rates[:-1], (10.0 / 1e-7) ** (1 / 60), rtol=1e-9)


def test_the_sweep_stops_when_the_loss_diverges():
    x = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, x @ np.ones((2, 1), "float32"))).batch(8)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.01), "mse")
    result = find_learning_rate(model, data, start=1e-4, end=100.0, steps=100)
    assert result.diverged and len(result.learning_rates) < 100
    assert result.smoothed_losses[-1] > 4 * min(result.smoothed_losses)
    assert result.learning_rates[-1] > 0.5  # SGD on this problem is stable below a rate of about 1


def test_an_unbuilt_optimizer_is_left_at_step_zero_and_fit_still_works():
    model = _model(LayerwiseAdam(1e-3, lr_multipliers={"hidden/kernel": 0.1}))
    find_learning_rate(model, _data(), steps=20)
    assert int(model.optimizer.iterations.numpy()) == 0
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(1e-3)
    assert all(not np.any(v.numpy()) for v in model.optimizer.variables if "momentum" in v.path)
    model.fit(_data(), epochs=1, verbose=0)


def test_a_schedule_or_an_uncompiled_model_is_refused_with_what_to_do():
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, 10, 0.9)
    with pytest.raises(ValueError, match="float learning rate"):
        find_learning_rate(_model(keras.optimizers.Adam(schedule)), _data())
    with pytest.raises(ValueError, match="compiled model"):
        find_learning_rate(keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]), _data())
    with pytest.raises(ValueError, match=r"steps must be in \[20, 1000\]"):
        find_learning_rate(_model("adam"), _data(), steps=5000)
    with pytest.raises(ValueError, match="0 < start < end"):
        find_learning_rate(_model("adam"), _data(), start=1.0, end=0.1)


def test_suggestions_follow_fastai_on_a_known_curve():
    rates = np.geomspace(1e-6, 1.0, 100)
    # Flat, then falling fastest around 1e-3, bottoming out near 1e-2, then rising.
    log_rate = np.log10(rates)
    losses = 2.0 - 1.5 / (1 + np.exp(-4 * (log_rate + 3))) + np.where(log_rate > -2, 3 * (log_rate + 2) ** 2, 0.0)
    valley_rate, steepest_rate = suggest(list(rates), list(losses), steps=100)
    assert steepest_rate == pytest.approx(1e-3, rel=0.3)
    # The longest descending stretch is everything before the minimum; fastai takes the point half
    # way into it (a third plus a sixth, counted from one before its first point).
    kept_rates, kept_losses = rates[10:-5], losses[10:-5]
    bottom = int(np.argmin(kept_losses))
    sections = (bottom + 1) / 3
    assert valley_rate == kept_rates[-1 + int(sections) + int(sections / 2)]
    assert valley_rate == valley(kept_rates, kept_losses)
    assert steepest_rate == steepest(rates[10:-5], losses[10:-5])
    assert suggest([1e-3] * 12, [1.0] * 12, steps=100) == (None, None)
