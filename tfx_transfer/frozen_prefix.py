"""Cuts a backbone before its first trainable block, so fine-tuning can train on cached activations.

When a phase fine-tunes only the last blocks of a backbone and nothing changes
its inputs from epoch to epoch (no augmentation), the frozen blocks before them
compute the same activations in every epoch. Running them once and training the
rest on their outputs gives the same gradients for the trainable weights at a
fraction of the cost per epoch. The frozen prefix runs in inference mode, as
frozen backbones do in phase 1: its dropout is off and BatchNormalization uses
its moving statistics.
"""

import dataclasses

import keras
import numpy as np

from tfx_transfer.backbones.base import Backbone
from tfx_transfer.compat.keras_clone_graph import replay_after
from tfx_transfer.data.bucketing import has_token_axis


@dataclasses.dataclass
class FrozenPrefix:
    """A backbone split at a block boundary: `prefix` (frozen) then `suffix` (trains).

    `prefix` maps the backbone's inputs to a dict of the boundary tensors (every
    tensor that a later block reads from an earlier one or from the inputs, e.g.
    the hidden states and the `padding_mask` of a transformer), keyed by the
    layer that makes each; `suffix` maps the list of those tensors, in the order
    of `names`, to the backbone's output and shares its layers with the backbone.
    """

    prefix: keras.Model
    suffix: keras.Model
    frozen_blocks: tuple[str, ...]
    names: tuple[str, ...]

    def bytes_per_example(self, example, positions: float | None = None) -> float:
        """Memory the boundary tensors of one example take; `example` is a batch of one input.

        With `positions`, tensors with a token axis (`has_token_axis`) count `positions` tokens
        instead of the example's own length: e.g. the mean length a bucketed cache stores.
        """
        total = 0.0
        for name, tensor in self.prefix(example, training=False).items():
            tensor = np.asarray(tensor)
            if positions is not None and has_token_axis(self.prefix.output[name]):
                total += tensor.nbytes / tensor.shape[1] * positions
            else:
                total += tensor.nbytes
        return total

    def apply_suffix(self, boundary: dict):
        """The backbone's output from the boundary tensors `boundary` (a dict as `prefix` returns)."""
        return self.suffix([boundary[name] for name in self.names])


def split_before_trainable(backbone: Backbone, trainable_layers) -> FrozenPrefix | None:
    """The backbone cut before the first block holding a trainable layer, or None.

    None when there is nothing to cut off: the first block trains, or no block
    does (a fully frozen backbone is cached whole, as features).

    >>> from tfx_transfer.backbones.keras_apps import build_keras_app
    >>> from tfx_transfer.freezing import apply_freeze_policy
    >>> from tfx_transfer.recipe import FreezeConfig
    >>> backbone = build_keras_app("MobileNetV2", weights=None, image_size=(32, 32))
    >>> freeze = apply_freeze_policy(backbone, FreezeConfig(last_blocks=2))
    >>> split = split_before_trainable(backbone, freeze.trainable_layers)
    >>> split.frozen_blocks[-1], {name: t.shape for name, t in split.prefix.output.items()}
    ('block_15', {'block_15_add': (None, 1, 1, 160)})
    """
    trainable = set(trainable_layers)
    first = next((i for i, b in enumerate(backbone.blocks) if trainable.intersection(b.layers)), None)
    return split_after_blocks(backbone, len(backbone.blocks[:first])) if first else None


def split_after_blocks(backbone: Backbone, count: int) -> FrozenPrefix | None:
    """The backbone cut after its first `count` blocks, or None when no tensor crosses that cut.

    >>> from tfx_transfer.backbones.keras_apps import build_keras_app
    >>> backbone = build_keras_app("MobileNetV2", weights=None, image_size=(32, 32))
    >>> split_after_blocks(backbone, 2).frozen_blocks
    ('stem', 'expanded_conv')
    """
    frozen_layers = {name for block in backbone.blocks[:count] for name in block.layers}
    model = backbone.model
    model_nodes = {id(node) for nodes in model._nodes_by_depth.values() for node in nodes}
    boundary, seen = [], set()
    for layer in model.layers:
        if layer.name in frozen_layers:
            continue
        for node in layer._inbound_nodes:
            if id(node) not in model_nodes:  # a call of a shared layer outside this model
                continue
            for tensor in node.input_tensors:
                producer = tensor._keras_history.operation
                if producer.name in frozen_layers and id(tensor) not in seen:
                    seen.add(id(tensor))
                    boundary.append(tensor)
    if not boundary:
        return None
    names = _unique_names([t._keras_history.operation.name for t in boundary])
    return FrozenPrefix(
        prefix=keras.Model(model.inputs, dict(zip(names, boundary)), name=f"{model.name}_frozen_prefix"),
        suffix=replay_after(model, boundary, frozen_layers),
        frozen_blocks=tuple(b.name for b in backbone.blocks[:count]),
        names=names,
    )


def _unique_names(names) -> tuple[str, ...]:
    """`names` with a repeated one (several outputs of one layer) numbered from its second use.

    >>> _unique_names(["block_1", "padding_mask", "block_1"])
    ('block_1', 'padding_mask', 'block_1_1')
    """
    unique = []
    for name in names:
        candidate, n = name, 0
        while candidate in unique:
            n += 1
            candidate = f"{name}_{n}"
        unique.append(candidate)
    return tuple(unique)
