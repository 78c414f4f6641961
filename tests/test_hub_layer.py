"""SavedModelLayer: a TF-Hub / SavedModel module whose variables Keras 3 trains, freezes and saves."""

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_hub as hub

from savedmodel_builders import save_dense_module, save_tf1_module
from tfx_transfer.backbones.hub import SavedModelLayer


@pytest.fixture(scope="module")
def dense_module(tmp_path_factory):
    return str(save_dense_module(tmp_path_factory.mktemp("hub") / "dense"))


def _model(layer):
    inputs = keras.Input((4,), name="x")
    outputs = keras.layers.Dense(2, name="head")(layer(inputs))
    return keras.Model(inputs, outputs)


def _data():
    rng = np.random.default_rng(1)
    return rng.normal(size=(64, 4)).astype("float32") + 1.0, rng.normal(size=(64, 2)).astype("float32")


def _by_name(layer):
    return {v.name: v for v in layer.weights}


def test_weights_are_keras_variables_with_clean_names(dense_module):
    layer = SavedModelLayer(dense_module, trainable=True)
    assert [(v.name, v.trainable) for v in layer.weights] == [
        ("dense_kernel", True),
        ("dense_bias", True),
        ("norm_moving_mean", False),
    ]
    assert len(layer.trainable_weights) == 2


def test_trainable_module_trains_under_fit_with_adam(dense_module):
    layer = SavedModelLayer(dense_module, trainable=True)
    model = _model(layer)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    before = {name: v.numpy().copy() for name, v in _by_name(layer).items()}
    x, y = _data()
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    after = _by_name(layer)
    assert not np.allclose(after["dense_kernel"].numpy(), before["dense_kernel"])
    # training=True reached the module: its BatchNorm-like statistic was updated.
    assert not np.allclose(after["norm_moving_mean"].numpy(), before["norm_moving_mean"])
    # The Keras variable wraps the module's own variable: the module sees the update.
    np.testing.assert_array_equal(layer._module.variables[0].numpy(), after["dense_kernel"].numpy())


def test_frozen_module_does_not_move_and_runs_in_inference_mode(dense_module):
    layer = SavedModelLayer(dense_module)  # trainable=False by default
    model = _model(layer)
    model.compile(optimizer="adam", loss="mse")
    before = [v.numpy().copy() for v in layer.weights]
    head_before = model.get_layer("head").kernel.numpy().copy()
    model.fit(*_data(), epochs=1, batch_size=16, verbose=0)
    for old, new in zip(before, layer.weights):
        np.testing.assert_array_equal(old, new.numpy())
    assert not np.allclose(head_before, model.get_layer("head").kernel.numpy())


def test_regularization_losses_count_only_while_trainable(dense_module):
    layer = SavedModelLayer(dense_module, trainable=True)
    model = _model(layer)
    model(np.ones((2, 4), "float32"), training=True)
    kernel = _by_name(layer)["dense_kernel"].numpy()
    assert len(model.losses) == 1
    np.testing.assert_allclose(float(model.losses[0]), 0.01 * np.sum(kernel**2), rtol=1e-5)
    layer.trainable = False
    model(np.ones((2, 4), "float32"), training=True)
    assert model.losses == []


def test_keras_file_round_trip_keeps_fine_tuned_weights(dense_module, tmp_path):
    layer = SavedModelLayer(dense_module, trainable=True)
    model = _model(layer)
    model.compile(optimizer="adam", loss="mse")
    x, y = _data()
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    restored = keras.models.load_model(tmp_path / "m.keras")  # safe_mode on
    restored_layer = restored.layers[1]
    assert isinstance(restored_layer, SavedModelLayer)
    assert restored_layer.trainable
    fine_tuned = _by_name(layer)["dense_kernel"].numpy()
    np.testing.assert_array_equal(_by_name(restored_layer)["dense_kernel"].numpy(), fine_tuned)
    assert not np.allclose(fine_tuned, SavedModelLayer(dense_module).weights[0].numpy())
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_export_archive_serves_the_fine_tuned_module(dense_module, tmp_path):
    layer = SavedModelLayer(dense_module, trainable=True)
    model = _model(layer)
    model.compile(optimizer="adam", loss="mse")
    x, y = _data()
    model.fit(x, y, epochs=1, verbose=0)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serving_default",
        lambda x: {"y": model(x, training=False)},
        input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")],
    )
    archive.write_out(str(tmp_path / "export"), verbose=False)
    served = tf.saved_model.load(str(tmp_path / "export")).signatures["serving_default"]
    np.testing.assert_allclose(served(x=tf.constant(x))["y"].numpy(), model.predict(x, verbose=0), atol=1e-5)


def test_signature_call_and_output_key(tmp_path):
    module = tf.Module()
    module.w = tf.Variable([[2.0], [3.0]])
    module.f = tf.function(
        lambda a: {"sum": tf.matmul(a, module.w), "copy": a},
        input_signature=[tf.TensorSpec([None, 2], tf.float32)],
    )
    tf.saved_model.save(module, str(tmp_path), signatures={"scores": module.f})
    layer = SavedModelLayer(str(tmp_path), signature="scores", output_key="sum")
    np.testing.assert_allclose(layer(np.array([[1.0, 1.0]], "float32")).numpy(), [[5.0]])
    with pytest.raises(ValueError, match="no signature 'nope'.*'scores'"):
        SavedModelLayer(str(tmp_path), signature="nope")
    with pytest.raises(ValueError, match="has no __call__.*'scores'"):
        SavedModelLayer(str(tmp_path))


def test_tf1_module_works_frozen_and_refuses_fine_tuning(tmp_path):
    path = str(save_tf1_module(tmp_path / "tf1"))
    layer = SavedModelLayer(path)
    np.testing.assert_allclose(layer(np.ones((2, 3), "float32")).numpy(), np.full((2, 2), 3.0))
    assert layer.trainable_weights == [] and len(layer.weights) == 1
    with pytest.raises(ValueError, match="TF1-format.*only be used frozen"):
        layer.trainable = True
    with pytest.raises(ValueError, match="TF1-format"):
        SavedModelLayer(path, trainable=True)


def test_missing_module_error_names_the_path(tmp_path):
    with pytest.raises(ValueError, match="nowhere"):
        SavedModelLayer(str(tmp_path / "nowhere"))


def test_hub_keras_layer_still_incompatible_with_keras3(dense_module):
    """Pins tensorflow/hub#903/#920: if this fails, hub.KerasLayer works in Keras 3 and
    SavedModelLayer may be replaceable by it."""
    with pytest.raises((TypeError, ValueError), match="Only instances of `?keras.Layer`? can be added"):
        keras.Sequential([keras.Input((4,)), hub.KerasLayer(dense_module)])
