"""tfx_transfer: transfer learning for TensorFlow 2.21 / Keras 3.

The public API, re-exported here in one place:

>>> import tfx_transfer as tt
>>> recipe = tt.Recipe(name="demo", data=tt.DataConfig(source="synthetic"))
>>> [phase.name for phase in recipe.phases]
['head', 'fine_tune']
"""

from tfx_transfer.backbones.audio_layers import FramePooling
from tfx_transfer.backbones import layers as _serializable_layers  # noqa: F401  (registers PixelNormalization for load_model)
from tfx_transfer.backbones.base import Backbone, Block
from tfx_transfer.best_epoch import BestEpoch
from tfx_transfer.backbones.hub import SavedModelLayer
from tfx_transfer.backbones.hub_audio import HubAudioEncoder, build_hub_audio_backbone
from tfx_transfer.backbones.hub_text import build_hub_text_backbone
from tfx_transfer.backbones.kerashub import SequencePooling, build_kerashub_backbone
from tfx_transfer.backbones.packaged import build_packaged, packaged_names
from tfx_transfer.backbones.registry import register_source
from tfx_transfer.backbones.registry import resolve as resolve_backbone
from tfx_transfer.backbones.speech_embedding import build_speech_embedding
from tfx_transfer.config import ConfigError
from tfx_transfer.data.audio import AudioOptions, AudioPreprocessor
from tfx_transfer.data.base import DataSplits
from tfx_transfer.data_summary import log_data_summary, split_class_counts
from tfx_transfer.data.fashion_mnist import load_fashion_mnist
from tfx_transfer.data.image import ImagePreprocessor
from tfx_transfer.data.text import TextOptions, TextPreprocessor
from tfx_transfer.datasets import make_keywords
from tfx_transfer.evaluate import classification_report
from tfx_transfer.export import export_saved_model
from tfx_transfer.freezing import apply_freeze_policy, freeze_table
from tfx_transfer.frozen_prefix import FrozenPrefix, split_before_trainable
from tfx_transfer.heads import build_head
from tfx_transfer.layerwise_optimizers import LayerwiseAdam, LayerwiseAdamW, LayerwiseRMSprop, LayerwiseSGD
from tfx_transfer.lr_find import find_learning_rate
from tfx_transfer.lr_multipliers import block_lr_multipliers
from tfx_transfer.macro_f1 import MacroF1
from tfx_transfer.model import FeatureExtractor, build_model
from tfx_transfer.pipeline import RunResult, train
from tfx_transfer.recipe import (
    AugmentConfig,
    BackboneConfig,
    DataConfig,
    DistributeConfig,
    ExportConfig,
    FreezeConfig,
    HeadConfig,
    PhaseConfig,
    Recipe,
    load_recipe,
    recipe_from_dict,
)
from tfx_transfer.training import PhaseRunner, WarmupDecay

__version__ = "0.1.0"

__all__ = [
    "AudioOptions",
    "AudioPreprocessor",
    "AugmentConfig",
    "Backbone",
    "BackboneConfig",
    "BestEpoch",
    "Block",
    "ConfigError",
    "DataConfig",
    "DataSplits",
    "DistributeConfig",
    "ExportConfig",
    "FeatureExtractor",
    "FramePooling",
    "FreezeConfig",
    "FrozenPrefix",
    "HeadConfig",
    "HubAudioEncoder",
    "ImagePreprocessor",
    "LayerwiseAdam",
    "LayerwiseAdamW",
    "LayerwiseRMSprop",
    "LayerwiseSGD",
    "MacroF1",
    "PhaseConfig",
    "PhaseRunner",
    "Recipe",
    "RunResult",
    "SavedModelLayer",
    "SequencePooling",
    "TextOptions",
    "TextPreprocessor",
    "WarmupDecay",
    "apply_freeze_policy",
    "block_lr_multipliers",
    "build_head",
    "build_hub_audio_backbone",
    "build_hub_text_backbone",
    "build_kerashub_backbone",
    "build_model",
    "build_packaged",
    "build_speech_embedding",
    "classification_report",
    "export_saved_model",
    "find_learning_rate",
    "freeze_table",
    "load_fashion_mnist",
    "load_recipe",
    "log_data_summary",
    "make_keywords",
    "packaged_names",
    "recipe_from_dict",
    "register_source",
    "resolve_backbone",
    "split_before_trainable",
    "split_class_counts",
    "train",
]
