"""Pins Keras re-pointing a `keras.Input` when a sub-model starts at it, and tests `compat.keras_clone_graph`."""

import keras
import numpy as np
import pytest

from tfx_transfer.compat.keras_clone_graph import replay_after


def _model_with_a_mask_input():
    """`[x, mask] -> first -> masked -> last`: `mask` enters after the first layer, as a transformer's padding mask."""
    x = keras.Input((4,), name="x")
    mask = keras.Input((4,), name="mask")
    hidden = keras.layers.Dense(4, name="first")(x)
    outputs = keras.layers.Dense(2, name="last")(keras.layers.Multiply(name="masked")([hidden, mask]))
    return keras.Model([x, mask], outputs), hidden, mask


def test_replay_after_computes_the_suffix_and_leaves_the_model_saveable():
    model, hidden, mask = _model_with_a_mask_input()
    suffix = replay_after(model, [hidden, mask], {"first"})
    x, m = keras.ops.ones((2, 4)), keras.ops.convert_to_tensor([[1.0, 0.0, 1.0, 0.0]] * 2)
    np.testing.assert_allclose(suffix([model.get_layer("first")(x), m]), model([x, m]), rtol=1e-6)
    assert mask._keras_history.node_index == 0
    model.get_config()


def test_keras_model_from_an_input_and_intermediate_tensors_still_corrupts_the_input():
    """When this fails, Keras is fixed and `replay_after` can become `keras.Model(boundary, model.output)`."""
    model, hidden, mask = _model_with_a_mask_input()
    keras.Model([hidden, mask], model.output)
    assert mask._keras_history.node_index == 1
    with pytest.raises(RuntimeError, match="could not find node key"):
        model.get_config()
