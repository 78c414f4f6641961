"""Tiny image backbones and image folders made inside tests (random weights, no downloads)."""

import os

import keras
import numpy as np
import tensorflow as tf

from tfx_transfer.backbones.base import Backbone
from tfx_transfer.backbones.blocks import find_blocks


def tiny_resnet(image_size=(16, 16), blocks=3, width=8, dropout=0.0) -> Backbone:
    """A ResNet-style backbone small enough to train in a test: stem, residual blocks, top BN."""
    inputs = keras.Input((*image_size, 3), name="image")
    x = keras.layers.Rescaling(1 / 255.0, name="stem_rescale")(inputs)
    x = keras.layers.Conv2D(width, 3, padding="same", name="stem_conv")(x)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    for b in range(1, blocks + 1):
        shortcut = x
        y = keras.layers.Conv2D(width, 3, padding="same", name=f"conv{b}_block1_conv")(x)
        y = keras.layers.BatchNormalization(name=f"conv{b}_block1_bn")(y)
        if dropout:
            y = keras.layers.Dropout(dropout, name=f"conv{b}_block1_drop")(y)
        y = keras.layers.ReLU(name=f"conv{b}_block1_relu")(y)
        x = keras.layers.Add(name=f"conv{b}_block1_add")([shortcut, y])
    x = keras.layers.Conv2D(width * 2, 1, name="top_conv")(x)
    x = keras.layers.BatchNormalization(name="top_bn")(x)
    model = keras.Model(inputs, x, name="tiny_resnet")
    return Backbone(
        name="tiny_resnet", modality="image", model=model, blocks=find_blocks(model),
        input_config={"image_size": tuple(image_size)},
    )


def write_image_folder(root, classes=("cat", "dog"), per_class=6, size=(20, 24), fmt="png", seed=0):
    """Writes `root/<class>/<i>.<fmt>` images whose mean colour depends on the class."""
    rng = np.random.default_rng(seed)
    paths = []
    for k, name in enumerate(classes):
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for i in range(per_class):
            base = 60 + 120 * k
            image = np.clip(rng.normal(base, 30, (*size, 3)), 0, 255).astype(np.uint8)
            encoded = tf.io.encode_png(image) if fmt == "png" else tf.io.encode_jpeg(image, quality=95)
            path = os.path.join(root, name, f"{i}.{fmt}")
            tf.io.write_file(path, encoded)
            paths.append(path)
    return paths
