"""Length bucketing: bounded batch shapes, no real token lost, same model outputs as fixed padding."""

import dataclasses
import warnings

import numpy as np
import pytest
import tensorflow as tf

from tfx_transfer.data.bucketing import LengthBuckets, batches_by_length, bucket_lengths, token_counts

SEQUENCE_LENGTH = 32


def token_examples(num_examples=90, seed=0, with_segments=True):
    """Right-padded token rows of random real lengths 1..SEQUENCE_LENGTH (most short), labels = row index."""
    rng = np.random.default_rng(seed)
    lengths = np.minimum(rng.geometric(0.12, num_examples), SEQUENCE_LENGTH)
    token_ids = np.zeros((num_examples, SEQUENCE_LENGTH), np.int32)
    for row, length in enumerate(lengths):
        token_ids[row, :length] = rng.integers(5, 40, length)
    inputs = {"token_ids": token_ids, "padding_mask": (token_ids != 0).astype(np.int32)}
    if with_segments:
        inputs["segment_ids"] = np.zeros_like(token_ids)
    return inputs, np.arange(num_examples, dtype=np.int32)


def real_tokens(inputs, labels):
    """`{label: tuple of real token ids}` of a batch or of every example."""
    mask = np.asarray(inputs["padding_mask"]) != 0
    return {int(y): tuple(ids[m]) for ids, m, y in zip(np.asarray(inputs["token_ids"]), mask, np.asarray(labels))}


def test_bucket_lengths_are_powers_of_two_or_steps_up_to_the_sequence_length():
    assert bucket_lengths(128) == (16, 32, 64, 128)
    assert bucket_lengths(100, smallest=8) == (8, 16, 32, 64, 100)
    assert bucket_lengths(10) == (10,)
    assert bucket_lengths(30, step=8) == (8, 16, 24, 30)
    assert bucket_lengths(8, step=8) == (8,)
    for bad in ({"sequence_length": 0}, {"sequence_length": 8, "step": 0}):
        with pytest.raises(ValueError, match="positive"):
            bucket_lengths(**bad)


def test_batches_by_length_bound_shapes_and_keep_every_token():
    inputs, labels = token_examples()
    lengths = bucket_lengths(SEQUENCE_LENGTH, smallest=8)
    ds = tf.data.Dataset.from_tensor_slices((inputs, labels)).shuffle(100, seed=1)
    shapes, seen = set(), {}
    for batch_inputs, batch_labels in batches_by_length(ds, 8, lengths):
        shape = tuple(batch_inputs["token_ids"].shape)
        assert {tuple(t.shape) for t in batch_inputs.values()} == {shape}
        assert shape[1] in lengths
        real = np.asarray(batch_inputs["padding_mask"]).sum(axis=1)
        # The smallest bucket that holds the batch's longest text: nothing longer is computed.
        assert real.max() <= shape[1] and (shape[1] == lengths[0] or real.max() > lengths[lengths.index(shape[1]) - 1])
        shapes.add(shape)
        seen.update(real_tokens(batch_inputs, batch_labels))
    assert len(shapes) <= 2 * len(lengths)
    assert seen == real_tokens(inputs, labels)  # every example once, with all its tokens and its own label


def test_batches_by_length_compute_far_fewer_positions_on_short_texts():
    inputs, labels = token_examples(num_examples=200)
    ds = tf.data.Dataset.from_tensor_slices((inputs, labels))
    fixed, real = token_counts(ds.batch(16))
    bucketed, bucketed_real = token_counts(batches_by_length(ds, 16, bucket_lengths(SEQUENCE_LENGTH, smallest=8)))
    assert bucketed_real == real and fixed == 200 * SEQUENCE_LENGTH
    assert bucketed < 0.6 * fixed


def test_indexed_batches_carry_every_example_and_its_position_once():
    inputs, labels = token_examples(seed=3, with_segments=False)
    lengths = bucket_lengths(SEQUENCE_LENGTH, smallest=8)
    ds = tf.data.Dataset.from_tensor_slices((inputs, labels))
    positions, shapes = [], set()
    for batch_inputs, batch_labels, batch_positions in LengthBuckets(lengths).indexed_batches(ds, 8):
        shapes.add(tuple(batch_inputs["token_ids"].shape))
        assert batch_labels.numpy().tolist() == labels[batch_positions.numpy()].tolist()
        assert real_tokens(batch_inputs, batch_labels) == {
            y: real_tokens(inputs, labels)[y] for y in batch_labels.numpy().tolist()
        }
        positions.extend(batch_positions.numpy().tolist())
    assert sorted(positions) == list(range(len(labels)))
    assert {shape[1] for shape in shapes} <= set(lengths) and len(shapes) <= 2 * len(lengths)


def test_bucketing_cuts_cached_hidden_states_with_their_mask():
    inputs, labels = token_examples(num_examples=20, with_segments=False)
    hidden = np.random.default_rng(0).normal(size=(20, SEQUENCE_LENGTH, 4)).astype(np.float32)
    ds = tf.data.Dataset.from_tensor_slices(({"hidden_states": hidden, "padding_mask": inputs["padding_mask"]}, labels))
    for batch_inputs, batch_labels in batches_by_length(ds, 4, bucket_lengths(SEQUENCE_LENGTH, smallest=8)):
        length = batch_inputs["padding_mask"].shape[1]
        np.testing.assert_array_equal(batch_inputs["hidden_states"], hidden[batch_labels.numpy(), :length])


def test_bad_bucket_lengths_and_missing_mask_are_clear_errors():
    inputs, labels = token_examples(num_examples=4)
    ds = tf.data.Dataset.from_tensor_slices((inputs, labels))
    with pytest.raises(ValueError, match=r"sequence length \(32"):
        batches_by_length(ds, 2, (8, 16))
    with pytest.raises(ValueError, match="increasing"):
        batches_by_length(ds, 2, (16, 8, 32))
    with pytest.raises(ValueError, match="'padding_mask' input.*token_ids"):
        batches_by_length(tf.data.Dataset.from_tensor_slices({"token_ids": inputs["token_ids"]}), 2, (32,))


def test_mask_aware_encoder_gives_the_same_outputs_on_bucketed_and_fixed_batches(tmp_path):
    from harness.text import VOCABULARY, save_tiny_bert_preset
    from tfx_transfer.backbones.kerashub import build_kerashub_backbone
    from tfx_transfer.evaluate import predict_dataset

    preset = save_tiny_bert_preset(tmp_path / "bert", max_sequence_length=SEQUENCE_LENGTH)
    backbone = build_kerashub_backbone(preset, sequence_length=SEQUENCE_LENGTH, pooling="mean")
    inputs, labels = token_examples(num_examples=40, seed=5)
    inputs["token_ids"] = np.where(inputs["token_ids"] > 0, inputs["token_ids"] % len(VOCABULARY), 0)
    inputs["token_ids"] = np.where(inputs["padding_mask"] > 0, np.maximum(inputs["token_ids"], 5), 0)
    fixed = backbone.model.predict(inputs, batch_size=8, verbose=0)
    ds = tf.data.Dataset.from_tensor_slices((inputs, labels))
    lengths = bucket_lengths(SEQUENCE_LENGTH, smallest=8)
    bucketed, batch_lengths = np.zeros_like(fixed), set()
    for batch_inputs, batch_labels in batches_by_length(ds, 8, lengths):
        batch_lengths.add(batch_inputs["token_ids"].shape[1])
        bucketed[batch_labels.numpy()] = backbone.model(batch_inputs, training=False).numpy()
    assert min(batch_lengths) < SEQUENCE_LENGTH
    np.testing.assert_allclose(bucketed, fixed, atol=1e-5)
    in_order, in_order_labels = predict_dataset(backbone.model, ds, 8, length_buckets=LengthBuckets(lengths))
    np.testing.assert_allclose(in_order, fixed, atol=1e-5)
    np.testing.assert_array_equal(in_order_labels, labels)


def test_count_batches_is_the_number_of_batches_in_every_epoch():
    inputs, labels = token_examples(num_examples=75, seed=2)
    ds = tf.data.Dataset.from_tensor_slices((inputs, labels))
    buckets = LengthBuckets(bucket_lengths(SEQUENCE_LENGTH, smallest=8))
    per_epoch = buckets.count_batches(ds, 8)
    for seed in (0, 4):
        assert sum(1 for _ in buckets.batches(ds.shuffle(75, seed=seed), 8)) == per_epoch


def _text_recipe(work, freeze, bucket_by_length=True, head_phase=False):
    from harness.text import save_tiny_bert_preset, write_topic_folder
    from tfx_transfer.recipe import recipe_from_dict

    phases = [{"name": "tune", "epochs": 2, "freeze": freeze, "optimizer": "adamw", "learning_rate": 1e-3}]
    if head_phase:
        phases.insert(0, {"name": "head", "epochs": 1, "learning_rate": 1e-2})
    return recipe_from_dict({
        "name": "topics", "modality": "text", "seed": 1, "run_dir": str(work / "run"),
        "data": {"source": "folder", "path": write_topic_folder(work / "topics", per_class=16), "batch_size": 8,
                 "text": {"bucket_by_length": bucket_by_length}},
        "backbone": {"source": "kerashub", "name": save_tiny_bert_preset(work / "preset"), "sequence_length": 64},
        "head": {"dropout": 0.0},
        "phases": phases,
    })


def test_a_text_phase_training_the_whole_model_fits_on_batches_cut_to_their_bucket(tmp_path):
    from tfx_transfer.pipeline import prepare
    from tfx_transfer.training import PhaseRunner

    recipe = _text_recipe(tmp_path, {"trainable": "all"})
    prepared = prepare(recipe)
    assert prepared.splits.length_buckets == LengthBuckets(tuple(range(8, 65, 8)))
    under_xla = dataclasses.replace(recipe, distribute=dataclasses.replace(recipe.distribute, jit_compile=True))
    assert prepare(under_xla).splits.length_buckets == LengthBuckets((16, 32, 64))
    runner = PhaseRunner(prepared.model, prepared.head, prepared.backbone, prepared.splits, recipe, recipe.run_dir)
    inputs = runner.phase_inputs(recipe.phases[0])
    def smallest_bucket_holding_the_longest_text(batches):
        shapes = [(x["token_ids"].shape[1], -(-int(np.asarray(x["padding_mask"]).sum(axis=1).max()) // 8) * 8) for x, _ in batches]
        return all(length == bucket for length, bucket in shapes), len(shapes)

    cut, batches = smallest_bucket_holding_the_longest_text(inputs.train)
    assert cut and batches == inputs.steps_per_epoch == int(inputs.train.cardinality())
    cut, batches = smallest_bucket_holding_the_longest_text(inputs.val)
    assert cut and batches == int(inputs.val.cardinality())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = runner.run()[0]
    assert result.epochs_run == 2 and np.isfinite(result.history["val_loss"]).all()
    assert not [w for w in caught if "ran out of data" in str(w.message)]


def test_cached_outputs_of_frozen_layers_keep_each_text_at_its_bucket_length(tmp_path):
    from tfx_transfer.evaluate import predict_dataset
    from tfx_transfer.pipeline import prepare
    from tfx_transfer.training import PhaseRunner
    from tfx_transfer.training.cache import FrozenBlockOutputs
    from tfx_transfer.training.plan import ON_FROZEN_PREFIX

    recipe = _text_recipe(tmp_path, {"last_blocks": 1}, head_phase=True)
    prepared = prepare(recipe)
    splits, buckets = prepared.splits, prepared.splits.length_buckets
    runner = PhaseRunner(prepared.model, prepared.head, prepared.backbone, splits, recipe, recipe.run_dir)
    runner.phase_inputs(recipe.phases[0], next_phase=recipe.phases[1])  # caches the prefix's outputs for the head phase
    inputs = runner.phase_inputs(recipe.phases[1])
    assert inputs.plan.mode == ON_FROZEN_PREFIX
    cached = {split: runner._cache.dataset(split, FrozenBlockOutputs(inputs.plan.frozen_blocks)) for split in ("train", "validation")}

    def bucket_of(mask):
        return -(-int(np.asarray(mask).sum(axis=-1).max()) // 8) * 8

    stored = [(x["transformer_layer_0"].shape[0], bucket_of(x["padding_mask"])) for x, _ in cached["train"]]
    assert all(length == bucket for length, bucket in stored) and max(length for length, _ in stored) < 64
    batches = [(x["transformer_layer_0"].shape[1], bucket_of(x["padding_mask"])) for x, _ in inputs.train]
    assert all(length == bucket for length, bucket in batches) and len(batches) == inputs.steps_per_epoch
    on_cache, cache_labels = predict_dataset(inputs.trained, cached["validation"], 4, length_buckets=buckets)
    whole, labels = predict_dataset(prepared.model, splits.validation, 4)
    np.testing.assert_array_equal(cache_labels, labels)
    np.testing.assert_allclose(on_cache, whole, atol=1e-5)
    results = runner.run()
    assert [r.epochs_run for r in results] == [1, 2] and np.isfinite(results[1].history["val_loss"]).all()


def test_a_bucketed_cache_of_frozen_layer_outputs_is_planned_at_the_size_it_stores(tmp_path):
    """Short texts padded to `sequence_length` would exceed a cache limit their bucketed outputs fit in."""
    from tfx_transfer.pipeline import prepare
    from tfx_transfer.training import PhaseRunner
    from tfx_transfer.training.cache import FrozenBlockOutputs
    from tfx_transfer.training.plan import FULL_MODEL, ON_FROZEN_PREFIX

    def runner_for(recipe):
        prepared = prepare(recipe)
        return PhaseRunner(prepared.model, prepared.head, prepared.backbone, prepared.splits, recipe, recipe.run_dir)

    bucketed_recipe = _text_recipe(tmp_path, {"last_blocks": 1})
    bucketed = runner_for(bucketed_recipe)
    frozen = bucketed.plan(bucketed_recipe.phases[0]).frozen_blocks
    inputs = bucketed.phase_inputs(bucketed_recipe.phases[0])
    assert inputs.plan.mode == ON_FROZEN_PREFIX and inputs.plan.frozen_blocks == frozen
    stored = sum(np.asarray(t).nbytes for x, _ in bucketed._cache.dataset("train", FrozenBlockOutputs(frozen)) for t in x.values())
    assert bucketed._prefix_megabytes(frozen) * 2**20 == pytest.approx(stored)

    padded_recipe = _text_recipe(tmp_path / "padded", {"last_blocks": 1}, bucket_by_length=False)
    padded_megabytes = runner_for(padded_recipe)._prefix_megabytes(frozen)
    assert padded_megabytes * 2**20 > 2 * stored
    limit = (padded_megabytes + stored / 2**20) / 2
    for recipe, mode in ((bucketed_recipe, ON_FROZEN_PREFIX), (padded_recipe, FULL_MODEL)):
        limited = dataclasses.replace(recipe, cache_limit_mb=limit)
        assert runner_for(limited).plan(limited.phases[0]).mode == mode


def test_bucketed_and_fixed_length_evaluation_give_the_same_probabilities(tmp_path):
    from tfx_transfer.evaluate import predict_probabilities
    from tfx_transfer.pipeline import prepare

    prepared = prepare(_text_recipe(tmp_path, {"trainable": "all"}))
    splits = prepared.splits
    fixed, fixed_labels = predict_probabilities(prepared.model, splits.test, 4, "multiclass")
    bucketed, labels = predict_probabilities(prepared.model, splits.test, 4, "multiclass", length_buckets=splits.length_buckets)
    np.testing.assert_array_equal(labels, fixed_labels)
    np.testing.assert_allclose(bucketed, fixed, atol=1e-5)


def test_bucketing_can_be_turned_off(tmp_path):
    from tfx_transfer.pipeline import prepare

    assert prepare(_text_recipe(tmp_path, {"trainable": "all"}, bucket_by_length=False)).splits.length_buckets is None
