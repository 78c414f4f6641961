"""The optimizer and learning-rate schedule of one phase.

>>> from tfx_transfer.recipe import PhaseConfig
>>> optimizer = make_optimizer(PhaseConfig(learning_rate=0.01, warmup_epochs=1), steps_per_epoch=10)
>>> type(optimizer).__name__, float(optimizer.learning_rate)
('LayerwiseAdam', 0.0)
"""

import math

import keras

from tfx_transfer.layerwise_optimizers import LAYERWISE_OPTIMIZERS, exclude_norms_and_biases


@keras.saving.register_keras_serializable(package="tfx_transfer")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to `peak` over `warmup_steps`, then constant, cosine or linear decay to 0.

    >>> schedule = WarmupDecay(1.0, warmup_steps=10, total_steps=110, decay="cosine")
    >>> [round(float(schedule(s)), 3) for s in (0, 5, 10, 60, 110)]
    [0.0, 0.5, 1.0, 0.5, 0.0]
    """

    def __init__(self, peak, warmup_steps, total_steps, decay="cosine"):
        if decay not in ("constant", "cosine", "linear"):
            raise ValueError(f"decay must be constant, cosine or linear, received {decay!r}.")
        self.peak = float(peak)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = max(int(total_steps), self.warmup_steps + 1)
        self.decay = decay

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warmup = keras.ops.cast(self.warmup_steps, "float32")
        progress = keras.ops.clip(
            (step - warmup) / float(self.total_steps - self.warmup_steps), 0.0, 1.0
        )
        if self.decay == "cosine":
            factor = 0.5 * (1.0 + keras.ops.cos(math.pi * progress))
        elif self.decay == "linear":
            factor = 1.0 - progress
        else:
            factor = keras.ops.ones_like(progress)
        if self.warmup_steps:
            factor = keras.ops.where(step < warmup, step / warmup, factor)
        return self.peak * factor

    def get_config(self):
        return {
            "peak": self.peak,
            "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps,
            "decay": self.decay,
        }


def make_optimizer(phase, steps_per_epoch: int, lr_multipliers=None, variables=()) -> keras.optimizers.Optimizer:
    """A new optimizer for one phase (Keras refuses to reuse one across trainable-set changes).

    `lr_multipliers` (`{variable path: multiplier}`, see `lr_multipliers.variable_multipliers`)
    scale single variables' rates; weight decay never applies to the rank <= 1 `variables`
    (biases, normalisation scales and offsets).
    """
    if isinstance(phase.learning_rate, str):
        raise ValueError(
            f"phase {phase.name!r}: learning_rate is {phase.learning_rate!r}, not a number; PhaseRunner replaces "
            "'auto' with the LR finder's choice (PhaseRunner.find_learning_rate) before making the optimizer."
        )
    total = phase.epochs * steps_per_epoch
    warmup = int(round(phase.warmup_epochs * steps_per_epoch))
    learning_rate = (
        phase.learning_rate
        if phase.schedule == "constant" and not warmup
        else WarmupDecay(phase.learning_rate, warmup, total, phase.schedule)
    )
    weight_decay = phase.weight_decay or (0.01 if phase.optimizer == "adamw" else None)
    momentum = {"momentum": 0.9} if phase.optimizer == "sgd" else {}
    optimizer = LAYERWISE_OPTIMIZERS[phase.optimizer](
        learning_rate, weight_decay=weight_decay, lr_multipliers=lr_multipliers, **momentum
    )
    exclude_norms_and_biases(optimizer, variables)
    return optimizer
