"""An exported audio model: WAV bytes in TF Serving's way give what Keras gives on the decoded waveform."""

import json
import os
import subprocess
import sys
import textwrap
import wave

import keras
import numpy as np
import pytest
import scipy.signal
import tensorflow as tf

from tfx_transfer.backbones.speech_embedding import build_speech_embedding
from tfx_transfer.data.audio import AudioPreprocessor
from tfx_transfer.export import PYTHON_OPS, WARMUP_FILE, export_saved_model, graph_ops
from tfx_transfer.model import build_model
from tfx_transfer.recipe import HeadConfig

CLASSES = ["go", "stop", "yes"]
CLIP = 16000


def write_wav(path, channels, rate):
    pcm = np.round(np.stack(channels, axis=1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(pcm.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return str(path)


def reference_waveform(path):
    """Decoded independently of TensorFlow: `wave` + NumPy mono mix + `scipy.signal.resample`, centre crop or pad."""
    with wave.open(path) as w:
        rate, channels = w.getframerate(), w.getnchannels()
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, channels)
    mono = (pcm / 32768.0).mean(axis=1)
    if rate != 16000:
        mono = scipy.signal.resample(mono, int(round(len(mono) * 16000 / rate)))
    start = max(0, (len(mono) - CLIP) // 2)
    clip = mono[start : start + CLIP]
    return np.pad(clip, (0, CLIP - len(clip))).astype("float32")


def speech_like(seconds, rate, pitch, seed):
    t = np.arange(int(seconds * rate)) / rate
    envelope = np.clip(np.sin(np.pi * t / seconds), 0, None) ** 2
    noise = np.random.default_rng(seed).normal(0, 0.01, len(t))
    return 0.4 * envelope * sum(np.sin(2 * np.pi * k * pitch * t) / k for k in range(1, 6)) + noise


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TFX_TRANSFER_HOME", str(home))
        backbone = build_speech_embedding("mean+max")
    model, _ = build_model(backbone, len(CLASSES), HeadConfig(dropout=0.0))
    preprocessor = AudioPreprocessor(16000, CLIP)
    base = tmp_path_factory.mktemp("export")
    path = export_saved_model(model, preprocessor, CLASSES, str(base), "keywords")
    wavs = tmp_path_factory.mktemp("wavs")
    files = [
        write_wav(wavs / "mono_16k.wav", [speech_like(1.0, 16000, 140, 0)], 16000),
        write_wav(wavs / "stereo_16k.wav", [speech_like(1.3, 16000, 180, 1), speech_like(1.3, 16000, 90, 2)], 16000),
        write_wav(wavs / "mono_8k.wav", [speech_like(0.9, 8000, 120, 3)], 8000),
        write_wav(wavs / "stereo_44k.wav", [speech_like(1.0, 44100, 220, 4), speech_like(1.0, 44100, 200, 5)], 44100),
    ]
    waveforms = np.stack([reference_waveform(f) for f in files])
    expected = model.predict(waveforms, verbose=0)
    return {"path": path, "model": model, "files": files, "waveforms": waveforms, "expected": expected}


def test_fresh_process_wav_bytes_match_keras_on_independently_decoded_audio(exported):
    script = textwrap.dedent(
        f"""
        import json, sys
        import tensorflow as tf
        loaded = tf.saved_model.load({exported['path']!r})
        raw = [open(f, 'rb').read() for f in {exported['files']!r}]
        out = loaded.signatures['serving_default'](audio_wav=tf.constant(raw))
        print(json.dumps({{'p': out['probabilities'].numpy().tolist(),
                          'label': [l.decode() for l in out['label'].numpy()],
                          'modules': sorted(m for m in sys.modules if m.startswith(('keras', 'tfx_transfer')))}}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert not [m for m in payload["modules"] if m.startswith("tfx_transfer")]
    np.testing.assert_allclose(payload["p"], exported["expected"], atol=1e-4)
    assert payload["label"] == [CLASSES[i] for i in exported["expected"].argmax(axis=1)]


def test_serve_tensor_takes_16k_waveforms(exported):
    loaded = tf.saved_model.load(exported["path"])
    signature = loaded.signatures["serve_tensor"]
    (spec,) = signature.structured_input_signature[1].values()
    assert list(signature.structured_input_signature[1]) == ["waveform"]
    assert spec.dtype == tf.float32 and spec.shape.as_list() == [None, CLIP]
    out = signature(waveform=tf.constant(exported["waveforms"]))
    np.testing.assert_allclose(out["probabilities"].numpy(), exported["expected"], atol=1e-5)


def test_graph_decodes_and_computes_log_mel_with_core_ops_only(exported):
    ops = graph_ops(exported["path"])
    assert not ops & PYTHON_OPS
    assert {"DecodeWav", "RFFT", "IRFFT"} <= ops  # decode, log-mel front end, resampling


def test_tf_serving_session_run_with_predict_request_and_warmup(exported):
    """The SignatureDef run as TF Serving runs it: a TF1 session fed from PredictRequest protos."""
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    record = next(iter(tf.data.TFRecordDataset(os.path.join(exported["path"], WARMUP_FILE))))
    warmup = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
    request = predict_pb2.PredictRequest()
    raw = [open(f, "rb").read() for f in exported["files"]]
    request.inputs["audio_wav"].CopyFrom(tf.make_tensor_proto(raw, dtype=tf.string))
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], exported["path"])
        signature = meta.signature_def["serving_default"]
        fetch = {k: v.name for k, v in signature.outputs.items()}
        outputs = [
            sess.run(fetch, {signature.inputs[k].name: tf.make_ndarray(v) for k, v in req.inputs.items()})
            for req in (warmup, request)
        ]
    assert outputs[0]["probabilities"].shape == (1, len(CLASSES))
    np.testing.assert_allclose(outputs[1]["probabilities"], exported["expected"], atol=1e-4)


def test_bytes_that_are_not_wav_give_an_invalid_argument_error(exported):
    loaded = tf.saved_model.load(exported["path"])
    with pytest.raises(tf.errors.InvalidArgumentError):
        loaded.signatures["serving_default"](audio_wav=tf.constant([b"RIFF....not a wav"]))


def test_long_clips_are_cut_into_windows_whose_probabilities_are_averaged(tmp_path):
    clip, hop = 800, 400
    inputs = keras.Input((clip,))
    x = keras.layers.Reshape((clip, 1))(inputs)
    x = keras.layers.Conv1D(4, 9, strides=4, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.Dense(8)(x)))
    preprocessor = AudioPreprocessor(8000, clip, hop_samples=hop)
    path = export_saved_model(model, preprocessor, ["a", "b", "c"], str(tmp_path), "windows")
    rng = np.random.default_rng(0)
    long_wav = tf.audio.encode_wav(rng.uniform(-0.5, 0.5, (2000, 1)).astype("float32"), 8000)
    short_wav = tf.audio.encode_wav(rng.uniform(-0.5, 0.5, (500, 1)).astype("float32"), 8000)
    long_wave = tf.audio.decode_wav(long_wav).audio.numpy()[:, 0]
    short_wave = tf.audio.decode_wav(short_wav).audio.numpy()[:, 0]
    # 2,000 samples: windows at 0, 400, 800 and 1,200; 500 samples: one zero-padded window.
    windows = np.stack([long_wave[s : s + clip] for s in (0, 400, 800, 1200)] + [np.pad(short_wave, (0, clip - 500))])
    window_probs = model.predict(windows, verbose=0)
    expected = np.stack([window_probs[:4].mean(axis=0), window_probs[4]])
    loaded = tf.saved_model.load(path)
    raw = loaded.signatures["serving_default"](audio_wav=tf.stack([long_wav, short_wav]))
    np.testing.assert_allclose(raw["probabilities"].numpy(), expected, atol=1e-6)
    np.testing.assert_array_equal(raw["class_id"].numpy(), expected.argmax(axis=1))
    tensor = loaded.signatures["serve_tensor"](waveform=tf.constant(long_wave[None]))
    np.testing.assert_allclose(tensor["probabilities"].numpy(), expected[:1], atol=1e-6)
    assert not graph_ops(path) & PYTHON_OPS
