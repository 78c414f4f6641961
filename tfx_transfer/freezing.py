"""Turns a declarative freeze policy into per-layer `trainable` flags, and shows them as a table."""

import dataclasses
import re

import keras
import numpy as np

from tfx_transfer.backbones.base import Backbone

BATCHNORM_TYPES = (keras.layers.BatchNormalization,)


@dataclasses.dataclass(frozen=True)
class FreezeSelection:
    """Which top-level backbone layers a freeze policy selects, and which layers and blocks then train.

    `selected_layers` get `trainable=True` (every other top-level layer False);
    `trainable_layers` are those of them left with trainable weights (after
    BatchNorm freezing), `trainable_blocks` the blocks holding one of them.
    """

    selected_layers: frozenset[str]
    freeze_batchnorm: bool
    trainable_layers: tuple[str, ...]
    trainable_blocks: tuple[str, ...]


def select_trainable(backbone: Backbone, policy) -> FreezeSelection:
    """Which layers of `backbone` train under `policy` (a `FreezeConfig`), without changing any flag.

    >>> from tfx_transfer.backbones.keras_apps import build_keras_app
    >>> from tfx_transfer.recipe import FreezeConfig
    >>> backbone = build_keras_app("MobileNetV2", weights=None, image_size=(32, 32))
    >>> select_trainable(backbone, FreezeConfig(last_blocks=1)).trainable_blocks
    ('top',)
    """
    selected = frozenset(_select_layers(backbone, policy))
    freeze_batchnorm = policy.batchnorm == "frozen"
    trainable_layers = tuple(
        layer.name
        for layer in backbone.model.layers
        if layer.name in selected and _has_trainable_weights(layer, freeze_batchnorm)
    )
    return FreezeSelection(
        selected_layers=selected,
        freeze_batchnorm=freeze_batchnorm,
        trainable_layers=trainable_layers,
        trainable_blocks=tuple(
            b.name for b in backbone.blocks if any(n in trainable_layers for n in b.layers)
        ),
    )


def apply_freeze_selection(backbone: Backbone, selection: FreezeSelection) -> FreezeSelection:
    """Sets `trainable` on every layer of `backbone.model` as `selection` says; returns it.

    Recompile the model afterwards: Keras reads `trainable` at `compile()`.
    """
    backbone.model.trainable = True
    for layer in backbone.model.layers:
        layer.trainable = layer.name in selection.selected_layers
    if selection.freeze_batchnorm:
        for layer in backbone.model._flatten_layers(include_self=False):
            if isinstance(layer, BATCHNORM_TYPES):
                layer.trainable = False
    return selection


def apply_freeze_policy(backbone: Backbone, policy) -> FreezeSelection:
    """Sets `trainable` on every layer of `backbone.model` as `policy` (a `FreezeConfig`) says.

    `select_trainable` then `apply_freeze_selection`. Recompile the model afterwards.

    >>> from tfx_transfer.backbones.keras_apps import build_keras_app
    >>> from tfx_transfer.recipe import FreezeConfig
    >>> backbone = build_keras_app("MobileNetV2", weights=None, image_size=(32, 32))
    >>> apply_freeze_policy(backbone, FreezeConfig(last_blocks=1)).trainable_blocks
    ('top',)
    """
    return apply_freeze_selection(backbone, select_trainable(backbone, policy))


def _has_trainable_weights(layer, freeze_batchnorm: bool) -> bool:
    """Whether `layer` has weights that train once it is set trainable (BatchNorm's excluded when frozen).

    Reads the variables each (sub)layer created as trainable, not their current flags, which the
    previous phase's freezing changed.
    """
    sublayers = list(layer._flatten_layers(include_self=True))
    frozen = {
        id(v) for sub in sublayers if freeze_batchnorm and isinstance(sub, BATCHNORM_TYPES) for v in sub.weights
    }
    return any(id(v) not in frozen for sub in sublayers for v in sub._trainable_variables)


def _select_layers(backbone: Backbone, policy) -> set[str]:
    names = [layer.name for layer in backbone.model.layers]
    selected = set(names) if policy.trainable == "all" else set()
    if policy.last_blocks:
        if policy.last_blocks > len(backbone.blocks):
            raise ValueError(
                f"freeze.last_blocks={policy.last_blocks} but backbone {backbone.name!r} has only "
                f"{len(backbone.blocks)} blocks. Use `tfx-transfer inspect` to list them."
            )
        for block in backbone.blocks[-policy.last_blocks :]:
            selected.update(block.layers)
    if policy.from_layer:
        if policy.from_layer not in names and policy.from_layer not in {b.name for b in backbone.blocks}:
            close = [n for n in names if policy.from_layer in n][:5]
            raise ValueError(
                f"freeze.from_layer: {policy.from_layer!r} is neither a layer nor a block of backbone "
                f"{backbone.name!r}." + (f" Similar layer names: {close}." if close else "")
            )
        start = next(
            i
            for i, block in enumerate(backbone.blocks)
            if block.name == policy.from_layer or policy.from_layer in block.layers
        )
        for block in backbone.blocks[start:]:
            selected.update(block.layers)
    for pattern in policy.include:
        selected.update(n for n in names if _compile(pattern, "include").search(n))
    for pattern in policy.exclude:
        selected.difference_update(n for n in names if _compile(pattern, "exclude").search(n))
    return selected


def _compile(pattern: str, key: str):
    try:
        return re.compile(pattern)
    except re.error as e:
        raise ValueError(f"freeze.{key}: {pattern!r} is not a valid regular expression ({e}).") from None


def freeze_table(backbone: Backbone, head: keras.Model | None = None, layers: bool = False) -> str:
    """A text table of blocks (or, with `layers=True`, of layers) with trainable flags and parameters."""
    rows = []
    by_name = {layer.name: layer for layer in backbone.model.layers}
    for block in backbone.blocks:
        members = [by_name[n] for n in block.layers]
        if layers:
            rows += [(block.name, layer.name, *_counts([layer])) for layer in members]
        else:
            rows.append((block.name, f"{len(members)} layers", *_counts(members)))
    if head is not None:
        rows.append(("head", f"{len(head.layers)} layers", *_counts(head.layers)))
    header = ("block", "layer" if layers else "size", "trainable", "params", "trainable params")
    body = [(b, l, flag, f"{p:,}", f"{t:,}") for b, l, flag, p, t in rows]
    widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]

    def line(row):
        return "  ".join(
            str(v).ljust(w) if i < 3 else str(v).rjust(w) for i, (v, w) in enumerate(zip(row, widths))
        )

    total = sum(r[3] for r in rows)
    trainable = sum(r[4] for r in rows)
    return "\n".join(
        [line(header), line(tuple("-" * w for w in widths)), *map(line, body),
         f"total params {total:,}, trainable {trainable:,} ({100.0 * trainable / max(total, 1):.1f}%)"]
    )


def _counts(layers) -> tuple[str, int, int]:
    params = sum(int(np.prod(w.shape)) for layer in layers for w in layer.weights)
    trainable = sum(int(np.prod(w.shape)) for layer in layers for w in layer.trainable_weights)
    flag = "yes" if trainable == params and params else "partly" if trainable else "no"
    if not params:
        flag = "-"
    return flag, params, trainable
