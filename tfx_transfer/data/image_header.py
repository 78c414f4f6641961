"""The pixel count an encoded image declares, read from its header before decoding, with core ops.

Decoding allocates `width * height * channels` bytes that the header asks for:
a few-kilobyte PNG can declare 65535 x 65535 pixels (12 GB). `decode_bounded_image`
reads the dimensions of JPEG (`tf.image.extract_jpeg_shape`), PNG (IHDR), GIF
(logical screen, times its frames) and BMP (info header) first and fails with InvalidArgument
above `MAX_PIXELS`, so one request or dataset file cannot ask for more.

>>> png = tf.io.encode_png(tf.zeros([3, 5, 1], tf.uint8))
>>> int(declared_pixels(png)), decode_bounded_image(png).shape
(15, TensorShape([3, 5, 3]))
"""

import tensorflow as tf

# 64 megapixels: larger than any camera photo a classifier is fed (decoded RGB: 192 MB).
MAX_PIXELS = 2**26


def declared_pixels(image_bytes):
    """int64 `width * height` from the header of JPEG, PNG, GIF or BMP bytes; 0 for other formats.

    For a GIF, the logical screen's pixels times an upper bound on its frames.
    """
    image_bytes = tf.convert_to_tensor(image_bytes, tf.string)

    def unsigned(start, size, little_endian):
        raw = tf.io.decode_raw(tf.strings.substr(image_bytes, start, size), tf.uint8)
        raw = tf.cast(raw[::-1] if not little_endian else raw, tf.int64)
        return tf.reduce_sum(raw * tf.bitwise.left_shift(tf.constant(1, tf.int64), tf.range(size, dtype=tf.int64) * 8))

    def signed32(start):  # BMP heights are negative for top-down images
        value = unsigned(start, 4, little_endian=True)
        return tf.abs(tf.where(value >= 2**31, value - 2**32, value))

    def gif_frames():
        # The decoder expands every frame, even when only the first is kept. Each image descriptor
        # (",") follows a block terminator (0), so counting "\0," bounds the frames from above.
        separators = tf.size(tf.strings.split(image_bytes, sep="\x00,"), out_type=tf.int64) - 1
        return tf.maximum(separators, 1)

    def jpeg():
        shape = tf.cast(tf.image.extract_jpeg_shape(image_bytes), tf.int64)
        return shape[0] * shape[1]

    def at_least(length, branch):  # a header cut short is a broken image, reported by the decoder
        return lambda: tf.cond(tf.strings.length(image_bytes) >= length, branch, lambda: tf.constant(0, tf.int64))

    magic = _prefix(image_bytes, 8)
    return tf.case(
        [
            (tf.io.is_jpeg(image_bytes), jpeg),
            (tf.equal(magic, b"\x89PNG\r\n\x1a\n"), at_least(24, lambda: unsigned(16, 4, False) * unsigned(20, 4, False))),
            (tf.strings.regex_full_match(_prefix(image_bytes, 6), "GIF8[79]a"),
             at_least(10, lambda: unsigned(6, 2, True) * unsigned(8, 2, True) * gif_frames())),
            (tf.equal(_prefix(image_bytes, 2), b"BM"), at_least(26, lambda: signed32(18) * signed32(22))),
        ],
        default=lambda: tf.constant(0, tf.int64),
        exclusive=False,
    )


def _prefix(image_bytes, length: int):
    return tf.strings.substr(image_bytes, 0, tf.minimum(length, tf.strings.length(image_bytes)))


def decode_bounded_image(image_bytes, max_pixels: int = MAX_PIXELS):
    """JPEG/PNG/GIF/BMP bytes -> uint8 `[h, w, 3]` (first GIF frame), refusing headers above `max_pixels`."""
    pixels = declared_pixels(image_bytes)
    check = tf.debugging.Assert(
        pixels <= max_pixels, ["image header declares", pixels, f"pixels; at most {max_pixels} are decoded"], summarize=1
    )
    with tf.control_dependencies([check]):
        return tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
