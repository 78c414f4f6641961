"""A layer that runs a frozen backbone in inference mode during `fit`.

Upstream: Keras 3.15.1 ignores `base(x, training=False)` inside a functional model
during `fit()`; fixed by https://github.com/keras-team/keras/pull/23364 after 3.15.1.
Remove when tests/compat/test_feature_extractor.py::
test_plain_functional_training_false_is_still_ignored_upstream fails (Keras upgraded
past the fix): `build_model` can then call `backbone.model(inputs, training=False)`
for a frozen backbone. `FeatureExtractor` must stay loadable from saved `.keras`
files (registered as `tfx_transfer>FeatureExtractor`), so keep the class, reduced
to a pass-through, for as long as such files are supported.
"""

import keras


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
