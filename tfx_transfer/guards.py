"""Callbacks that end a phase safely: on divergence (a non-finite loss) and on a stop request (SIGINT/SIGTERM).

Both stop between batches, put the model back to the last finished epoch where needed, and
raise an exception whose message says what happened and what a re-run will do; neither
lets a non-finite model or a half-finished epoch reach a backup, a checkpoint or an export.

Example (a learning rate that makes the loss overflow):

>>> import keras, numpy as np, tempfile
>>> from tfx_transfer.backup import EpochBackup
>>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
>>> model.compile(keras.optimizers.SGD(1e30), "mse")
>>> backup = EpochBackup(tempfile.mkdtemp(), min_interval_seconds=0)
>>> guard = DivergenceGuard(backup, "head", "phases.0", learning_rate=1e30)
>>> try:
...     model.fit(np.ones((64, 2)), np.ones((64, 1)), epochs=3, batch_size=4, callbacks=[guard, backup], verbose=0)
... except TrainingDiverged as e:
...     print(str(e)[:47])
phase 'head' diverged: the training loss became
"""

import math

import keras

from tfx_transfer import stop


class TrainingDiverged(RuntimeError):
    """A phase's loss or weights became NaN or infinite; the message names the phase, the epoch and the fix."""


class DivergenceGuard(keras.callbacks.Callback):
    """Raises `TrainingDiverged` at the first non-finite loss or weight, after rewinding to the last finished epoch.

    Put it before `backup` in the callback list, so that a non-finite epoch is never backed up.
    `phase_key` (e.g. `phases.1`) and `learning_rate` make the advice in the message concrete.
    """

    def __init__(self, backup, phase_name: str, phase_key: str, learning_rate: float):
        super().__init__()
        self.backup = backup
        self.phase_name, self.phase_key, self.learning_rate = phase_name, phase_key, learning_rate
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self._diverged(f"the training loss became {float(loss)} in epoch {self._epoch + 1}, batch {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        bad = non_finite_variables(self.model)
        if bad:
            self._diverged(f"weights became NaN or infinite in epoch {epoch + 1} ({', '.join(bad[:3])})")

    def _diverged(self, what):
        self.backup.rewind()
        epoch = self.backup.finished_epochs
        kept = f"the end of epoch {epoch}" if epoch else "the start of the phase"
        lower = f"{self.learning_rate / 10:g}"
        raise TrainingDiverged(
            f"phase {self.phase_name!r} diverged: {what}. The model is back at {kept}, the last point with "
            f"finite values, and nothing was exported. Lower {self.phase_key}.learning_rate (now "
            f"{self.learning_rate:g}), e.g. --set {self.phase_key}.learning_rate={lower}, or look for NaN or "
            "infinite values in the data; then run again in a new run directory (--set run_dir=...)."
        )


def non_finite_variables(model) -> list[str]:
    """Paths of `model`'s floating-point variables holding NaN or infinity."""
    return [
        v.path for v in model.weights
        if "float" in str(v.dtype) and not bool(keras.ops.all(keras.ops.isfinite(v.value)))
    ]


def require_finite(model) -> None:
    """Raises `TrainingDiverged` if any weight of `model` is NaN or infinite (checked before saving or exporting)."""
    bad = non_finite_variables(model)
    if bad:
        raise TrainingDiverged(
            f"the trained model has NaN or infinite weights ({', '.join(bad[:3])}); nothing was saved or exported. "
            "Lower the learning rate of the last phase or look for NaN or infinite values in the data."
        )


class StopOnRequest(keras.callbacks.Callback):
    """Honours a SIGINT/SIGTERM stop request (`tfx_transfer.stop`) between batches: backs up, raises `Interrupted`.

    The backup holds the last finished epoch; the message says where a re-run resumes and which
    batches it redoes.
    """

    def __init__(self, backup, phase_name: str):
        super().__init__()
        self.backup, self.phase_name = backup, phase_name
        self._batches = 0

    def on_train_begin(self, logs=None):
        self.check()

    def on_epoch_begin(self, epoch, logs=None):
        self._batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self._batches = batch + 1
        self.check()

    def on_test_batch_end(self, batch, logs=None):
        self.check()

    def check(self):
        """Backs up the last finished epoch and raises `Interrupted` if a stop was requested."""
        signal = stop.requested()
        if signal is None:
            return
        epoch = self.backup.save_finished_epoch()
        if epoch:
            where = f"phase {self.phase_name!r} is backed up after epoch {epoch}: the same command resumes it there"
            if self._batches:
                where += f" and redoes the {self._batches} finished batches of epoch {epoch + 1}"
        else:
            where = f"phase {self.phase_name!r} had not finished an epoch: the same command starts it again at epoch 1"
        raise stop.Interrupted(signal, where + " (finished phases are kept).")
