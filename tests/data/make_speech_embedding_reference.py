"""Writes `speech_embedding_reference.npz` from openwakeword's own TFLite models (run once).

The waveform is synthetic and analytic (no random numbers): a gliding tone with
harmonics under a syllable-like envelope, then quantised to 16-bit steps like a
decoded WAV. The reference runs `melspectrogram.tflite` on the whole clip, applies
openWakeWord's `x / 10 + 2`, and feeds 76-frame windows every 8 frames to
`embedding_model.tflite`, as `openwakeword.utils.AudioFeatures._get_embeddings` does.

    python tests/data/make_speech_embedding_reference.py
"""

import pathlib

import numpy as np
import tensorflow as tf

from tfx_transfer.backbones.speech_embedding import PIP_LINE
from tfx_transfer.weights.cache import package_file

OUT = pathlib.Path(__file__).with_name("speech_embedding_reference.npz")


def synthetic_waveform(seconds=1.5, sample_rate=16000):
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    pitch = 140.0 + 60.0 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 1.6 * t), 0.0, None) ** 2
    hiss = 0.05 * np.sin(2 * np.pi * 3100.0 * t) * np.sin(2 * np.pi * 7.0 * t)
    x = 0.3 * envelope * voice + hiss
    return (np.round(x * 32767.0) / 32768.0).astype(np.float32)


def run_tflite(path, inputs):
    interpreter = tf.lite.Interpreter(model_path=str(path))
    interpreter.resize_tensor_input(0, list(inputs.shape), strict=True)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], inputs)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def main():
    models = "resources/models/"
    mel_path = package_file("openwakeword", models + "melspectrogram.tflite", PIP_LINE)
    embedding_path = package_file("openwakeword", models + "embedding_model.tflite", PIP_LINE)
    waveform = synthetic_waveform()
    mel = np.squeeze(run_tflite(mel_path, waveform[None] * 32768.0)) / 10.0 + 2.0
    windows = np.stack([mel[i : i + 76] for i in range(0, mel.shape[0] - 75, 8)])[..., None]
    frames = run_tflite(embedding_path, windows.astype(np.float32)).reshape(len(windows), 96)
    np.savez_compressed(OUT, waveform=waveform, log_mel=mel.astype(np.float32), frames=frames)
    print(f"wrote {OUT}: log_mel {mel.shape}, frames {frames.shape}")


if __name__ == "__main__":
    main()
