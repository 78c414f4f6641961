"""The typed recipe: what to train, from which backbone, in which phases, exported where.

A recipe is a YAML file read with `yaml.safe_load` into these dataclasses; every
setting can also be given from Python or overridden with `--set a.b=c`.

Example:

```python
recipe = Recipe(
    name="flowers",
    data=DataConfig(source="folder", path="flower_photos"),
    backbone=BackboneConfig(source="keras_apps", name="MobileNetV2"),
)
```
"""

import dataclasses
import os
from typing import Any, Literal

import yaml

from tfx_transfer.config import ConfigError, apply_override, from_dict, parse_override, to_dict
from tfx_transfer.data.audio import AudioOptions
from tfx_transfer.data.text import TextOptions
from tfx_transfer.lr_multipliers import check_multiplier_settings


@dataclasses.dataclass
class DataConfig:
    """Where examples come from and how they are split and batched.

    `source` is `folder` (one sub-folder per class, optionally under `train/`,
    `validation/`, `test/`), `csv` (a CSV/TSV/JSONL file or manifest), `tfds` (a
    TFDS dataset by `tfds_name`), `fashion_mnist`, `bbc_news`, or `synthetic`
    (small generated images for smoke runs).

    `split_manifest`: a `splits.csv` written by an earlier run (or by hand, see
    `tfx_transfer.data.split_manifest`); every example then goes to the split
    its row names instead of a split drawn with the seed, and the fractions
    are not used.

    `drop_remainder: true` leaves out each training epoch's last, smaller batch
    (a different remainder each epoch, as the split is reshuffled), so every
    training step has the same static shape: what XLA on a TPU needs, and it
    spares XLA (`distribute.jit_compile`) a second compilation for the smaller batch.
    Text training batches are then padded to `sequence_length`, not bucketed by length.
    """

    source: str = "folder"
    path: str | None = None
    tfds_name: str | None = None
    tfds_splits: dict[str, str] = dataclasses.field(default_factory=dict)
    data_dir: str | None = None
    download: bool = False
    validation_fraction: float = 0.15
    test_fraction: float = 0.15
    split_manifest: str | None = None
    max_train_examples: int | None = None
    batch_size: int = 32
    drop_remainder: bool = False
    shuffle_buffer: int = 2048
    text: TextOptions = dataclasses.field(default_factory=TextOptions)
    audio: AudioOptions = dataclasses.field(default_factory=AudioOptions)

    def __post_init__(self):
        for name in ("validation_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"data.{name} must be in [0, 1), received {value}.")
        if self.validation_fraction + self.test_fraction >= 1.0:
            raise ConfigError(
                "data.validation_fraction + data.test_fraction must leave training examples, "
                f"received {self.validation_fraction} + {self.test_fraction}."
            )
        if self.batch_size < 1:
            raise ConfigError(f"data.batch_size must be at least 1, received {self.batch_size}.")


MIN_SEQUENCE_LENGTH = 3
# Far above what text encoders take (BERT-style: 512); a KerasHub backbone also checks its own limit.
MAX_SEQUENCE_LENGTH = 65_536


@dataclasses.dataclass
class BackboneConfig:
    """Which pretrained network to start from.

    `source`: `keras_apps` (`name` a keras.applications family such as
    `MobileNetV2`), `packaged` (weights shipped in pip packages, e.g.
    `efficientnet_lite0`), `kerashub` (a KerasHub preset or local preset
    directory), `hub_text` / `hub_audio` (a TF-Hub handle or SavedModel path).
    `weights`: `imagenet`, `none`, or a local weights file (keras_apps).
    `output`: for `hub_audio`, which output of the module holds the per-frame
    embeddings, an index or a key (default 1: YAMNet's `embeddings`).
    """

    source: str = "keras_apps"
    name: str = "MobileNetV2"
    weights: str | None = "imagenet"
    image_size: list[int] | None = None
    sequence_length: int = 128
    pooling: str | None = None
    preprocessor: str | None = None
    output: int | str | None = None

    def __post_init__(self):
        if not MIN_SEQUENCE_LENGTH <= self.sequence_length <= MAX_SEQUENCE_LENGTH:
            raise ConfigError(
                f"backbone.sequence_length must be at least {MIN_SEQUENCE_LENGTH} (tokens for [CLS], [SEP] and "
                f"one of the text) and at most {MAX_SEQUENCE_LENGTH}, received {self.sequence_length}."
            )


@dataclasses.dataclass
class HeadConfig:
    """The new classifier put on the backbone."""

    kind: Literal["multiclass", "binary", "multilabel"] = "multiclass"
    pooling: Literal["avg", "max"] = "avg"
    hidden_units: list[int] = dataclasses.field(default_factory=list)
    activation: str = "relu"
    dropout: float = 0.2
    threshold: float = 0.5

    def __post_init__(self):
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"head.dropout must be in [0, 1), received {self.dropout}.")


@dataclasses.dataclass
class AugmentConfig:
    """Image augmentation with Keras preprocessing layers, active only while training."""

    flip: Literal["none", "horizontal", "vertical", "horizontal_and_vertical"] = "none"
    rotation: float = 0.0
    zoom: float = 0.0
    translation: float = 0.0
    contrast: float = 0.0

    @property
    def enabled(self) -> bool:
        return self.flip != "none" or any((self.rotation, self.zoom, self.translation, self.contrast))


@dataclasses.dataclass
class FreezeConfig:
    """Which backbone layers train. The head always trains.

    Starts from `trainable` (`none`: all frozen; `all`: all trainable), then
    unfreezes the last `last_blocks` blocks, every block from the one holding
    `from_layer` on, and layers whose names match an `include` regex; finally
    freezes layers matching an `exclude` regex. `batchnorm: frozen` keeps every
    BatchNormalization layer in inference mode with fixed statistics.
    """

    trainable: Literal["none", "all"] = "none"
    last_blocks: int = 0
    from_layer: str | None = None
    include: list[str] = dataclasses.field(default_factory=list)
    exclude: list[str] = dataclasses.field(default_factory=list)
    batchnorm: Literal["frozen", "train"] = "frozen"

    def __post_init__(self):
        if self.last_blocks < 0:
            raise ConfigError(f"freeze.last_blocks must be >= 0, received {self.last_blocks}.")


AUTO_LEARNING_RATE = "auto"
MAX_MIN_STEPS = 1_000_000


@dataclasses.dataclass
class PhaseConfig:
    """One training phase: what trains, with which optimizer and schedule, for how long.

    `layer_decay: d` trains the head at `learning_rate`, the top backbone block at `d` times it,
    the block below at `d**2`, and so on; `lr_multipliers` maps block-name regexes (matched in full,
    e.g. `"transformer_layer_[0-3]": 0.1`) to multipliers that override the decay for those blocks.
    The phase keeps the weights of its best epoch by `monitor` (`val_loss`, `val_accuracy` or
    `val_macro_f1`) when `keep_best_epoch` is on; the weights it starts from compete as epoch 0 when
    the phase before monitored the same value (and, for `val_loss`, with the same `label_smoothing`),
    so a fine-tuning phase that only makes validation worse ends where the frozen phase did.
    `min_steps` makes a phase train at least that many optimizer steps: on a small data set it runs
    more epochs than `epochs` (rounded up to whole epochs; the schedule spans them all).
    `early_stopping_patience` counts epochs without improvement of the same monitor. `learning_rate: auto` runs the LR finder (`tfx_transfer.lr_find`)
    on what the phase trains just before it, and trains at its `valley` suggestion.
    """

    name: str = "head"
    epochs: int = 5
    min_steps: int | None = None
    freeze: FreezeConfig = dataclasses.field(default_factory=FreezeConfig)
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    learning_rate: float | Literal["auto"] = 1e-3
    weight_decay: float = 0.0
    schedule: Literal["constant", "cosine", "linear"] = "constant"
    warmup_epochs: float = 0.0
    early_stopping_patience: int | None = 3
    label_smoothing: float = 0.0
    class_weight: str | dict[int, float] | None = None
    augment: bool = True
    cache_features: bool = True
    layer_decay: float | None = None
    lr_multipliers: dict[str, float] = dataclasses.field(default_factory=dict)
    monitor: Literal["val_loss", "val_accuracy", "val_macro_f1"] = "val_loss"
    keep_best_epoch: bool = True

    def __post_init__(self):
        try:
            check_multiplier_settings(self.layer_decay, self.lr_multipliers, f"phase {self.name!r}")
        except ValueError as e:
            raise ConfigError(str(e)) from None
        if self.epochs < 1:
            raise ConfigError(f"phase {self.name!r}: epochs must be at least 1, received {self.epochs}.")
        if self.min_steps is not None and not 1 <= self.min_steps <= MAX_MIN_STEPS:
            raise ConfigError(
                f"phase {self.name!r}: min_steps must be in [1, {MAX_MIN_STEPS}] or null, received {self.min_steps}."
            )
        if isinstance(self.learning_rate, str):
            if self.learning_rate != AUTO_LEARNING_RATE:
                raise ConfigError(
                    f"phase {self.name!r}: learning_rate must be a positive number or 'auto', "
                    f"received {self.learning_rate!r}."
                )
        elif self.learning_rate <= 0:
            raise ConfigError(
                f"phase {self.name!r}: learning_rate must be positive, received {self.learning_rate}."
            )
        if isinstance(self.class_weight, str) and self.class_weight != "auto":
            raise ConfigError(
                f"phase {self.name!r}: class_weight must be 'auto', a mapping class id -> weight, "
                f"or null, received {self.class_weight!r}."
            )

    def epochs_for(self, steps_per_epoch: int) -> int:
        """The epochs to run at `steps_per_epoch` batches per epoch: `epochs`, or more to reach `min_steps`.

        >>> PhaseConfig(epochs=2, min_steps=120).epochs_for(22), PhaseConfig(epochs=2, min_steps=120).epochs_for(92)
        (6, 2)
        """
        if self.min_steps is None or steps_per_epoch < 1:
            return self.epochs
        return max(self.epochs, -(-self.min_steps // steps_per_epoch))


def default_phases() -> list[PhaseConfig]:
    """Head on a frozen backbone, then the last two blocks at a tenth of the rate."""
    return [
        PhaseConfig(name="head", epochs=5, learning_rate=1e-3),
        PhaseConfig(
            name="fine_tune",
            epochs=5,
            freeze=FreezeConfig(last_blocks=2),
            learning_rate=1e-4,
            schedule="cosine",
            warmup_epochs=0.5,
        ),
    ]


@dataclasses.dataclass
class DistributeConfig:
    """The `tf.distribute` strategy, numeric precision and compiler to train under.

    `jit_compile: true` compiles training, feature-caching and evaluation steps
    with XLA. Keras turns XLA off on machines without an accelerator; on CPU it
    still speeds up transformer encoders about 1.4x (benchmarks/RESULTS.md).
    """

    strategy: Literal["default", "one_device", "mirrored", "multi_worker", "tpu"] = "default"
    devices: list[str] = dataclasses.field(default_factory=list)
    tpu: str | None = None
    precision: Literal["float32", "mixed_float16", "mixed_bfloat16"] = "float32"
    jit_compile: bool = False


EXPORT_FORMATS = ("saved_model", "litert")
LITERT_QUANTIZATIONS = ("none", "float16", "dynamic_range", "int8")


@dataclasses.dataclass
class LiteRTConfig:
    """The LiteRT (`.tflite`) models written next to the SavedModel when `export.formats` has `litert`.

    One model per `quantization`: `none` (float32), `float16` (float16
    weights), `dynamic_range` (int8 weights, float activations), `int8` (int8
    weights and activations, calibrated on `representative_examples` training
    examples). Image models take `image_input` pixels (`uint8` or `float32`,
    0..255) at the backbone's size. Latency is the median of `latency_runs`
    single-example runs.
    """

    quantization: list[Literal["none", "float16", "dynamic_range", "int8"]] = dataclasses.field(
        default_factory=lambda: ["none"]
    )
    image_input: Literal["uint8", "float32"] = "uint8"
    representative_examples: int = 100
    latency_runs: int = 50

    def __post_init__(self):
        if not self.quantization:
            raise ConfigError(
                f"export.litert.quantization: list at least one of {list(LITERT_QUANTIZATIONS)}, received []."
            )
        if len(set(self.quantization)) != len(self.quantization):
            raise ConfigError(f"export.litert.quantization: values must be unique, received {self.quantization}.")
        for name in ("representative_examples", "latency_runs"):
            value = getattr(self, name)
            if not 1 <= value <= 10_000:
                raise ConfigError(f"export.litert.{name} must be in [1, 10000], received {value}.")


@dataclasses.dataclass
class ExportConfig:
    """Where the SavedModel for TF Serving is written, and which other formats go next to it.

    `formats` always holds `saved_model`; add `litert` for `.tflite` models
    (settings in `litert`) in `<version>/litert/`.
    """

    enabled: bool = True
    base_dir: str = "saved_models"
    model_name: str | None = None
    version: int | None = None
    warmup_requests: bool = True
    formats: list[Literal["saved_model", "litert"]] = dataclasses.field(default_factory=lambda: ["saved_model"])
    litert: LiteRTConfig = dataclasses.field(default_factory=LiteRTConfig)

    def __post_init__(self):
        if "saved_model" not in self.formats:
            raise ConfigError(
                f"export.formats must include 'saved_model' (the LiteRT models are written inside its "
                f"version directory), received {self.formats}. Use [saved_model, litert]."
            )
        if len(set(self.formats)) != len(self.formats):
            raise ConfigError(f"export.formats: values must be unique, received {self.formats}.")


@dataclasses.dataclass
class Recipe:
    """Everything one transfer-learning run needs."""

    name: str = "model"
    modality: Literal["image", "text", "audio"] = "image"
    seed: int = 42
    run_dir: str | None = None
    # A running phase is backed up at an epoch end when this long has passed since the last
    # backup (0: after every epoch); a killed run resumes from the last backup.
    backup_interval_seconds: float = 60.0
    # A fine-tuning phase without augmentation trains on cached outputs of its frozen blocks when
    # they take at most this many MB per split; otherwise it runs the frozen blocks every epoch.
    cache_limit_mb: float = 1024.0
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    backbone: BackboneConfig = dataclasses.field(default_factory=BackboneConfig)
    head: HeadConfig = dataclasses.field(default_factory=HeadConfig)
    augment: AugmentConfig = dataclasses.field(default_factory=AugmentConfig)
    phases: list[PhaseConfig] = dataclasses.field(default_factory=default_phases)
    distribute: DistributeConfig = dataclasses.field(default_factory=DistributeConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)

    def __post_init__(self):
        if not self.phases:
            raise ConfigError("recipe.phases: at least one phase is needed.")
        names = [p.name for p in self.phases]
        if len(set(names)) != len(names):
            raise ConfigError(f"recipe.phases: phase names must be unique, received {names}.")
        if self.backup_interval_seconds < 0:
            raise ConfigError(
                f"recipe.backup_interval_seconds must be >= 0, received {self.backup_interval_seconds}."
            )

    @property
    def resolved_run_dir(self) -> str:
        return self.run_dir or os.path.join("runs", self.name)

    def to_yaml(self) -> str:
        return yaml.safe_dump(to_dict(self), sort_keys=False)


def load_recipe(path: str | os.PathLike, overrides: list[str] = ()) -> Recipe:
    """Reads a YAML recipe and applies `a.b=c` overrides.

    Relative data paths in the file are left as written (relative to the working
    directory), like the paths of any command-line tool.
    """
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"Recipe file {os.fspath(path)!r} does not exist.") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"Recipe file {os.fspath(path)!r} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        received = "an empty document" if data is None else f"a {type(data).__name__}"
        raise ConfigError(
            f"Recipe file {os.fspath(path)!r} must hold a mapping at the top level (keys such as name, data, "
            f"backbone), received {received}."
        )
    return recipe_from_dict(data, overrides)


def recipe_from_dict(data: dict[str, Any], overrides: list[str] = ()) -> Recipe:
    """Builds a `Recipe` from a plain dict, applying `a.b=c` overrides on top of the defaults."""
    recipe = from_dict(Recipe, data, "recipe")
    if not overrides:
        return recipe
    full = to_dict(recipe)
    for text in overrides:
        apply_override(full, *parse_override(text))
    return from_dict(Recipe, full, "recipe")
