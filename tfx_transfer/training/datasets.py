"""The `fit` inputs of a phase: batched, shuffled, augmented splits with loss targets, and class weights.

>>> import tensorflow as tf
>>> pairs = tf.data.Dataset.from_tensor_slices(([[0.0], [1.0], [2.0]], [0, 1, 1]))
>>> x, y = next(iter(batch_dataset(pairs, 2, "multiclass", num_classes=2)))
>>> y.numpy().tolist()
[[1.0, 0.0], [0.0, 1.0]]
"""

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from tfx_transfer.head_kinds import head_kind

SPLITS = ("train", "validation")


def batch_dataset(
    dataset, batch_size, kind, num_classes, shuffle_seed=None, shuffle_buffer=2048, augment=None, examples=None,
    length_buckets=None, drop_remainder=False,
):
    """Shuffles (when `shuffle_seed` is given), batches, augments and encodes targets for `fit`.

    `kind` is a `head.kind` name; its `HeadKind` turns the loaders' labels into what its loss takes.
    With `examples`, an epoch is that many examples: the shuffled dataset starts over (reshuffled)
    when it runs out, so that every worker of a multi-worker run takes the same number of steps.
    With `length_buckets` (a `LengthBuckets`, for token inputs), batches group texts of similar
    length (shuffled within their bucket when `shuffle_seed` is given) and every batch is cut to its
    bucket's length.
    With `drop_remainder`, a last batch smaller than `batch_size` is left out: every batch then has a
    static shape.
    """
    kind = head_kind(kind)
    if length_buckets is not None and examples is not None:
        raise ValueError("Length bucketing gives each worker its own number of batches; it cannot take `examples`.")
    if length_buckets is not None and drop_remainder:
        raise ValueError("Length bucketing makes batches of several shapes; it cannot take `drop_remainder`.")
    if shuffle_seed is not None:
        dataset = dataset.shuffle(shuffle_buffer, seed=shuffle_seed, reshuffle_each_iteration=True)
    if examples is not None:
        dataset = dataset.repeat().take(examples)
    if length_buckets is None:
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    else:  # the schedules need an epoch's length, and Keras warns "ran out of data" at the end of an unknown one
        dataset = with_length(length_buckets.batches(dataset, batch_size), length_buckets.count_batches(dataset, batch_size))
    if augment is not None:
        augment_batch = tf.autograph.experimental.do_not_convert(lambda x, y: (augment(x, training=True), y))
        dataset = dataset.map(augment_batch, num_parallel_calls=tf.data.AUTOTUNE)
    # Python-level branches on the kind only; AutoGraph would fail to convert them and warn.
    encode = tf.autograph.experimental.do_not_convert(lambda x, y: (x, kind.encode_targets(y, num_classes)))
    return dataset.map(encode).prefetch(tf.data.AUTOTUNE)


def count_examples(dataset) -> int:
    """The length of `dataset`, counted by iterating when tf.data does not know it."""
    n = int(dataset.cardinality())
    return n if n >= 0 else int(dataset.reduce(0, lambda count, _: count + 1))


def with_length(dataset, length: int | None = None):
    """`dataset` with its length known (`length`, or counted), so that progress bars have a total and
    Keras does not warn "Your input ran out of data" at the end of the first epoch of a dataset of
    unknown length."""
    return dataset.apply(tf.data.experimental.assert_cardinality(count_examples(dataset) if length is None else length))


class CountedSplits:
    """The train and validation splits of a `DataSplits`, each counted once per run, not once per phase.

    >>> import tensorflow as tf
    >>> from tfx_transfer.data.base import DataSplits
    >>> train = tf.data.Dataset.range(5).filter(lambda x: True).map(lambda x: (x, x))
    >>> splits = CountedSplits(DataSplits(train, None, None, ["a", "b"]))
    >>> int(splits.get("train").cardinality()), splits.get("validation"), splits.largest()
    (5, None, 5)
    """

    def __init__(self, splits):
        self._splits = splits
        self._lengths = {}

    def get(self, name):
        """Split `name` with its length known, or None when the data has no such split."""
        dataset = getattr(self._splits, name)
        if dataset is None:
            return None
        if name not in self._lengths:
            self._lengths[name] = count_examples(dataset)
        return with_length(dataset, self._lengths[name])

    def largest(self) -> int:
        """Examples in the larger of the train and validation splits."""
        return max(int(d.cardinality()) for d in map(self.get, SPLITS) if d is not None)


def label_counts(dataset, num_classes: int) -> np.ndarray:
    """Examples per class id in an unbatched `(inputs, class id)` dataset."""
    counts = np.zeros(num_classes, dtype=np.int64)
    for labels in dataset.map(lambda x, y: y).batch(4096):
        counts += np.bincount(labels.numpy().astype(np.int64).ravel(), minlength=num_classes)
    return counts


def balanced_weights(counts) -> dict[int, float]:
    """`n / (k * count_c)` per class from the examples per class, as scikit-learn's `class_weight="balanced"`
    (0 for a class without examples).

    >>> balanced_weights([2, 1, 0])
    {0: 0.75, 1: 1.5, 2: 0.0}
    """
    counts = np.asarray(counts, np.int64)
    present = counts > 0
    weights = np.where(present, counts.sum() / (present.sum() * np.maximum(counts, 1)), 0.0)
    return {i: float(w) for i, w in enumerate(weights)}


def balanced_class_weights(dataset, num_classes: int) -> dict[int, float]:
    """`balanced_weights` of the class ids in `dataset`.

    >>> import tensorflow as tf
    >>> pairs = tf.data.Dataset.from_tensor_slices(([0.0, 0.0, 0.0], [0, 0, 1]))
    >>> balanced_class_weights(pairs, 2)
    {0: 0.75, 1: 1.5}
    """
    return balanced_weights(label_counts(dataset, num_classes))


def class_weights(phase, kind, num_classes: int, train_counts: Callable[[], np.ndarray]) -> dict[int, float] | None:
    """`fit`'s `class_weight` for `phase`: None, balanced over the training split's `train_counts()` (`"auto"`),
    or the recipe's, completed with 1.0."""
    if phase.class_weight is None:
        return None
    if not kind.takes_class_weight:
        raise ValueError(f"phase {phase.name!r}: class_weight does not apply to {kind.name} heads; remove it.")
    if phase.class_weight == "auto":
        return balanced_weights(train_counts())
    unknown = [c for c in phase.class_weight if not 0 <= c < num_classes]
    if unknown:
        raise ValueError(
            f"phase {phase.name!r}: class_weight names class ids {unknown}, but the data has "
            f"classes 0..{num_classes - 1}."
        )
    return {c: float(phase.class_weight.get(c, 1.0)) for c in range(num_classes)}
