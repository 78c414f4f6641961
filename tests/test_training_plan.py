"""The phase planner: how each phase trains and why, from phases, blocks and freeze selections alone."""

import pytest

from tfx_transfer.backbones.base import Block
from tfx_transfer.freezing import FreezeSelection
from tfx_transfer.recipe import PhaseConfig
from tfx_transfer.training.cache import POOLED_FEATURES, FrozenBlockOutputs
from tfx_transfer.training.plan import FULL_MODEL, HEAD_ON_FEATURES, ON_FROZEN_PREFIX, plan_phase, plan_phases

BLOCKS = [Block("stem", ("stem_conv",)), Block("block_1", ("b1_conv",)), Block("top", ("top_conv",))]
FROZEN = FreezeSelection(frozenset(), True, (), ())
TOP = FreezeSelection(frozenset({"top_conv"}), True, ("top_conv",), ("top",))
ALL = FreezeSelection(frozenset({"stem_conv", "b1_conv", "top_conv"}), True, ("stem_conv", "b1_conv", "top_conv"),
                      ("stem", "block_1", "top"))


def _plans(phases, selections, augmentation=False, cache_limit_mb=100.0, megabytes=1.0):
    measured = []

    def prefix_megabytes(frozen_blocks):
        measured.append(frozen_blocks)
        return megabytes

    plans = plan_phases(phases, selections, BLOCKS, augmentation, cache_limit_mb, prefix_megabytes)
    return plans, measured


def test_head_phase_looks_ahead_through_the_frozen_prefix_of_the_fine_tuning_phase():
    (head, tune), measured = _plans([PhaseConfig(name="head"), PhaseConfig(name="tune")], [FROZEN, TOP])
    assert (head.mode, head.frozen_blocks) == (HEAD_ON_FEATURES, ("stem", "block_1"))
    assert "through the outputs of the frozen blocks stem..block_1 that phase 'tune' trains on" in head.reason
    assert head.cache_keys == {POOLED_FEATURES, FrozenBlockOutputs(("stem", "block_1"))}
    assert (tune.mode, tune.frozen_blocks) == (ON_FROZEN_PREFIX, ("stem", "block_1"))
    assert tune.cache_keys == {FrozenBlockOutputs(("stem", "block_1"))}
    assert measured == [("stem", "block_1")] * 2  # the runner memoises the measurement per cut


def test_a_lone_frozen_phase_caches_pooled_features_only():
    (head,), measured = _plans([PhaseConfig(name="head")], [FROZEN])
    assert (head.mode, head.frozen_blocks, head.cache_keys) == (HEAD_ON_FEATURES, (), {POOLED_FEATURES})
    assert measured == []


@pytest.mark.parametrize(
    "phase, augmentation, selection, reason",
    [
        (PhaseConfig(name="p", cache_features=False), False, FROZEN, "cache_features is false"),
        (PhaseConfig(name="p", augment=True), True, TOP, "augmentation changes the inputs"),
        (PhaseConfig(name="p"), False, ALL, "the first block (stem) trains"),
    ],
)
def test_full_model_phases_say_why(phase, augmentation, selection, reason):
    (plan,), _ = _plans([phase], [selection], augmentation=augmentation)
    assert plan.mode == FULL_MODEL and reason in plan.reason
    assert plan.cache_keys == frozenset()


def test_augmentation_off_for_a_phase_keeps_its_caching():
    (plan,), _ = _plans([PhaseConfig(name="p", augment=False)], [TOP], augmentation=True)
    assert plan.mode == ON_FROZEN_PREFIX


def test_frozen_outputs_over_the_cache_limit_train_the_full_model_and_turn_off_the_look_ahead():
    (head, tune), _ = _plans([PhaseConfig(name="head"), PhaseConfig(name="tune")], [FROZEN, TOP],
                             cache_limit_mb=0.5, megabytes=2.0)
    assert (head.mode, head.frozen_blocks) == (HEAD_ON_FEATURES, ())
    assert tune.mode == FULL_MODEL
    assert "2 MB per split is over recipe.cache_limit_mb=0.5" in tune.reason


def test_no_look_ahead_when_the_next_phase_does_not_cache():
    phases = [PhaseConfig(name="head"), PhaseConfig(name="tune", cache_features=False)]
    (head, tune), measured = _plans(phases, [FROZEN, TOP])
    assert (head.frozen_blocks, tune.mode, measured) == ((), FULL_MODEL, [])


def test_a_cut_no_tensor_crosses_is_not_cached():
    (plan,), _ = _plans([PhaseConfig(name="p")], [TOP], megabytes=None)
    assert plan.mode == FULL_MODEL and "no tensor leaves the frozen blocks" in plan.reason


def test_without_measurements_the_plan_defers_the_size_check():
    plan = plan_phase(PhaseConfig(name="p"), TOP, BLOCKS, augmentation=False, cache_limit_mb=64)
    assert plan.mode == ON_FROZEN_PREFIX and "checked at train time" in plan.reason
