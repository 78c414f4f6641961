"""The Keras callbacks of a phase besides its backup and guards: TensorBoard logs (chief only), early stopping.

(The phase's history CSV is written by `EpochBackup`, from the epochs it has backed up, so a resumed
phase never repeats an epoch in it.)
"""

import keras

import tfx_transfer.storage as storage


def phase_callbacks(phase, run_dir: str, chief: bool, has_validation: bool) -> list[keras.callbacks.Callback]:
    """TensorBoard logs in `run_dir/logs/<phase>` on the chief; early stopping on `val_loss` when the
    phase asks for it and there is a validation split.

    >>> from tfx_transfer.recipe import PhaseConfig
    >>> [type(c).__name__ for c in phase_callbacks(PhaseConfig(), "ram://doc", chief=False, has_validation=True)]
    ['EarlyStopping']
    """
    callbacks = [keras.callbacks.TensorBoard(storage.join(run_dir, "logs", phase.name))] if chief else []
    if has_validation and phase.early_stopping_patience is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss",
                patience=phase.early_stopping_patience,
                restore_best_weights=True,
            )
        )
    return callbacks
