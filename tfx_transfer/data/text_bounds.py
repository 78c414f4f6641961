"""The longest text one serving request or example may hold, checked inside the graph.

Tokenizers read a whole string before truncating to the sequence length, so
their work grows with its bytes. `assert_text_length` fails a string longer than
`MAX_TEXT_BYTES` with InvalidArgument instead.

>>> assert_text_length(tf.constant(["short", "texts"])).shape
TensorShape([2])
"""

import tensorflow as tf

# 1 MiB of UTF-8: far beyond the 128-512 tokens an encoder reads, small enough to tokenize quickly.
MAX_TEXT_BYTES = 2**20


def assert_text_length(texts, max_bytes: int = MAX_TEXT_BYTES):
    """`texts` (tf.string of any shape), after checking that none is longer than `max_bytes` bytes."""
    longest = tf.reduce_max(tf.concat([tf.reshape(tf.strings.length(texts), [-1]), [0]], 0))
    check = tf.debugging.Assert(
        longest <= max_bytes, ["a text has", longest, f"bytes; at most {max_bytes} are tokenized"], summarize=1
    )
    with tf.control_dependencies([check]):
        return tf.identity(texts)
