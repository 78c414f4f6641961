"""The phase runner with layer-wise learning rates, a macro-F1 monitor and the best epoch kept."""

import keras
import numpy as np
import pytest

from conftest import tiny_resnet
from test_training import _recipe, _splits
from tfx_transfer.model import build_model
from tfx_transfer.training import PhaseRunner


def _run(tmp_path, tune):
    keras.utils.set_random_seed(3)
    recipe = _recipe(tmp_path, [{"name": "head", "epochs": 1}, {"name": "tune", **tune}], dropout=0.0)
    backbone = tiny_resnet()
    model, head = build_model(backbone, 3, recipe.head)
    return PhaseRunner(model, head, backbone, _splits(), recipe, recipe.run_dir).run()


def test_layer_decay_and_macro_f1_monitor_reach_the_fine_tuning_phase(tmp_path, caplog):
    caplog.set_level("INFO", logger="tfx_transfer")
    _, tune = _run(tmp_path, {
        "epochs": 3, "freeze": {"last_blocks": 2, "batchnorm": "frozen"}, "layer_decay": 0.5,
        "monitor": "val_macro_f1", "early_stopping_patience": None,
    })
    assert "learning-rate multipliers conv3_block1 x0.25, top x0.5, head x1" in caplog.text
    scores = tune.history["val_macro_f1"]
    assert len(scores) == 3
    assert tune.best_epoch["monitor"] == "val_macro_f1"
    assert tune.best_epoch["best_value"] == pytest.approx(max(scores))
    assert tune.best_epoch["best_epoch"] == scores.index(max(scores)) + 1
    assert tune.best_epoch["stop_reason"] == "ran all 3 epochs"


def test_a_multiplier_pattern_that_matches_no_block_stops_the_run_with_the_block_names(tmp_path):
    with pytest.raises(ValueError, match=r"'transformer_layer_.\*' matches no block.*'conv3_block1'"):
        _run(tmp_path, {"epochs": 1, "freeze": {"last_blocks": 1}, "lr_multipliers": {"transformer_layer_.*": 0.1}})


def test_a_fine_tuning_phase_that_only_makes_validation_worse_ends_with_the_frozen_phases_weights(tmp_path):
    keras.utils.set_random_seed(3)
    recipe = _recipe(tmp_path, [
        {"name": "head", "epochs": 2},
        {"name": "tune", "epochs": 2, "freeze": {"last_blocks": 1}, "optimizer": "adam", "learning_rate": 0.5,
         "early_stopping_patience": None},
    ], dropout=0.0)
    backbone = tiny_resnet()
    model, head = build_model(backbone, 3, recipe.head)
    head_result, tune = PhaseRunner(model, head, backbone, _splits(), recipe, recipe.run_dir).run()
    head_loss = head_result.history["val_loss"][head_result.best_epoch["kept_epoch"] - 1]
    assert all(value > head_loss for value in tune.history["val_loss"])  # fine-tuning only hurt
    assert tune.best_epoch["kept_epoch"] == 0 and tune.best_epoch["best_value"] == pytest.approx(head_loss)
    after_head, _ = build_model(tiny_resnet(), 3, recipe.head)
    after_head.load_weights(tmp_path / "checkpoints" / "head.weights.h5")
    for kept, saved in zip(model.get_weights(), after_head.get_weights()):
        np.testing.assert_array_equal(kept, saved)
