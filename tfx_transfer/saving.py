"""Registers the toolkit's Keras layers for `keras.saving.load_model`, without importing Keras early.

`import tfx_transfer` must not import TensorFlow (the CLI answers `--help` in well
under a second), yet a saved `.keras` file that holds a `tfx_transfer>PixelNormalization`
layer must load after a plain `import tfx_transfer`. So: when Keras is already
imported, the layers are registered at once; otherwise they are registered right
after Keras is first imported, by a one-shot import hook.

>>> import keras
>>> register_serializables()
>>> keras.saving.get_registered_object("tfx_transfer>PixelNormalization").__name__
'PixelNormalization'
"""

import importlib
import importlib.abc
import importlib.util
import sys

# Every module defining a class with @keras.saving.register_keras_serializable(package="tfx_transfer").
SERIALIZABLE_MODULES = (
    "tfx_transfer.backbones.layers",
    "tfx_transfer.backbones.audio_layers",
    "tfx_transfer.backbones.hub",
    "tfx_transfer.backbones.hub_audio",
    "tfx_transfer.backbones.kerashub",
    "tfx_transfer.backbones.speech_embedding",
    "tfx_transfer.model",
    "tfx_transfer.training",
    "tfx_transfer.layerwise_optimizers",
    "tfx_transfer.macro_f1",
)


def register_serializables() -> None:
    """Imports every module whose layers a saved model may name (registering them with Keras)."""
    for name in SERIALIZABLE_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            # An optional dependency is missing (its layers cannot be in a model then), or the
            # module is the one whose own import of Keras triggered this; it registers itself.
            pass


class _RegisterAfterKerasImport(importlib.abc.MetaPathFinder):
    """Wraps the loader of `keras` so that `register_serializables` runs once Keras is imported."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "keras":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("keras")
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module):
            exec_module(module)
            sys.modules["keras"] = module
            register_serializables()

        spec.loader.exec_module = exec_then_register
        return spec


def install() -> None:
    """Registers the layers now if Keras is imported, else as soon as it is."""
    if "keras" in sys.modules:
        register_serializables()
    elif not any(isinstance(f, _RegisterAfterKerasImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterKerasImport())
