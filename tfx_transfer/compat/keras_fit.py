"""Starting `fit` after epoch N on a model, and clearing that afterwards.

Upstream: Keras 3.15.1 `fit` reads the private `model._initial_epoch` (set by
`keras.callbacks.BackupAndRestore` to resume) but never clears it, so the next `fit`
on the same model skips its first epochs too; no upstream issue filed yet (see
`keras/src/backend/tensorflow/trainer.py`, `fit`: `if self._initial_epoch:`). Remove
`clear_initial_epoch` when tests/compat/test_keras_fit.py::
test_fit_still_keeps_the_initial_epoch_after_training fails; re-check `set_initial_epoch`
on every Keras upgrade (the same file tests that `fit` still reads the attribute).
"""


def set_initial_epoch(model, epoch: int) -> None:
    """Makes the `fit` in progress on `model` continue after `epoch` epochs; call in `on_train_begin`.

    >>> import keras
    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    >>> set_initial_epoch(model, 2)
    >>> model._initial_epoch
    2
    """
    model._initial_epoch = epoch


def clear_initial_epoch(model) -> None:
    """Undoes `set_initial_epoch`, so the next `fit` on `model` starts at epoch 0; call in `on_train_end`.

    >>> import keras
    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    >>> set_initial_epoch(model, 2)
    >>> clear_initial_epoch(model)
    >>> model._initial_epoch is None
    True
    """
    model._initial_epoch = None
