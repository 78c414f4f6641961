"""The `Backbone` every source returns: a feature model plus its ordered, named blocks."""

import dataclasses
from typing import Any

import keras

MODALITIES = ("image", "text", "audio")


@dataclasses.dataclass(frozen=True)
class Block:
    """A unit of the backbone that is frozen or unfrozen as a whole.

    `layers` names top-level layers of `Backbone.model`, in order. A residual
    block lists every layer between its input and its add, so "unfreeze the
    last N blocks" never cuts a skip connection in half.
    """

    name: str
    layers: tuple[str, ...]


@dataclasses.dataclass
class Backbone:
    """A pretrained feature extractor and what the toolkit needs to know about it.

    Attributes:
        name: the spec it was resolved from, e.g. `"MobileNetV2"`.
        modality: `"image"`, `"text"` or `"audio"`.
        model: a `keras.Model` from the modality's model inputs to features.
            Image backbones take float32 `[B, H, W, 3]` pixels in 0..255 and
            contain their own normalisation; they return a feature map
            `[B, h, w, C]`. Text and audio backbones return pooled vectors
            `[B, C]`.
        blocks: every top-level layer of `model` in exactly one block, in order.
        input_config: what the preprocessor must produce, e.g.
            `{"image_size": (224, 224)}`, `{"sequence_length": 128}`,
            `{"sample_rate": 16000}`.
        preprocessor: for text, the tokenizer-bearing object the text pipeline
            and the export use; `None` for other modalities.
    """

    name: str
    modality: str
    model: keras.Model
    blocks: list[Block]
    input_config: dict[str, Any] = dataclasses.field(default_factory=dict)
    preprocessor: Any = None

    def __post_init__(self):
        if self.modality not in MODALITIES:
            raise ValueError(
                f"Backbone modality must be one of {MODALITIES}, received {self.modality!r}."
            )
        names = [layer.name for layer in self.model.layers]
        in_blocks = [n for block in self.blocks for n in block.layers]
        missing = sorted(set(names) - set(in_blocks))
        unknown = sorted(set(in_blocks) - set(names))
        if missing or unknown or len(in_blocks) != len(set(in_blocks)):
            raise ValueError(
                f"Blocks of backbone {self.name!r} must cover each layer of its model exactly "
                f"once. Layers in no block: {missing[:5]}; unknown names: {unknown[:5]}."
            )

    def block_of(self, layer_name: str) -> Block:
        for block in self.blocks:
            if layer_name in block.layers:
                return block
        raise KeyError(f"Layer {layer_name!r} is not in backbone {self.name!r}.")
