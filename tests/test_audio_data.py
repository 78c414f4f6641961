"""The audio pipeline: WAV decoding, resampling, splits by group, skipped files, augmentation."""

import os
import types
import wave

import numpy as np
import pytest
import scipy.signal
import tensorflow as tf

from tfx_transfer.config import ConfigError
from tfx_transfer.data import audio
from tfx_transfer.data.shares import WorkerShare, reading_share
from tfx_transfer.recipe import recipe_from_dict

BACKBONE = types.SimpleNamespace(name="fake_16k", input_config={"sample_rate": 16000})


def write_wav(path, samples, rate, width=2):
    """Writes float samples `[n]` or `[n, channels]` in [-1, 1] as PCM of `width` bytes."""
    samples = np.asarray(samples, np.float32)
    if samples.ndim == 1:
        samples = samples[:, None]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if width == 2:
        frames = np.round(samples * 32767).astype("<i2").tobytes()
    else:
        frames = np.round(samples * 127 + 128).astype(np.uint8).tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(samples.shape[1])
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(frames)
    return str(path)


def tone(freq, seconds, rate, amplitude=0.5):
    return amplitude * np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate)


def make_recipe(path, source="folder", **audio_options):
    return recipe_from_dict(
        {
            "modality": "audio",
            "seed": 3,
            "data": {
                "source": source,
                "path": str(path),
                "validation_fraction": 0.25,
                "test_fraction": 0.25,
                "audio": {"clip_seconds": 0.5, **audio_options},
            },
        }
    )


def dominant_frequency(x, rate):
    spectrum = np.abs(np.fft.rfft(x))
    return np.fft.rfftfreq(len(x), 1 / rate)[spectrum.argmax()]


@pytest.mark.parametrize("rate", [8000, 22050, 44100])
def test_resample_matches_scipy_and_keeps_pitch(rate):
    x = (tone(440, 0.3, rate) + np.random.default_rng(0).normal(0, 0.05, int(0.3 * rate))).astype("float32")
    y = audio.resample(x, tf.constant(rate), 16000).numpy()
    expected = scipy.signal.resample(x.astype("float64"), int(round(len(x) * 16000 / rate)))
    np.testing.assert_allclose(y, expected, atol=1e-5)
    assert abs(dominant_frequency(y, 16000) - 440) < 5


def test_downsampling_removes_frequencies_above_the_new_nyquist():
    passed = audio.resample(tone(7000, 0.5, 44100).astype("float32"), tf.constant(44100), 16000).numpy()
    removed = audio.resample(tone(11000, 0.5, 44100).astype("float32"), tf.constant(44100), 16000).numpy()
    assert np.sqrt(np.mean(passed**2)) > 0.3  # 0.5 / sqrt(2)
    assert np.sqrt(np.mean(removed**2)) < 1e-3  # would alias to 5 kHz with naive interpolation


def test_preprocessor_decodes_stereo_and_other_rates_to_fixed_16k_mono(tmp_path):
    pre = audio.AudioPreprocessor(16000, 8000)
    left, right = tone(300, 1.0, 8000, 0.4), tone(300, 1.0, 8000, 0.2)
    stereo_8k = open(write_wav(tmp_path / "s.wav", np.stack([left, right], 1), 8000), "rb").read()
    short_44k = open(write_wav(tmp_path / "m.wav", tone(300, 0.25, 44100), 44100), "rb").read()
    batch = pre.raw_to_inputs(tf.constant([stereo_8k, short_44k])).numpy()
    assert batch.shape == (2, 8000) and batch.dtype == np.float32
    # Stereo is averaged: amplitude (0.4 + 0.2) / 2; the 1 s clip is centre-cropped to 0.5 s.
    assert abs(np.abs(batch[0]).max() - 0.3) < 0.01
    assert abs(dominant_frequency(batch[0], 16000) - 300) < 5
    # 0.25 s at 44.1 kHz -> 4000 samples at 16 kHz, then zero-padded at the end.
    assert np.abs(batch[1, :3900]).max() > 0.4 and not batch[1, 4010:].any()
    assert pre.tensor_spec.shape.as_list() == [None, 8000]
    assert pre.raw_to_inputs(tf.constant([pre.example_raw_input()])).shape == (1, 8000)


def make_folder(root, speakers=8, per_speaker=2):
    """`root/<word>/<speaker>_nohash_<n>.wav` for two classes told apart by pitch."""
    for word, freq in (("high", 1200), ("low", 300)):
        for s in range(speakers):
            for n in range(per_speaker):
                write_wav(root / word / f"spk{s}_nohash_{n}.wav", tone(freq + 10 * s, 0.5, 16000), 16000)


def labels_and_waveforms(dataset):
    return [(int(y), x.numpy()) for x, y in dataset]


def test_folder_skips_unreadable_files_resamples_and_keeps_groups_in_one_split(tmp_path):
    make_folder(tmp_path)
    write_wav(tmp_path / "high" / "spk0_nohash_9.wav", tone(1200, 0.5, 44100), 44100)
    write_wav(tmp_path / "low" / "spk1_nohash_9.wav", np.stack([tone(300, 0.5, 16000)] * 2, 1), 16000)
    write_wav(tmp_path / "low" / "eight_bit.wav", tone(300, 0.5, 16000), 16000, width=1)
    (tmp_path / "high" / "broken.wav").write_bytes(b"RIFF\x00\x00not a wav at all")
    write_wav(tmp_path / "_background_noise" / "hiss.wav", tone(50, 1.0, 16000), 16000)
    (tmp_path / "low" / "notes.txt").write_text("not audio")

    recipe = make_recipe(tmp_path, group_pattern=r"^(.+?)_nohash_")
    splits = audio.load_data(recipe, BACKBONE)

    assert splits.class_names == ["high", "low"]
    skipped = {os.path.basename(s["source"]): s["reason"] for s in splits.report["skipped"]}
    assert set(skipped) == {"broken.wav", "eight_bit.wav"}
    assert "16-bit" in skipped["eight_bit.wav"] and "sox" in skipped["eight_bit.wav"]
    assert splits.report["resampled_files_by_rate"] == {"44100": 1}
    assert splits.report["multichannel_files"] == 1
    assert splits.report["ignored_non_wav_files"] == 1
    total = sum(sum(c.values()) for c in splits.report["counts"].values())
    assert total == 34  # 32 + the resampled and the stereo file; noise folder is not a class

    speakers = {}
    for name in ("train", "validation", "test"):
        speakers[name] = {os.path.basename(p).split("_nohash_")[0] for p in splits.sources[name]}
    assert not (speakers["train"] & speakers["test"]) and not (speakers["train"] & speakers["validation"])
    assert splits.report["groups"] == {k: len(v) for k, v in speakers.items()}

    for label, waveform in labels_and_waveforms(splits.train):
        assert waveform.shape == (8000,)
        expected = 1200 if label == 0 else 300
        assert abs(dominant_frequency(waveform, 16000) - expected) < 100


def test_manifest_groups_by_column_and_honours_split_column(tmp_path):
    rows = ["path,label,voice,split"]
    for v in range(6):
        for word, freq in (("a", 500), ("b", 900)):
            write_wav(tmp_path / "clips" / f"{word}_{v}.wav", tone(freq, 0.5, 16000), 16000)
            rows.append(f"clips/{word}_{v}.wav,{word},v{v},{'test' if v == 5 else 'train'}")
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    recipe = make_recipe(tmp_path / "manifest.csv", source="csv", group_column="voice")
    splits = audio.load_data(recipe, BACKBONE)
    assert splits.report["counts"]["test"] == {"a": 1, "b": 1}
    assert splits.report["groups"]["test"] == 1
    assert splits.report["groups"]["validation"] >= 1  # carved out of train by voice
    assert sum(splits.report["counts"]["train"].values()) + sum(splits.report["counts"]["validation"].values()) == 10


def test_manifest_errors_name_the_file_and_what_is_wrong(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("file,class\nx.wav,a\n")
    with pytest.raises(ConfigError, match=r"m\.csv.*no column\(s\) \['path', 'label'\]"):
        audio.load_data(make_recipe(manifest, source="csv"), BACKBONE)
    manifest.write_text("path,label,split\nx.wav,a,holdout\n")
    with pytest.raises(ConfigError, match=r"m\.csv:2: split must be one of"):
        audio.load_data(make_recipe(manifest, source="csv"), BACKBONE)


def test_sample_rate_that_the_backbone_cannot_take_is_a_config_error(tmp_path):
    make_folder(tmp_path, speakers=2, per_speaker=1)
    with pytest.raises(ConfigError, match="sample_rate: 16000"):
        audio.load_data(make_recipe(tmp_path, sample_rate=8000), BACKBONE)


def test_long_clips_become_windows_of_one_group(tmp_path):
    for word, freq in (("a", 500), ("b", 900)):
        for k in range(4):
            write_wav(tmp_path / word / f"long{k}.wav", tone(freq, 1.6, 16000), 16000)  # 25,600 samples
    recipe = make_recipe(tmp_path, long_clips="windows", window_hop_seconds=0.5)
    splits = audio.load_data(recipe, BACKBONE)
    # windows at 0, 8000, 16000 and the tail 17600: 4 per file
    assert splits.report["windows"] == {
        s: 4 * sum(c.values()) for s, c in splits.report["counts"].items()
    }
    for waveform in (x.numpy() for x, _ in splits.train):
        assert waveform.shape == (8000,) and np.abs(waveform).min() < 0.01 and np.abs(waveform).max() > 0.49
    # Test metrics average per file: every test window knows its file, in dataset order.
    test_files = sum(splits.report["counts"]["test"].values())
    assert np.bincount(splits.test_groups).tolist() == [4] * test_files
    assert splits.test_groups.tolist() == sorted(splits.test_groups.tolist())


def options(**kwargs):
    return audio.AudioOptions(clip_seconds=0.5, **kwargs)


def test_augmentation_is_seeded_bounded_and_off_outside_training():
    batch = tf.constant(np.stack([tone(440, 0.5, 16000), tone(880, 0.5, 16000)]).astype("float32"))
    make = lambda: audio.WaveformAugmentation(options(gain_db=6, time_shift_seconds=0.1), 16000, seed=1)
    first, second = make()(batch).numpy(), make()(batch).numpy()
    np.testing.assert_array_equal(first, second)
    assert not np.allclose(first, batch.numpy())
    assert np.abs(first).max() <= 1.0
    np.testing.assert_array_equal(make()(batch, training=False), batch)


def test_noise_is_mixed_at_the_requested_signal_to_noise_ratio(tmp_path):
    write_wav(tmp_path / "noise" / "n.wav", np.random.default_rng(0).uniform(-0.5, 0.5, 16000), 16000)
    recipe = make_recipe(tmp_path, noise_dir=str(tmp_path / "noise"), noise_probability=1.0, noise_snr_db=[10.0, 10.0])
    augment = audio.make_augmentation(recipe)
    clean = np.stack([tone(440, 0.5, 16000, 0.3)] * 4).astype("float32")
    noisy = augment(tf.constant(clean)).numpy()
    snr = 10 * np.log10(np.mean(clean**2, axis=1) / np.mean((noisy - clean) ** 2, axis=1))
    np.testing.assert_allclose(snr, 10.0, atol=0.2)
    assert audio.make_augmentation(make_recipe(tmp_path)) is None
    with pytest.raises(ConfigError, match="noise_dir.*does not exist"):
        audio.make_augmentation(make_recipe(tmp_path, noise_dir=str(tmp_path / "missing")))


def test_audio_options_reject_bad_values():
    with pytest.raises(ConfigError, match="noise_snr_db"):
        audio.AudioOptions(noise_snr_db=[20.0, 5.0])
    with pytest.raises(ConfigError, match="clip_seconds"):
        recipe_from_dict({"data": {"audio": {"clip_seconds": 0}}})


def test_a_worker_reads_the_windows_of_its_share_of_the_training_clips_and_reports_whole_splits(tmp_path):
    for word, freq in (("a", 500), ("b", 900)):
        for k in range(5):
            write_wav(tmp_path / word / f"long{k}.wav", tone(freq, 1.6, 16000), 16000)  # 4 windows each
    recipe = make_recipe(tmp_path, long_clips="windows", window_hop_seconds=0.5)
    whole = audio.load_data(recipe, BACKBONE)
    train_clips = len(whole.sources["train"])
    windows = []
    for worker in range(2):
        with reading_share(WorkerShare(worker, 2)):
            share = audio.load_data(recipe, BACKBONE)
        assert _without_timing(share.report) == _without_timing(whole.report)  # whole splits, as metrics.json
        assert share.manifest == whole.manifest
        np.testing.assert_array_equal(share.test_groups, whole.test_groups)
        windows.append(len(list(share.train)))
        assert windows[-1] == 4 * len(range(worker, train_clips, 2))
    assert sum(windows) == whole.report["windows"]["train"] == 4 * train_clips


def _without_timing(report):
    return {key: value for key, value in report.items() if key != "seconds_to_list_and_validate"}
