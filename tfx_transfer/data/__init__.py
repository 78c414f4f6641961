"""Input pipelines, one module per modality, each with `load_data` and `make_preprocessor`."""

import importlib

from tfx_transfer.data.base import DataSplits, Preprocessor


def _modality_module(recipe):
    return importlib.import_module(f"tfx_transfer.data.{recipe.modality}")


def load_data(recipe, backbone) -> DataSplits:
    """The recipe's dataset as unbatched `(model_inputs, label)` splits for its modality."""
    return _modality_module(recipe).load_data(recipe, backbone)


def make_preprocessor(recipe, backbone) -> Preprocessor:
    """The modality's preprocessing, shared by the pipeline and the serving signatures."""
    return _modality_module(recipe).make_preprocessor(recipe, backbone)


__all__ = ["DataSplits", "Preprocessor", "load_data", "make_preprocessor"]
