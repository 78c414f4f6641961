"""MobileNetV2 built to match torchvision's, so that torchvision's ImageNet weights give the right outputs in Keras.

`keras.applications.MobileNetV2` has the same topology and layer names but
differs in two numerical details that make torchvision's weights give wrong
outputs there: PyTorch pads every 3x3 convolution by one pixel on each side
(Keras' `correct_pad` pads stride-2 convolutions asymmetrically), and PyTorch's
BatchNorm epsilon is 1e-5 (Keras': 1e-3). This builder uses
`ZeroPadding2D(1)` + `valid` before each stride-2 convolution and epsilon 1e-5,
and normalises pixels with the ImageNet mean and standard deviation as
torchvision does.

Layer names are those of `keras.applications.MobileNetV2` (`Conv1`,
`expanded_conv_*`, `block_1_expand` ... `block_16_project_BN`, `Conv_1`,
`out_relu`), so name-based freeze rules work the same on both.
"""

import keras

from tfx_transfer.backbones.layers import PixelNormalization

# One row per stage: (expand ratio, output channels, repeats, first stride), as in torchvision.
_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
STEM_FILTERS = 32
TOP_FILTERS = 1280
DEFAULT_IMAGE_SIZE = 224
BN_EPSILON = 1e-5  # PyTorch's default
BN_MOMENTUM = 0.9  # PyTorch's default momentum 0.1, in Keras' convention
# torchvision: x / 255, then (x - mean) / std with the ImageNet statistics.
PIXEL_MEAN = tuple(255.0 * m for m in (0.485, 0.456, 0.406))
PIXEL_STD = tuple(255.0 * s for s in (0.229, 0.224, 0.225))


def block_names() -> list[str]:
    """The inverted-residual block prefixes in order: `expanded_conv`, `block_1`, ..., `block_16`."""
    count = sum(repeats for _, _, repeats, _ in _STAGES)
    return ["expanded_conv"] + [f"block_{i}" for i in range(1, count)]


def build_mobilenet_v2_torch(image_size: tuple[int, int] | None = None, include_top: bool = False) -> keras.Model:
    """Builds torchvision-compatible MobileNetV2 (width 1.0) with random weights.

    Takes float32 `[B, H, W, 3]` RGB pixels in 0..255 (input name `image`).
    Without the top it returns the `[B, h, w, 1280]` feature map of `out_relu`;
    with it, the 1000 ImageNet logits (layer `logits`, no softmax).
    """
    height, width = image_size or (DEFAULT_IMAGE_SIZE, DEFAULT_IMAGE_SIZE)
    inputs = keras.Input((height, width, 3), name="image")
    x = PixelNormalization(mean=PIXEL_MEAN, std=PIXEL_STD, name="normalization")(inputs)
    x = keras.layers.ZeroPadding2D(1, name="Conv1_pad")(x)
    x = keras.layers.Conv2D(STEM_FILTERS, 3, strides=2, padding="valid", use_bias=False, name="Conv1")(x)
    x = _bn(x, "bn_Conv1")
    x = keras.layers.ReLU(6.0, name="Conv1_relu")(x)

    names = iter(block_names())
    channels = STEM_FILTERS
    for expand, filters, repeats, stride in _STAGES:
        for i in range(repeats):
            x = _inverted_residual(x, channels, filters, stride if i == 0 else 1, expand, next(names))
            channels = filters

    x = keras.layers.Conv2D(TOP_FILTERS, 1, use_bias=False, name="Conv_1")(x)
    x = _bn(x, "Conv_1_bn")
    x = keras.layers.ReLU(6.0, name="out_relu")(x)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dropout(0.2, name="top_dropout")(x)
        x = keras.layers.Dense(1000, name="logits")(x)
    return keras.Model(inputs, x, name="mobilenet_v2_torchvision")


def _bn(x, name):
    return keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name)(x)


def _inverted_residual(x, channels_in, channels_out, stride, expand, name):
    inputs = x
    if expand != 1:
        x = keras.layers.Conv2D(channels_in * expand, 1, use_bias=False, name=f"{name}_expand")(x)
        x = _bn(x, f"{name}_expand_BN")
        x = keras.layers.ReLU(6.0, name=f"{name}_expand_relu")(x)
    if stride == 2:
        x = keras.layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    x = keras.layers.DepthwiseConv2D(
        3, strides=stride, padding="valid" if stride == 2 else "same", use_bias=False, name=f"{name}_depthwise"
    )(x)
    x = _bn(x, f"{name}_depthwise_BN")
    x = keras.layers.ReLU(6.0, name=f"{name}_depthwise_relu")(x)
    x = keras.layers.Conv2D(channels_out, 1, use_bias=False, name=f"{name}_project")(x)
    x = _bn(x, f"{name}_project_BN")
    if stride == 1 and channels_in == channels_out:
        x = keras.layers.Add(name=f"{name}_add")([inputs, x])
    return x


def torch_weight_map() -> dict[str, list[str]]:
    """Keras layer name -> torchvision `mobilenet_v2` state-dict keys of its weights, in Keras weight order."""
    bn = ("weight", "bias", "running_mean", "running_var")
    mapping = {"Conv1": ["features.0.0.weight"], "bn_Conv1": [f"features.0.1.{k}" for k in bn]}
    for index, block in enumerate(block_names()):
        prefix = f"features.{index + 1}.conv."
        if index == 0:  # expand ratio 1: depthwise, project, BN
            parts = ((f"{block}_depthwise", "0.0"), (f"{block}_depthwise_BN", "0.1"))
            parts += ((f"{block}_project", "1"), (f"{block}_project_BN", "2"))
        else:
            parts = ((f"{block}_expand", "0.0"), (f"{block}_expand_BN", "0.1"))
            parts += ((f"{block}_depthwise", "1.0"), (f"{block}_depthwise_BN", "1.1"))
            parts += ((f"{block}_project", "2"), (f"{block}_project_BN", "3"))
        for layer, module in parts:
            is_bn = layer.endswith("_BN")
            mapping[layer] = [f"{prefix}{module}.{k}" for k in bn] if is_bn else [f"{prefix}{module}.weight"]
    last = len(block_names()) + 1
    mapping["Conv_1"] = [f"features.{last}.0.weight"]
    mapping["Conv_1_bn"] = [f"features.{last}.1.{k}" for k in bn]
    mapping["logits"] = ["classifier.1.weight", "classifier.1.bias"]
    return mapping
