"""Turns a declarative freeze policy into per-layer `trainable` flags, and shows them as a table."""

import dataclasses
import re

import keras
import numpy as np

from tfx_transfer.backbones.base import Backbone

BATCHNORM_TYPES = (keras.layers.BatchNormalization,)


@dataclasses.dataclass(frozen=True)
class FreezeResult:
    """Which top-level backbone layers and blocks train after applying a policy."""

    trainable_layers: tuple[str, ...]
    trainable_blocks: tuple[str, ...]


def apply_freeze_policy(backbone: Backbone, policy) -> FreezeResult:
    """Sets `trainable` on every layer of `backbone.model` as `policy` (a `FreezeConfig`) says.

    Recompile the model afterwards: Keras reads `trainable` at `compile()`.

    >>> from tfx_transfer.backbones.keras_apps import build_keras_app
    >>> from tfx_transfer.recipe import FreezeConfig
    >>> backbone = build_keras_app("MobileNetV2", weights=None, image_size=(32, 32))
    >>> apply_freeze_policy(backbone, FreezeConfig(last_blocks=1)).trainable_blocks
    ('top',)
    """
    layers = {layer.name: layer for layer in backbone.model.layers}
    selected = _select_layers(backbone, policy)
    backbone.model.trainable = True
    for name, layer in layers.items():
        layer.trainable = name in selected
    if policy.batchnorm == "frozen":
        for layer in backbone.model._flatten_layers(include_self=False):
            if isinstance(layer, BATCHNORM_TYPES):
                layer.trainable = False
    trainable_layers = tuple(n for n in layers if layers[n].trainable_weights)
    return FreezeResult(
        trainable_layers=trainable_layers,
        trainable_blocks=tuple(
            b.name for b in backbone.blocks if any(n in trainable_layers for n in b.layers)
        ),
    )


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
