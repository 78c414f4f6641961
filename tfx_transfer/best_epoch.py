"""Keeps a phase's best validation epoch, stops early, and says which epoch was kept and why training stopped.

Replaces `keras.callbacks.EarlyStopping(restore_best_weights=True)` in the phase runner with three
things a run needs: the monitor is configurable (`val_loss`, `val_accuracy`, `val_macro_f1`);
`outcome` records the kept epoch and the reason training stopped, for the console and
`metrics.json`; and with `state_dir` the best weights and the patience count survive a killed run
(written atomically, like `EpochBackup`), so a resumed phase still keeps its best epoch.

With `baseline` (the monitor's value of the weights the phase starts from, e.g. where the previous
phase ended), those weights compete as epoch 0: a phase in which no epoch beats them ends with them,
so fine-tuning cannot leave the model worse on validation than the frozen phase did.

It works on whatever model `fit` trains: the full model, or the head (or the unfrozen blocks) when a
phase trains on cached features, whose layers the full model shares.

Example:

```python
best = BestEpoch(monitor="val_macro_f1", patience=3)
model.fit(train, validation_data=val, epochs=10, callbacks=[best])
print(best.outcome["best_epoch"], best.outcome["stop_reason"])
```
"""

import io
import math

import keras
import numpy as np

from tfx_transfer import storage
from tfx_transfer.log import logger
from tfx_transfer.macro_f1 import MacroF1

# Whether a larger value of each monitor is better.
MONITORS = {"val_loss": False, "val_accuracy": True, "val_macro_f1": True}
RECORD = "best_epoch.json"


def monitor_metrics(monitor: str, kind: str, num_classes: int, threshold: float = 0.5) -> list:
    """The metrics `compile` needs for `monitor` besides loss and accuracy.

    >>> [m.name for m in monitor_metrics("val_macro_f1", "multiclass", 3)]
    ['macro_f1']
    >>> monitor_metrics("val_loss", "multiclass", 3)
    []
    """
    if monitor == "val_macro_f1":
        return [MacroF1(num_classes, kind=kind, threshold=threshold)]
    return []


class BestEpoch(keras.callbacks.Callback):
    """Restores the weights of the best epoch by `monitor` at the end of `fit`; optional early stopping.

    Args:
        monitor: a key of `MONITORS`; `val_macro_f1` needs `MacroF1` among the compiled metrics.
        patience: stop after this many epochs without improvement; `None` never stops early.
        keep_best: restore the best epoch's weights at the end (False: keep the last epoch's).
        min_delta: the smallest change that counts as an improvement.
        state_dir: where the best weights are kept for a resumed run (`None`: in memory only).
        writes: False on non-chief workers of a multi-worker run: they only read `state_dir`.
        baseline: the monitor's value of the starting weights, which then count as epoch 0
            (`None`: only the phase's own epochs compete).

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    >>> model.compile(keras.optimizers.SGD(0.1), "mse")
    >>> best = BestEpoch(patience=None)
    >>> _ = model.fit(np.ones((4, 1)), np.ones((4, 1)), validation_data=(np.ones((2, 1)), np.ones((2, 1))),
    ...               epochs=3, callbacks=[best], verbose=0)
    >>> best.outcome["stop_reason"]
    'ran all 3 epochs'
    >>> model.compile(keras.optimizers.SGD(100.0), "mse")  # a rate that only makes it worse
    >>> start = model.get_weights()
    >>> best = BestEpoch(patience=None, baseline=model.evaluate(np.ones((2, 1)), np.ones((2, 1)), verbose=0))
    >>> _ = model.fit(np.ones((4, 1)), np.ones((4, 1)), validation_data=(np.ones((2, 1)), np.ones((2, 1))),
    ...               epochs=2, callbacks=[best], verbose=0)
    >>> best.outcome["kept_epoch"], all(np.array_equal(a, b) for a, b in zip(model.get_weights(), start))
    (0, True)
    """

    def __init__(self, monitor="val_loss", patience=None, min_delta=0.0, keep_best=True, state_dir=None, writes=True,
                 baseline=None):
        super().__init__()
        if monitor not in MONITORS:
            raise ValueError(f"monitor must be one of {sorted(MONITORS)}, received {monitor!r}.")
        if patience is not None and patience < 1:
            raise ValueError(f"patience must be at least 1 or None, received {patience}.")
        self.monitor, self.patience, self.min_delta = monitor, patience, abs(float(min_delta))
        self.keep_best, self.state_dir, self.writes = keep_best, state_dir, writes
        self.baseline = None if baseline is None or not math.isfinite(baseline) else float(baseline)
        self.outcome = {}

    def on_train_begin(self, logs=None):
        self.best_value = -math.inf if MONITORS[self.monitor] else math.inf
        self.best_epoch, self.best_weights, self.wait = None, None, 0
        self.last_epoch, self.stopped_early = None, False
        self._record = self._read_record()
        if self._record is None and self.baseline is not None and self.keep_best:
            # A phase starting afresh: its starting weights are epoch 0 (a resumed phase reads them from its record).
            self.best_value, self.best_epoch = self.baseline, 0
            self.best_weights = self.model.get_weights()
            if self.state_dir and self.writes:
                self._write_record()

    def on_epoch_begin(self, epoch, logs=None):
        self._resume_from_record(epoch)

    def _resume_from_record(self, epoch):
        """Takes the best epoch recorded before `epoch` (where a resumed fit starts), once."""
        if self._record is None:
            return
        # A resumed fit starts after the last backed-up epoch; a best epoch after it was never backed up.
        if self._record["best_epoch"] <= epoch:
            self.best_value, self.best_epoch = self._record["best_value"], self._record["best_epoch"]
            self.wait = epoch - self.best_epoch
            self.best_weights = self._read_weights(self._record["weights"])
            logger.info(f"best epoch so far: {self.best_epoch} ({self.monitor} {self.best_value:.4f}), from {self.state_dir}")
        self._record = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            raise ValueError(
                f"BestEpoch monitors {self.monitor!r}, but the epoch's logs have only {sorted(logs)}. "
                "val_* keys need validation data; val_macro_f1 needs the MacroF1 metric compiled "
                "(tfx_transfer.macro_f1)."
            )
        self.last_epoch = epoch + 1
        value = float(logs[self.monitor])
        if self._improves(value):
            self.best_value, self.best_epoch, self.wait = value, epoch + 1, 0
            self.best_weights = self.model.get_weights() if self.keep_best else None
            if self.state_dir and self.writes and self.keep_best:
                self._write_record()
        else:
            self.wait += 1
        if self.patience is not None and self.wait >= self.patience:
            self.model.stop_training = True
            self.stopped_early = True

    def on_train_end(self, logs=None):
        epochs = self.params.get("epochs")
        if self._record is not None:  # resumed after the phase's last backed-up epoch: no epoch ran here
            self._resume_from_record(epochs)
            self.last_epoch = epochs
        restored = self.keep_best and self.best_epoch is not None and self.best_epoch != self.last_epoch
        if restored:
            self.model.set_weights(self.best_weights)
        if self.stopped_early:
            reason = (
                f"early stopping after epoch {self.last_epoch}: {self.monitor} did not improve "
                f"for {self.patience} epochs"
            )
        elif self.last_epoch is not None and self.last_epoch < epochs:
            reason = f"stopped after epoch {self.last_epoch} of {epochs} by another callback"
        else:
            reason = f"ran all {epochs} epochs" if epochs != 1 else "ran its one epoch"
        self.outcome = {
            "monitor": self.monitor,
            "best_epoch": self.best_epoch,
            "best_value": None if self.best_epoch is None else self.best_value,
            "epochs_run": self.last_epoch or 0,
            "stop_reason": reason,
            "stopped_early": self.stopped_early,
            "restored_best": restored,
            "kept_epoch": self.best_epoch if restored else self.last_epoch,
        }
        if self.best_epoch is None:
            kept = f"no epoch had a finite {self.monitor}; kept the last weights"
        elif self.best_epoch == 0:
            kept = (f"no epoch beat the weights the phase started with ({self.monitor} {self.best_value:.4f}): "
                    "kept those")
        elif self.keep_best:
            kept = f"kept epoch {self.best_epoch} ({self.monitor} {self.best_value:.4f})"
        else:
            kept = f"kept the last epoch (keep_best_epoch is off; the best was epoch {self.best_epoch})"
        logger.info(f"{reason}; {kept}")
        if self.state_dir and self.writes:
            storage.rmtree(self.state_dir)

    def _improves(self, value) -> bool:
        if math.isnan(value):
            return False
        if MONITORS[self.monitor]:
            return value > self.best_value + self.min_delta
        return value < self.best_value - self.min_delta

    def _write_record(self):
        """Commits the best weights by replacing a small record; a kill mid-write keeps the previous best."""
        previous = self._read_record()
        weights = f"best-epoch-{self.best_epoch}.npz"
        buffer = io.BytesIO()
        np.savez(buffer, *self.best_weights)
        storage.write_bytes_atomic(storage.join(self.state_dir, weights), buffer.getvalue())
        storage.write_json_atomic(
            storage.join(self.state_dir, RECORD),
            {"best_epoch": self.best_epoch, "best_value": self.best_value, "weights": weights},
        )
        if previous is not None and previous["weights"] != weights:
            storage.remove(storage.join(self.state_dir, previous["weights"]))

    def _read_record(self):
        if not self.state_dir or not storage.exists(storage.join(self.state_dir, RECORD)):
            return None
        return storage.read_json(storage.join(self.state_dir, RECORD))

    def _read_weights(self, name):
        with np.load(io.BytesIO(storage.read_bytes(storage.join(self.state_dir, name))), allow_pickle=False) as arrays:
            return [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
