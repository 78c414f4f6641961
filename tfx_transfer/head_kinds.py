"""What a head kind (multiclass, binary, multilabel) means for outputs, loss, metrics, targets and probabilities.

Every module that would branch on `recipe.head.kind` asks the kind's object instead.

>>> kind = head_kind("binary")
>>> kind.output_units(2), kind.activation
(1, 'sigmoid')
>>> kind.class_probabilities(keras.ops.convert_to_tensor([[0.25]])).numpy().tolist()
[[0.75, 0.25]]
"""

import dataclasses

import keras
import tensorflow as tf

from tfx_transfer.config import ConfigError


@dataclasses.dataclass(frozen=True)
class HeadKind:
    """One kind of classification head; the three instances are `MULTICLASS`, `BINARY` and `MULTILABEL`.

    Labels arrive from the data loaders as int class ids (multiclass, binary) or
    multi-hot rows (multilabel); `encode_targets` turns them into what `loss()` takes.
    """

    name: str
    activation: str

    def output_units(self, num_classes: int) -> int:
        """Units of the head's last Dense layer: one sigmoid for binary, one per class otherwise."""
        return 1 if self is BINARY else num_classes

    def check_class_count(self, num_classes: int, source: str = "the data", hint: str = "") -> None:
        """Raises `ConfigError` unless `num_classes` suits this kind.

        `source` names where the classes came from (e.g. a folder); `hint` is appended to the
        "at least 2 classes" error (e.g. "one sub-folder of images per class").
        """
        if num_classes < 2:
            raise ConfigError(f"A classifier needs at least 2 classes, {source} has {num_classes}.{' ' + hint if hint else ''}")
        if self is BINARY and num_classes != 2:
            raise ConfigError(
                f"head.kind 'binary' needs exactly 2 classes, {source} has {num_classes}. Use head.kind: multiclass."
            )

    def loss(self, label_smoothing: float = 0.0) -> keras.losses.Loss:
        if self is MULTICLASS:
            return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
        return keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing)

    def metrics(self, num_classes: int, threshold: float = 0.5) -> list[keras.metrics.Metric]:
        """Training metrics; accuracy is always named `accuracy`."""
        if self is MULTICLASS:
            return [keras.metrics.CategoricalAccuracy(name="accuracy")]
        metrics = [keras.metrics.BinaryAccuracy(name="accuracy", threshold=threshold)]
        if self is MULTILABEL:
            metrics.append(keras.metrics.AUC(name="auc", multi_label=True, num_labels=num_classes))
        return metrics

    def encode_targets(self, labels, num_classes: int):
        """The loaders' labels as the loss's targets: one-hot, a `[batch, 1]` float column, or float multi-hot."""
        if self is MULTICLASS:
            return tf.one_hot(tf.cast(labels, tf.int32), num_classes)
        if self is BINARY:
            return tf.cast(tf.reshape(labels, [-1, 1]), tf.float32)
        return tf.cast(labels, tf.float32)

    def class_probabilities(self, outputs):
        """Head outputs as `[batch, num_classes]` probabilities (binary: `[1 - p, p]`)."""
        if self is BINARY:
            return keras.ops.concatenate([1.0 - outputs, outputs], axis=-1)
        return outputs

    @property
    def takes_class_weight(self) -> bool:
        """Whether `fit(class_weight=...)` applies: not to independent multi-label sigmoids."""
        return self is not MULTILABEL


MULTICLASS = HeadKind("multiclass", "softmax")
BINARY = HeadKind("binary", "sigmoid")
MULTILABEL = HeadKind("multilabel", "sigmoid")
HEAD_KINDS = {kind.name: kind for kind in (MULTICLASS, BINARY, MULTILABEL)}


def head_kind(name: str) -> HeadKind:
    """The `HeadKind` named `name` (a recipe's `head.kind`).

    >>> head_kind("multilabel").loss().name
    'binary_crossentropy'
    """
    try:
        return HEAD_KINDS[name]
    except KeyError:
        raise ConfigError(f"head.kind must be one of {tuple(HEAD_KINDS)}, received {name!r}.") from None
