"""TF-Hub BERT-convention text encoders: an encoder SavedModel plus its preprocessing SavedModel.

The encoder takes `{"input_word_ids", "input_mask", "input_type_ids"}` (int32
`[B, T]`) and returns a dict with `sequence_output` `[B, T, H]` (and
`pooled_output`); the preprocessing model has `tokenize(strings)` (ragged word
pieces) and `bert_pack_inputs([tokens], seq_length)` (or is simply callable on
strings). Both load from a tfhub.dev / Kaggle handle or a local directory.
"""

import keras
import tensorflow as tf

from tfx_transfer.backbones.base import Backbone, Block
from tfx_transfer.backbones.hub import SavedModelLayer, load_module
from tfx_transfer.backbones.kerashub import POOLING_MODES, SequencePooling

INPUT_NAMES = ("input_word_ids", "input_mask", "input_type_ids")


class HubBertPreprocessor(tf.Module):
    """Strings `[B]` -> the encoder's int32 inputs `[B, sequence_length]`, with a TF-Hub preprocessing model.

    A `tf.Module`, so an `ExportArchive` that tracks it exports the module's
    vocabulary tables with the serving function.
    """

    def __init__(self, handle, sequence_length):
        super().__init__(name="hub_bert_preprocessor")
        self.handle = str(handle)
        self.sequence_length = int(sequence_length)
        self.module = load_module(self.handle)
        self._packs = hasattr(self.module, "tokenize") and hasattr(self.module, "bert_pack_inputs")
        if not self._packs and not callable(self.module):
            raise ValueError(
                f"TF-Hub preprocessing model {self.handle!r} has neither tokenize/bert_pack_inputs nor "
                "__call__; it does not follow the TF-Hub BERT preprocessing convention."
            )

    def __call__(self, text):
        if self._packs:
            tokens = self.module.tokenize(text)
            features = self.module.bert_pack_inputs([tokens], seq_length=self.sequence_length)
        else:
            features = self.module(text)
        missing = [name for name in INPUT_NAMES if name not in features]
        if missing:
            raise ValueError(f"TF-Hub preprocessing model {self.handle!r} returns {sorted(features)}, missing {missing}.")
        length = features["input_word_ids"].shape[-1]
        if length is not None and length != self.sequence_length:
            raise ValueError(
                f"TF-Hub preprocessing model {self.handle!r} has no bert_pack_inputs and always returns "
                f"{length} tokens; set backbone.sequence_length: {length}."
            )
        return {name: features[name] for name in INPUT_NAMES}


def build_hub_text_backbone(encoder, preprocessor, sequence_length=128, pooling="mean", name=None) -> Backbone:
    """A TF-Hub BERT-style encoder as a text `Backbone` with one block (the encoder is one layer).

    `pooling` (`cls`, `mean`, `max`) runs over the encoder's `sequence_output`
    with its `input_mask`. Freezing is all or nothing: `last_blocks: 1` (or
    `trainable: all`) fine-tunes the whole encoder. TF1-format modules can only
    be used frozen.
    """
    if not preprocessor:
        raise ValueError(
            "backbone.preprocessor: a TF-Hub text encoder needs the handle or path of its matching "
            "preprocessing model (e.g. the bert_en_uncased_preprocess that goes with a BERT encoder)."
        )
    pooling = pooling or "mean"
    if pooling not in POOLING_MODES:
        raise ValueError(f"backbone.pooling must be one of {POOLING_MODES}, received {pooling!r}.")
    tokenizer = HubBertPreprocessor(preprocessor, sequence_length)
    inputs = {n: keras.Input((sequence_length,), dtype="int32", name=n) for n in INPUT_NAMES}
    encoder_layer = SavedModelLayer(encoder, output_key="sequence_output", name="encoder")
    sequence = encoder_layer(inputs)
    pooled = SequencePooling(pooling, name=f"{pooling}_pooling")([sequence, inputs["input_mask"]])
    model = keras.Model(inputs, pooled, name="hub_text_encoder")
    return Backbone(
        name=name or str(encoder),
        modality="text",
        model=model,
        blocks=[Block("encoder", tuple(layer.name for layer in model.layers))],
        input_config={"sequence_length": int(sequence_length), "inputs": list(INPUT_NAMES)},
        preprocessor=tokenizer,
    )
