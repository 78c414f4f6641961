"""Finds the ordered, named blocks of a functional model without ever splitting a skip connection."""

import collections
import re

import keras

from tfx_transfer.backbones.base import Block

# Block names used by keras.applications families, most specific first.
DEFAULT_BLOCK_PATTERNS = (
    r"(stage_\d+_block_\d+)",  # ConvNeXt
    r"(conv\d+_block\d+)",  # ResNet, ResNetV2, DenseNet
    r"(block_\d+)",  # MobileNetV2
    r"(block\d+[a-z])",  # EfficientNet, EfficientNetV2
    r"(block\d+)",  # VGG, Xception
    r"(expanded_conv(?:_\d+)?)",  # MobileNetV2 block 0, MobileNetV3
    r"^(mixed\d+)$",  # InceptionV3
)


def cut_points(model: keras.Model) -> list[bool]:
    """For each layer in topological order, whether its output is the only tensor alive after it.

    Cutting the model after such a layer never separates a layer from a skip
    connection that bypasses it.
    """
    layers = model.layers
    position = {id(layer): i for i, layer in enumerate(layers)}
    last_use = list(range(len(layers)))
    for i, layer in enumerate(layers):
        for node in layer._inbound_nodes:
            for tensor in node.input_tensors:
                producer = tensor._keras_history.operation
                j = position.get(id(producer))
                if j is not None:
                    last_use[j] = max(last_use[j], i)
    cuts, live_until = [], -1
    for i in range(len(layers)):
        cuts.append(live_until <= i)
        live_until = max(live_until, last_use[i])
    return cuts


def find_blocks(model: keras.Model, patterns=DEFAULT_BLOCK_PATTERNS) -> list[Block]:
    """Groups the top-level layers of `model` into blocks named after their layers.

    Segments between cut points (see `cut_points`) are the smallest units that
    can be frozen safely; consecutive segments whose layers share a name key
    (e.g. `conv5_block3`) form one block. Segments with no key go to `stem`
    before the first named block, to `top` after the last, and otherwise join
    the block before them.

    >>> import keras
    >>> m = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(32, 32, 3))
    >>> [b.name for b in find_blocks(m)][:3]
    ['stem', 'expanded_conv', 'block_1']
    """
    compiled = [re.compile(p) for p in patterns]

    def key_of(name):
        for pattern in compiled:
            match = pattern.search(name)
            if match:
                return match.group(1)
        return None

    layers = model.layers
    cuts = cut_points(model)
    segments, current = [], []
    for layer, is_cut in zip(layers, cuts):
        current.append(layer.name)
        if is_cut:
            segments.append(current)
            current = []
    if current:
        segments.append(current)

    keyed = []
    for names in segments:
        keys = [k for k in (key_of(n) for n in names) if k]
        keyed.append((collections.Counter(keys).most_common(1)[0][0] if keys else None, names))

    named_positions = [i for i, (key, _) in enumerate(keyed) if key]
    blocks: list[list] = []
    for i, (key, names) in enumerate(keyed):
        if not named_positions or i < named_positions[0]:
            key = "stem"
        elif i > named_positions[-1]:
            key = "top"
        elif key is None:
            key = blocks[-1][0]
        if blocks and blocks[-1][0] == key:
            blocks[-1][1].extend(names)
        else:
            blocks.append([key, list(names)])
    seen = collections.Counter()
    result = []
    for key, names in blocks:
        seen[key] += 1
        name = key if seen[key] == 1 else f"{key}_{seen[key]}"
        result.append(Block(name=name, layers=tuple(names)))
    return result
