"""Makes Keras 3 `fit`, `evaluate` and `predict` work under MultiWorkerMirroredStrategy.

Upstream: https://github.com/keras-team/keras/issues/20585 (also
https://github.com/tensorflow/tensorflow/issues/72388), open in Keras 3.15.1.
Remove this module, and its call in `distribute.make_strategy`, when
tests/test_multi_worker.py::test_unpatched_keras_still_fails_multi_worker_fit fails.
"""

import keras
from keras.src.backend.tensorflow import trainer as tf_trainer

_UNPATCHED = {}


def patch_keras_for_multi_worker() -> None:
    """Makes Keras 3 `fit`/`evaluate`/`predict` work under MultiWorkerMirroredStrategy; idempotent.

    Works around keras-team/keras#20585 (also tensorflow/tensorflow#72388), open
    in Keras 3.15.1, by changing two things in `keras.src.backend.tensorflow.trainer`:

    1. `TensorFlowTrainer._maybe_symbolic_build` (called by `fit` and `evaluate`)
       builds the model from the first data batch, which it gets by
       `strategy.reduce("MEAN", batch)`. MultiWorkerMirroredStrategy's reduce
       does not take the `(x, y)` structure and raises "Attempt to convert a
       value (PerReplica ...) to a Tensor" (string or bool inputs cannot be
       averaged under any strategy). Only shapes and dtypes matter there, so the
       patch takes the first local replica's batch: no collective, no arithmetic.
    2. `reduce_per_replica(..., "auto"|"mean")`, which reduces the step's logs,
       calls `strategy.reduce("MEAN", v, axis=0)` in multi-worker mode: that
       also averages over the tensor's own first axis and raises "Invalid
       reduction dimension 0 for input with 0 dimensions" for the scalar loss
       and metrics. The patch uses `axis=None` (mean across replicas only), what
       the single-worker branch of the same function computes.

    Remove it, with its tests in tests/test_multi_worker.py, once
    `test_unpatched_keras_still_fails_multi_worker_fit` fails, i.e. plain Keras fits.
    """
    if _UNPATCHED:
        return
    trainer_cls = tf_trainer.TensorFlowTrainer
    _UNPATCHED.update(
        maybe_symbolic_build=trainer_cls._maybe_symbolic_build,
        reduce_per_replica=tf_trainer.reduce_per_replica,
    )

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if iterator is not None and self._distribute_strategy is not None:
            for _, _, it in iterator:
                data_batch = keras.tree.map_structure(
                    lambda v: self.distribute_strategy.experimental_local_results(v)[0], next(it)
                )
                break
        return _UNPATCHED["maybe_symbolic_build"](self, data_batch=data_batch)

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and tf_trainer._collective_all_reduce_multi_worker(strategy):
            return keras.tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return _UNPATCHED["reduce_per_replica"](values, strategy, reduction)

    trainer_cls._maybe_symbolic_build = _maybe_symbolic_build
    tf_trainer.reduce_per_replica = reduce_per_replica
