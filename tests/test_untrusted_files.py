"""Untrusted files and requests: lying WAV and image headers, binary text, names that are not UTF-8."""

import os
import struct

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import write_image_folder
from test_audio_data import BACKBONE, make_folder, make_recipe, tone, write_wav
from tfx_transfer.config import ConfigError
from tfx_transfer.data import audio, text
from tfx_transfer.data.image import ImagePreprocessor, _load_folder
from tfx_transfer.data.sources import SkippedReport
from tfx_transfer.data.wav import MAX_CHANNELS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE
from tfx_transfer.export import PYTHON_OPS, export_saved_model, graph_ops
from tfx_transfer.recipe import DataConfig


def wav_bytes(rate=16000, channels=1, bits=16, audio_format=1, frames=10000, data_size=None):
    """A PCM WAV whose header fields can lie about the `frames * channels` zero samples that follow."""
    block_align = channels * bits // 8
    data = b"\0\0" * frames * channels
    fmt = struct.pack("<4sIHHIIHH", b"fmt ", 16, audio_format, channels, rate, rate * block_align % 2**32,
                      block_align % 2**16, bits)
    body = b"WAVE" + fmt + struct.pack("<4sI", b"data", len(data) if data_size is None else data_size) + data
    return struct.pack("<4sI", b"RIFF", len(body)) + body


@pytest.fixture(scope="module")
def serve_wav():
    """The raw-input path as a serving signature runs it: a graph function over a batch of WAV bytes."""
    preprocessor = audio.AudioPreprocessor(16000, 16000)
    return tf.function(preprocessor.raw_to_inputs, input_signature=[tf.TensorSpec([None], tf.string)])


@pytest.mark.parametrize(
    "header, message",
    [
        (dict(rate=1), "sample rate of] [1] [Hz; expected 1000 to 384000 Hz"),
        (dict(rate=0), "sample rate of] [0]"),
        (dict(rate=2**31 - 1), "sample rate of] [2147483647]"),
        (dict(channels=MAX_CHANNELS + 1, frames=10), f"declares] [{MAX_CHANNELS + 1}] [channels"),
        (dict(rate=1000, frames=601_000), "more than the 600 s one clip may last"),
    ],
)
def test_a_lying_wav_header_is_an_invalid_argument_before_any_work(serve_wav, header, message):
    # Unchecked, the 1 Hz file (20 KB) resamples to 160 M samples: about 20 s and 2.6 GB.
    with pytest.raises(tf.errors.InvalidArgumentError, match=message.replace("[", r"\[").replace("]", r"\]")):
        serve_wav(tf.constant([wav_bytes(**header)]))


def test_wav_files_within_the_bounds_decode_at_every_edge(serve_wav):
    clips = [wav_bytes(rate=MIN_SAMPLE_RATE, frames=500), wav_bytes(rate=MAX_SAMPLE_RATE, frames=3000),
             wav_bytes(channels=MAX_CHANNELS, frames=100)]
    assert serve_wav(tf.constant(clips)).shape == (3, 16000)


def test_an_exported_audio_model_refuses_a_lying_header_and_has_no_python_ops(tmp_path):
    inputs = keras.Input((800,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    path = export_saved_model(model, audio.AudioPreprocessor(8000, 800, hop_samples=400), ["a", "b"],
                              str(tmp_path), "bounded")
    assert not graph_ops(path) & PYTHON_OPS
    loaded = tf.saved_model.load(path)
    with pytest.raises(tf.errors.InvalidArgumentError, match="sample rate of"):
        loaded.signatures["serving_default"](audio_wav=tf.constant([wav_bytes(rate=1)]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="more than 4800000"):
        loaded.signatures["serve_tensor"](waveform=tf.zeros([1, 4_800_001]))
    ok = loaded.signatures["serving_default"](audio_wav=tf.constant([wav_bytes(rate=8000, frames=2000)]))
    assert ok["probabilities"].shape == (1, 2)


_HEADER_FIELDS = st.fixed_dictionaries({
    "rate": st.one_of(st.integers(0, 2**32 - 1), st.sampled_from([1, 999, 1000, 16000, 384000, 384001])),
    "channels": st.integers(0, 200),
    "bits": st.sampled_from([0, 8, 16, 24, 32]),
    "audio_format": st.sampled_from([0, 1, 3, 0xFFFE]),
    "frames": st.integers(0, 40),
    "data_size": st.one_of(st.none(), st.integers(0, 2**32 - 1)),
})


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=_HEADER_FIELDS, flips=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=3))
def test_fuzzed_wav_files_are_decoded_within_bounds_or_skipped_with_a_printable_reason(tmp_path, header, flips):
    data = bytearray(wav_bytes(**header))
    for where, value in flips:
        data[where % len(data)] = value
    path = tmp_path / "fuzzed.wav"
    path.write_bytes(bytes(data))
    info, skipped = audio.check_wav_files([str(path)])
    if info:
        samples, channels, rate = info[str(path)]
        assert MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE and 1 <= channels <= MAX_CHANNELS and samples > 0
    else:
        (entry,) = skipped.items
        assert entry["reason"].isprintable() and entry["source"] == str(path)


def test_binary_bytes_under_a_wav_name_are_skipped_without_printing_them(tmp_path, capsys):
    make_folder(tmp_path, speakers=4)
    (tmp_path / "high" / "binary.wav").write_bytes(b"\x00\x01\xff\xfeRIFF\x1b[31m" + bytes(range(256)))
    splits = audio.load_data(make_recipe(tmp_path), BACKBONE)
    (entry,) = splits.report["skipped"]
    assert entry["source"].endswith("binary.wav") and entry["reason"].isprintable()
    assert "\x1b" not in capsys.readouterr().err


def test_a_wav_name_that_is_not_utf8_is_skipped_and_named_with_escapes(tmp_path, capsys):
    make_folder(tmp_path, speakers=4)
    bad_name = os.path.join(os.fsencode(tmp_path), b"low", b"caf\xe9\x1b.wav")
    write_wav(os.fsdecode(bad_name), tone(300, 0.5, 16000), 16000)
    splits = audio.load_data(make_recipe(tmp_path), BACKBONE)
    (entry,) = splits.report["skipped"]
    assert entry["source"].endswith("low/caf\\xe9\\x1b.wav") and "not valid UTF-8" in entry["reason"]
    assert "\x1b" not in capsys.readouterr().err


def test_a_class_whose_every_wav_was_skipped_is_named(tmp_path):
    make_folder(tmp_path, speakers=4)
    for wav in (tmp_path / "low").iterdir():
        wav.write_bytes(wav_bytes(rate=1))
    with pytest.raises(ConfigError, match=r"every audio file of class 'low' was skipped \(8 file\(s\).*sample rate"):
        audio.load_data(make_recipe(tmp_path), BACKBONE)


def _text_folder(root, per_class=4):
    for name in ("sport", "tech"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            (root / name / f"{i}.txt").write_text(f"{name} story number {i}")


def test_binary_text_and_names_that_are_not_utf8_are_skipped(tmp_path):
    _text_folder(tmp_path)
    (tmp_path / "sport" / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (tmp_path / "tech" / "nul.txt").write_bytes(b"ok text\x00\x00\x00")
    with open(os.path.join(os.fsencode(tmp_path), b"tech", b"\xff\xfe.txt"), "wb") as f:
        f.write(b"readable text in a badly named file")
    examples = text.read_class_folders(str(tmp_path), "*.txt", skipped := SkippedReport())
    assert len(examples.texts) == 8
    reasons = {os.path.basename(item["source"]): item["reason"] for item in skipped.items}
    assert reasons["image.txt"].startswith("invalid UTF-8")
    assert reasons["nul.txt"] == "binary content (NUL bytes), not text"
    assert "not valid UTF-8" in reasons["\\xff\\xfe.txt"]
    assert all(item["source"].isprintable() for item in skipped.items)


def test_a_text_class_whose_every_file_was_skipped_is_named(tmp_path):
    _text_folder(tmp_path)
    for path in (tmp_path / "tech").iterdir():
        path.write_bytes(b"\x00binary")
    with pytest.raises(ConfigError, match="every text file of class 'tech' was skipped"):
        text.read_class_folders(str(tmp_path), "*.txt", SkippedReport())


def _png_declaring(width, height):
    png = bytearray(tf.io.encode_png(tf.zeros([2, 2, 3], tf.uint8)).numpy())
    png[16:24] = struct.pack(">II", width, height)
    return bytes(png)


def test_an_image_header_declaring_too_many_pixels_is_refused_before_decoding():
    serve = tf.function(ImagePreprocessor((8, 8)).raw_to_inputs, input_signature=[tf.TensorSpec([None], tf.string)])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"image header declares\] \[4294836225\]"):
        serve(tf.constant([_png_declaring(65535, 65535)]))  # 12 GB if decoded
    assert serve(tf.constant([tf.io.encode_jpeg(tf.zeros([30, 40, 3], tf.uint8)).numpy()])).shape == (1, 8, 8, 3)


def test_image_folders_skip_bombs_and_names_that_are_not_utf8(tmp_path):
    write_image_folder(tmp_path, per_class=6)
    (tmp_path / "cat" / "bomb.png").write_bytes(_png_declaring(30000, 30000))
    with open(os.path.join(os.fsencode(tmp_path), b"dog", b"\xe9t\xe9.png"), "wb") as f:
        f.write(tf.io.encode_png(tf.zeros([20, 24, 3], tf.uint8)).numpy())
    splits = _load_folder(DataConfig(path=str(tmp_path)), ImagePreprocessor((16, 16)), 0)
    reasons = {os.path.basename(s["source"]): s["reason"] for s in splits.report["skipped"]}
    assert set(reasons) == {"bomb.png", "\\xe9t\\xe9.png"}
    assert "not valid UTF-8" in reasons["\\xe9t\\xe9.png"]


def test_an_image_class_whose_every_file_was_skipped_is_named(tmp_path):
    write_image_folder(tmp_path, per_class=4)
    for path in (tmp_path / "dog").iterdir():
        path.write_bytes(b"not an image")
    with pytest.raises(ConfigError, match="every image file of class 'dog' was skipped"):
        _load_folder(DataConfig(path=str(tmp_path)), ImagePreprocessor((16, 16)), 0)


def test_text_longer_than_the_bound_is_an_invalid_argument():
    from tfx_transfer.data.text_bounds import assert_text_length

    bounded = tf.function(lambda t: assert_text_length(t, max_bytes=10), input_signature=[tf.TensorSpec([None], tf.string)])
    assert bounded(tf.constant(["0123456789"])).shape == (1,)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"a text has\] \[11\]"):
        bounded(tf.constant(["short", "01234567890"]))
