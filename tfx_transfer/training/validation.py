"""Validation per input for inputs cut into windows: each epoch is judged as the test metrics and the export judge it.

A long text read as two windows, or a long clip as several, is two or more validation examples to
`fit`, each judged on its part alone. `PerInputValidation` replaces `fit`'s own validation: after
every epoch it predicts the validation windows, averages their outputs per input
(`evaluate.average_per_group`, as test evaluation does; the export averages with the same
`windows.mean_per_group`) and computes the phase's loss
and metrics on one row per input. The best epoch, early stopping and the epoch log then read
`val_*` values of the unit the test metrics report.
"""

import keras
import numpy as np

from tfx_transfer.evaluate import average_per_group, predict_dataset


def windows_share_inputs(group_ids) -> bool:
    """Whether some input has more than one window: only then does validation per input differ from per window.

    >>> windows_share_inputs([0, 1, 1, 2]), windows_share_inputs([0, 1, 2]), windows_share_inputs(None)
    (True, False, False)
    """
    return group_ids is not None and len(np.unique(np.asarray(group_ids))) < len(group_ids)


class PerInputValidation(keras.callbacks.Callback):
    """Sets an epoch's `val_loss` and `val_<metric>` logs from the validation windows averaged per input.

    Put it first among `fit`'s callbacks and give `fit` no `validation_data`: the callbacks after it
    read the values it writes into the epoch's logs.

    Args:
        dataset: the unbatched `(inputs, label)` validation windows, in the order of `group_ids`.
        group_ids: the input each window belongs to (`DataSplits.validation_groups`).
        batch_size: windows per prediction batch.
        loss: the phase's loss (a `keras.losses.Loss` on targets and the model's outputs).
        metrics: fresh `keras.metrics.Metric`s, as the phase compiles them; each is logged as `val_<name>`.
        encode_targets: labels to the loss's targets (`HeadKind.encode_targets` with the class count bound).
        length_buckets: the `LengthBuckets` the windows are batched by, or None.
        between_batches: called between prediction batches (e.g. to honour a stop request).

    Example:

    >>> import tensorflow as tf
    >>> from tfx_transfer.head_kinds import MULTICLASS
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
    >>> windows = tf.data.Dataset.from_tensor_slices(([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], [0, 0, 1]))
    >>> validation = PerInputValidation(windows, [0, 0, 1], batch_size=2, loss=MULTICLASS.loss(),
    ...     metrics=MULTICLASS.metrics(2), encode_targets=lambda labels: MULTICLASS.encode_targets(labels, 2))
    >>> validation.set_model(model)
    >>> logs = {}
    >>> validation.on_epoch_end(0, logs)
    >>> sorted(logs)
    ['val_accuracy', 'val_loss']
    """

    def __init__(self, dataset, group_ids, batch_size: int, loss, metrics, encode_targets, length_buckets=None,
                 jit_compile: bool = False, between_batches=None):
        super().__init__()
        self.dataset, self.batch_size = dataset, batch_size
        self.loss, self.metrics, self.encode_targets = loss, list(metrics), encode_targets
        self.length_buckets, self.jit_compile, self.between_batches = length_buckets, jit_compile, between_batches
        self.group_ids = np.asarray(group_ids)

    def describe(self) -> str:
        """What the console says about this validation, e.g. "validated per input (212 windows of 147 inputs)"."""
        return f"validated per input ({len(self.group_ids)} windows of {len(np.unique(self.group_ids))} inputs)"

    def on_epoch_end(self, epoch, logs=None):
        outputs, labels = predict_dataset(
            self.model, self.dataset, self.batch_size, self.jit_compile, "validating", self.length_buckets,
            between_batches=self.between_batches, quiet_seconds=30.0,  # fit's own validation says nothing
        )
        per_input, input_labels = average_per_group(outputs, labels, self.group_ids)
        targets = self.encode_targets(input_labels)
        values = {"val_loss": float(self.loss(targets, per_input))}
        for metric in self.metrics:
            metric.reset_state()
            metric.update_state(targets, per_input)
            values[f"val_{metric.name}"] = float(metric.result())
        if logs is not None:
            logs.update(sorted(values.items()))  # in the order fit's own validation logs them
