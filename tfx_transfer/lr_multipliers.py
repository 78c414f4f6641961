"""Learning-rate multipliers per backbone block: layer-wise decay and explicit block patterns.

timm's `--layer-decay` and fastai's `slice(lo, hi)` in terms of the toolkit's block map: with
`layer_decay=d`, the head trains at the full rate, the top backbone block with weights at `d`,
the one below it at `d**2`, and so on down to the stem. `patterns` (block-name regex -> multiplier,
matched in full against block names) then set the blocks they match, overriding the decay.

The result maps variable paths to multipliers; `LayerwiseAdam` and its siblings
(`tfx_transfer.layerwise_optimizers`) apply them.

Example:

```python
multipliers = block_lr_multipliers(backbone, layer_decay=0.8, patterns={"stem": 0.05})
optimizer = LayerwiseAdam(1e-4, lr_multipliers=multipliers)
```
"""

import re

from tfx_transfer.backbones.base import Backbone


def block_multipliers(backbone: Backbone, layer_decay: float | None = None, patterns=None) -> dict[str, float]:
    """The learning-rate multiplier of each backbone block with weights, by block name.

    Blocks without weights (pooling, activations) do not count as a decay step. Blocks
    neither decayed nor matched by a pattern are left out (they train at the full rate).

    >>> import sys; sys.path.insert(0, "tests")
    >>> from conftest import tiny_resnet
    >>> block_multipliers(tiny_resnet(), layer_decay=0.5)
    {'stem': 0.03125, 'conv1_block1': 0.0625, 'conv2_block1': 0.125, 'conv3_block1': 0.25, 'top': 0.5}
    >>> block_multipliers(tiny_resnet(), patterns={"conv[12]_block1": 0.1})
    {'conv1_block1': 0.1, 'conv2_block1': 0.1}
    """
    check_multiplier_settings(layer_decay, patterns or {}, "block_multipliers")
    layers = {layer.name: layer for layer in backbone.model.layers}
    weighted = [b.name for b in backbone.blocks if any(layers[n].weights for n in b.layers)]
    multipliers = {}
    if layer_decay is not None:
        depth = len(weighted)
        multipliers = {name: layer_decay ** (depth - i) for i, name in enumerate(weighted)}
    for pattern, value in (patterns or {}).items():
        matched = [name for name in weighted if re.fullmatch(pattern, name)]
        if not matched:
            raise ValueError(
                f"lr_multipliers: pattern {pattern!r} matches no block with weights of backbone "
                f"{backbone.name!r}; its blocks are {weighted}. Patterns match whole block names "
                "(`tfx-transfer inspect` lists them)."
            )
        for name in matched:
            claimed = [p for p in patterns if p != pattern and re.fullmatch(p, name)]
            if claimed:
                raise ValueError(
                    f"lr_multipliers: block {name!r} is matched by both {pattern!r} and {claimed[0]!r}; "
                    "make the patterns disjoint."
                )
            multipliers[name] = float(value)
    return multipliers


def variable_multipliers(backbone: Backbone, block_values: dict[str, float]) -> dict[str, float]:
    """Expands `block_multipliers` output to `{variable path: multiplier}` for the optimizer.

    Only trainable variables are listed: apply the phase's freeze policy first.
    """
    layers = {layer.name: layer for layer in backbone.model.layers}
    return {
        variable.path: value
        for block in backbone.blocks
        if block.name in block_values
        for value in (block_values[block.name],)
        for name in block.layers
        for variable in layers[name].trainable_weights
    }


def block_lr_multipliers(backbone: Backbone, layer_decay: float | None = None, patterns=None) -> dict[str, float]:
    """`{variable path: multiplier}` for `layer_decay` and block `patterns` (see `block_multipliers`)."""
    return variable_multipliers(backbone, block_multipliers(backbone, layer_decay, patterns))


def describe_multipliers(block_values: dict[str, float]) -> str:
    """A one-line summary for the console, bottom block first; the head always trains at x1.

    >>> describe_multipliers({"stem": 0.64, "block_1": 0.8})
    'stem x0.64, block_1 x0.8, head x1'
    """
    return ", ".join([f"{name} x{value:.3g}" for name, value in block_values.items()] + ["head x1"])


def check_multiplier_settings(layer_decay, patterns, where: str) -> None:
    """Raises ValueError naming `where` when a decay or pattern setting cannot work."""
    if layer_decay is not None and not 0.0 < layer_decay <= 1.0:
        raise ValueError(f"{where}: layer_decay must be in (0, 1], received {layer_decay}.")
    for pattern, value in patterns.items():
        try:
            re.compile(pattern)
        except re.error as e:
            raise ValueError(f"{where}: lr_multipliers key {pattern!r} is not a valid regular expression ({e}).") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value <= 10.0:
            raise ValueError(
                f"{where}: lr_multipliers[{pattern!r}] must be a number in (0, 10], received {value!r}. "
                "To keep a block from training, freeze it with the phase's `freeze` policy."
            )
