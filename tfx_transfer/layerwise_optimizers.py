"""Adam, AdamW, SGD and RMSprop that scale the learning rate per variable, inside one optimizer.

Each variable's update is computed with `learning_rate * multiplier` (its decoupled weight decay
too), so a multiplier means exactly "this variable trains at that fraction of the rate", as a
timm parameter group's `lr_scale` does. Scaling the gradient instead would be undone by Adam's
normalisation. One optimizer keeps one `learning_rate` (schedules, `ReduceLROnPlateau` and the LR
finder drive it as usual) and one step counter; Keras' `MultiOptimizer` would need one optimizer
and one schedule per distinct multiplier and refuses `optimizer.learning_rate`
(tests/test_layerwise_optimizers.py pins both).

Multipliers are keyed by variable path (`variable.path`, e.g. `conv5_block3_1_conv/kernel`), so
the optimizer serialises with the model; variables not listed train at the full rate, and a path
that names no trainable variable is an error when the optimizer is built.

Example:

```python
optimizer = LayerwiseAdamW(1e-4, weight_decay=0.01, lr_multipliers={"stem_conv/kernel": 0.1})
exclude_norms_and_biases(optimizer, model.trainable_variables)
model.compile(optimizer=optimizer, loss="categorical_crossentropy")
```
"""

import collections

import keras


class LayerwiseLearningRates:
    """Mixin for a Keras optimizer: per-variable learning-rate multipliers by variable path."""

    def __init__(self, *args, lr_multipliers=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lr_multipliers = {str(path): float(value) for path, value in (lr_multipliers or {}).items()}

    def build(self, variables):
        paths = collections.Counter(v.path for v in variables)
        unknown = sorted(set(self.lr_multipliers) - set(paths))
        if unknown:
            raise ValueError(
                f"lr_multipliers name variables this optimizer does not train: {unknown[:3]}. Keys are "
                f"`variable.path` of trainable variables, e.g. {next(iter(paths), '<none>')!r}."
            )
        shared = sorted(p for p in self.lr_multipliers if paths[p] > 1)
        if shared:
            raise ValueError(
                f"lr_multipliers name variable paths that several trainable variables share: {shared[:3]}. "
                "Give the model's layers unique names."
            )
        self._multiplier_by_key = {
            self._var_key(v): self.lr_multipliers[v.path] for v in variables if v.path in self.lr_multipliers
        }
        super().build(variables)

    def multiplier(self, variable) -> float:
        """The learning-rate multiplier of `variable` (1.0 when it has none)."""
        return self._multiplier_by_key.get(self._var_key(variable), 1.0)

    def update_step(self, gradient, variable, learning_rate):
        learning_rate = learning_rate * self.multiplier(variable)
        # Decoupled weight decay with the variable's own rate, before the update as Keras orders them.
        if self.weight_decay is not None and self._use_weight_decay(variable):
            decay = keras.ops.cast(learning_rate * self.weight_decay, variable.dtype)
            self.assign_sub(variable, variable * decay)
        super().update_step(gradient, variable, learning_rate)

    def _apply_weight_decay(self, variables):
        """Weight decay is applied in `update_step`, where each variable's multiplier is known."""

    def get_config(self):
        return {**super().get_config(), "lr_multipliers": dict(self.lr_multipliers)}


@keras.saving.register_keras_serializable(package="tfx_transfer")
class LayerwiseAdam(LayerwiseLearningRates, keras.optimizers.Adam):
    """`keras.optimizers.Adam` with `lr_multipliers` (see the module docstring)."""


@keras.saving.register_keras_serializable(package="tfx_transfer")
class LayerwiseAdamW(LayerwiseLearningRates, keras.optimizers.AdamW):
    """`keras.optimizers.AdamW` with `lr_multipliers`; decay is scaled with each variable's rate."""


@keras.saving.register_keras_serializable(package="tfx_transfer")
class LayerwiseSGD(LayerwiseLearningRates, keras.optimizers.SGD):
    """`keras.optimizers.SGD` with `lr_multipliers` (see the module docstring)."""


@keras.saving.register_keras_serializable(package="tfx_transfer")
class LayerwiseRMSprop(LayerwiseLearningRates, keras.optimizers.RMSprop):
    """`keras.optimizers.RMSprop` with `lr_multipliers` (see the module docstring)."""


LAYERWISE_OPTIMIZERS = {
    "adam": LayerwiseAdam,
    "adamw": LayerwiseAdamW,
    "sgd": LayerwiseSGD,
    "rmsprop": LayerwiseRMSprop,
}


def exclude_norms_and_biases(optimizer, variables) -> None:
    """Keeps weight decay off biases and normalisation scales/offsets (every variable of rank <= 1).

    The rule timm and Hugging Face apply to AdamW: decay only matrices and kernels. Call before
    the optimizer is built.

    >>> layer = keras.layers.Dense(2); layer.build((None, 3))
    >>> optimizer = keras.optimizers.AdamW(1e-3)
    >>> exclude_norms_and_biases(optimizer, layer.weights)
    >>> [optimizer._use_weight_decay(v) for v in layer.weights]
    [True, False]
    """
    optimizer.exclude_from_weight_decay(var_list=[v for v in variables if len(v.shape) <= 1])
