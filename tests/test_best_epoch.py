"""BestEpoch keeps the best validation epoch (also across a resume) and says why training stopped;
MacroF1 agrees with scikit-learn."""

import keras
import numpy as np
import pytest
from sklearn.metrics import f1_score

from tfx_transfer.best_epoch import BestEpoch
from tfx_transfer.macro_f1 import MacroF1


def _model():
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, name="dense")])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    return model


def _drive(callback, model, values, epochs=None, first_epoch=0, end=True):
    """Runs `callback` as `fit` would, setting the kernel to the epoch number before each epoch ends."""
    callback.set_model(model)
    callback.set_params({"epochs": epochs or len(values) + first_epoch})
    callback.on_train_begin()
    for epoch, value in enumerate(values, start=first_epoch):
        callback.on_epoch_begin(epoch)
        model.get_layer("dense").kernel.assign([[float(epoch + 1)]])
        callback.on_epoch_end(epoch, {"loss": 1.0, "val_loss": value, "val_accuracy": 1.0 - value})
        if model.stop_training:
            break
    if end:
        callback.on_train_end()


def _kernel(model):
    return float(model.get_layer("dense").kernel.numpy()[0, 0])


def test_keeps_the_best_epoch_when_validation_loss_rises_later():
    model, best = _model(), BestEpoch(patience=None)
    _drive(best, model, [0.9, 0.5, 0.6, 0.7])
    assert _kernel(model) == 2.0
    assert best.outcome == {
        "monitor": "val_loss", "best_epoch": 2, "best_value": 0.5, "epochs_run": 4,
        "stop_reason": "ran all 4 epochs", "stopped_early": False, "restored_best": True, "kept_epoch": 2,
    }


def test_early_stopping_says_when_and_why_and_a_larger_is_better_monitor_works():
    model, best = _model(), BestEpoch(monitor="val_accuracy", patience=2)
    _drive(best, model, [0.9, 0.4, 0.6, 0.7, 0.2, 0.1], epochs=6)
    assert model.stop_training
    assert best.outcome["best_epoch"] == 2 and _kernel(model) == 2.0
    assert best.outcome["stop_reason"] == "early stopping after epoch 4: val_accuracy did not improve for 2 epochs"


def test_last_epoch_best_keeps_the_last_weights_and_nan_never_wins():
    model, best = _model(), BestEpoch()
    _drive(best, model, [float("nan"), 0.5, 0.4])
    assert best.outcome["best_epoch"] == 3 and not best.outcome["restored_best"] and _kernel(model) == 3.0


def test_a_resumed_phase_still_restores_a_best_epoch_from_before_the_kill(tmp_path):
    model = _model()
    _drive(BestEpoch(patience=3, state_dir=str(tmp_path / "best")), model, [0.5, 0.8], epochs=5, end=False)
    # Killed after epoch 2; the resumed fit continues at epoch index 2 with the backed-up weights.
    resumed = BestEpoch(patience=3, state_dir=str(tmp_path / "best"))
    _drive(resumed, model, [0.9, 0.7], epochs=5, first_epoch=2)
    assert resumed.outcome["best_epoch"] == 1 and _kernel(model) == 1.0
    assert resumed.outcome["stop_reason"].startswith("early stopping after epoch 4")  # patience counted across the kill
    assert not (tmp_path / "best").exists()


def test_a_best_epoch_newer_than_the_resumed_backup_is_ignored(tmp_path):
    model = _model()
    _drive(BestEpoch(state_dir=str(tmp_path / "best")), model, [0.5, 0.4, 0.3], end=False)
    resumed = BestEpoch(state_dir=str(tmp_path / "best"))  # the backup holds only epoch 1
    _drive(resumed, model, [0.6, 0.7], epochs=3, first_epoch=1)
    assert resumed.outcome["best_epoch"] == 2 and _kernel(model) == 2.0


def test_a_monitor_missing_from_the_logs_is_an_error_that_says_what_is_needed():
    model = _model()
    with pytest.raises(ValueError, match="val_macro_f1 needs the MacroF1 metric"):
        model.fit(np.ones((4, 1)), np.ones((4, 1)), validation_data=(np.ones((2, 1)), np.ones((2, 1))),
                  callbacks=[BestEpoch(monitor="val_macro_f1")], verbose=0)
    with pytest.raises(ValueError, match="monitor must be one of"):
        BestEpoch(monitor="loss")


def test_fit_on_real_data_monitors_val_macro_f1():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 2)).astype("float32")
    y = np.eye(3)[(x[:, 0] > 0).astype(int) + (x[:, 1] > 1).astype(int)]
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(keras.optimizers.Adam(0.05), "categorical_crossentropy", metrics=[MacroF1(3)])
    best = BestEpoch(monitor="val_macro_f1")
    history = model.fit(x[:40], y[:40], validation_data=(x[40:], y[40:]), epochs=4, callbacks=[best], verbose=0)
    scores = history.history["val_macro_f1"]
    assert best.outcome["best_value"] == pytest.approx(max(scores))
    assert best.outcome["best_epoch"] == int(np.argmax(scores)) + 1


@pytest.mark.parametrize("kind", ["multiclass", "binary", "multilabel"])
def test_macro_f1_matches_scikit_learn(kind):
    rng = np.random.default_rng(1)
    if kind == "multiclass":
        labels = rng.choice(4, size=50, p=[0.6, 0.3, 0.1, 0.0])
        probabilities = rng.dirichlet(np.ones(4), size=50)
        y_true, expected = np.eye(4)[labels], f1_score(labels, probabilities.argmax(1), average="macro")
        metric = MacroF1(4)
    elif kind == "binary":
        labels = (rng.uniform(size=50) < 0.2).astype(int)
        probabilities = rng.uniform(size=(50, 1))
        y_true = labels[:, None]
        expected = f1_score(labels, (probabilities[:, 0] >= 0.5).astype(int), average="macro")
        metric = MacroF1(2, kind="binary")
    else:
        y_true = (rng.uniform(size=(50, 3)) < 0.3).astype(int)
        probabilities = rng.uniform(size=(50, 3))
        expected = f1_score(y_true, (probabilities >= 0.5).astype(int), average="macro", zero_division=0)
        metric = MacroF1(3, kind="multilabel")
    for start in range(0, 50, 16):  # streamed in batches
        metric.update_state(y_true[start:start + 16], probabilities[start:start + 16])
    assert float(metric.result()) == pytest.approx(expected, abs=1e-6)


def test_on_a_head_trained_on_cached_features_the_full_model_gets_the_best_head():
    from conftest import tiny_resnet
    from tfx_transfer.model import build_model
    from tfx_transfer.recipe import HeadConfig

    model, head = build_model(tiny_resnet(), 2, HeadConfig())
    head.compile("adam", "categorical_crossentropy")
    kernel = head.get_layer("probabilities").kernel
    best = BestEpoch()
    best.set_model(head)
    best.set_params({"epochs": 3})
    best.on_train_begin()
    for epoch, value in enumerate([0.7, 0.4, 0.9]):
        kernel.assign(np.full(kernel.shape, float(epoch + 1)))
        best.on_epoch_end(epoch, {"val_loss": value})
    best.on_train_end()
    (full_model_kernel,) = [v for v in model.weights if v.path == "probabilities/kernel"]
    np.testing.assert_array_equal(full_model_kernel.numpy(), 2.0)


def test_with_a_baseline_the_starting_weights_are_kept_when_no_epoch_beats_them(caplog):
    caplog.set_level("INFO", logger="tfx_transfer")
    model, best = _model(), BestEpoch(patience=2, baseline=0.3)
    model.get_layer("dense").kernel.assign([[-7.0]])
    _drive(best, model, [0.5, 0.4, 0.6], epochs=5)
    assert _kernel(model) == -7.0
    assert best.outcome["kept_epoch"] == 0 and best.outcome["best_value"] == 0.3 and best.outcome["stopped_early"]
    assert "no epoch beat the weights the phase started with (val_loss 0.3000): kept those" in caplog.text


def test_an_epoch_that_beats_the_baseline_is_kept_as_usual():
    model, best = _model(), BestEpoch(baseline=0.45)
    _drive(best, model, [0.5, 0.4, 0.6])
    assert best.outcome["kept_epoch"] == 2 and _kernel(model) == 2.0


def test_a_resumed_phase_still_falls_back_to_its_starting_weights(tmp_path):
    """The starting weights are recorded when the phase starts, so a phase killed after a worse epoch
    and resumed still ends with them."""
    model = _model()
    model.get_layer("dense").kernel.assign([[-7.0]])
    _drive(BestEpoch(baseline=0.3, state_dir=str(tmp_path)), model, [0.5], epochs=3, end=False)  # killed
    assert _kernel(model) == 1.0
    resumed = BestEpoch(baseline=0.3, state_dir=str(tmp_path))
    _drive(resumed, model, [0.6, 0.7], epochs=3, first_epoch=1)
    assert resumed.outcome["kept_epoch"] == 0 and _kernel(model) == -7.0


def test_a_phase_resumed_after_its_last_epoch_still_keeps_its_best_epoch(tmp_path, caplog):
    """Killed after the last epoch's backup but before the phase was recorded as finished: the re-run
    fits no epoch, and the phase must still end with its best epoch, not the last one."""
    caplog.set_level("INFO", logger="tfx_transfer")
    model = _model()
    _drive(BestEpoch(state_dir=str(tmp_path)), model, [0.9, 0.5, 0.7], end=False)  # killed after epoch 3
    resumed = BestEpoch(state_dir=str(tmp_path))
    _drive(resumed, model, [], epochs=3, first_epoch=3)
    assert _kernel(model) == 2.0
    assert resumed.outcome["kept_epoch"] == 2 and resumed.outcome["epochs_run"] == 3
    assert "ran all 3 epochs; kept epoch 2 (val_loss 0.5000)" in caplog.text


def test_starting_value_of_a_phase_after_one_that_ran_no_epoch_here_is_its_last_value():
    from tfx_transfer.recipe import PhaseConfig
    from tfx_transfer.training.runner import PhaseResult, starting_value

    resumed = PhaseResult("head", 4, 1.0, {"val_loss": [0.9, 0.5, 0.6, 0.7]}, False, [], 10,
                          best_epoch={"kept_epoch": None})
    assert starting_value(PhaseConfig(name="tune"), PhaseConfig(name="head"), resumed) == 0.7
