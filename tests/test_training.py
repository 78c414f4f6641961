"""The phase runner: feature caching gives the same head, phases resume, schedules and class weights."""

import dataclasses
import json
import os
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from harness import tiny_resnet
from tfx_transfer.data.base import DataSplits
from tfx_transfer.model import build_model
from tfx_transfer.recipe import DistributeConfig, FreezeConfig, PhaseConfig, recipe_from_dict
from tfx_transfer.evaluate import predict_dataset
from tfx_transfer.training import cache as feature_cache
from tfx_transfer.training import PhaseRunner, WarmupDecay, balanced_class_weights


def _splits(n=48, num_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % num_classes).astype("int32")
    images = rng.uniform(0, 255, (n, 16, 16, 3)).astype("float32") + labels[:, None, None, None] * 20
    val = tf.data.Dataset.from_tensor_slices((images[:12], labels[:12]))
    return DataSplits(
        train=tf.data.Dataset.from_tensor_slices((images, labels)),
        validation=val,
        test=val,
        class_names=[f"c{k}" for k in range(num_classes)],
    )


def _recipe(run_dir, phases, backup_interval_seconds=60.0, **head):
    return recipe_from_dict(
        {
            "name": "t",
            "run_dir": str(run_dir),
            "backup_interval_seconds": backup_interval_seconds,
            "data": {"source": "synthetic", "batch_size": 8, "shuffle_buffer": 64},
            "head": {"dropout": 0.3, **head},
            "phases": phases,
        }
    )


def _head_weights_after_phase1(tmp_path, cache_features):
    keras.utils.set_random_seed(7)
    backbone = tiny_resnet()
    model, head = build_model(backbone, 3, _recipe(tmp_path, [{}]).head)
    recipe = _recipe(tmp_path / f"run_{cache_features}", [{"name": "head", "epochs": 3, "cache_features": cache_features}])
    (result,) = PhaseRunner(model, head, backbone, _splits(), recipe, recipe.run_dir).run()
    assert result.cached_features is cache_features
    return [w.numpy() for w in head.weights], result


def test_cached_and_uncached_phase1_give_the_same_head(tmp_path):
    cached, cached_result = _head_weights_after_phase1(tmp_path, True)
    uncached, uncached_result = _head_weights_after_phase1(tmp_path, False)
    for a, b in zip(cached, uncached):
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(cached_result.history["loss"], uncached_result.history["loss"], rtol=1e-4)


def test_augmentation_or_unfrozen_blocks_turn_caching_off(tmp_path):
    backbone = tiny_resnet()
    model, head = build_model(backbone, 3, _recipe(tmp_path, [{}]).head)
    recipe = _recipe(tmp_path, [{"name": "a", "epochs": 1}, {"name": "b", "epochs": 1, "freeze": {"last_blocks": 1}}])
    flip = keras.layers.RandomFlip("horizontal", seed=0)
    results = PhaseRunner(model, head, backbone, _splits(), recipe, recipe.run_dir, augment=flip).run()
    assert [r.cached_features for r in results] == [False, False]
    assert results[1].trainable_blocks == ["top"]


def test_finished_phases_are_skipped_on_resume(tmp_path):
    phases = [{"name": "head", "epochs": 2}, {"name": "fine_tune", "epochs": 1, "freeze": {"last_blocks": 1}}]
    recipe = _recipe(tmp_path / "run", phases)
    backbone = tiny_resnet()
    model, head = build_model(backbone, 3, recipe.head)
    runner = PhaseRunner(model, head, backbone, _splits(), recipe, recipe.run_dir)
    runner.run_phase = _fail_after_first(runner.run_phase)
    with pytest.raises(KeyboardInterrupt):
        runner.run()
    state = json.load(open(os.path.join(recipe.run_dir, "state.json")))
    assert list(state["completed"]) == ["head"]

    backbone2 = tiny_resnet()
    model2, head2 = build_model(backbone2, 3, recipe.head)
    calls = []
    runner2 = PhaseRunner(model2, head2, backbone2, _splits(), recipe, recipe.run_dir)
    original = runner2.run_phase
    runner2.run_phase = lambda phase, *args: calls.append(phase.name) or original(phase, *args)
    results = runner2.run()
    assert calls == ["fine_tune"]
    assert [r.name for r in results] == ["head", "fine_tune"]
    assert results[0].epochs_run == 2
    assert os.path.exists(os.path.join(recipe.run_dir, "checkpoints", "fine_tune.weights.h5"))


def _fail_after_first(run_phase):
    def wrapped(phase, *args):
        if phase.name != "head":
            raise KeyboardInterrupt
        return run_phase(phase, *args)

    return wrapped


def test_resumed_run_loads_the_weights_of_finished_phases(tmp_path):
    recipe = _recipe(tmp_path / "run", [{"name": "head", "epochs": 1}])
    backbone = tiny_resnet()
    model, head = build_model(backbone, 3, recipe.head)
    PhaseRunner(model, head, backbone, _splits(), recipe, recipe.run_dir).run()
    trained = [w.numpy() for w in model.weights]
    backbone2 = tiny_resnet()
    model2, head2 = build_model(backbone2, 3, recipe.head)
    PhaseRunner(model2, head2, backbone2, _splits(), recipe, recipe.run_dir).run()
    for a, b in zip(trained, [w.numpy() for w in model2.weights]):
        np.testing.assert_array_equal(a, b)


class _KillAfter(keras.callbacks.Callback):
    """Raises KeyboardInterrupt at the end of epoch `epochs` (1-based), after the backup ran."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs, self.weights_at_kill = epochs, None

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epochs:
            self.weights_at_kill = [w.numpy() for w in self.model.weights]
            raise KeyboardInterrupt


class _Record(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights_at_start, self.epochs = [], []

    def on_train_begin(self, logs=None):
        self.weights_at_start.append([w.numpy() for w in self.model.weights])

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def _killed_then_resumed(tmp_path, backup_interval_seconds):
    phases = [
        {"name": "head", "epochs": 4, "cache_features": False, "early_stopping_patience": None},
        {"name": "fine_tune", "epochs": 2, "freeze": {"last_blocks": 1}},
    ]
    recipe = _recipe(tmp_path / "run", phases, backup_interval_seconds)
    backbone = tiny_resnet()
    model, head = build_model(backbone, 3, recipe.head)
    kill = _KillAfter(2)
    with pytest.raises(KeyboardInterrupt):
        PhaseRunner(model, head, backbone, _splits(), recipe, recipe.run_dir, callbacks=[kill]).run()
    backbone2 = tiny_resnet()
    model2, head2 = build_model(backbone2, 3, recipe.head)
    record = _Record()
    results = PhaseRunner(model2, head2, backbone2, _splits(), recipe, recipe.run_dir, callbacks=[record]).run()
    return kill, record, results, recipe


def test_killed_phase_resumes_after_its_last_epoch_with_full_history(tmp_path):
    kill, record, results, recipe = _killed_then_resumed(tmp_path, backup_interval_seconds=0)
    for at_kill, at_resume in zip(kill.weights_at_kill, record.weights_at_start[0]):
        np.testing.assert_array_equal(at_kill, at_resume)
    # The resumed phase ran epochs 3-4 only; the next phase ran all of its own.
    assert record.epochs == [2, 3, 0, 1]
    assert [r.epochs_run for r in results] == [4, 2]
    assert len(results[0].history["loss"]) == len(results[0].history["val_loss"]) == 4
    assert not os.path.exists(os.path.join(recipe.run_dir, "backup", "head"))


def test_a_torn_backup_write_leaves_the_previous_backup_usable(tmp_path):
    recipe = _recipe(tmp_path / "run", [{"name": "head", "epochs": 3, "cache_features": False}], 0)
    backbone = tiny_resnet()
    model, head = build_model(backbone, 3, recipe.head)
    kill = _KillAfter(1)
    with pytest.raises(KeyboardInterrupt):
        PhaseRunner(model, head, backbone, _splits(), recipe, recipe.run_dir, callbacks=[kill]).run()
    # A kill while writing the next backup leaves a partial file that no record points to.
    with open(os.path.join(recipe.run_dir, "backup", "head", "epoch-2.weights.h5"), "wb") as f:
        f.write(b"\x89HDF\r\n truncated")
    backbone2 = tiny_resnet()
    model2, head2 = build_model(backbone2, 3, recipe.head)
    record = _Record()
    (result,) = PhaseRunner(model2, head2, backbone2, _splits(), recipe, recipe.run_dir, callbacks=[record]).run()
    assert record.epochs == [1, 2]
    assert result.epochs_run == 3


def test_backups_after_the_first_epoch_are_rate_limited_by_the_recipe_interval(tmp_path):
    _, record, results, _ = _killed_then_resumed(tmp_path, backup_interval_seconds=3600)
    # Killed after epoch 2: only epoch 1 was backed up (the first epoch always is), so epoch 2 is redone.
    assert record.epochs == [1, 2, 3, 0, 1]
    assert [r.epochs_run for r in results] == [4, 2]


def test_early_stopping_restores_and_records_epochs_run(tmp_path):
    recipe = _recipe(
        tmp_path, [{"name": "head", "epochs": 30, "learning_rate": 0.5, "early_stopping_patience": 1}]
    )
    backbone = tiny_resnet()
    model, head = build_model(backbone, 3, recipe.head)
    (result,) = PhaseRunner(model, head, backbone, _splits(), recipe, recipe.run_dir).run()
    assert 2 <= result.epochs_run < 30
    assert len(result.history["val_loss"]) == result.epochs_run


def test_warmup_then_cosine_schedule():
    schedule = WarmupDecay(0.1, warmup_steps=10, total_steps=110, decay="cosine")
    values = [float(schedule(s)) for s in (0, 5, 10, 60, 110, 200)]
    np.testing.assert_allclose(values, [0.0, 0.05, 0.1, 0.05, 0.0, 0.0], atol=1e-7)
    linear = WarmupDecay(1.0, 0, 100, "linear")
    assert float(linear(50)) == pytest.approx(0.5)
    restored = WarmupDecay(**schedule.get_config())
    assert float(restored(5)) == pytest.approx(0.05)


def test_balanced_class_weights_match_sklearn_formula():
    labels = np.array([0] * 6 + [1] * 2 + [2] * 4, "int32")
    ds = tf.data.Dataset.from_tensor_slices((np.zeros((12, 1), "float32"), labels))
    weights = balanced_class_weights(ds, 3)
    assert weights == pytest.approx({0: 12 / 18, 1: 12 / 6, 2: 12 / 12})


def test_class_weight_for_unknown_class_is_an_error(tmp_path):
    recipe = _recipe(tmp_path, [{"name": "head", "epochs": 1, "class_weight": {5: 2.0}}])
    backbone = tiny_resnet()
    model, head = build_model(backbone, 3, recipe.head)
    with pytest.raises(ValueError, match="class ids \\[5\\]"):
        PhaseRunner(model, head, backbone, _splits(), recipe, recipe.run_dir).run()


def test_binary_and_multilabel_heads_train(tmp_path):
    binary = _splits(num_classes=2)

    def multi_hot(x, y):
        return x, tf.one_hot(y, 2)

    multilabel = DataSplits(binary.train.map(multi_hot), binary.validation.map(multi_hot), None, binary.class_names)
    for kind, splits in (("binary", binary), ("multilabel", multilabel)):
        recipe = _recipe(tmp_path / kind, [{"name": "head", "epochs": 1}], kind=kind)
        backbone = tiny_resnet()
        model, head = build_model(backbone, 2, recipe.head)
        (result,) = PhaseRunner(model, head, backbone, splits, recipe, recipe.run_dir).run()
        assert np.isfinite(result.history["loss"]).all()
        assert model.output.shape[-1] == (1 if kind == "binary" else 2)


def test_datasets_of_unknown_length_train_without_running_out_of_data(tmp_path):
    splits = _splits()
    keep_all = lambda x, y: True  # noqa: E731  (a filter: the length becomes unknown, as for text)
    splits = DataSplits(splits.train.filter(keep_all), splits.validation.filter(keep_all), None, splits.class_names)
    recipe = _recipe(tmp_path, [{"name": "tune", "epochs": 2, "freeze": {"trainable": "all"}}])
    backbone = tiny_resnet()
    model, head = build_model(backbone, 3, recipe.head)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (result,) = PhaseRunner(model, head, backbone, splits, recipe, recipe.run_dir).run()
    assert not [w for w in caught if "ran out of data" in str(w.message)]
    assert result.epochs_run == 2


def _tune_after_head(run_dir, seed, head_epochs, tune, **recipe_fields):
    """`(model, backbone, runner)` for a head phase then `tune`, no dropout, on the tiny ResNet."""
    keras.utils.set_random_seed(seed)
    recipe = _recipe(run_dir, [{"name": "head", "epochs": head_epochs}, {"name": "tune", **tune}], dropout=0.0)
    recipe = dataclasses.replace(recipe, **recipe_fields)
    backbone = tiny_resnet()
    model, head = build_model(backbone, 3, recipe.head)
    return model, backbone, PhaseRunner(model, head, backbone, _splits(), recipe, recipe.run_dir)


def _two_phases_weights(tmp_path, jit_compile):
    model, _, runner = _tune_after_head(
        tmp_path / f"jit_{jit_compile}", 3, 2, {"epochs": 1, "freeze": {"last_blocks": 1}, "cache_features": False},
        distribute=DistributeConfig(jit_compile=jit_compile),
    )
    results = runner.run()
    return model, [w.numpy() for w in model.weights], results


def test_jit_compile_trains_both_phases_with_xla_to_the_same_weights(tmp_path):
    eager_model, eager_weights, _ = _two_phases_weights(tmp_path, False)
    xla_model, xla_weights, results = _two_phases_weights(tmp_path, True)
    assert (eager_model.jit_compile, xla_model.jit_compile) == (False, True)
    assert [r.cached_features for r in results] == [True, False]
    for eager, xla in zip(eager_weights, xla_weights):
        np.testing.assert_allclose(eager, xla, atol=1e-4, rtol=1e-3)


def _fine_tuned(tmp_path, cache_features, cache_limit_mb=1024.0):
    model, backbone, runner = _tune_after_head(
        tmp_path / f"prefix_{cache_features}_{cache_limit_mb}", 5, 1,
        {"epochs": 2, "freeze": {"last_blocks": 2}, "cache_features": cache_features},
        cache_limit_mb=cache_limit_mb,
    )
    stem = backbone.model.get_layer("stem_conv").get_weights()[0].copy()
    passes = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(feature_cache, "predict_dataset", lambda *a, **k: passes.append(a[0].name) or predict_dataset(*a, **k))
        results = runner.run()
    results[-1].passes = passes
    np.testing.assert_array_equal(backbone.model.get_layer("stem_conv").get_weights()[0], stem)
    return [w.numpy() for w in model.weights], results[-1]


def test_fine_tuning_on_cached_frozen_blocks_gives_the_same_weights(tmp_path):
    cached, cached_result = _fine_tuned(tmp_path, True)
    uncached, uncached_result = _fine_tuned(tmp_path, False)
    assert cached_result.cached_frozen_blocks == ["stem", "conv1_block1", "conv2_block1"]
    assert cached_result.trainable_blocks == ["conv3_block1", "top"]
    assert uncached_result.cached_frozen_blocks == []
    # Phase 1 computed its features through the frozen blocks phase 2 trains on: each split passes
    # through them once (then through the rest, for the features), not once per phase.
    assert cached_result.passes == ["tiny_resnet_frozen_prefix"] * 2 + ["features_on_prefix"] * 2
    for a, b in zip(cached, uncached):
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(cached_result.history["val_loss"], uncached_result.history["val_loss"], rtol=1e-4)


def test_frozen_block_outputs_over_the_cache_limit_are_not_cached(tmp_path, caplog):
    with caplog.at_level("INFO", logger="tfx_transfer"):
        _, result = _fine_tuned(tmp_path, True, cache_limit_mb=0.1)
    assert result.cached_frozen_blocks == []
    out = caplog.text
    assert "over recipe.cache_limit_mb=0.1" in out
    assert out.count("not caching") == 1  # phase 1's look-ahead and phase 2 share one cut


def test_min_steps_adds_whole_epochs_and_the_schedule_spans_them(tmp_path, caplog):
    recipe = _recipe(tmp_path, [{
        "name": "tune", "epochs": 1, "min_steps": 15, "freeze": {"trainable": "all"}, "schedule": "linear",
        "early_stopping_patience": None,
    }])
    backbone = tiny_resnet()
    model, head = build_model(backbone, 3, recipe.head)
    with caplog.at_level("INFO", logger="tfx_transfer"):
        (result,) = PhaseRunner(model, head, backbone, _splits(), recipe, recipe.run_dir).run()
    assert (result.epochs_run, result.epochs_planned) == (3, 3)  # 48 examples in batches of 8: 6 steps per epoch
    assert model.optimizer.get_config()["learning_rate"]["config"]["total_steps"] == 18
    assert "phase 'tune': 3 epochs (min_steps 15 at 6 steps per epoch)" in caplog.text
    assert recipe.phases[0].epochs_for(6) == 3 and dataclasses.replace(recipe.phases[0], min_steps=None).epochs_for(6) == 1
