"""Assembles backbone and head into one plain `keras.Model`."""

import keras

from tfx_transfer.backbones.base import Backbone
from tfx_transfer.compat.feature_extractor import FeatureExtractor
from tfx_transfer.heads import build_head


def build_model(backbone: Backbone, num_classes: int, head_config, name: str = "transfer_model"):
    """The full model `inputs -> backbone -> head`, plus the head model on its own.

    The head is a nested `keras.Model` sharing its layers with the full model,
    so training it alone on cached backbone features trains the full model too.

    >>> from tfx_transfer.backbones.keras_apps import build_keras_app
    >>> from tfx_transfer.recipe import HeadConfig
    >>> backbone = build_keras_app("MobileNetV2", weights=None, image_size=(32, 32))
    >>> model, head = build_model(backbone, 3, HeadConfig())
    >>> model.output.shape
    (None, 3)
    """
    inputs = keras.tree.map_structure(
        lambda t: keras.Input(shape=t.shape[1:], dtype=t.dtype, name=t.name), backbone.model.input
    )
    features = FeatureExtractor(backbone.model, name="backbone")(inputs)
    head = build_head(features.shape[1:], num_classes, head_config)
    return keras.Model(inputs, head(features), name=name), head
