"""Input pipelines, one module per modality, found through one registry (`data.modality`)."""

from tfx_transfer.data.base import DataSplits, ServingPreprocessor
from tfx_transfer.data.modality import Modality, modality_for, register_modality


def load_data(recipe, backbone) -> DataSplits:
    """The recipe's dataset as unbatched `(model_inputs, label)` splits for its modality."""
    return modality_for(recipe.modality).load_data(recipe, backbone)


def make_preprocessor(recipe, backbone) -> ServingPreprocessor:
    """The modality's preprocessing, shared by the pipeline and the serving signatures."""
    return modality_for(recipe.modality).make_preprocessor(recipe, backbone)


def make_augmentation(recipe):
    """The modality's training-batch augmentation for `recipe`, or None."""
    return modality_for(recipe.modality).make_augmentation(recipe)


__all__ = [
    "DataSplits",
    "Modality",
    "ServingPreprocessor",
    "load_data",
    "make_augmentation",
    "make_preprocessor",
    "modality_for",
    "register_modality",
]
