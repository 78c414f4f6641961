"""A TF2 SavedModel or TF-Hub module as a real Keras 3 layer whose variables train and save.

`hub.KerasLayer` is a Keras 2 (`tf_keras`) class: Keras 3 refuses to add it to
a model, and wrapped inside a Keras 3 layer it shows Keras zero weights, so
nothing trains and nothing is saved (tensorflow/hub#903, #920).
`keras.layers.TFSMLayer` keeps `:0` in its variable names, which breaks Adam
("... is not a valid scope name"), and never passes `training`.
`SavedModelLayer` is the one place this toolkit works around both: it wraps
each variable of the loaded object in a `keras.Variable` (a wrapper around the
same `tf.Variable`, so `fit` updates the module in place), tracks it, passes
`training` through, and adds the module's regularization losses.
"""

import keras
import tensorflow as tf
import tensorflow_hub as hub

from tfx_transfer.compat.hub_variables import track_module_variables


def load_module(handle: str, tags=None):
    """Loads a TF-Hub handle (tfhub.dev / Kaggle URL) or a local or `gs://` SavedModel directory."""
    try:
        return hub.load(handle, tags=tags)
    except (OSError, ValueError, tf.errors.OpError) as e:
        raise ValueError(
            f"Could not load the SavedModel / TF-Hub module {handle!r}: {e}\n"
            "Pass a directory holding saved_model.pb, or a TF-Hub handle the machine can download "
            "(set TFHUB_CACHE_DIR to reuse a downloaded copy offline)."
        ) from e


def is_tf1_module(module) -> bool:
    """Whether `module` came from a TF1 SavedModel or TF1 Hub module (no training mode, no update ops).

    TensorFlow's v1 loader gives the root object a `prune` method; `hub.load`
    also flags TF1 Hub format with `_is_hub_module_v1`.
    """
    return bool(getattr(module, "_is_hub_module_v1", False)) or hasattr(module, "prune")


@keras.saving.register_keras_serializable(package="tfx_transfer")
class SavedModelLayer(keras.layers.Layer):
    """Calls a loaded SavedModel; its variables are this layer's Keras weights.

    Args:
        handle: local directory, `gs://` path or TF-Hub handle of the SavedModel.
        signature: `None` to call the object itself in the TF-Hub convention
            (`obj(inputs, training=...)`); else the name of a signature to call
            with keyword tensors (a dict input, or a single tensor when the
            signature has one input). TF1 modules default to `"default"`.
        output_key: key to pick from a dict output (e.g. `"pooled_output"`);
            `None` returns the output as it is. TF1 modules default to `"default"`.
        tags: meta-graph tags for TF1 modules (TF2 SavedModels ignore them).
        trainable: whether the module's trainable variables train. TF1 modules
            cannot: setting `trainable=True` on one raises a `ValueError`.
    """

    def __init__(self, handle, signature=None, output_key=None, tags=None, trainable=False, **kwargs):
        kwargs.setdefault("dtype", "float32")
        self.handle = str(handle)
        self.tags = list(tags) if tags is not None else None
        self._module = load_module(self.handle, tags=self.tags)
        self._tf1 = is_tf1_module(self._module)
        self.signature = signature if signature or not self._tf1 else "default"
        self.output_key = output_key if output_key or not self._tf1 else "default"
        self._check_callable()
        super().__init__(trainable=False, **kwargs)
        self._wrap_variables()
        self.trainable = trainable
        self.built = True

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        if value and getattr(self, "_tf1", False):
            raise ValueError(
                f"{self.handle!r} is a TF1-format SavedModel / Hub module: it has no training mode, "
                "update ops or regularization losses, so it can only be used frozen. Keep this backbone "
                "frozen (no fine-tuning phase that unfreezes it), or use a TF2 version of the module."
            )
        keras.layers.Layer.trainable.fset(self, value)

    def _check_callable(self):
        if self.signature is None:
            if not callable(self._module):
                names = sorted(getattr(self._module, "signatures", {}).keys())
                raise ValueError(
                    f"SavedModel {self.handle!r} has no __call__ (it does not follow the TF2 Hub "
                    f"convention). Pass one of its signatures: signature={names}."
                )
        elif self.signature not in self._module.signatures:
            raise ValueError(
                f"SavedModel {self.handle!r} has no signature {self.signature!r}. "
                f"Available: {sorted(self._module.signatures.keys())}."
            )

    def _wrap_variables(self):
        if self._tf1:
            trainable_refs = set()
        elif hasattr(self._module, "trainable_variables"):
            trainable_refs = {v.ref() for v in self._module.trainable_variables}
        else:
            trainable_refs = {v.ref() for v in self._tf_variables() if v.trainable}
        track_module_variables(self, self._tf_variables(), trainable_refs)

    def _tf_variables(self):
        """The module's `variables` (TF-Hub convention), else those its called function captures."""
        if hasattr(self._module, "variables"):
            return list(self._module.variables)
        if self.signature is not None:
            functions = [self._module.signatures[self.signature]]
        else:
            functions = self._module.__call__.concrete_functions
        unique = {}
        for function in functions:
            for v in function.variables:
                unique.setdefault(v.ref(), v)
        return list(unique.values())

    def call_module(self, inputs, training):
        """Runs the SavedModel (its signature, or `__call__` with `training` where it takes one).

        Adds no losses, so subclasses can call it inside `tf.map_fn`.
        """
        if self.signature is not None:
            function = self._module.signatures[self.signature]
            if isinstance(inputs, dict):
                return function(**inputs)
            (input_name,) = function.structured_input_signature[1].keys()
            return function(**{input_name: inputs})
        if _accepts_training(self._module):
            return self._module(inputs, training=training)
        return self._module(inputs)

    def call(self, inputs, training=None):
        training = bool(training) and self.trainable
        outputs = self.call_module(inputs, training)
        if self.trainable:
            for regularization_loss in getattr(self._module, "regularization_losses", []):
                self.add_loss(regularization_loss())
        if self.output_key is not None:
            if not isinstance(outputs, dict) or self.output_key not in outputs:
                keys = sorted(outputs) if isinstance(outputs, dict) else "a single tensor"
                raise ValueError(
                    f"SavedModel {self.handle!r} returns {keys}; output_key={self.output_key!r} is not one of them."
                )
            outputs = outputs[self.output_key]
        return outputs

    def get_config(self):
        return {
            **super().get_config(),
            "handle": self.handle,
            "signature": self.signature,
            "output_key": self.output_key,
            "tags": self.tags,
        }


def _accepts_training(module) -> bool:
    """Whether the restored `__call__` takes a `training` argument (TF-Hub reusable SavedModel API)."""
    spec = getattr(module.__call__, "function_spec", None)
    if spec is None:
        return False
    args = spec.fullargspec
    return "training" in args.args or "training" in args.kwonlyargs
