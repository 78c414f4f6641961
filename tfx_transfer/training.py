"""The phase runner: each phase applies its freeze policy, gets a new optimizer, recompiles and fits.

Example:

```python
results = PhaseRunner(model, head, backbone, splits, recipe, run_dir="runs/flowers").run()
```
"""

import dataclasses
import json
import math
import os
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from tfx_transfer.backup import EpochBackup
from tfx_transfer.best_epoch import BestEpoch, monitor_metrics
from tfx_transfer.distribute import is_chief
from tfx_transfer.evaluate import predict_dataset
from tfx_transfer.freezing import apply_freeze_policy
from tfx_transfer.frozen_prefix import split_before_trainable
from tfx_transfer.layerwise_optimizers import LAYERWISE_OPTIMIZERS, exclude_norms_and_biases
from tfx_transfer.lr_multipliers import block_multipliers, describe_multipliers, variable_multipliers


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

    `lr_multipliers` (`{variable path: multiplier}`, see `lr_multipliers.block_lr_multipliers`)
    scale single variables' rates; weight decay never applies to the rank <= 1 `variables`
    (biases, normalisation scales and offsets).
    """
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


def loss_and_metrics(kind: str, num_classes: int, label_smoothing: float = 0.0, threshold: float = 0.5):
    """The loss and metrics that match a head kind; accuracy is always named `accuracy`."""
    if kind == "multiclass":
        return (
            keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
            [keras.metrics.CategoricalAccuracy(name="accuracy")],
        )
    metrics = [keras.metrics.BinaryAccuracy(name="accuracy", threshold=threshold)]
    if kind == "multilabel":
        metrics.append(keras.metrics.AUC(name="auc", multi_label=True, num_labels=num_classes))
    return keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing), metrics


def encode_labels(kind: str, num_classes: int):
    """Maps the loaders' labels (int ids or multi-hot) to what the loss of `kind` takes."""

    # Python-level branches only; AutoGraph would fail to convert the closure and warn.
    @tf.autograph.experimental.do_not_convert
    def encode(inputs, labels):
        if kind == "multiclass":
            return inputs, tf.one_hot(tf.cast(labels, tf.int32), num_classes)
        if kind == "binary":
            return inputs, tf.cast(tf.reshape(labels, [-1, 1]), tf.float32)
        return inputs, tf.cast(labels, tf.float32)

    return encode


def batch_dataset(dataset, batch_size, kind, num_classes, shuffle_seed=None, shuffle_buffer=2048, augment=None):
    """Shuffles (when `shuffle_seed` is given), batches, augments and encodes labels for `fit`."""
    if shuffle_seed is not None:
        dataset = dataset.shuffle(shuffle_buffer, seed=shuffle_seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    if augment is not None:
        augment_batch = tf.autograph.experimental.do_not_convert(lambda x, y: (augment(x, training=True), y))
        dataset = dataset.map(augment_batch, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.map(encode_labels(kind, num_classes)).prefetch(tf.data.AUTOTUNE)


def count_examples(dataset) -> int:
    n = int(dataset.cardinality())
    return n if n >= 0 else int(dataset.reduce(0, lambda count, _: count + 1))


def with_length(dataset, length: int | None = None):
    """`dataset` with its length known (`length`, or counted), so that progress bars have a total and
    Keras does not warn "Your input ran out of data" at the end of the first epoch of a dataset of
    unknown length."""
    return dataset.apply(tf.data.experimental.assert_cardinality(count_examples(dataset) if length is None else length))


def balanced_class_weights(dataset, num_classes: int) -> dict[int, float]:
    """`n / (k * count_c)` per class, as scikit-learn's `class_weight="balanced"`."""
    counts = np.zeros(num_classes, dtype=np.int64)
    for labels in dataset.map(lambda x, y: y).batch(4096):
        counts += np.bincount(labels.numpy().astype(np.int64).ravel(), minlength=num_classes)
    present = counts > 0
    weights = np.where(present, counts.sum() / (present.sum() * np.maximum(counts, 1)), 0.0)
    return {i: float(w) for i, w in enumerate(weights)}


@dataclasses.dataclass
class PhaseResult:
    """What one phase did; the `phases` entries of `metrics.json`."""

    name: str
    epochs_run: int
    seconds: float
    history: dict
    cached_features: bool
    trainable_blocks: list
    trainable_params: int
    cached_frozen_blocks: list = dataclasses.field(default_factory=list)
    # BestEpoch.outcome: the kept epoch, its monitor value and why training stopped.
    best_epoch: dict = dataclasses.field(default_factory=dict)


class PhaseRunner:
    """Runs a recipe's phases on a built model, checkpointing so a killed run resumes.

    Completed phases are recorded in `run_dir/state.json` with their weights in
    `run_dir/checkpoints/<phase>.weights.h5`; the phase in progress is backed up
    at epoch ends (`EpochBackup`, at most once per `recipe.backup_interval_seconds`)
    and resumes after its last backed-up epoch.
    """

    def __init__(self, model, head, backbone, splits, recipe, run_dir, strategy=None, augment=None, callbacks=()):
        self.model, self.head, self.backbone = model, head, backbone
        self.splits, self.recipe, self.run_dir = splits, recipe, run_dir
        self.strategy = strategy or tf.distribute.get_strategy()
        self.chief = is_chief(self.strategy)
        self.augment = augment
        self.extra_callbacks = list(callbacks)
        self.num_classes = len(splits.class_names)
        self.kind = recipe.head.kind
        self._feature_cache = {}
        self._split_lengths = {}
        self._prefixes = {}

    def run(self) -> list[PhaseResult]:
        state = self._load_state()
        results = []
        for index, phase in enumerate(self.recipe.phases):
            done = state["completed"].get(phase.name)
            if done:
                self.model.load_weights(os.path.join(self.run_dir, "checkpoints", f"{phase.name}.weights.h5"))
                apply_freeze_policy(self.backbone, phase.freeze)
                results.append(PhaseResult(**done))
                print(f"[tfx-transfer] phase {phase.name!r} already completed in {self.run_dir}: skipped.")
                continue
            result = self.run_phase(phase, next(iter(self.recipe.phases[index + 1:]), None))
            results.append(result)
            state["completed"][phase.name] = dataclasses.asdict(result)
            if self.chief:
                os.makedirs(os.path.join(self.run_dir, "checkpoints"), exist_ok=True)
                self.model.save_weights(os.path.join(self.run_dir, "checkpoints", f"{phase.name}.weights.h5"))
                self._save_state(state)
        return results

    def run_phase(self, phase, next_phase=None) -> PhaseResult:
        """Trains one phase. With `next_phase`, a frozen backbone's features are computed through
        the frozen blocks `next_phase` will train on, so that their outputs are computed only once."""
        with self.strategy.scope():
            freeze = apply_freeze_policy(self.backbone, phase.freeze)
            cached = self._reuses_outputs(phase) and not freeze.trainable_layers
            prefix = self._frozen_prefix(freeze) if self._reuses_outputs(phase) and freeze.trainable_layers else None
            ahead = None
            if cached and next_phase:
                ahead = self._frozen_prefix_of(next_phase)
                apply_freeze_policy(self.backbone, phase.freeze)
        augment = self.augment if phase.augment else None
        self._drop_cached_except({"features"} | {p.frozen_blocks for p in (ahead, prefix) if p})
        if cached and ahead:
            self._cached(lambda: ahead.prefix, ahead.frozen_blocks)
            train_set, val_set = self._cached(
                lambda: self._on_prefix(ahead, self._pooled, "features_on_prefix"), "features", source=ahead.frozen_blocks
            )
        elif cached:
            train_set, val_set = self._cached(self._features_model, "features")
        elif prefix:
            train_set, val_set = self._cached(lambda: prefix.prefix, prefix.frozen_blocks)
        else:
            train_set, val_set = self._split("train"), self._split("validation")
        train_set = with_length(train_set)
        val_set = with_length(val_set) if val_set is not None else None
        batch_size = self.recipe.data.batch_size
        train = batch_dataset(
            train_set, batch_size, self.kind, self.num_classes,
            shuffle_seed=self.recipe.seed, shuffle_buffer=self.recipe.data.shuffle_buffer, augment=augment,
        )
        val = batch_dataset(val_set, batch_size, self.kind, self.num_classes) if val_set is not None else None
        steps = max(1, math.ceil(int(train_set.cardinality()) / batch_size))
        with self.strategy.scope():
            if cached:
                trained = self._head_on_features()
            elif prefix:
                trained = self._on_prefix(prefix, self.head, "trainable_part")
            else:
                trained = self.model
            loss, metrics = loss_and_metrics(self.kind, self.num_classes, phase.label_smoothing, self.recipe.head.threshold)
            metrics += monitor_metrics(phase.monitor, self.kind, self.num_classes, self.recipe.head.threshold)
            block_rates = block_multipliers(self.backbone, phase.layer_decay, phase.lr_multipliers)
            trained.compile(
                optimizer=make_optimizer(
                    phase, steps, variable_multipliers(self.backbone, block_rates), trained.trainable_variables
                ),
                loss=loss, metrics=metrics, jit_compile=self.recipe.distribute.jit_compile,
            )
        trainable_params = int(sum(np.prod(w.shape) for w in self.model.trainable_weights))
        trained_rates = {block: rate for block, rate in block_rates.items() if block in freeze.trainable_blocks}
        print(
            f"[tfx-transfer] phase {phase.name!r}: {phase.epochs} epochs, lr {phase.learning_rate:g} "
            f"({phase.optimizer}, {phase.schedule}), trainable backbone blocks: "
            f"{', '.join(freeze.trainable_blocks) or 'none'}; {trainable_params:,} trainable params"
            + ("; training the head on cached backbone features" if cached else "")
            + (f"; training on cached outputs of the frozen blocks {_span(prefix.frozen_blocks)}" if prefix else "")
            + (f"; learning-rate multipliers {describe_multipliers(trained_rates)}" if trained_rates else "")
        )
        backup = EpochBackup(
            os.path.join(self.run_dir, "backup", phase.name), self.recipe.backup_interval_seconds, writes=self.chief
        )
        best = self._best_epoch(phase) if val is not None else None
        start = time.perf_counter()
        trained.fit(
            train,
            validation_data=val,
            epochs=phase.epochs,
            class_weight=self._class_weight(phase),
            callbacks=[backup, *([best] if best else []), *self._callbacks(phase)],
            shuffle=False,  # batch_dataset shuffles, seeded
            verbose=1 if sys.stdout.isatty() else 2,
        )
        seconds = time.perf_counter() - start
        return PhaseResult(
            name=phase.name,
            epochs_run=len(backup.history.get("loss", [])),
            seconds=round(seconds, 3),
            history=backup.history,
            cached_features=cached,
            trainable_blocks=list(freeze.trainable_blocks),
            trainable_params=trainable_params,
            cached_frozen_blocks=list(prefix.frozen_blocks) if prefix else [],
            best_epoch=best.outcome if best else {},
        )

    def _head_on_features(self) -> keras.Model:
        """The part of the head after its parameter-free pooling, which trains on cached features."""
        try:
            pool = self.head.get_layer("pool")
        except ValueError:
            return self.head
        return keras.Model(pool.output, self.head.output, name="head_on_features")

    def _reuses_outputs(self, phase) -> bool:
        """Whether the phase may train on cached outputs of frozen layers: its inputs never change."""
        return phase.cache_features and not (self.augment is not None and phase.augment)

    def _cached(self, make_extractor, key, source=None):
        """Train and validation sets of `make_extractor()`'s outputs, computed once per `key`, from
        the splits or from the cached outputs under `source`."""
        sets = []
        for split in ("train", "validation"):
            dataset = self._cached_dataset(split, source) if source else self._split(split)
            if dataset is None:
                sets.append(None)
                continue
            if (split, key) not in self._feature_cache:
                with self.strategy.scope():
                    extractor = make_extractor()
                self._feature_cache[(split, key)] = predict_dataset(
                    extractor, dataset, self.recipe.data.batch_size, self.recipe.distribute.jit_compile
                )
            sets.append(self._cached_dataset(split, key))
        return sets

    def _cached_dataset(self, split, key):
        if (split, key) not in self._feature_cache:
            return None
        outputs, labels = self._feature_cache[(split, key)]
        outputs = tuple(outputs) if isinstance(outputs, list) else outputs  # tf.data stacks lists
        return tf.data.Dataset.from_tensor_slices((outputs, labels))

    def _drop_cached_except(self, keys):
        """Frees cached outputs no current or next phase uses (frozen-block outputs can be large)."""
        for stale in [k for k in self._feature_cache if k[1] not in keys]:
            del self._feature_cache[stale]

    def _features_model(self) -> keras.Model:
        return keras.Model(self.model.input, self._pooled(self.model.get_layer("backbone").output), name="features")

    def _pooled(self, backbone_output):
        """The head's parameter-free pooling of backbone outputs, if it has one."""
        try:
            return self.head.get_layer("pool")(backbone_output)
        except ValueError:
            return backbone_output

    def _frozen_prefix_of(self, phase):
        """The frozen prefix `phase` would train on; leaves `phase`'s freeze policy applied."""
        if not self._reuses_outputs(phase):
            return None
        freeze = apply_freeze_policy(self.backbone, phase.freeze)
        return self._frozen_prefix(freeze) if freeze.trainable_layers else None

    def _frozen_prefix(self, freeze):
        """The backbone cut before its first trainable block, if there is a prefix worth caching.

        Built once per set of trainable layers, so a phase and the phase looking ahead at it share
        one cut (and one size check)."""
        key = tuple(freeze.trainable_layers)
        if key not in self._prefixes:
            self._prefixes[key] = self._checked_prefix(split_before_trainable(self.backbone, key))
        return self._prefixes[key]

    def _checked_prefix(self, prefix):
        """`prefix` if its outputs for the larger split fit in `recipe.cache_limit_mb`, else None."""
        if prefix is None:
            return None
        example, _ = next(iter(self.splits.train.batch(1)))
        examples = max(int(d.cardinality()) for d in (self._split("train"), self._split("validation")) if d is not None)
        megabytes = prefix.bytes_per_example(example) * examples / 2**20
        if megabytes > self.recipe.cache_limit_mb:
            print(
                f"[tfx-transfer] not caching the outputs of frozen blocks {_span(prefix.frozen_blocks)}: "
                f"{megabytes:,.0f} MB per split is over recipe.cache_limit_mb={self.recipe.cache_limit_mb:g}; "
                "the frozen blocks run in every epoch."
            )
            return None
        return prefix

    def _split(self, name):
        """Split `name` (or None) with its length known; a split of unknown length is counted once
        per runner, not once per phase."""
        dataset = getattr(self.splits, name)
        if dataset is None:
            return None
        if name not in self._split_lengths:
            self._split_lengths[name] = count_examples(dataset)
        return with_length(dataset, self._split_lengths[name])

    def _on_prefix(self, prefix, top, name) -> keras.Model:
        """`top` (the head, or the pooling) on the trainable blocks, from the frozen prefix's outputs;
        shares its layers with the model."""
        inputs = [keras.Input(shape=t.shape[1:], dtype=t.dtype) for t in prefix.prefix.outputs]
        return keras.Model(inputs, top(prefix.suffix(inputs)), name=name)

    def _class_weight(self, phase):
        if phase.class_weight is None:
            return None
        if self.kind == "multilabel":
            raise ValueError(
                f"phase {phase.name!r}: class_weight does not apply to multi-label heads; remove it."
            )
        if phase.class_weight == "auto":
            return balanced_class_weights(self.splits.train, self.num_classes)
        unknown = [c for c in phase.class_weight if not 0 <= c < self.num_classes]
        if unknown:
            raise ValueError(
                f"phase {phase.name!r}: class_weight names class ids {unknown}, but the data has "
                f"classes 0..{self.num_classes - 1}."
            )
        return {c: float(phase.class_weight.get(c, 1.0)) for c in range(self.num_classes)}

    def _best_epoch(self, phase):
        """Keeps the phase's best epoch by `phase.monitor` (unless `keep_best_epoch` is off) and stops it early."""
        return BestEpoch(
            monitor=phase.monitor, patience=phase.early_stopping_patience, keep_best=phase.keep_best_epoch,
            state_dir=os.path.join(self.run_dir, "best", phase.name), writes=self.chief,
        )

    def _callbacks(self, phase):
        callbacks = [
            keras.callbacks.TensorBoard(os.path.join(self.run_dir, "logs", phase.name)),
            keras.callbacks.CSVLogger(os.path.join(self.run_dir, f"history_{phase.name}.csv"), append=True),
        ] if self.chief else []
        return callbacks + self.extra_callbacks

    def _state_path(self):
        return os.path.join(self.run_dir, "state.json")

    def _load_state(self):
        if os.path.exists(self._state_path()):
            with open(self._state_path(), encoding="utf-8") as f:
                return json.load(f)
        return {"completed": {}}

    def _save_state(self, state):
        os.makedirs(self.run_dir, exist_ok=True)
        tmp = self._state_path() + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(state, f, indent=2)
        os.replace(tmp, self._state_path())


def _span(blocks) -> str:
    return blocks[0] if len(blocks) == 1 else f"{blocks[0]}..{blocks[-1]}"
