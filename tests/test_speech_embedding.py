"""The packaged speech_embedding encoder reproduces openWakeWord's TFLite models and fine-tunes by block."""

import importlib.util
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfx_transfer.backbones import speech_embedding
from tfx_transfer.export import PYTHON_OPS
from tfx_transfer.weights import cache

REFERENCE = pathlib.Path(__file__).parent / "data" / "speech_embedding_reference.npz"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    path = tmp_path_factory.mktemp("tfx_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TFX_TRANSFER_HOME", str(path))
        yield path


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(REFERENCE))


@pytest.fixture(scope="module")
def backbone(home):
    return speech_embedding.build_speech_embedding("mean")


def submodel(model, layer_name):
    return keras.Model(model.input, model.get_layer(layer_name).output)


def test_log_mel_front_end_matches_melspectrogram_tflite(backbone, reference):
    log_mel = submodel(backbone.model, "log_mel")(reference["waveform"][None]).numpy()[0]
    np.testing.assert_allclose(log_mel, reference["log_mel"], rtol=0, atol=1e-4)


def test_frame_embeddings_match_embedding_tflite(backbone, reference):
    frames = submodel(backbone.model, "frame_embeddings")(reference["waveform"][None]).numpy()[0]
    assert frames.shape == reference["frames"].shape == (9, 96)
    np.testing.assert_allclose(frames, reference["frames"], rtol=1e-6, atol=1e-4)


def standardized(v):
    return (v - v.mean()) / np.sqrt(v.var() + 1e-3)


@pytest.mark.parametrize(
    "pooling, pool",
    [
        ("mean", lambda f: f.mean(0)),
        ("max", lambda f: f.max(0)),
        ("mean+max", lambda f: np.concatenate([f.mean(0), f.max(0)])),
    ],
)
def test_output_is_the_standardized_pool_of_the_reference_frames(home, reference, pooling, pool):
    model = speech_embedding.build_speech_embedding(pooling).model
    batch = np.stack([reference["waveform"], reference["waveform"]])
    output = model(batch).numpy()
    pooled = submodel(model, "frame_pooling")(batch).numpy()
    assert output.shape == pooled.shape == (2, pool(reference["frames"]).shape[0])
    np.testing.assert_allclose(pooled[1], pool(reference["frames"]), rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(output[1], standardized(pool(reference["frames"])), atol=1e-5)


def test_frame_count_follows_clip_length_and_short_clips_are_padded(backbone):
    frames = submodel(backbone.model, "frame_embeddings")
    assert frames(np.zeros((1, 16000), "float32")).shape == (1, 3, 96)  # 97 mel frames
    assert frames(np.zeros((1, 4000), "float32")).shape == (1, 1, 96)
    assert backbone.input_config == {"sample_rate": 16000, "min_samples": 12512}


def test_block_map_puts_weightless_front_end_first_and_convs_in_stages(backbone):
    names = [b.name for b in backbone.blocks]
    assert names == ["frontend"] + [f"conv_block_{i}" for i in range(1, 7)]
    model = backbone.model
    frontend = backbone.blocks[0]
    assert all(not model.get_layer(n).weights for n in frontend.layers)
    convs_per_block = [
        [n for n in block.layers if n.startswith("conv_")] for block in backbone.blocks[1:]
    ]
    assert [len(c) for c in convs_per_block] == [3, 4, 4, 4, 4, 1]
    assert convs_per_block[-2:] == [["conv_16", "conv_17", "conv_18", "conv_19"], ["conv_20"]]
    assert backbone.blocks[-1].layers[-1] == "embedding_norm" and not model.get_layer("embedding_norm").weights


def test_unfreezing_last_blocks_trains_only_their_convolutions(home, reference):
    backbone = speech_embedding.build_speech_embedding("mean")
    model = backbone.model
    for layer in model.layers:
        layer.trainable = False
    for block in backbone.blocks[-2:]:
        for name in block.layers:
            model.get_layer(name).trainable = True
    trainable = {v.path.split("/")[0] for v in model.trainable_weights}
    assert trainable == {f"conv_{i}" for i in range(16, 21)}

    head = keras.Sequential([model, keras.layers.Dense(2)])
    head.compile(optimizer=keras.optimizers.SGD(0.01), loss=keras.losses.SparseCategoricalCrossentropy(True))
    before = {v.path: v.numpy().copy() for v in model.weights}
    head.fit(np.stack([reference["waveform"]] * 2), np.array([0, 1]), epochs=1, verbose=0)
    changed = {
        v.path.split("/")[0] for v in model.weights if not np.array_equal(before[v.path], v.numpy())
    }
    assert changed and changed <= {f"conv_{i}" for i in range(16, 21)}


def test_weights_are_converted_once_then_read_from_cache(home, backbone, monkeypatch):
    cached = list((home / speech_embedding.CACHE_KIND).glob("*.weights.h5"))
    tflite = cache.package_file("openwakeword", speech_embedding.EMBEDDING_TFLITE, "")
    assert [p.name for p in cached] == [f"{cache.sha256_of(tflite)}.weights.h5"]

    def no_conversion(path):
        raise AssertionError("the TFLite model was read again instead of the cache")

    monkeypatch.setattr(speech_embedding, "read_tflite_convs", no_conversion)
    speech_embedding.build_speech_embedding("max")


def test_tflite_reader_finds_twenty_convolutions_in_graph_order(home):
    tflite = cache.package_file("openwakeword", speech_embedding.EMBEDDING_TFLITE, "")
    convs = speech_embedding.read_tflite_convs(tflite)
    assert len(convs) == 20
    assert convs[0][0].shape == (3, 3, 1, 24) and convs[0][1].shape == (24,)
    assert convs[-1][0].shape == (3, 1, 96, 96)


def test_missing_package_error_names_the_pip_line(monkeypatch, tmp_path):
    monkeypatch.setenv("TFX_TRANSFER_HOME", str(tmp_path))
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        cache.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "openwakeword" else real_find_spec(name, *a),
    )
    with pytest.raises(ModuleNotFoundError, match=r"pip install --no-deps openwakeword==0\.5\.1"):
        speech_embedding.build_speech_embedding()


def test_saved_keras_file_reloads_in_safe_mode_with_same_output(backbone, reference, tmp_path):
    path = tmp_path / "speech_embedding.keras"
    backbone.model.save(path)
    reloaded = keras.saving.load_model(path)
    batch = reference["waveform"][None]
    np.testing.assert_allclose(reloaded(batch).numpy(), backbone.model(batch).numpy(), atol=1e-6)


def test_graph_uses_only_core_ops_that_tf_serving_runs(backbone):
    fn = tf.function(backbone.model, input_signature=[tf.TensorSpec([None, None], tf.float32)])
    graph = fn.get_concrete_function().graph
    ops = {op.type for op in graph.get_operations()}
    assert "RFFT" in ops
    assert not ops & PYTHON_OPS
    assert not any(op.startswith("TFLite") for op in ops)
