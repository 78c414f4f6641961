"""`evaluate.predict_dataset` must not print TF's "triggered tf.function retracing" warning.

Cause: TF's frequent-tracing detector keys on the Python function's `__code__`, and
`predict_dataset` builds a new `tf.function` from the same lambda on every call; tracing twice
per call (the full batch, then the smaller last batch) puts 5 traces within 10 calls when
feature caching and evaluation run several models and splits in a row. `predict_dataset`
therefore traces once, on a batch dimension of None.

The check runs in a fresh process: TF prints this warning at most twice per
function per process, so earlier tests would hide it.
"""

import pathlib
import subprocess
import sys

import pytest

CHECK = """
import logging
import keras, numpy as np, tensorflow as tf
from tfx_transfer.evaluate import predict_dataset

warnings = []
class Collect(logging.Handler):
    def emit(self, record):
        warnings.append(record.getMessage())
tf.get_logger().addHandler(Collect())
for _ in range(2):  # like the features model, then the frozen prefix, on train / validation / test
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    for n in (18, 7, 5):
        data = tf.data.Dataset.from_tensor_slices((np.ones((n, 4), "float32"), np.zeros(n, "int32")))
        outputs, labels = predict_dataset(model, data, batch_size=4)
        assert outputs.shape == (n, 3) and labels.shape == (n,)
print("retracing warnings:", sum("retracing" in w for w in warnings))
"""


def test_predictions_over_several_models_and_splits_do_not_warn_about_retracing():
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=300,
                            cwd=pathlib.Path(__file__).parents[1])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "retracing warnings: 0" in result.stdout
