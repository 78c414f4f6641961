"""WAV decoding with bounds on what one file may ask for, checked inside the graph.

`tf.audio.decode_wav` checks that the data chunk fits in the bytes it is given
(so the decoded audio is at most twice the file's size), but it trusts the
header's sample rate (0 Hz, 1 Hz and 2**31 Hz all decode) and accepts up to
65535 channels. Resampling then allocates `samples * target_rate / rate`
values: a 20 KB file declaring 1 Hz asks for 160 million samples at 16 kHz.
`decode_bounded_wav` fails such a file with InvalidArgument before any work
that depends on the declared rate. Core ops only, so TF Serving runs it.

>>> audio, rate = decode_bounded_wav(tf.audio.encode_wav(tf.zeros([800, 2]), 8000))
>>> audio.shape, int(rate)
(TensorShape([800, 2]), 8000)
"""

import tensorflow as tf

MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 384_000
MAX_CHANNELS = 64
# One clip's longest duration: bounds resampled samples (and windows) per file or request.
MAX_SECONDS = 600.0
# Dataset files larger than this are skipped without being read.
MAX_WAV_FILE_BYTES = 2**30


def decode_bounded_wav(wav_bytes, max_seconds: float = MAX_SECONDS):
    """16-bit PCM WAV bytes -> `(float32 [samples, channels] in [-1, 1], int32 rate)`, within the bounds.

    Raises InvalidArgument (at run time) for bytes that do not start with a
    RIFF/WAVE header, and when the header declares a sample rate
    outside `MIN_SAMPLE_RATE..MAX_SAMPLE_RATE` Hz, more than `MAX_CHANNELS`
    channels, or more than `max_seconds` of audio.
    """
    wav_bytes = tf.convert_to_tensor(wav_bytes, tf.string)
    head = tf.strings.join([tf.strings.substr(wav_bytes, 0, 12), "\0" * 12])  # 12+ bytes even for short input
    is_wav = tf.logical_and(
        tf.equal(tf.strings.substr(head, 0, 4), b"RIFF"), tf.equal(tf.strings.substr(head, 8, 4), b"WAVE")
    )
    # decode_wav would quote the first bytes in its error, and Python cannot even decode a message
    # holding bytes that are not UTF-8 (UnicodeDecodeError instead of InvalidArgument).
    with tf.control_dependencies([tf.debugging.Assert(is_wav, ["not a WAV file: it does not start with RIFF....WAVE"])]):
        audio, rate = tf.audio.decode_wav(tf.identity(wav_bytes))
    samples, channels = tf.shape(audio)[0], tf.shape(audio)[1]
    checks = [
        (
            tf.logical_and(rate >= MIN_SAMPLE_RATE, rate <= MAX_SAMPLE_RATE),
            ["WAV header declares a sample rate of", rate, f"Hz; expected {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz"],
        ),
        (
            channels <= MAX_CHANNELS,
            ["WAV header declares", channels, f"channels; expected at most {MAX_CHANNELS}"],
        ),
        (
            tf.cast(samples, tf.float64) <= max_seconds * tf.cast(rate, tf.float64),
            ["WAV holds", samples, "samples at", rate, f"Hz, more than the {max_seconds:g} s one clip may last"],
        ),
    ]
    for condition, message in checks:  # in order, so a file breaking several rules gets the first one
        with tf.control_dependencies([tf.debugging.Assert(condition, message, summarize=1)]):
            audio, rate = tf.identity(audio), tf.identity(rate)
    return audio, rate


def assert_waveform_length(waveform, sample_rate: int, max_seconds: float = MAX_SECONDS):
    """`waveform` (float32 `[..., samples]` at `sample_rate`), after checking it lasts at most `max_seconds`."""
    samples = tf.shape(waveform)[-1]
    limit = int(max_seconds * sample_rate)
    check = tf.debugging.Assert(
        samples <= limit, ["waveform has", samples, f"samples, more than {limit} ({max_seconds:g} s at {sample_rate} Hz)"],
        summarize=1,
    )
    with tf.control_dependencies([check]):
        return tf.identity(waveform)
