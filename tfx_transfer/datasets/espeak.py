"""eSpeak NG speech synthesis, through the pip wheel `espeakng-loader` or the `espeak-ng` program.

eSpeak NG keeps synthesis state from one utterance to the next within a
process, so the same requests give the same audio only in a fresh process
(with the library's noise generator seeded): `synthesize_in_fresh_process`
runs this file as a script for that. It imports
nothing from `tfx_transfer` (nor TensorFlow), so the child starts in a moment.
"""

import ctypes
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import wave

import numpy as np

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
        ]
        lib.espeak_Info.restype = ctypes.c_char_p
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        self.sample_rate = lib.espeak_Initialize(
            self._AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0
        )
        if self.sample_rate <= 0:
            raise OSError(f"espeak_Initialize failed with the data at {espeakng_loader.get_data_path()}")
        if hasattr(lib, "espeak_ng_SetRandSeed"):  # 1.52 seeds the noise of some voices from the clock
            lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
            lib.espeak_ng_SetRandSeed(0)
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
        command = [self.program, "--stdout", "-z", "-v", voice, "-s", str(int(speed)), "-p", str(int(pitch))]
        command.append(text)
        result = subprocess.run(command, capture_output=True, check=True)
        if not result.stdout:
            raise ValueError(f"eSpeak NG produced no audio for voice {voice!r}: {result.stderr.decode()}")
        return result.stdout

    def synthesize(self, text: str, voice: str, speed: int, pitch: int) -> np.ndarray:
        return read_wav(self._run(text, voice, speed, pitch))[0]


def find_espeak(backend: str = "auto"):
    """An eSpeak NG synthesizer: `library` (pip `espeakng-loader`), `command` (`espeak-ng`) or `auto`."""
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
        raise ValueError(f"expected 16-bit mono WAV from eSpeak NG, received {8 * width}-bit x {channels}")
    start = data.find(b"data") + 8
    samples = np.frombuffer(data[start : start + (len(data) - start) // 2 * 2], dtype="<i2")
    return samples.astype(np.int16), rate


def synthesize_in_fresh_process(requests, backend: str = "auto"):
    """Speaks each `(text, voice, speed, pitch)` in a new Python process.

    Returns the int16 clips, their sample rate and the backend's name.

    Raises `RuntimeError` with the install hint when eSpeak NG is missing.
    """
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "speech.npz")
        child = subprocess.run(
            [sys.executable, os.path.abspath(__file__)],
            input=json.dumps({"requests": [list(r) for r in requests], "backend": backend, "out": out}),
            capture_output=True,
            text=True,
        )
        if child.returncode != 0:
            lines = child.stderr.strip().splitlines() or ["(no output)"]
            raise RuntimeError(f"eSpeak NG synthesis failed: {lines[-1]}")
        info = json.loads(child.stdout.strip().splitlines()[-1])
        with np.load(out) as data:
            clips = np.split(data["samples"], np.cumsum(data["lengths"])[:-1])
    return clips, info["sample_rate"], info["backend"]


def _main():
    job = json.loads(sys.stdin.read())
    espeak = find_espeak(job["backend"])
    clips = [espeak.synthesize(text, voice, speed, pitch) for text, voice, speed, pitch in job["requests"]]
    lengths = np.array([len(c) for c in clips], np.int64)
    np.savez(job["out"], samples=np.concatenate(clips) if clips else np.zeros(0, np.int16), lengths=lengths)
    print(json.dumps({"sample_rate": espeak.sample_rate, "backend": espeak.name}))


if __name__ == "__main__":
    _main()
