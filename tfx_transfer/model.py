"""Assembles backbone and head into one plain `keras.Model`."""

import keras

from tfx_transfer.backbones.base import Backbone
from tfx_transfer.heads import build_head


@keras.saving.register_keras_serializable(package="tfx_transfer")
class FeatureExtractor(keras.layers.Layer):
    """Runs a backbone model, in inference mode whenever none of its weights train.

    Works around Keras 3.15.1 ignoring `base(x, training=False)` inside a
    functional model during `fit()` (fixed upstream by keras-team/keras#23364):
    the `training` flag is decided here, at call time, so a frozen backbone's
    dropout and BatchNormalization always run in inference mode.
    """

    def __init__(self, model: keras.Model, **kwargs):
        super().__init__(**kwargs)
        self.model = model

    def build(self, input_shape):
        self.built = True

    def call(self, inputs, training=None):
        trains = bool(training) and bool(self.model.trainable_weights)
        return self.model(inputs, training=trains)

    def compute_output_spec(self, inputs, training=None):
        return self.model.compute_output_spec(inputs)

    def get_config(self):
        return {**super().get_config(), "model": keras.saving.serialize_keras_object(self.model)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["model"] = keras.saving.deserialize_keras_object(config["model"])
        return cls(**config)


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
