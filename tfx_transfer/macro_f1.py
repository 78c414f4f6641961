"""Macro-averaged F1 as a streaming Keras metric, for monitoring `val_macro_f1` during `fit`.

Accuracy hides a class that is never predicted; macro-F1 gives every class the same weight.
The mean runs over the classes that occur in the labels or the predictions, as scikit-learn's
`f1_score(average="macro")` does. Counts are summed across replicas under `tf.distribute`.

Example:

```python
model.compile("adam", "categorical_crossentropy", metrics=[MacroF1(num_classes=3)])
```
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfx_transfer")
class MacroF1(keras.metrics.Metric):
    """Macro-F1 of a `multiclass` (one-hot labels, argmax), `binary` (one sigmoid, both classes
    count) or `multilabel` (multi-hot, `threshold`) head.

    >>> import numpy as np
    >>> metric = MacroF1(num_classes=3)
    >>> metric.update_state(np.eye(3)[[0, 0, 1, 2]], np.eye(3)[[0, 0, 1, 1]])
    >>> round(float(metric.result()), 4)  # F1 1.0, 0.6667, 0.0
    0.5556
    """

    def __init__(self, num_classes, kind="multiclass", threshold=0.5, name="macro_f1", **kwargs):
        super().__init__(name=name, **kwargs)
        if kind not in ("multiclass", "binary", "multilabel"):
            raise ValueError(f"MacroF1 kind must be multiclass, binary or multilabel, received {kind!r}.")
        self.num_classes, self.kind, self.threshold = int(num_classes), kind, float(threshold)
        counted = 2 if kind == "binary" else self.num_classes
        self.counts = {
            key: self.add_variable((counted,), initializer="zeros", name=key, aggregation="sum")
            for key in ("true_positives", "false_positives", "false_negatives")
        }

    def update_state(self, y_true, y_pred, sample_weight=None):
        truth, predicted = self._indicators(ops.cast(y_true, "float32"), ops.cast(y_pred, "float32"))
        weight = 1.0 if sample_weight is None else ops.reshape(ops.cast(sample_weight, "float32"), (-1, 1))
        self.counts["true_positives"].assign_add(ops.sum(truth * predicted * weight, axis=0))
        self.counts["false_positives"].assign_add(ops.sum((1.0 - truth) * predicted * weight, axis=0))
        self.counts["false_negatives"].assign_add(ops.sum(truth * (1.0 - predicted) * weight, axis=0))

    def _indicators(self, y_true, y_pred):
        if self.kind == "multiclass":
            return y_true, ops.one_hot(ops.argmax(y_pred, axis=-1), self.num_classes)
        positive = ops.cast(y_pred >= self.threshold, "float32")
        if self.kind == "multilabel":
            return y_true, positive
        truth = ops.reshape(y_true, (-1, 1))
        positive = ops.reshape(positive, (-1, 1))
        return ops.concatenate([1.0 - truth, truth], axis=1), ops.concatenate([1.0 - positive, positive], axis=1)

    def result(self):
        tp, fp, fn = (self.counts[k] for k in ("true_positives", "false_positives", "false_negatives"))
        f1 = ops.divide_no_nan(2.0 * tp, 2.0 * tp + fp + fn)
        seen = ops.cast(tp + fp + fn > 0, "float32")
        return ops.divide_no_nan(ops.sum(f1 * seen), ops.sum(seen))

    def reset_state(self):
        for variable in self.counts.values():
            variable.assign(ops.zeros_like(variable))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "kind": self.kind, "threshold": self.threshold}
