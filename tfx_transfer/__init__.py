"""tfx_transfer: transfer learning for TensorFlow 2.21 / Keras 3.

A small public API; each name is imported on first use (PEP 562), so
`import tfx_transfer` and `tfx-transfer --help` do not import TensorFlow.
Everything else lives in the sub-packages (`tfx_transfer.data`,
`tfx_transfer.backbones`, `tfx_transfer.export`, ...).

>>> import tfx_transfer as tt
>>> recipe = tt.Recipe(name="demo", data=tt.DataConfig(source="synthetic"))
>>> [phase.name for phase in recipe.phases]
['head', 'fine_tune']
"""

import importlib

from tfx_transfer import saving as _saving

__version__ = "0.1.0"

# public name -> "module:attribute". A module that moves needs a one-line change here.
_PUBLIC = {
    "Recipe": "tfx_transfer.recipe:Recipe",
    "DataConfig": "tfx_transfer.recipe:DataConfig",
    "BackboneConfig": "tfx_transfer.recipe:BackboneConfig",
    "FreezeConfig": "tfx_transfer.recipe:FreezeConfig",
    "HeadConfig": "tfx_transfer.recipe:HeadConfig",
    "AugmentConfig": "tfx_transfer.recipe:AugmentConfig",
    "PhaseConfig": "tfx_transfer.recipe:PhaseConfig",
    "DistributeConfig": "tfx_transfer.recipe:DistributeConfig",
    "ExportConfig": "tfx_transfer.recipe:ExportConfig",
    "load_recipe": "tfx_transfer.recipe:load_recipe",
    "recipe_from_dict": "tfx_transfer.recipe:recipe_from_dict",
    "ConfigError": "tfx_transfer.config:ConfigError",
    "train": "tfx_transfer.pipeline:train",
    "find_phase_learning_rate": "tfx_transfer.pipeline:find_phase_learning_rate",
    "RunResult": "tfx_transfer.pipeline:RunResult",
    "resolve_backbone": "tfx_transfer.backbones.registry:resolve",
    "register_source": "tfx_transfer.backbones.registry:register_source",
    "Backbone": "tfx_transfer.backbones.base:Backbone",
    "apply_freeze_policy": "tfx_transfer.freezing:apply_freeze_policy",
    "freeze_table": "tfx_transfer.freezing:freeze_table",
    "split_before_trainable": "tfx_transfer.frozen_prefix:split_before_trainable",
    "FrozenPrefix": "tfx_transfer.frozen_prefix:FrozenPrefix",
    "build_model": "tfx_transfer.model:build_model",
    "ImagePreprocessor": "tfx_transfer.data.image:ImagePreprocessor",
    "TextPreprocessor": "tfx_transfer.data.text:TextPreprocessor",
    "AudioPreprocessor": "tfx_transfer.data.audio:AudioPreprocessor",
    "export_saved_model": "tfx_transfer.export:export_saved_model",
    "classification_report": "tfx_transfer.evaluate:classification_report",
    "BestEpoch": "tfx_transfer.best_epoch:BestEpoch",
    "MacroF1": "tfx_transfer.macro_f1:MacroF1",
    "LayerwiseAdam": "tfx_transfer.layerwise_optimizers:LayerwiseAdam",
    "LayerwiseAdamW": "tfx_transfer.layerwise_optimizers:LayerwiseAdamW",
    "LayerwiseSGD": "tfx_transfer.layerwise_optimizers:LayerwiseSGD",
    "LayerwiseRMSprop": "tfx_transfer.layerwise_optimizers:LayerwiseRMSprop",
    "block_lr_multipliers": "tfx_transfer.lr_multipliers:block_lr_multipliers",
    "find_learning_rate": "tfx_transfer.lr_find:find_learning_rate",
}

# Former top-level names, now only in their sub-package: an AttributeError says where.
_MOVED = {
    "AudioOptions": "tfx_transfer.data.audio",
    "Block": "tfx_transfer.backbones.base",
    "DataSplits": "tfx_transfer.data.base",
    "FeatureExtractor": "tfx_transfer.model",
    "FramePooling": "tfx_transfer.backbones.audio_layers",
    "HubAudioEncoder": "tfx_transfer.backbones.hub_audio",
    "PhaseRunner": "tfx_transfer.training",
    "SavedModelLayer": "tfx_transfer.backbones.hub",
    "SequencePooling": "tfx_transfer.backbones.kerashub",
    "TextOptions": "tfx_transfer.data.text",
    "WarmupDecay": "tfx_transfer.training",
    "build_head": "tfx_transfer.heads",
    "build_hub_audio_backbone": "tfx_transfer.backbones.hub_audio",
    "build_hub_text_backbone": "tfx_transfer.backbones.hub_text",
    "build_kerashub_backbone": "tfx_transfer.backbones.kerashub",
    "build_packaged": "tfx_transfer.backbones.packaged",
    "build_speech_embedding": "tfx_transfer.backbones.speech_embedding",
    "load_fashion_mnist": "tfx_transfer.data.fashion_mnist",
    "make_keywords": "tfx_transfer.datasets",
    "packaged_names": "tfx_transfer.backbones.packaged",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name in _PUBLIC:
        module, attribute = _PUBLIC[name].split(":")
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value  # later look-ups skip __getattr__
        return value
    if name in _MOVED:
        raise AttributeError(f"tfx_transfer.{name} moved: use `from {_MOVED[name]} import {name}`.")
    raise AttributeError(f"module 'tfx_transfer' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))


_saving.install()
