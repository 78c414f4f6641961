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
import ctypes
import io
import json
import os
import shutil
import subprocess
import sys
import wave

import numpy as np

KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
ACCENTS = (
    "en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc",
)
VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "croak", "Andy", "Annie", "Lee", "Michael", "linda", "steph",
    "paul", "robert", "david", "john", "edward", "grandma", "grandpa", "aunty", "benjamin", "max", "quincy",
)  # fmt: skip
NOISE_KINDS = ("white", "pink", "brown", "hum")
INSTALL_HINT = (
    "Synthesising the keyword dataset needs eSpeak NG. Install either the pip wheel (no root needed): "
    "pip install espeakng-loader==0.2.4, or the system package: apt-get install espeak-ng."
)


class EspeakLibrary:
    """eSpeak NG through the shared library and voice data bundled in the `espeakng-loader` wheel."""

    _AUDIO_OUTPUT_SYNCHRONOUS = 2
    _POS_CHARACTER = 1
    _CHARS_UTF8 = 1
    _RATE, _VOLUME, _PITCH = 1, 2, 3
    _CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

    def __init__(self):
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        lib.espeak_Info.restype = ctypes.c_char_p
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        self.sample_rate = lib.espeak_Initialize(
            self._AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0
        )
        if self.sample_rate <= 0:
            raise OSError(f"espeak_Initialize failed with the data at {espeakng_loader.get_data_path()}")
        self._chunks = []
        self._callback = self._CALLBACK(self._collect)  # kept alive as long as the library may call it
        lib.espeak_SetSynthCallback(self._callback)
        self._lib = lib
        self.name = f"espeakng-loader (libespeak-ng {lib.espeak_Info(None).decode()})"

    def _collect(self, samples, count, events):
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(samples, shape=(count,)).copy())
        return 0

    def synthesize(self, text: str, voice: str, speed: int, pitch: int) -> np.ndarray:
        if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"eSpeak NG has no voice {voice!r}.")
        self._lib.espeak_SetParameter(self._RATE, int(speed), 0)
        self._lib.espeak_SetParameter(self._PITCH, int(pitch), 0)
        self._chunks = []
        data = text.encode()
        self._lib.espeak_Synth(data, len(data) + 1, 0, self._POS_CHARACTER, 0, self._CHARS_UTF8, None, None)
        self._lib.espeak_Synchronize()
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)


class EspeakCommand:
    """eSpeak NG through the `espeak-ng` program (the Debian / Homebrew package)."""

    def __init__(self, program: str):
        self.program = program
        version = subprocess.run([program, "--version"], capture_output=True, text=True, check=True).stdout
        self.name = f"{program} ({version.split('Data at')[0].strip()})"
        self.sample_rate = read_wav(self._run("a", "en", 175, 50))[1]

    def _run(self, text, voice, speed, pitch) -> bytes:
        command = [self.program, "--stdout", "-z", "-v", voice, "-s", str(int(speed)), "-p", str(int(pitch)), text]
        result = subprocess.run(command, capture_output=True, check=True)
        if not result.stdout:
            raise ValueError(f"eSpeak NG produced no audio for voice {voice!r}: {result.stderr.decode()}")
        return result.stdout

    def synthesize(self, text: str, voice: str, speed: int, pitch: int) -> np.ndarray:
        return read_wav(self._run(text, voice, speed, pitch))[0]


def find_espeak(backend: str = "auto"):
    """An eSpeak NG synthesizer: `library` (pip `espeakng-loader`), `command` (`espeak-ng` program) or `auto`."""
    if backend not in ("auto", "library", "command"):
        raise ValueError(f"backend must be 'auto', 'library' or 'command', received {backend!r}.")
    errors = []
    if backend in ("auto", "library"):
        try:
            return EspeakLibrary()
        except (ImportError, OSError) as e:
            errors.append(f"espeakng-loader: {e}")
    if backend in ("auto", "command"):
        program = shutil.which("espeak-ng")
        if program:
            return EspeakCommand(program)
        errors.append("no espeak-ng program on PATH")
    raise RuntimeError(f"{INSTALL_HINT} ({'; '.join(errors)})")


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    """16-bit PCM WAV bytes (header sizes may be unset, as when streamed) -> `(int16 samples, rate)`."""
    with wave.open(io.BytesIO(data)) as w:
        rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
    if width != 2 or channels != 1:
        raise ValueError(f"expected 16-bit mono WAV from eSpeak NG, received {8 * width}-bit, {channels} channel(s)")
    start = data.find(b"data") + 8
    samples = np.frombuffer(data[start : start + (len(data) - start) // 2 * 2], dtype="<i2")
    return samples.astype(np.int16), rate


def write_wav(path: str, waveform: np.ndarray, sample_rate: int) -> None:
    """Writes float samples in [-1, 1] as 16-bit PCM mono."""
    pcm = np.clip(np.round(waveform * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())


def resample(waveform: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Band-limited resampling by FFT, the same method the audio pipeline uses in-graph."""
    if rate_in == rate_out or not len(waveform):
        return waveform.astype(np.float32)
    n = len(waveform)
    m = int(round(n * rate_out / rate_in))
    spectrum = np.fft.rfft(waveform.astype(np.float64))
    bins = m // 2 + 1
    out = np.zeros(bins, complex)
    out[: min(bins, len(spectrum))] = spectrum[:bins]
    shorter = min(n, m)
    if shorter % 2 == 0:
        out[shorter // 2] *= 2.0 if m < n else 0.5
    return (np.fft.irfft(out, m) * (m / n)).astype(np.float32)


def trim_silence(waveform: np.ndarray, sample_rate: int, threshold: float = 0.02, margin_seconds: float = 0.02):
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
        noise = sum(rng.uniform(0.2, 1.0) * np.sin(2 * np.pi * k * base * t + rng.uniform(0, 2 * np.pi)) for k in (1, 2, 3, 5))
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
    if num_voices > len(pairs):
        raise ValueError(f"num_voices can be at most {len(pairs)} ({len(ACCENTS)} accents x {len(VARIANTS)} variants).")
    chosen = rng.choice(len(pairs), size=num_voices, replace=False)
    voices = []
    for index in sorted(chosen):
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
    num_voices: int = 40,
    clips_per_voice: int = 4,
    clip_seconds: float = 1.0,
    sample_rate: int = 16000,
    snr_db=(5.0, 30.0),
    noise_files: int = 8,
    noise_seconds: float = 10.0,
    backend: str = "auto",
) -> str:
    """Synthesises the keyword dataset into `out_dir` and returns the path of its `manifest.csv`.

    `num_voices` accent/variant voices each say every keyword `clips_per_voice`
    times; `snr_db` bounds the background noise level. Refuses a non-empty
    `out_dir` that is not an earlier output (no `dataset.json`), so it never
    mixes into unrelated files; an earlier output is replaced.

    eSpeak NG keeps synthesis state from one utterance to the next within a
    process, so the clips are synthesised in a fresh Python child process: the
    same arguments then always give the same files.

    >>> make_keywords("data/keywords", seed=0)  # doctest: +SKIP
    'data/keywords/manifest.csv'
    """
    keywords = [str(k) for k in keywords]
    if len(set(keywords)) != len(keywords) or any(not k.strip() or os.sep in k or k.startswith(("_", ".")) for k in keywords):
        raise ValueError(f"keywords must be distinct, non-empty, and not start with '_' or '.', received {keywords}.")
    out_dir = os.fspath(out_dir)
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        if not os.path.isfile(os.path.join(out_dir, "dataset.json")):
            raise FileExistsError(
                f"{out_dir!r} is not empty and holds no dataset.json from an earlier make_keywords run; "
                "choose a new or empty directory."
            )
        shutil.rmtree(out_dir)
    settings = dict(
        out_dir=out_dir, seed=seed, keywords=keywords, num_voices=num_voices, clips_per_voice=clips_per_voice,
        clip_seconds=clip_seconds, sample_rate=sample_rate, snr_db=list(snr_db), noise_files=noise_files,
        noise_seconds=noise_seconds, backend=backend,
    )
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    child = subprocess.run(
        [sys.executable, "-c", "from tfx_transfer.datasets.keywords import _generate_from_stdin; _generate_from_stdin()"],
        input=json.dumps(settings), capture_output=True, text=True, env=env,
    )
    if child.returncode != 0:
        lines = child.stderr.strip().splitlines() or ["(no output)"]
        raise RuntimeError(f"Synthesising the keyword dataset failed: {lines[-1]}")
    return child.stdout.strip().splitlines()[-1]


def _generate_from_stdin():
    """Entry point of the child process: settings as JSON on stdin, manifest path on stdout."""
    print(_generate(**json.loads(sys.stdin.read())))


def _generate(
    out_dir, seed, keywords, num_voices, clips_per_voice, clip_seconds, sample_rate, snr_db, noise_files,
    noise_seconds, backend,
) -> str:  # fmt: skip
    """The body of `make_keywords`, run in a fresh process."""
    espeak = find_espeak(backend)
    rng = np.random.default_rng(seed)
    voices = _voices(num_voices, rng)
    clip_samples = int(round(clip_seconds * sample_rate))
    rows = []
    for keyword in keywords:
        os.makedirs(os.path.join(out_dir, keyword), exist_ok=True)
    for voice in voices:
        for keyword in keywords:
            for n in range(clips_per_voice):
                pitch = int(np.clip(round(voice["pitch"] + rng.normal(0, 8)), 0, 99))
                speed = int(round(voice["speed"] * rng.uniform(0.85, 1.15)))
                text = keyword + rng.choice([".", "?", "!"])
                speech = espeak.synthesize(text, voice["espeak"], speed, pitch).astype(np.float32) / 32768.0
                speech = resample(trim_silence(speech, espeak.sample_rate), espeak.sample_rate, sample_rate)
                speech = speech[:clip_samples] * (rng.uniform(0.25, 0.9) / (np.abs(speech).max() + 1e-9))
                clip = np.zeros(clip_samples, np.float32)
                start = int(rng.integers(0, clip_samples - len(speech) + 1))
                clip[start : start + len(speech)] = speech
                snr = float(rng.uniform(*snr_db))
                noise = background_noise(str(rng.choice(NOISE_KINDS)), clip_samples, sample_rate, rng)
                speech_rms = np.sqrt(np.mean(speech**2))
                clip += noise * speech_rms / 10.0 ** (snr / 20.0)
                relative = os.path.join(keyword, f"{voice['voice']}_{n}.wav")
                write_wav(os.path.join(out_dir, relative), clip, sample_rate)
                rows.append([relative, keyword, voice["voice"], voice["accent"], voice["variant"], pitch, speed, round(snr, 2)])
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
    settings = {
        "seed": seed, "keywords": keywords, "num_voices": num_voices, "clips_per_voice": clips_per_voice,
        "clip_seconds": clip_seconds, "sample_rate": sample_rate, "snr_db": list(snr_db),
        "noise_files": noise_files, "noise_seconds": noise_seconds, "backend": espeak.name,
        "voices": [v["voice"] for v in voices], "clips": len(rows),
    }  # fmt: skip
    with open(os.path.join(out_dir, "dataset.json"), "w", encoding="utf-8") as f:
        json.dump(settings, f, indent=2)
    return manifest
