"""Layers shared by audio encoders: pooling per-frame embeddings into one vector per clip."""

import keras
from keras import ops

POOLINGS = ("mean", "max", "mean+max")


def check_pooling(pooling: str | None) -> str:
    """Returns the frame pooling mode, `mean` when unset; raises on an unknown one."""
    pooling = pooling or "mean"
    if pooling not in POOLINGS:
        raise ValueError(
            f"backbone.pooling for audio encoders must be one of {', '.join(POOLINGS)}, "
            f"received {pooling!r}."
        )
    return pooling


@keras.saving.register_keras_serializable(package="tfx_transfer")
class FramePooling(keras.layers.Layer):
    """Pools per-frame embeddings `[B, frames, C]` into one vector per clip.

    `mean` and `max` return `[B, C]`; `mean+max` concatenates both, `[B, 2C]`.

    >>> x = keras.ops.convert_to_tensor([[[1.0, 0.0], [3.0, 2.0]]])
    >>> FramePooling("mean+max")(x).numpy().tolist()
    [[2.0, 1.0, 3.0, 2.0]]
    """

    def __init__(self, mode: str = "mean", **kwargs):
        super().__init__(**kwargs)
        self.mode = check_pooling(mode)

    def call(self, frames):
        if self.mode == "mean":
            return ops.mean(frames, axis=1)
        if self.mode == "max":
            return ops.max(frames, axis=1)
        return ops.concatenate([ops.mean(frames, axis=1), ops.max(frames, axis=1)], axis=-1)

    def compute_output_shape(self, input_shape):
        channels = input_shape[-1]
        if self.mode == "mean+max" and channels is not None:
            channels *= 2
        return (input_shape[0], channels)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
