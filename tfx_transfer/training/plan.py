"""How each phase trains, and why: a pure function of the recipe's phases, the backbone's blocks and
the freeze selections.

- `head_on_features`: the backbone is frozen; its pooled features are computed once and the
  head trains on them. When the next phase fine-tunes the last blocks on cached outputs of the
  frozen blocks before them, the features are computed through those outputs (the look-ahead),
  so the frozen blocks run once for both phases.
- `on_frozen_prefix`: the last blocks train; the blocks before the first trainable one are
  frozen, their outputs are computed once and the trainable blocks and the head train on them.
- `full_model`: every epoch runs the whole model (augmentation on, `cache_features: false`,
  the first block trains, or the frozen blocks' outputs exceed `cache_limit_mb`).

>>> from tfx_transfer.backbones.base import Block
>>> from tfx_transfer.freezing import FreezeSelection
>>> from tfx_transfer.recipe import PhaseConfig
>>> blocks = [Block("stem", ["conv"]), Block("top", ["top_conv"])]
>>> frozen = FreezeSelection(frozenset(), True, (), ())
>>> top = FreezeSelection(frozenset({"top_conv"}), True, ("top_conv",), ("top",))
>>> plans = plan_phases([PhaseConfig(name="head"), PhaseConfig(name="tune")], [frozen, top], blocks,
...                     augmentation=False, cache_limit_mb=100, prefix_megabytes=lambda blocks: 1.0)
>>> [(p.mode, p.frozen_blocks) for p in plans]
[('head_on_features', ('stem',)), ('on_frozen_prefix', ('stem',))]
"""

import dataclasses
from collections.abc import Callable, Sequence

from tfx_transfer.freezing import FreezeSelection
from tfx_transfer.training.cache import POOLED_FEATURES, FrozenBlockOutputs

HEAD_ON_FEATURES = "head_on_features"
ON_FROZEN_PREFIX = "on_frozen_prefix"
FULL_MODEL = "full_model"


@dataclasses.dataclass(frozen=True)
class PhasePlan:
    """How one phase trains (`mode`, one of the three above) and why (`reason`, for people).

    `frozen_blocks` are the blocks whose outputs the phase caches: the prefix it trains on
    (`on_frozen_prefix`), or the next phase's prefix its features go through (`head_on_features`
    with look-ahead); empty otherwise.
    """

    phase: str
    mode: str
    reason: str
    selection: FreezeSelection
    frozen_blocks: tuple[str, ...] = ()

    @property
    def cache_keys(self) -> frozenset:
        """The cache entries this phase reads or fills."""
        keys = {FrozenBlockOutputs(self.frozen_blocks)} if self.frozen_blocks else set()
        return frozenset(keys | ({POOLED_FEATURES} if self.mode == HEAD_ON_FEATURES else set()))

    def describe(self) -> str:
        return f"{self.mode}: {self.reason}"


def plan_phases(
    phases: Sequence,
    selections: Sequence[FreezeSelection],
    blocks: Sequence,
    augmentation: bool,
    cache_limit_mb: float,
    prefix_megabytes: Callable[[tuple], float | None] | None = None,
) -> list[PhasePlan]:
    """`plan_phase` for every phase, each looking ahead at the next; `selections[i]` is phase i's."""
    return [
        plan_phase(
            phase, selections[i], blocks, augmentation, cache_limit_mb, prefix_megabytes,
            next_phase=phases[i + 1] if i + 1 < len(phases) else None,
            next_selection=selections[i + 1] if i + 1 < len(phases) else None,
        )
        for i, phase in enumerate(phases)
    ]


def plan_phase(
    phase,
    selection: FreezeSelection,
    blocks: Sequence,
    augmentation: bool,
    cache_limit_mb: float,
    prefix_megabytes: Callable[[tuple], float | None] | None = None,
    next_phase=None,
    next_selection: FreezeSelection | None = None,
) -> PhasePlan:
    """How `phase` (a `PhaseConfig`) trains with `selection` trainable.

    `augmentation` says whether the modality augments (phases with `augment: true` then see new
    inputs every epoch). `prefix_megabytes(frozen_blocks)` is the size of the frozen blocks' outputs
    for the larger split, or None when no tensor crosses the cut after them; without it (as in
    `tfx-transfer inspect`, before any data is loaded) the size is checked at train time.
    """
    blocked = _caching_blocked(phase, augmentation)
    if blocked:
        return PhasePlan(phase.name, FULL_MODEL, blocked, selection)
    if not selection.trainable_layers:
        ahead = None
        if next_phase is not None and not _caching_blocked(next_phase, augmentation) and next_selection.trainable_layers:
            ahead, _ = _cacheable_prefix(next_selection, blocks, cache_limit_mb, prefix_megabytes)
        reason = "the backbone is frozen: its pooled features are computed once"
        if ahead:
            reason += f", through the outputs of the frozen blocks {_span(ahead)} that phase {next_phase.name!r} trains on"
        return PhasePlan(phase.name, HEAD_ON_FEATURES, reason, selection, ahead or ())
    frozen, reason = _cacheable_prefix(selection, blocks, cache_limit_mb, prefix_megabytes)
    return PhasePlan(phase.name, ON_FROZEN_PREFIX if frozen else FULL_MODEL, reason, selection, frozen or ())


def _caching_blocked(phase, augmentation: bool) -> str | None:
    if not phase.cache_features:
        return "cache_features is false"
    if augmentation and phase.augment:
        return "augmentation changes the inputs in every epoch"
    return None


def _cacheable_prefix(selection, blocks, cache_limit_mb, prefix_megabytes) -> tuple[tuple | None, str]:
    """`(frozen_blocks, reason)`: the blocks before the first trainable one if their outputs can be
    cached, else `(None, why not)`."""
    trainable = set(selection.trainable_layers)
    first = next(i for i, b in enumerate(blocks) if trainable.intersection(b.layers))
    if first == 0:
        return None, f"the first block ({blocks[0].name}) trains: no frozen blocks before it to cache"
    frozen = tuple(b.name for b in blocks[:first])
    if prefix_megabytes is None:
        return frozen, (
            f"blocks {_span(frozen)} are frozen: their outputs are computed once "
            f"(if they fit in cache_limit_mb={cache_limit_mb:g}, checked at train time)"
        )
    megabytes = prefix_megabytes(frozen)
    if megabytes is None:
        return None, f"no tensor leaves the frozen blocks {_span(frozen)}: nothing to cache"
    if megabytes > cache_limit_mb:
        return None, (
            f"not caching the outputs of frozen blocks {_span(frozen)}: {megabytes:,.0f} MB per split is over "
            f"recipe.cache_limit_mb={cache_limit_mb:g}; the frozen blocks run in every epoch"
        )
    return frozen, f"blocks {_span(frozen)} are frozen: their outputs ({megabytes:,.1f} MB per split) are computed once"


def _span(blocks) -> str:
    return blocks[0] if len(blocks) == 1 else f"{blocks[0]}..{blocks[-1]}"
