"""Small serializable layers shared by backbone builders."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfx_transfer")
class PixelNormalization(keras.layers.Layer):
    """Maps 0..255 RGB pixels to what a pretrained network was trained on.

    Computes `(x[..., order] - mean) / std` per channel, where `order` is RGB or,
    with `reverse_channels=True`, BGR (Caffe-style weights).

    >>> layer = PixelNormalization(mean=(127.5,) * 3, std=(127.5,) * 3)
    >>> keras.ops.convert_to_numpy(layer(keras.ops.full((1, 2, 2, 3), 255.0)))[0, 0, 0].tolist()
    [1.0, 1.0, 1.0]
    """

    def __init__(self, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), reverse_channels=False, **kwargs):
        super().__init__(**kwargs)
        if len(mean) != 3 or len(std) != 3:
            raise ValueError(f"mean and std need 3 values (RGB), received mean={mean}, std={std}.")
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.reverse_channels = bool(reverse_channels)

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        if self.reverse_channels:
            x = ops.flip(x, axis=-1)
        mean = ops.convert_to_tensor(self.mean, dtype=self.compute_dtype)
        std = ops.convert_to_tensor(self.std, dtype=self.compute_dtype)
        return (x - mean) / std

    def get_config(self):
        return {
            **super().get_config(),
            "mean": list(self.mean),
            "std": list(self.std),
            "reverse_channels": self.reverse_channels,
        }
