"""Google's speech_embedding encoder (from `openwakeword==0.5.1`) rebuilt as Keras layers.

The encoder takes 16 kHz waveforms, computes a 32-band log-mel spectrogram
(10 ms hop) and runs a 20-layer convolutional network over it. The network
maps every 76 mel frames (775 ms) to a 96-d embedding; because its time axis
is only ever convolved `valid` and pooled by 2 three times, running it on the
whole spectrogram gives exactly the embeddings of 76-frame windows every 8
frames (80 ms), the way openWakeWord slides it. Those frame embeddings are
pooled into one vector per clip.

The pretrained weights are read once from the package's TFLite file with
`tf.lite.Interpreter` and cached as `.weights.h5` (see `weights.cache`). The
log-mel front end is made of core TensorFlow ops, so it is part of every
exported SavedModel and TF Serving runs it.
"""

import warnings

import numpy as np
import tensorflow as tf
import keras

from tfx_transfer.backbones.audio_layers import FramePooling, check_pooling
from tfx_transfer.backbones.base import Backbone, Block
from tfx_transfer.weights import cache

PIP_LINE = "pip install --no-deps openwakeword==0.5.1"
EMBEDDING_TFLITE = "resources/models/embedding_model.tflite"
SAMPLE_RATE = 16000
WINDOW_FRAMES = 76  # mel frames seen by one embedding
EMBEDDING_DIM = 96
CACHE_KIND = "packaged/speech_embedding-v1"  # bump the version when the layer order changes

# (filters, kernel) of the 20 convolutions; a 2-D max pool follows the last
# convolution of each stage. (1, 3) kernels are `same`, the others `valid`.
_STAGES = (
    ([(24, (3, 3)), (24, (1, 3)), (24, (3, 1))], (2, 2)),
    ([(48, (1, 3)), (48, (3, 1)), (48, (1, 3)), (48, (3, 1))], (1, 2)),
    ([(72, (1, 3)), (72, (3, 1)), (72, (1, 3)), (72, (3, 1))], (2, 2)),
    ([(96, (1, 3)), (96, (3, 1)), (96, (1, 3)), (96, (3, 1))], (1, 2)),
    ([(96, (1, 3)), (96, (3, 1)), (96, (1, 3)), (96, (3, 1))], (2, 2)),
)
_FINAL_CONV = (EMBEDDING_DIM, (3, 1))  # no activation after it


def slaney_mel_matrix(sample_rate: int, fft_length: int, num_mel_bins: int, fmin: float, fmax: float):
    """Mel filterbank `[fft_length // 2 + 1, num_mel_bins]`, Slaney scale and area normalisation.

    Same definition as `librosa.filters.mel(htk=False, norm="slaney")`, the one
    the speech_embedding front end was built with.
    """

    def hz_to_mel(hz):
        hz = np.asarray(hz, dtype=np.float64)
        linear = hz * 3.0 / 200.0
        log = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
        return np.where(hz >= 1000.0, log, linear)

    def mel_to_hz(mel):
        mel = np.asarray(mel, dtype=np.float64)
        linear = mel * 200.0 / 3.0
        log = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
        return np.where(mel >= 15.0, log, linear)

    fft_freqs = np.linspace(0.0, sample_rate / 2.0, fft_length // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), num_mel_bins + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.T.astype(np.float32)


@keras.saving.register_keras_serializable(package="tfx_transfer")
class LogMelSpectrogram(keras.layers.Layer):
    """Waveforms `[B, samples]` in [-1, 1] -> log-mel frames `[B, frames, num_mel_bins]`.

    Matches openWakeWord's `melspectrogram.tflite` followed by its `x / 10 + 2`
    rescaling: samples scaled to int16 range, a `window_length` periodic Hann
    window centred in each `fft_length` frame every `frame_step` samples (no
    padding), power spectrum, Slaney mel filterbank, `10 * log10(max(x, 1e-10))`
    floored at `top_db` below the clip's maximum, then `x * scale + offset`.
    Clips shorter than `min_frames` frames are zero-padded at the end.
    It has no weights and always computes in float32.
    """

    def __init__(
        self,
        sample_rate=SAMPLE_RATE,
        fft_length=512,
        window_length=400,
        frame_step=160,
        num_mel_bins=32,
        fmin=60.0,
        fmax=3800.0,
        top_db=80.0,
        input_scale=32768.0,
        scale=0.1,
        offset=2.0,
        min_frames=WINDOW_FRAMES,
        **kwargs,
    ):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.sample_rate = int(sample_rate)
        self.fft_length = int(fft_length)
        self.window_length = int(window_length)
        self.frame_step = int(frame_step)
        self.num_mel_bins = int(num_mel_bins)
        self.fmin = float(fmin)
        self.fmax = float(fmax)
        self.top_db = float(top_db)
        self.input_scale = float(input_scale)
        self.scale = float(scale)
        self.offset = float(offset)
        self.min_frames = int(min_frames)
        self._mel_matrix = slaney_mel_matrix(
            self.sample_rate, self.fft_length, self.num_mel_bins, self.fmin, self.fmax
        )

    @property
    def min_samples(self) -> int:
        return (self.min_frames - 1) * self.frame_step + self.fft_length

    def num_frames(self, num_samples: int) -> int:
        return (max(num_samples, self.min_samples) - self.fft_length) // self.frame_step + 1

    def _window(self, frame_length, dtype):
        side = (frame_length - self.window_length) // 2
        hann = tf.signal.hann_window(self.window_length, periodic=True, dtype=dtype)
        return tf.pad(hann, [[side, frame_length - self.window_length - side]])

    def call(self, waveform):
        x = tf.cast(waveform, tf.float32) * self.input_scale
        missing = tf.maximum(0, self.min_samples - tf.shape(x)[1])
        x = tf.pad(x, [[0, 0], [0, missing]])
        spectrum = tf.signal.stft(
            x,
            frame_length=self.fft_length,
            frame_step=self.frame_step,
            fft_length=self.fft_length,
            window_fn=self._window,
        )
        power = tf.math.square(tf.math.real(spectrum)) + tf.math.square(tf.math.imag(spectrum))
        mel = tf.tensordot(power, tf.constant(self._mel_matrix), axes=1)
        decibels = 10.0 * tf.math.log(tf.maximum(mel, 1e-10)) / np.log(10.0)
        floor = tf.reduce_max(decibels, axis=[1, 2], keepdims=True) - self.top_db
        return tf.maximum(decibels, floor) * self.scale + self.offset

    def compute_output_shape(self, input_shape):
        samples = input_shape[1]
        frames = None if samples is None else self.num_frames(samples)
        return (input_shape[0], frames, self.num_mel_bins)

    def get_config(self):
        return {
            **super().get_config(),
            "sample_rate": self.sample_rate,
            "fft_length": self.fft_length,
            "window_length": self.window_length,
            "frame_step": self.frame_step,
            "num_mel_bins": self.num_mel_bins,
            "fmin": self.fmin,
            "fmax": self.fmax,
            "top_db": self.top_db,
            "input_scale": self.input_scale,
            "scale": self.scale,
            "offset": self.offset,
            "min_frames": self.min_frames,
        }


@keras.saving.register_keras_serializable(package="tfx_transfer")
class FlooredLeakyReLU(keras.layers.Layer):
    """`max(leaky_relu(x, negative_slope), floor)`: the activation of speech_embedding.

    >>> [round(float(v), 3) for v in FlooredLeakyReLU()(keras.ops.convert_to_tensor([-5.0, -1.0, 2.0]))]
    [-0.4, -0.2, 2.0]
    """

    def __init__(self, negative_slope=0.2, floor=-0.4, **kwargs):
        super().__init__(**kwargs)
        self.negative_slope = float(negative_slope)
        self.floor = float(floor)

    def call(self, x):
        return keras.ops.maximum(keras.ops.leaky_relu(x, self.negative_slope), self.floor)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope, "floor": self.floor}


def _conv(filters, kernel, index):
    padding = "same" if kernel == (1, 3) else "valid"
    return keras.layers.Conv2D(filters, kernel, padding=padding, name=f"conv_{index}")


def build_encoder_model(pooling: str = "mean") -> tuple[keras.Model, list[Block]]:
    """The speech_embedding feature model with random weights, and its block map.

    Blocks: `frontend` (waveform input, log-mel, reshape: no weights), then
    `conv_block_1` .. `conv_block_5` (one pooling stage each) and
    `conv_block_6` (the final convolution, the pooling over frames and a
    parameter-free standardisation of the pooled vector, see `build_speech_embedding`).
    """
    pooling = check_pooling(pooling)
    waveform = keras.Input(shape=(None,), dtype="float32", name="waveform")
    x = LogMelSpectrogram(name="log_mel")(waveform)
    x = keras.layers.Reshape((-1, 32, 1), name="mel_image")(x)
    blocks = [Block("frontend", ("waveform", "log_mel", "mel_image"))]

    x = keras.layers.ZeroPadding2D(((0, 0), (1, 1)), name="mel_pad")(x)
    names = ["mel_pad"]
    index = 0
    for stage, (convs, pool_size) in enumerate(_STAGES, start=1):
        for filters, kernel in convs:
            index += 1
            x = _conv(filters, kernel, index)(x)
            x = FlooredLeakyReLU(name=f"act_{index}")(x)
            names += [f"conv_{index}", f"act_{index}"]
        x = keras.layers.MaxPooling2D(pool_size, name=f"pool_{stage}")(x)
        names.append(f"pool_{stage}")
        blocks.append(Block(f"conv_block_{stage}", tuple(names)))
        names = []

    index += 1
    x = _conv(*_FINAL_CONV, index)(x)
    x = keras.layers.Reshape((-1, EMBEDDING_DIM), name="frame_embeddings")(x)
    x = FramePooling(pooling, name="frame_pooling")(x)
    x = keras.layers.LayerNormalization(center=False, scale=False, name="embedding_norm")(x)
    top = (f"conv_{index}", "frame_embeddings", "frame_pooling", "embedding_norm")
    blocks.append(Block(f"conv_block_{len(_STAGES) + 1}", top))
    model = keras.Model(waveform, x, name="speech_embedding")
    return model, blocks


def read_tflite_convs(tflite_path) -> list[tuple[np.ndarray, np.ndarray]]:
    """`(kernel [kh, kw, in, out], bias [out])` of each CONV_2D op of a TFLite model, in graph order."""
    with warnings.catch_warnings():  # "tf.lite.Interpreter is deprecated": it still reads weights fine
        warnings.simplefilter("ignore", UserWarning)
        interpreter = tf.lite.Interpreter(model_path=str(tflite_path))
    interpreter.allocate_tensors()
    convs = []
    for op in interpreter._get_ops_details():  # pinned by tests/test_speech_embedding.py
        if op["op_name"] == "CONV_2D":
            kernel = interpreter.get_tensor(op["inputs"][1]).transpose(1, 2, 3, 0)
            bias = interpreter.get_tensor(op["inputs"][2])
            convs.append((kernel, bias))
    return convs


def _convert(tflite_path):
    def convert(target):
        model, _ = build_encoder_model()
        layers = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
        weights = read_tflite_convs(tflite_path)
        if len(weights) != len(layers):
            raise ValueError(
                f"{tflite_path} has {len(weights)} convolutions, expected {len(layers)}: it is not "
                f"the speech_embedding model of openwakeword==0.5.1. Reinstall it with: {PIP_LINE}"
            )
        for layer, (kernel, bias) in zip(layers, weights):
            layer.set_weights([kernel, bias])
        model.save_weights(str(target))

    return convert


def pretrained_weights_path():
    """The cached `.weights.h5` converted from openwakeword's `embedding_model.tflite`."""
    tflite_path = cache.package_file("openwakeword", EMBEDDING_TFLITE, PIP_LINE)
    return cache.cached_conversion(tflite_path, CACHE_KIND, _convert(tflite_path))


def build_speech_embedding(pooling: str | None = "mean", weights: str | None = "pretrained") -> Backbone:
    """The speech_embedding `Backbone`: float32 16 kHz waveforms `[B, samples]` -> `[B, 96]`.

    `pooling` over frames: `mean`, `max` or `mean+max` (`[B, 192]`).

    The pooled vector is standardised per clip (zero mean, unit variance over
    its channels, no parameters): the raw embeddings span about +-90 and the
    toolkit's heads train slowly on that scale (keyword benchmark, frozen
    features: 0.77 -> 0.83 test accuracy). The frame embeddings before it
    (layer `frame_embeddings`) are the encoder's own.

    `weights`: `pretrained` (also accepted: `imagenet`, the `BackboneConfig`
    default, meaning "the pretrained weights") loads the weights shipped in
    `openwakeword==0.5.1`; `none` / `None` keeps a random initialisation.
    Clips need at least 12,512 samples (0.78 s) for one embedding and are
    zero-padded to that; every further 1,280 samples (80 ms) add one frame.
    """
    choice = "none" if weights is None else str(weights).lower()
    if choice not in ("pretrained", "imagenet", "none"):
        raise ValueError(
            "backbone.weights for speech_embedding must be 'pretrained' (the weights shipped in "
            f"openwakeword==0.5.1) or 'none' (random initialisation), received {weights!r}."
        )
    model, blocks = build_encoder_model(check_pooling(pooling))
    if choice != "none":
        model.load_weights(str(pretrained_weights_path()))
    frontend = model.get_layer("log_mel")
    return Backbone(
        name="speech_embedding",
        modality="audio",
        model=model,
        blocks=blocks,
        input_config={"sample_rate": SAMPLE_RATE, "min_samples": frontend.min_samples},
    )
