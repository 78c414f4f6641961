"""The modality interface and its one registry: data loading, serving preprocessing, augmentation.

A modality is any object (usually a module such as `tfx_transfer.data.image`)
with the three functions of `Modality`; windows are declared by the
`ServingPreprocessor` it makes. A new modality registers itself by name:

>>> modality_for("image").__name__
'tfx_transfer.data.image'
>>> sorted(registered_modalities())
['audio', 'image', 'text']
"""

import importlib
from typing import Callable, Protocol, runtime_checkable

from tfx_transfer.config import ConfigError

_REGISTRY: dict[str, str] = {
    "image": "tfx_transfer.data.image",
    "text": "tfx_transfer.data.text",
    "audio": "tfx_transfer.data.audio",
}


@runtime_checkable
class Modality(Protocol):
    """What training and export need from one kind of input."""

    def load_data(self, recipe, backbone):
        """The recipe's dataset as `DataSplits` of unbatched `(model_inputs, label)` pairs."""

    def make_preprocessor(self, recipe, backbone):
        """The `ServingPreprocessor` shared by the tf.data pipeline and the serving signatures."""

    def make_augmentation(self, recipe) -> Callable | None:
        """A callable `(batch, training) -> batch` applied to training batches, or None."""


def register_modality(name: str, module: str) -> None:
    """Makes `recipe.modality: name` use the functions of the importable `module`."""
    _REGISTRY[name] = module


def registered_modalities() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def modality_for(name: str) -> Modality:
    """The registered modality `name`, imported on first use."""
    if name not in _REGISTRY:
        raise ConfigError(f"modality: {name!r} is not registered. Expected one of: {', '.join(_REGISTRY)}.")
    modality = importlib.import_module(_REGISTRY[name])
    if not isinstance(modality, Modality):
        missing = [f for f in ("load_data", "make_preprocessor", "make_augmentation") if not hasattr(modality, f)]
        raise TypeError(f"Modality {name!r} ({_REGISTRY[name]}) does not define {missing}.")
    return modality
