"""TF-Hub / SavedModel variables as the weights of a Keras 3 layer.

Upstream: `hub.KerasLayer` is a Keras 2 class that Keras 3 refuses, and wrapped in a
Keras 3 layer its weights are invisible (https://github.com/tensorflow/hub/issues/903,
#920; fix PR #930 unmerged). The workaround wraps each `tf.Variable` in a
`keras.Variable` and tracks it with the private `Layer._track_variable`. Remove when
tests/test_hub_layer.py::test_hub_keras_layer_still_incompatible_with_keras3 fails and
`hub.KerasLayer` trains inside Keras 3 models; re-check `_track_variable` on every Keras
upgrade (tests/test_hub_layer.py trains and saves through it).
"""

import re

import keras
import tensorflow as tf


def variable_name(tf_name: str) -> str:
    """A Keras-valid variable name: `'encoder/dense/kernel:0'` -> `'encoder_dense_kernel'`.

    >>> variable_name("encoder/layer_0/kernel:0")
    'encoder_layer_0_kernel'
    """
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", re.sub(r":\d+$", "", tf_name))


def track_module_variables(layer: keras.layers.Layer, tf_variables, trainable_refs) -> None:
    """Makes each `tf.Variable` in `tf_variables` a weight of `layer`, trainable if its `ref()` is in `trainable_refs`.

    `keras.Variable(v)` wraps `v` without copying, so `fit` updates the SavedModel's own variables.

    >>> layer = keras.layers.Layer()
    >>> v = tf.Variable([1.0, 2.0], name="dense/kernel")
    >>> track_module_variables(layer, [v], {v.ref()})
    >>> [w.name for w in layer.trainable_weights]
    ['dense_kernel']
    """
    with tf.init_scope():
        for v in tf_variables:
            layer._track_variable(keras.Variable(v, trainable=v.ref() in trainable_refs, name=variable_name(v.name)))
