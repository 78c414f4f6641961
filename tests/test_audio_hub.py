"""TF-Hub audio encoders in the YAMNet convention: batched, pooled, frozen or fine-tuned."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfx_transfer.backbones.hub_audio import HubAudioEncoder, build_hub_audio_backbone
from tfx_transfer.backbones.registry import resolve
from tfx_transfer.recipe import BackboneConfig

FRAME, HOP, EMBEDDING_DIM, NUM_CLASSES = 400, 160, 6, 3


def save_yamnet_like(path, dict_output=False, seed=0):
    """`__call__(waveform [None] float32)` -> `(scores [F, 3], embeddings [F, 6], log_spectrum [F, 201])`.

    Frames of 25 ms every 10 ms like YAMNet's front end; a trainable projection
    with an L2 regularization loss, as in the TF-Hub reusable SavedModel API.
    """
    rng = np.random.default_rng(seed)
    bins = FRAME // 2 + 1
    kernel = tf.Variable(rng.normal(0, 0.1, (bins, EMBEDDING_DIM)).astype("float32"), name="embed/kernel")
    bias = tf.Variable(np.zeros(EMBEDDING_DIM, "float32"), name="embed/bias")
    classifier = tf.Variable(rng.normal(0, 0.5, (EMBEDDING_DIM, NUM_CLASSES)).astype("float32"), name="logits/kernel")

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def call(waveform):
        frames = tf.signal.frame(waveform, FRAME, HOP)
        spectrum = tf.math.log(1.0 + tf.abs(tf.signal.rfft(frames)))
        embeddings = tf.nn.relu(tf.matmul(spectrum, kernel) + bias)
        scores = tf.sigmoid(tf.matmul(embeddings, classifier))
        if dict_output:
            return {"scores": scores, "embeddings": embeddings, "spectrogram": spectrum}
        return scores, embeddings, spectrum

    root = tf.train.Checkpoint()
    root.__call__ = call
    root.variables = [kernel, bias, classifier]
    root.trainable_variables = [kernel, bias]
    root.regularization_losses = [tf.function(lambda: 0.01 * tf.reduce_sum(tf.square(kernel)), input_signature=[])]
    tf.saved_model.save(root, str(path))
    return str(path)


@pytest.fixture(scope="module")
def module(tmp_path_factory):
    return save_yamnet_like(tmp_path_factory.mktemp("hub_audio") / "yamnet_like")


def clips(n=3, samples=8000, seed=1):
    t = np.arange(samples) / 16000
    rng = np.random.default_rng(seed)
    return np.stack([0.5 * np.sin(2 * np.pi * rng.uniform(200, 3000) * t) for _ in range(n)]).astype("float32")


@pytest.mark.parametrize(
    "pooling, pool",
    [
        ("mean", lambda f: f.mean(0)),
        ("max", lambda f: f.max(0)),
        ("mean+max", lambda f: np.concatenate([f.mean(0), f.max(0)])),
    ],
)
def test_batch_output_is_each_clips_module_output_pooled(module, pooling, pool):
    backbone = build_hub_audio_backbone(module, pooling=pooling)
    batch = clips()
    loaded = tf.saved_model.load(module)
    expected = np.stack([pool(loaded(clip)[1].numpy()) for clip in batch])
    np.testing.assert_allclose(backbone.model(batch).numpy(), expected, rtol=1e-5, atol=1e-6)
    assert backbone.modality == "audio" and backbone.input_config == {"sample_rate": 16000}
    assert [b.name for b in backbone.blocks] == ["encoder"]


def test_dict_outputs_are_chosen_by_key_and_bad_choices_are_explained(tmp_path):
    path = save_yamnet_like(tmp_path / "dict_module", dict_output=True)
    frames = HubAudioEncoder(path, embeddings_output="embeddings")(clips(2))
    assert frames.shape == (2, (8000 - FRAME) // HOP + 1, EMBEDDING_DIM)
    with pytest.raises(ValueError, match=r"returns the outputs \['embeddings', 'scores', 'spectrogram'\]"):
        HubAudioEncoder(path, embeddings_output=1)
    with pytest.raises(ValueError, match="returns 3 outputs; embeddings_output=5"):
        HubAudioEncoder(save_yamnet_like(tmp_path / "tuple_module"), embeddings_output=5)
    from_recipe = resolve(BackboneConfig(source="hub_audio", name=path, output="embeddings", pooling="mean"))
    np.testing.assert_allclose(from_recipe.model(clips(2)).numpy(), frames.numpy().mean(axis=1), rtol=1e-5)


def test_frozen_by_default_and_unfrozen_module_trains_through_the_map(module):
    backbone = build_hub_audio_backbone(module, pooling="mean+max")
    encoder = backbone.model.get_layer("hub_encoder")
    assert backbone.model.trainable_weights == []

    encoder.trainable = True
    assert sorted(v.name for v in encoder.trainable_weights) == ["embed_bias", "embed_kernel"]
    inputs = keras.Input((8000,), name="waveform")
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(backbone.model(inputs)))
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=keras.losses.SparseCategoricalCrossentropy())
    before = encoder.weights[0].numpy().copy()
    history = model.fit(clips(8), np.array([0, 1] * 4), epochs=2, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    after = encoder.weights[0].numpy()
    assert not np.allclose(before, after)
    np.testing.assert_array_equal(encoder._module.variables[0].numpy(), after)  # the module's own variable moved
    assert len(model.losses) == 1  # the module's L2 regularization, added once per call


def test_registered_as_hub_audio_source(module):
    backbone = resolve(BackboneConfig(source="hub_audio", name=module, pooling="max"))
    assert backbone.model(clips(2)).shape == (2, EMBEDDING_DIM)


def test_keras_file_round_trip_keeps_fine_tuned_weights(module, tmp_path):
    backbone = build_hub_audio_backbone(module)
    encoder = backbone.model.get_layer("hub_encoder")
    encoder.weights[1].assign(np.full(EMBEDDING_DIM, 0.25, "float32"))
    path = tmp_path / "hub_audio.keras"
    backbone.model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(reloaded(clips(2)).numpy(), backbone.model(clips(2)).numpy(), atol=1e-6)
