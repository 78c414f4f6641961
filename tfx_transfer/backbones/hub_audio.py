"""TF-Hub audio encoders in the YAMNet convention as batched, fine-tunable Keras 3 backbones.

A YAMNet-style module takes ONE 1-D float32 waveform at 16 kHz and returns
per-frame outputs (YAMNet: `(scores, embeddings, log_mel_spectrogram)`).
`HubAudioEncoder` maps the module over the clips of a batch with `tf.map_fn`
and returns the chosen per-frame output `[B, frames, C]`; `FramePooling` then
pools the frames into one vector per clip.
"""

import keras
import tensorflow as tf

from tfx_transfer.backbones.audio_layers import FramePooling, check_pooling
from tfx_transfer.backbones.base import Backbone, Block
from tfx_transfer.backbones.hub import SavedModelLayer

SAMPLE_RATE = 16000


@keras.saving.register_keras_serializable(package="tfx_transfer")
class HubAudioEncoder(SavedModelLayer):
    """Per-frame embeddings `[B, frames, C]` of a YAMNet-convention module, for waveforms `[B, samples]`.

    Args:
        handle: local directory, `gs://` path or TF-Hub handle of the module.
        embeddings_output: which output holds the frame embeddings: an index into a
            tuple/list output (YAMNet: `1`), a key of a dict output, or `None`
            for a module returning one tensor.
        signature: `None` to call the module itself (TF2 Hub convention), else
            a signature taking the waveform as its single input.
        trainable: whether the module's trainable variables train.

    Variables, freezing, `training` and regularization losses work as in
    `SavedModelLayer`. The module runs once per clip (`tf.map_fn`), so clips of
    one batch must have the same length, which the audio pipeline guarantees.
    """

    def __init__(self, handle, embeddings_output=1, signature=None, trainable=False, **kwargs):
        self.embeddings_output = embeddings_output
        super().__init__(handle, signature=signature, output_key=None, trainable=trainable, **kwargs)
        probe = self._frames(tf.zeros([SAMPLE_RATE], tf.float32), training=False)
        if probe.shape.rank != 2:
            raise ValueError(
                f"Audio module {self.handle!r}, output {self.embeddings_output!r}, returns shape "
                f"{probe.shape} for a 1 s waveform; a YAMNet-convention encoder returns per-frame "
                "embeddings [frames, channels]. Choose them with `embeddings_output` (an index or key; "
                "in a recipe: backbone.output)."
            )
        self.embedding_dim = int(probe.shape[-1])

    def _frames(self, waveform, training):
        """The module on one 1-D waveform -> its `[frames, C]` embedding output."""
        return self._select(self.call_module(waveform, training))

    def _select(self, outputs):
        """The output `embeddings_output` names, or an error listing the outputs there are."""
        if self.embeddings_output is None:
            if isinstance(outputs, (dict, list, tuple)):
                raise ValueError(
                    f"Audio module {self.handle!r} returns several outputs; set `embeddings_output` to the "
                    "index or key of its per-frame embeddings (YAMNet: 1)."
                )
            return outputs
        choice = self.embeddings_output
        if isinstance(outputs, dict) and choice in outputs:
            return outputs[choice]
        if (
            isinstance(outputs, (list, tuple))
            and isinstance(choice, int)
            and -len(outputs) <= choice < len(outputs)
        ):
            return outputs[choice]
        if isinstance(outputs, dict):
            found = f"the outputs {sorted(outputs)}"
        elif isinstance(outputs, (list, tuple)):
            found = f"{len(outputs)} outputs"
        else:
            found = "one tensor (use embeddings_output=None)"
        raise ValueError(
            f"Audio module {self.handle!r} returns {found}; embeddings_output={choice!r} (in a recipe: "
            "backbone.output) is not one of them."
        )

    def call(self, inputs, training=None):
        training = bool(training) and self.trainable
        frames = tf.map_fn(
            lambda clip: self._frames(clip, training),
            tf.cast(inputs, tf.float32),
            fn_output_signature=tf.TensorSpec([None, self.embedding_dim], tf.float32),
        )
        if self.trainable:  # outside the map: a loss made inside the loop body could not be used
            for regularization_loss in getattr(self._module, "regularization_losses", []):
                self.add_loss(regularization_loss())
        return frames

    def compute_output_shape(self, input_shape):
        return (input_shape[0], None, self.embedding_dim)

    def get_config(self):
        config = super().get_config()
        config.pop("output_key", None)
        return {**config, "embeddings_output": self.embeddings_output}


def build_hub_audio_backbone(handle, embeddings_output=1, pooling="mean", signature=None, name=None):
    """A YAMNet-convention TF-Hub module as an audio `Backbone`: 16 kHz waveforms `[B, samples]` -> `[B, C]`.

    One block (the module is one layer): `last_blocks: 1` or `trainable: all`
    fine-tunes the whole module. `pooling` is `mean`, `max` or `mean+max`
    (`[B, 2C]`) over frames.
    """
    pooling = check_pooling(pooling)
    waveform = keras.Input((None,), dtype="float32", name="waveform")
    encoder = HubAudioEncoder(
        handle, embeddings_output=embeddings_output, signature=signature, name="hub_encoder"
    )
    frames = encoder(waveform)
    pooled = FramePooling(pooling, name="frame_pooling")(frames)
    model = keras.Model(waveform, pooled, name="hub_audio_encoder")
    return Backbone(
        name=name or str(handle),
        modality="audio",
        model=model,
        blocks=[Block("encoder", tuple(layer.name for layer in model.layers))],
        input_config={"sample_rate": SAMPLE_RATE},
    )
