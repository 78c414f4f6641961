"""A spoken-keyword dataset synthesised offline with eSpeak NG, reproducible from a seed.

Each voice is an English accent with a voice variant (`en-us+f2`,
`en-gb-scotland+m3`, ...) and its own base pitch and speed; each clip varies
pitch, speed, intonation (`yes.`, `yes?`, `yes!`), loudness and position in
the clip, and mixes in background noise (white, pink, brown or mains hum) at a
random signal-to-noise ratio. The output is

```
DIR/<keyword>/<voice>_<n>.wav      16-bit PCM, mono, 16 kHz, clip_seconds long
DIR/_background_noise/*.wav        noise-only files, for `data.audio.noise_dir`
DIR/manifest.csv                   path,label,voice,accent,variant,pitch,speed,snr_db
DIR/dataset.json                   the settings, eSpeak NG backend and version
```

The `voice` column is the recipe's `data.audio.group_column`, so the test
split holds voices never heard in training. The same seed, settings and eSpeak
NG build give byte-identical files; another eSpeak NG build (the pip wheel
`espeakng-loader` vs the Debian package) gives a different but equally valid
dataset, which is why `dataset.json` records the backend.
"""

import csv
import json
import os
import shutil
import wave

import numpy as np

from tfx_transfer.data.audio import resample
from tfx_transfer.datasets.espeak import synthesize_in_fresh_process

KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
ACCENTS = (
    "en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc",
)
VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "croak", "Andy", "Annie", "Lee", "Michael", "linda", "steph",
    "paul", "robert", "david", "john", "edward", "grandma", "grandpa", "aunty", "benjamin", "max", "quincy",
)
NOISE_KINDS = ("white", "pink", "brown", "hum")
def write_wav(path: str, waveform: np.ndarray, sample_rate: int) -> None:
    """Writes float samples in [-1, 1] as 16-bit PCM mono."""
    pcm = np.clip(np.round(waveform * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())


def trim_silence(waveform: np.ndarray, sample_rate: int, threshold=0.02, margin_seconds=0.02) -> np.ndarray:
    """Cuts leading and trailing samples quieter than `threshold` times the peak, keeping a short margin."""
    loud = np.flatnonzero(np.abs(waveform) > threshold * (np.abs(waveform).max() + 1e-9))
    if not len(loud):
        return waveform
    margin = int(margin_seconds * sample_rate)
    return waveform[max(0, loud[0] - margin) : loud[-1] + margin + 1]


def background_noise(kind: str, samples: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise: `white`, `pink` (1/f), `brown` (1/f^2) or `hum` (mains 50/60 Hz and harmonics)."""
    if kind == "hum":
        t = np.arange(samples) / sample_rate
        base = rng.choice([50.0, 60.0])
        noise = 0.0
        for k in (1, 2, 3, 5):
            amplitude, phase = rng.uniform(0.2, 1.0), rng.uniform(0, 2 * np.pi)
            noise = noise + amplitude * np.sin(2 * np.pi * k * base * t + phase)
        noise = noise + 0.1 * rng.normal(size=samples)
    else:
        spectrum = np.fft.rfft(rng.normal(size=samples))
        freqs = np.fft.rfftfreq(samples, 1.0 / sample_rate)
        power = {"white": 0.0, "pink": 1.0, "brown": 2.0}[kind]
        spectrum /= np.maximum(freqs, 20.0) ** (power / 2.0)
        noise = np.fft.irfft(spectrum, samples)
    return (noise / (np.sqrt(np.mean(noise**2)) + 1e-12)).astype(np.float32)


def _voices(num_voices: int, rng: np.random.Generator) -> list[dict]:
    pairs = [(a, v) for a in ACCENTS for v in VARIANTS]
    if not 1 <= num_voices <= len(pairs):
        raise ValueError(
            f"num_voices must be between 1 and {len(pairs)} ({len(ACCENTS)} accents x {len(VARIANTS)} "
            f"variants), received {num_voices}."
        )
    voices = []
    for index in sorted(rng.choice(len(pairs), size=num_voices, replace=False)):
        accent, variant = pairs[index]
        voices.append(
            {
                "voice": f"{accent}-{variant}".lower(),
                "accent": accent,
                "variant": variant,
                "espeak": f"{accent}+{variant}",
                "pitch": float(rng.uniform(25, 75)),
                "speed": float(rng.uniform(135, 205)),
            }
        )
    return voices


def make_keywords(
    out_dir,
    seed: int = 0,
    keywords=KEYWORDS,
    num_voices: int = 120,
    clips_per_voice: int = 2,
    clip_seconds: float = 1.0,
    sample_rate: int = 16000,
    snr_db=(5.0, 30.0),
    noise_files: int = 8,
    noise_seconds: float = 10.0,
    backend: str = "auto",
) -> str:
    """Synthesises the keyword dataset into `out_dir` and returns the path of its `manifest.csv`.

    `num_voices` accent/variant voices each say every keyword `clips_per_voice`
    times (defaults: 120 voices x 10 keywords x 2 = 2,400 one-second clips,
    about 80 MB, under a minute); `snr_db` bounds the background noise level;
    `backend` picks eSpeak NG (`auto`, `library`, `command`). Refuses a
    non-empty `out_dir` that is not an earlier output (no `dataset.json`), so
    it never mixes into unrelated files; an earlier output is replaced.

    >>> make_keywords("data/keywords", seed=0)  # doctest: +SKIP
    'data/keywords/manifest.csv'
    """
    keywords = [str(k) for k in keywords]
    bad = [k for k in keywords if not k.strip() or os.sep in k or k.startswith(("_", "."))]
    if bad or len(set(keywords)) != len(keywords):
        raise ValueError(
            f"keywords must be distinct folder names not starting with '_' or '.', received {keywords}."
        )
    out_dir = os.fspath(out_dir)
    earlier = os.path.isfile(os.path.join(out_dir, "dataset.json"))
    if os.path.isdir(out_dir) and os.listdir(out_dir) and not earlier:
        raise FileExistsError(
            f"{out_dir!r} is not empty and holds no dataset.json from an earlier make_keywords run; "
            "choose a new or empty directory."
        )
    rng = np.random.default_rng(seed)
    voices = _voices(num_voices, rng)
    takes = [
        {
            "keyword": keyword,
            "voice": voice,
            "n": n,
            "pitch": int(np.clip(round(voice["pitch"] + rng.normal(0, 8)), 0, 99)),
            "speed": int(round(voice["speed"] * rng.uniform(0.85, 1.15))),
            "text": keyword + rng.choice([".", "?", "!"]),
        }
        for voice in voices
        for keyword in keywords
        for n in range(clips_per_voice)
    ]
    requests = [(t["text"], t["voice"]["espeak"], t["speed"], t["pitch"]) for t in takes]
    speech, speech_rate, backend_name = synthesize_in_fresh_process(requests, backend)

    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    clip_samples = int(round(clip_seconds * sample_rate))
    rows = []
    for take, raw in zip(takes, speech):
        voice, snr = take["voice"], round(float(rng.uniform(*snr_db)), 2)
        clip = _render_clip(raw, speech_rate, snr, rng, clip_samples, sample_rate)
        relative = f"{take['keyword']}/{voice['voice']}_{take['n']}.wav"
        os.makedirs(os.path.join(out_dir, take["keyword"]), exist_ok=True)
        write_wav(os.path.join(out_dir, relative), clip, sample_rate)
        row = [relative, take["keyword"], voice["voice"], voice["accent"], voice["variant"]]
        rows.append(row + [take["pitch"], take["speed"], snr])
    noise_dir = os.path.join(out_dir, "_background_noise")
    os.makedirs(noise_dir)
    for k in range(noise_files):
        kind = NOISE_KINDS[k % len(NOISE_KINDS)]
        noise = background_noise(kind, int(noise_seconds * sample_rate), sample_rate, rng)
        write_wav(os.path.join(noise_dir, f"{kind}_{k}.wav"), 0.3 * noise / np.abs(noise).max(), sample_rate)
    manifest = os.path.join(out_dir, "manifest.csv")
    with open(manifest, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "voice", "accent", "variant", "pitch", "speed", "snr_db"])
        writer.writerows(rows)
    summary = {
        "seed": seed,
        "keywords": keywords,
        "num_voices": num_voices,
        "clips_per_voice": clips_per_voice,
        "clip_seconds": clip_seconds,
        "sample_rate": sample_rate,
        "snr_db": list(snr_db),
        "noise_files": noise_files,
        "noise_seconds": noise_seconds,
        "backend": backend_name,
        "voices": [v["voice"] for v in voices],
        "clips": len(rows),
    }
    with open(os.path.join(out_dir, "dataset.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    return manifest


def _render_clip(speech, speech_rate, snr, rng, clip_samples, sample_rate):
    """A synthesised keyword at a random place and level in a clip, over background noise at `snr` dB."""
    speech = trim_silence(speech.astype(np.float32) / 32768.0, speech_rate)
    speech = resample(speech, speech_rate, sample_rate).numpy()[:clip_samples]
    speech *= rng.uniform(0.25, 0.9) / (np.abs(speech).max() + 1e-9)
    clip = np.zeros(clip_samples, np.float32)
    start = int(rng.integers(0, clip_samples - len(speech) + 1))
    clip[start : start + len(speech)] = speech
    noise = background_noise(str(rng.choice(NOISE_KINDS)), clip_samples, sample_rate, rng)
    return clip + noise * np.sqrt(np.mean(speech**2)) / 10.0 ** (snr / 20.0)
