"""EfficientNet-Lite0..4 as a plain Keras functional model, and loading of its PyTorch ImageNet weights.

EfficientNet-Lite is EfficientNet made for mobile accelerators: no
squeeze-and-excitation, ReLU6 instead of swish, and a stem (32 filters) and head
(1280 filters) that stay fixed while the network is scaled. It is the default
backbone of TFLite Model Maker and is not part of `keras.applications`.

Layer names follow `keras.applications.EfficientNet*`: `stem_*`, then
`block{stage}{letter}_*` per MBConv block (`block1a_dwconv`, `block6d_add`, ...),
then `top_*`, so each block is the set of layers sharing one name prefix.
"""

import math
import string

import keras
from tfx_transfer.backbones.layers import PixelNormalization

# name -> (width multiplier, depth multiplier, default image size, top dropout)
VARIANTS = {
    "efficientnet_lite0": (1.0, 1.0, 224, 0.2),
    "efficientnet_lite1": (1.0, 1.1, 240, 0.2),
    "efficientnet_lite2": (1.1, 1.2, 260, 0.3),
    "efficientnet_lite3": (1.2, 1.4, 280, 0.3),
    "efficientnet_lite4": (1.4, 1.8, 300, 0.3),
}

# One row per stage: (kernel size, repeats, stride, expand ratio, input filters, output filters).
_STAGES = (
    (3, 1, 1, 1, 32, 16),
    (3, 2, 2, 6, 16, 24),
    (5, 2, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (5, 3, 1, 6, 80, 112),
    (5, 4, 2, 6, 112, 192),
    (3, 1, 1, 6, 192, 320),
)
STEM_FILTERS = 32
TOP_FILTERS = 1280
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99
# TF's EfficientNet-Lite preprocessing: (x - 127) / 128 on 0..255 RGB.
PIXEL_MEAN = (127.0, 127.0, 127.0)
PIXEL_STD = (128.0, 128.0, 128.0)


def _round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """Scales a filter count by `width`, rounded to a multiple of `divisor` as in the TF reference."""
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def _stage_repeats(stage: int, repeats: int, depth: float) -> int:
    """Lite keeps the first and last stage at one block; the others scale with `depth`."""
    if stage in (0, len(_STAGES) - 1):
        return repeats
    return int(math.ceil(depth * repeats))


def block_names(variant: str) -> list[str]:
    """The MBConv block prefixes of `variant` in order, e.g. `["block1a", "block2a", "block2b", ...]`."""
    _, depth, _, _ = _variant(variant)
    return [
        f"block{stage + 1}{string.ascii_lowercase[i]}"
        for stage, (_, repeats, *_) in enumerate(_STAGES)
        for i in range(_stage_repeats(stage, repeats, depth))
    ]


def _variant(variant: str):
    if variant not in VARIANTS:
        raise ValueError(f"Unknown EfficientNet-Lite variant {variant!r}; choose one of {sorted(VARIANTS)}.")
    return VARIANTS[variant]


def build_efficientnet_lite(
    variant: str = "efficientnet_lite0",
    image_size: tuple[int, int] | None = None,
    include_top: bool = False,
    drop_connect_rate: float = 0.2,
) -> keras.Model:
    """Builds EfficientNet-Lite with random weights.

    The model takes float32 `[B, H, W, 3]` RGB pixels in 0..255 (input name
    `image`) and normalises them itself. Without the top it returns the
    `[B, h, w, 1280]` feature map of `top_activation`; with it, the 1000 ImageNet
    logits (layer `logits`, no softmax).
    """
    width, depth, default_size, top_dropout = _variant(variant)
    height, width_px = image_size or (default_size, default_size)
    inputs = keras.Input((height, width_px, 3), name="image")
    x = PixelNormalization(mean=PIXEL_MEAN, std=PIXEL_STD, name="stem_normalization")(inputs)
    x = _conv_bn_act(x, STEM_FILTERS, 3, 2, "stem")

    names = block_names(variant)
    index = 0
    for stage, (kernel, repeats, stride, expand, filters_in, filters_out) in enumerate(_STAGES):
        filters_in = STEM_FILTERS if stage == 0 else _round_filters(filters_in, width)
        filters_out = _round_filters(filters_out, width)
        for i in range(_stage_repeats(stage, repeats, depth)):
            x = _mbconv(
                x,
                filters_in=filters_in if i == 0 else filters_out,
                filters_out=filters_out,
                kernel=kernel,
                stride=stride if i == 0 else 1,
                expand=expand,
                drop_rate=drop_connect_rate * index / len(names),
                name=names[index],
            )
            index += 1

    x = _conv_bn_act(x, TOP_FILTERS, 1, 1, "top")
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dropout(top_dropout, name="top_dropout")(x)
        x = keras.layers.Dense(1000, name="logits")(x)
    return keras.Model(inputs, x, name=variant)


def _conv_bn_act(x, filters, kernel, stride, name):
    x = keras.layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return keras.layers.Activation("relu6", name=f"{name}_activation")(x)


def _mbconv(x, filters_in, filters_out, kernel, stride, expand, drop_rate, name):
    """Inverted residual block: 1x1 expand, depthwise conv, 1x1 linear projection, skip when shapes allow."""
    inputs = x
    if expand != 1:
        x = _conv_bn_act(x, filters_in * expand, 1, 1, f"{name}_expand")
    x = keras.layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_dwconv")(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    x = keras.layers.Activation("relu6", name=f"{name}_activation")(x)
    x = keras.layers.Conv2D(filters_out, 1, padding="same", use_bias=False, name=f"{name}_project_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_project_bn")(x)
    if stride == 1 and filters_in == filters_out:
        if drop_rate > 0:
            # Stochastic depth: drop the whole residual branch per example.
            x = keras.layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=f"{name}_drop")(x)
        x = keras.layers.Add(name=f"{name}_add")([x, inputs])
    return x


def torch_weight_map(variant: str) -> dict[str, list[str]]:
    """Keras layer name -> the PyTorch state-dict keys of its weights, in Keras weight order.

    Covers every weighted layer of `build_efficientnet_lite(variant, include_top=True)`
    and the state dicts of the `efficientnet_lite_pytorch` package
    (`_conv_stem`, `_blocks.N._expand_conv`, ..., `_fc`).
    """
    bn = ("weight", "bias", "running_mean", "running_var")
    mapping = {"stem_conv": ["_conv_stem.weight"], "stem_bn": [f"_bn0.{k}" for k in bn]}
    for index, block in enumerate(block_names(variant)):
        prefix = f"_blocks.{index}."
        if index > 0:  # block1a has expand ratio 1: no expand conv
            mapping[f"{block}_expand_conv"] = [prefix + "_expand_conv.weight"]
            mapping[f"{block}_expand_bn"] = [f"{prefix}_bn0.{k}" for k in bn]
        mapping[f"{block}_dwconv"] = [prefix + "_depthwise_conv.weight"]
        mapping[f"{block}_bn"] = [f"{prefix}_bn1.{k}" for k in bn]
        mapping[f"{block}_project_conv"] = [prefix + "_project_conv.weight"]
        mapping[f"{block}_project_bn"] = [f"{prefix}_bn2.{k}" for k in bn]
    mapping["top_conv"] = ["_conv_head.weight"]
    mapping["top_bn"] = [f"_bn1.{k}" for k in bn]
    mapping["logits"] = ["_fc.weight", "_fc.bias"]
    return mapping
