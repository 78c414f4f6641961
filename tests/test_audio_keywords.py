"""The synthetic spoken-keyword dataset: reproducible, well-formed, split by held-out voices."""

import csv
import hashlib
import json
import pathlib
import sys
import wave

import numpy as np
import pytest

from tfx_transfer.data import audio
from tfx_transfer.datasets import espeak, keywords
from tfx_transfer.recipe import recipe_from_dict

SMALL = dict(keywords=("yes", "no", "stop"), num_voices=4, clips_per_voice=1, noise_files=2, noise_seconds=1.0)


def digest(root: pathlib.Path) -> str:
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.wav")):
        h.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("kw") / "keywords"
    return pathlib.Path(keywords.make_keywords(root, seed=7, **SMALL)).parent


def test_writes_wavs_manifest_and_settings(dataset):
    with open(dataset / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * 4
    assert {r["label"] for r in rows} == {"yes", "no", "stop"}
    assert len({r["voice"] for r in rows}) == 4
    for row in rows:
        assert row["path"] == f"{row['label']}/{row['voice']}_0.wav"
        with wave.open(str(dataset / row["path"])) as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (1, 2, 16000, 16000)
    settings = json.loads((dataset / "dataset.json").read_text())
    assert settings["seed"] == 7 and settings["clips"] == 12
    assert "espeak" in settings["backend"].lower()
    assert len(list((dataset / "_background_noise").glob("*.wav"))) == 2


def test_clips_hold_speech_over_quieter_noise(dataset):
    with wave.open(str(dataset / "yes" / f"{sorted(p.stem for p in (dataset / 'yes').glob('*.wav'))[0]}.wav")) as w:
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32768.0
    frames = np.sqrt(np.mean(x[: len(x) // 160 * 160].reshape(-1, 160) ** 2, axis=1))
    assert frames.max() > 0.05  # speech is there
    assert np.percentile(frames, 10) < frames.max() / 3  # and louder than the background


def test_same_seed_gives_identical_files_and_another_seed_does_not(dataset, tmp_path):
    again = pathlib.Path(keywords.make_keywords(tmp_path / "again", seed=7, **SMALL)).parent
    other = pathlib.Path(keywords.make_keywords(tmp_path / "other", seed=8, **SMALL)).parent
    assert digest(again) == digest(dataset)
    assert digest(other) != digest(dataset)


def test_fresh_process_synthesis_is_deterministic_even_for_breathy_voices():
    requests = [("down.", "en-029+f2", 160, 50), ("yes?", "en-us+f5", 140, 60), ("stop.", "en+m3", 180, 40)]
    first, rate, _ = espeak.synthesize_in_fresh_process(requests)
    second, _, _ = espeak.synthesize_in_fresh_process(requests)
    assert rate > 0 and all(len(clip) > 1000 for clip in first)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))


def test_refuses_to_write_into_an_unrelated_non_empty_directory(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty"):
        keywords.make_keywords(tmp_path, **SMALL)
    assert (tmp_path / "mine.txt").exists()


def test_test_split_holds_only_voices_never_heard_in_training(dataset):
    recipe = recipe_from_dict(
        {
            "modality": "audio",
            "data": {
                "source": "csv",
                "path": str(dataset / "manifest.csv"),
                "validation_fraction": 0.25,
                "test_fraction": 0.25,
                "audio": {"group_column": "voice"},
            },
        }
    )
    splits = audio.load_data(recipe, None)
    assert splits.class_names == ["no", "stop", "yes"]
    assert splits.report["groups"] == {"train": 2, "validation": 1, "test": 1}
    assert splits.report["skipped"] == []
    assert all(x.shape == (16000,) for x, _ in splits.test)


def test_missing_espeak_error_names_both_ways_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)
    monkeypatch.setattr(espeak.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match=r"pip install espeakng-loader==0\.2\.4.*apt-get install espeak-ng"):
        espeak.find_espeak()


def test_command_backend_reads_espeak_output(monkeypatch):
    if not espeak.shutil.which("espeak-ng"):
        pytest.skip("the espeak-ng program is not installed")
    speech = espeak.find_espeak("command").synthesize("stop.", "en-us+f2", 160, 50)
    assert speech.dtype == np.int16 and len(speech) > 4000 and np.abs(speech).max() > 1000


def test_make_keywords_reports_missing_espeak_from_its_child_process_and_writes_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no espeak-ng program for the child to find
    with pytest.raises(RuntimeError, match=r"apt-get install espeak-ng"):
        keywords.make_keywords(tmp_path / "out", backend="command", **SMALL)
    assert not (tmp_path / "out").exists()
