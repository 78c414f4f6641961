"""`evaluate.predict_dataset` must not print TF's "triggered tf.function retracing" warning.

Cause (verified): TF's frequent-tracing detector keys on the Python function's
`__code__`, and `predict_dataset` builds a new `tf.function` from the same
lambda on every call, which traces twice (the full batch, then the smaller
last batch). Feature caching and evaluation call it for several models and
splits in a row, so 5 traces fall within 10 calls. The fix (in evaluate.py,
replacing the `step = ...` line):

    step = tf.function(lambda x: model(x, training=False), jit_compile=jit_compile)
    step.get_concrete_function(  # one trace for every batch size; TF does not count it as retracing
        tf.nest.map_structure(lambda s: tf.TensorSpec([None, *s.shape], s.dtype), dataset.element_spec[0]))

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


@pytest.mark.xfail(strict=True, reason="fix pending in evaluate.predict_dataset (see the module docstring); "
                   "remove this mark with the fix")
def test_predictions_over_several_models_and_splits_do_not_warn_about_retracing():
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=300,
                            cwd=pathlib.Path(__file__).parents[1])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "retracing warnings: 0" in result.stdout
