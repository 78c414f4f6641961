"""Length bucketing for token batches: each batch padded to its longest text, over a few bucket lengths.

Text examples arrive padded to the backbone's `sequence_length` (the
`TextPreprocessor` output: `token_ids`, `padding_mask`, maybe `segment_ids`,
real tokens first). Most of that is padding for short texts, and a transformer
costs the same for a pad as for a word. Here every batch is cut back to the
smallest of a bounded set of bucket lengths that holds its longest text, so XLA
compiles one program per bucket length (and per batch size: full batches and
the last, shorter one), never one per batch.

Every tensor of the inputs dict is cut along its first (token) axis, so the same
functions batch token ids and cached per-token outputs of frozen layers (hidden
states `[T, C]` with their padding mask, stored at each example's bucket length)
alike. Cutting only removes padding: every real token is kept, and a mask-aware
model gives the same outputs.

>>> ds = tf.data.Dataset.from_tensor_slices(
...     ({"token_ids": [[5, 6, 0, 0, 0, 0, 0, 0], [7, 8, 9, 0, 0, 0, 0, 0]],
...       "padding_mask": [[1, 1, 0, 0, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0, 0, 0]]}, [0, 1]))
>>> [x["token_ids"].shape.as_list() for x, _ in batches_by_length(ds, 2, bucket_lengths(8, smallest=4))]
[[2, 4]]
"""

import dataclasses

import numpy as np
import tensorflow as tf

MASK_KEY = "padding_mask"

# Bucket step (tokens) when training runs without XLA. Keras traces its train function with
# `reduce_retracing=True`: after two shapes it traces one for any length, so a bucket every
# 8 tokens costs no compile and computes a fifth fewer positions than powers of two on short texts
# (benchmarks/RESULTS.md, "Bucketing: seconds per fine-tuning epoch").
TEXT_BUCKET_STEP = 8


def bucket_lengths(sequence_length: int, smallest: int = 16, step: int | None = None) -> tuple[int, ...]:
    """Bucket lengths up to `sequence_length` (always the last): powers of two from `smallest`, or every `step` tokens.

    Powers of two keep the shapes few, for XLA, which compiles every shape;
    without XLA a new length costs nothing (`TEXT_BUCKET_STEP`), so buckets
    every `step` tokens pad less.

    >>> bucket_lengths(128)
    (16, 32, 64, 128)
    >>> bucket_lengths(100)
    (16, 32, 64, 100)
    >>> bucket_lengths(40, step=8)
    (8, 16, 24, 32, 40)
    """
    if sequence_length < 1 or smallest < 1 or (step is not None and step < 1):
        raise ValueError(
            f"sequence_length, smallest and step must be positive, received {sequence_length}, {smallest} and {step}."
        )
    if step is not None:
        return (*range(step, sequence_length, step), sequence_length)
    lengths = []
    length = smallest
    while length < sequence_length:
        lengths.append(length)
        length *= 2
    return (*lengths, sequence_length)


def has_token_axis(symbolic) -> bool:
    """Whether a model's symbolic output has a token axis: a second axis without a static length.

    >>> import keras
    >>> has_token_axis(keras.Input((None, 8))), has_token_axis(keras.Input((8,)))
    (True, False)
    """
    return len(symbolic.shape) >= 2 and symbolic.shape[1] is None


def _split_inputs(element):
    """`(inputs dict, rest tuple)` of an element `inputs` or `(inputs, label, ...)`."""
    if isinstance(element, dict):
        return element, ()
    return element[0], tuple(element[1:])


def _join(inputs, rest):
    return (inputs, *rest) if rest else inputs


def _real_tokens(inputs, mask_key):
    return tf.reduce_sum(tf.cast(inputs[mask_key], tf.int32), axis=-1)


def _check_fits(dataset, lengths, mask_key):
    """Raises unless the longest bucket holds the inputs' full length, so no token is ever cut.

    Inputs without a static length are outputs already cut to these buckets (`predict_dataset`'s
    ragged outputs): they fit by construction.
    """
    inputs, _ = _split_inputs(dataset.element_spec)
    if mask_key not in inputs:
        raise ValueError(f"Bucketing needs the {mask_key!r} input to count real tokens; the inputs are {sorted(inputs)}.")
    full = inputs[mask_key].shape[-1]
    increasing = all(a < b for a, b in zip((0, *lengths), lengths))
    if not lengths or not increasing or (full is not None and lengths[-1] < full):
        raise ValueError(
            f"Bucket lengths must be increasing positive ints, the last at least the inputs' sequence length "
            f"({full}) so every text fits; received bucket lengths {list(lengths)}."
        )


def _cut(inputs, length):
    """Every tensor of `inputs` (batched: `[B, T, ...]`) cut to its first `length` tokens."""
    return {name: tensor[:, :length] for name, tensor in inputs.items()}


def _bucket_of(lengths_tensor, tokens):
    """Index of the smallest bucket length >= `tokens` (int64, for `group_by_window`)."""
    return tf.cast(tf.searchsorted(lengths_tensor, tf.reshape(tokens, [1]), side="left")[0], tf.int64)


def batches_by_length(dataset, batch_size: int, lengths, mask_key: str = MASK_KEY):
    """Batches of examples grouped by bucket, each cut to its bucket's length.

    `dataset` holds unbatched elements `inputs` or `(inputs, label[, weight])`
    whose `inputs` dict has tensors `[sequence_length, ...]` and a 0/1
    `padding_mask` (real tokens first). Examples of one bucket are batched in
    the order they arrive, so shuffle `dataset` first for training; when a
    bucket fills a batch it is emitted, and the partial batch of every bucket
    comes at the end. Batch shapes are `[batch_size or fewer, L]` with `L` in
    `lengths`: at most `2 * len(lengths)` shapes. To restore the original order
    (evaluation, feature caches), carry each example's index in the element
    (`LengthBuckets.indexed_batches`) and sort the outputs by it.
    """
    _check_fits(dataset, lengths, mask_key)
    lengths_tensor = tf.constant(lengths, tf.int32)

    def key(*element):
        inputs, _ = _split_inputs(element if len(element) > 1 else element[0])
        return _bucket_of(lengths_tensor, _real_tokens(inputs, mask_key))

    def batch_and_cut(bucket, window):
        def cut(*element):
            inputs, rest = _split_inputs(element if len(element) > 1 else element[0])
            return _join(_cut(inputs, tf.gather(lengths_tensor, bucket)), rest)

        return window.batch(batch_size).map(cut)

    return dataset.group_by_window(key, batch_and_cut, window_size=batch_size)


def token_counts(dataset, mask_key: str = MASK_KEY) -> tuple[int, int]:
    """`(positions computed, real tokens)` over a batched dataset: what padding costs.

    >>> ds = tf.data.Dataset.from_tensor_slices({"padding_mask": [[1, 1, 0, 0], [1, 0, 0, 0]]}).batch(2)
    >>> token_counts(ds)
    (8, 3)
    """
    positions = real = 0
    for element in dataset:
        inputs, _ = _split_inputs(element)
        mask = np.asarray(inputs[mask_key])
        positions += mask.size
        real += int((mask != 0).sum())
    return positions, real


@dataclasses.dataclass(frozen=True)
class LengthBuckets:
    """How a text data set's batches are padded: to the smallest of `lengths` that holds their longest text.

    Batches group texts of one bucket (`batches`: shuffle first for training);
    `indexed_batches` carry each example's position, so outputs computed on
    them go back into the data's order.

    >>> ds = tf.data.Dataset.from_tensor_slices(({"padding_mask": [[1, 0, 0, 0], [1, 1, 1, 0]]}, [0, 1]))
    >>> buckets = LengthBuckets(bucket_lengths(4, smallest=2))
    >>> [x["padding_mask"].shape.as_list() for x, _ in buckets.batches(ds, 2)], buckets.count_batches(ds, 2)
    ([[1, 2], [1, 4]], 2)
    """

    lengths: tuple[int, ...]
    mask_key: str = MASK_KEY

    def batches(self, dataset, batch_size: int):
        """`batches_by_length`; `count_batches` says how many there are, in any order of `dataset`."""
        return batches_by_length(dataset, batch_size, self.lengths, self.mask_key)

    def indexed_batches(self, dataset, batch_size: int):
        """`batches` of `(inputs, label, index)` from `(inputs, label)` elements, `index` an example's position in `dataset`."""
        return self.batches(dataset.enumerate().map(lambda index, element: (*element, index)), batch_size)

    def count_batches(self, dataset, batch_size: int) -> int:
        """How many batches `batches` makes of `dataset` (the same in every epoch: shuffling
        moves texts between batches, not between buckets)."""
        per_bucket = np.bincount(self._bucket_indices(dataset), minlength=len(self.lengths))
        return int(sum(-(-int(n) // batch_size) for n in per_bucket))

    def stored_positions(self, dataset) -> int:
        """Token positions `dataset`'s examples take when each is stored at its bucket's length (a bucketed cache).

        >>> ds = tf.data.Dataset.from_tensor_slices({"padding_mask": [[1, 0, 0, 0], [1, 1, 1, 0]]})
        >>> LengthBuckets((2, 4)).stored_positions(ds)
        6
        """
        return int(np.asarray(self.lengths, np.int64)[self._bucket_indices(dataset)].sum())

    def _bucket_indices(self, dataset) -> np.ndarray:
        """The index of each example's bucket, in `dataset`'s order."""
        tokens = [
            np.asarray(t)
            for t in dataset.map(lambda *element: _real_tokens(_split_inputs(element if len(element) > 1 else element[0])[0], self.mask_key)).batch(4096)
        ]
        tokens = np.concatenate(tokens) if tokens else np.zeros(0, np.int64)
        return np.searchsorted(self.lengths, tokens, side="left")
