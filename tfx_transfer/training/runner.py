"""`PhaseRunner`: for each phase, plan it, set its trainable flags, build its inputs, compile and fit.

Example:

```python
results = PhaseRunner(model, head, backbone, splits, recipe, run_dir="runs/flowers").run()
```
"""

import dataclasses
import sys
import time

import keras
import numpy as np
import tensorflow as tf
from keras.src.trainers.data_adapters.tf_dataset_adapter import make_class_weight_map_fn

import tfx_transfer.storage as storage
from tfx_transfer.backup import EpochBackup, discard
from tfx_transfer.best_epoch import BestEpoch, monitor_metrics
from tfx_transfer.config import ConfigError
from tfx_transfer.data.shares import WHOLE
from tfx_transfer.distribute import from_every_worker, is_chief, per_replica_batch, worker_share
from tfx_transfer.epoch_log import EpochLog
from tfx_transfer.freezing import apply_freeze_selection, select_trainable
from tfx_transfer.frozen_prefix import split_after_blocks
from tfx_transfer.guards import DivergenceGuard, StopOnRequest
from tfx_transfer.head_kinds import head_kind
from tfx_transfer.log import logger
from tfx_transfer.lr_find import RUN_SUBDIR, LRFindResult, find_learning_rate
from tfx_transfer.lr_multipliers import block_multipliers, describe_multipliers, variable_multipliers
from tfx_transfer.recipe import AUTO_LEARNING_RATE
from tfx_transfer.training import submodels
from tfx_transfer.training.cache import POOLED_FEATURES, FeatureCache, FrozenBlockOutputs
from tfx_transfer.training.datasets import SPLITS, CountedSplits, batch_dataset, class_weights, label_counts, with_length
from tfx_transfer.training.lr_choice import record_choice, recorded_choice
from tfx_transfer.training.plan import FULL_MODEL, HEAD_ON_FEATURES, ON_FROZEN_PREFIX, PhasePlan, plan_phase
from tfx_transfer.training.schedule import make_optimizer
from tfx_transfer.training.state import RunState
from tfx_transfer.training.validation import PerInputValidation, windows_share_inputs


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
    # Test metrics of the model as this phase left it (every phase but the last; the last's are `test`).
    test: dict | None = None
    # The rate the phase trained at, and "recipe" or "lr_find" (`learning_rate: auto`); None in older runs.
    learning_rate: float | None = None
    learning_rate_source: str = "recipe"
    # The epochs the phase set out to run: the recipe's, or more for `min_steps`; None in older runs.
    epochs_planned: int | None = None


@dataclasses.dataclass
class PhaseInputs:
    """What a phase trains (`PhaseRunner.phase_inputs`): its plan, the model `fit` runs (the full model, or
    the part on cached inputs), its batched train and validation sets, and the unbatched validation
    examples with the length buckets they are batched by (for validation per input)."""

    plan: PhasePlan
    trained: keras.Model
    train: tf.data.Dataset
    val: tf.data.Dataset | None
    steps_per_epoch: int
    val_examples: tf.data.Dataset | None = None
    val_buckets: object = None


def starting_value(phase, previous_phase, previous: PhaseResult) -> float | None:
    """`phase.monitor`'s value of the weights `phase` starts from: the previous phase's value at its kept epoch.

    None when the two are not comparable: the previous phase monitored something else, had no
    validation, or (for `val_loss`) computed its loss differently (another `label_smoothing`).

    >>> from tfx_transfer.recipe import PhaseConfig
    >>> head = PhaseResult("head", 3, 1.0, {"val_loss": [0.9, 0.5, 0.7]}, True, [], 10,
    ...                    best_epoch={"kept_epoch": 2})
    >>> starting_value(PhaseConfig(name="fine_tune"), PhaseConfig(name="head"), head)
    0.5
    """
    comparable = phase.monitor == previous_phase.monitor and (
        phase.monitor != "val_loss" or phase.label_smoothing == previous_phase.label_smoothing
    )
    outcome, values = previous.best_epoch or {}, previous.history.get(phase.monitor) or []
    kept = outcome.get("kept_epoch")
    kept = len(values) if kept is None else kept
    if kept == 0:  # the previous phase itself ended with the weights it started with
        value = outcome.get("best_value")
    else:
        value = values[kept - 1] if 1 <= kept <= len(values) else None
    return float(value) if comparable and value is not None else None


class PhaseRunner:
    """Runs a recipe's phases on a built model, checkpointing so a killed run resumes.

    Completed phases are recorded in `run_dir/state.json` with their weights in
    `run_dir/checkpoints/<phase>.weights.h5` (`RunState`); the phase in progress is
    backed up at epoch ends (`EpochBackup`, at most once per
    `recipe.backup_interval_seconds`) and resumes after its last backed-up epoch.
    How each phase trains is decided by `plan_phase` (see `tfx_transfer.training.plan`).

    With `evaluate_test` (a function returning test metrics of `model`), every phase but the last
    records them in its result, so a run shows what each phase (e.g. fine-tuning) added.
    """

    def __init__(self, model, head, backbone, splits, recipe, run_dir, strategy=None, augment=None, callbacks=(),
                 evaluate_test=None):
        self.model, self.head, self.backbone = model, head, backbone
        self.splits, self.recipe, self.run_dir = splits, recipe, run_dir
        self.strategy = strategy or tf.distribute.get_strategy()
        self.chief = is_chief(self.strategy)
        self.share = worker_share(self.strategy)
        self.augment = augment
        self.extra_callbacks = list(callbacks)
        self.evaluate_test = evaluate_test
        self.num_classes = len(splits.class_names)
        self.kind = head_kind(recipe.head.kind)
        self._counted = CountedSplits(splits)
        self._cache = FeatureCache(self.strategy, recipe.data.batch_size, recipe.distribute.jit_compile)
        self._prefixes = {}
        self._positions = None

    def run(self) -> list[PhaseResult]:
        state = RunState.load(self.run_dir)
        results = []
        for index, phase in enumerate(self.recipe.phases):
            if phase.name in state.completed:
                state.restore(phase.name, self.model)
                apply_freeze_selection(self.backbone, select_trainable(self.backbone, phase.freeze))
                results.append(PhaseResult(**state.completed[phase.name]))
                logger.info(f"phase {phase.name!r} already completed in {self.run_dir}: skipped.")
                continue
            next_phase = next(iter(self.recipe.phases[index + 1:]), None)
            previous = (self.recipe.phases[index - 1], results[-1]) if results else None
            results.append(self.run_phase(phase, next_phase, previous))
            if next_phase is not None and self.evaluate_test is not None:
                results[-1].test = self.evaluate_test()
            if self.chief:
                state.record(phase.name, dataclasses.asdict(results[-1]), self.model)
                discard(self._backup_dir(phase))
                discard(self._best_dir(phase))
        return results

    def run_phase(self, phase, next_phase=None, previous=None) -> PhaseResult:
        """Trains one phase as `plan(phase, next_phase)` says; `learning_rate: auto` runs the LR finder first.

        `previous` is `(recipe phase, PhaseResult)` of the phase before: the weights it ended with
        compete as this phase's epoch 0 (`starting_value`).
        """
        index = self.recipe.phases.index(phase)
        inputs = self.phase_inputs(phase, next_phase)
        epochs = phase.epochs_for(inputs.steps_per_epoch)
        raised = epochs != phase.epochs
        phase = dataclasses.replace(phase, epochs=epochs)
        learning_rate, source = self._learning_rate(phase, inputs)
        phase = dataclasses.replace(phase, learning_rate=learning_rate)
        block_rates = self._compile(inputs, phase)
        backup = EpochBackup(
            self._backup_dir(phase), self.recipe.backup_interval_seconds, writes=self.chief,
            history_csv=storage.join(self.run_dir, f"history_{phase.name}.csv"),
        )
        stop_on_request = StopOnRequest(backup, phase.name)
        per_input = self._per_input_validation(inputs, phase, stop_on_request)
        plan = inputs.plan
        trainable_params = int(sum(np.prod(w.shape) for w in self.model.trainable_weights))
        trained_rates = {b: rate for b, rate in block_rates.items() if b in plan.selection.trainable_blocks}
        logger.info(
            f"phase {phase.name!r}: {phase.epochs} epochs"
            + (f" (min_steps {phase.min_steps} at {inputs.steps_per_epoch} steps per epoch)" if raised else "")
            + f", lr {phase.learning_rate:g} "
            f"({phase.optimizer}, {phase.schedule}), trainable backbone blocks: "
            f"{', '.join(plan.selection.trainable_blocks) or 'none'}; {trainable_params:,} trainable params; "
            f"{plan.describe()}"
            + (f"; learning-rate multipliers {describe_multipliers(trained_rates)}" if trained_rates else "")
            + (f"; {per_input.describe()}" if per_input else "")
        )
        guard = DivergenceGuard(backup, phase.name, f"phases.{index}", phase.learning_rate)
        best = None
        if inputs.val is not None:
            best = self._best_epoch(phase, starting_value(phase, *previous) if previous else None)
        start = time.perf_counter()
        weights = class_weights(phase, self.kind, self.num_classes, self._train_label_counts)
        train, class_weight = self._fit_train(inputs, weights)
        inputs.trained.fit(
            train,
            validation_data=None if per_input else inputs.val,
            epochs=phase.epochs,
            class_weight=class_weight,
            callbacks=[
                *([per_input] if per_input else []),
                EpochLog(phase.name, phase.epochs), guard, backup, stop_on_request,
                *([best] if best else []),
                *self._tensorboard(phase), *self.extra_callbacks,
            ],
            shuffle=False,  # batch_dataset shuffles, seeded
            verbose=1 if sys.stdout.isatty() else 0,  # EpochLog logs one line per epoch
        )
        return PhaseResult(
            name=phase.name,
            epochs_run=len(backup.history.get("loss", [])),
            epochs_planned=phase.epochs,
            seconds=round(time.perf_counter() - start, 3),
            history=backup.history,
            cached_features=plan.mode == HEAD_ON_FEATURES,
            trainable_blocks=list(plan.selection.trainable_blocks),
            trainable_params=trainable_params,
            cached_frozen_blocks=list(plan.frozen_blocks) if plan.mode == ON_FROZEN_PREFIX else [],
            best_epoch=best.outcome if best else {},
            learning_rate=learning_rate,
            learning_rate_source=source,
        )

    def phase_inputs(self, phase, next_phase=None) -> PhaseInputs:
        """Plans `phase`, sets its trainable flags and builds what it trains on (cached features or prefix
        outputs, or the splits), batched as `fit` takes them."""
        plan = self.plan(phase, next_phase)
        with self.strategy.scope():
            apply_freeze_selection(self.backbone, plan.selection)
            trained = self._trained_model(plan)
        train_set, val_set = self._inputs(plan)
        batch_size, steps, examples = self._share_batching(int(train_set.cardinality()))
        buckets = self._length_buckets(plan)
        train = batch_dataset(
            train_set, batch_size, self.kind.name, self.num_classes, shuffle_seed=self.share.shuffle_seed(self.recipe.seed),
            shuffle_buffer=self.recipe.data.shuffle_buffer, augment=self.augment if phase.augment else None,
            examples=examples, length_buckets=buckets, drop_remainder=self.recipe.data.drop_remainder,
        )
        if buckets is not None:
            steps = int(train.cardinality())
        global_batch = self.recipe.data.batch_size  # validation is not sharded: fit divides it among the workers
        val = None
        if val_set is not None:
            val = batch_dataset(val_set, global_batch, self.kind.name, self.num_classes, length_buckets=buckets)
        return PhaseInputs(plan, trained, train, val, steps, val_examples=val_set, val_buckets=buckets)

    def _per_input_validation(self, inputs, phase, stop_on_request) -> PerInputValidation | None:
        """`fit`'s validation per input when some validation input is cut into several windows, else None."""
        groups = self.splits.validation_groups
        if inputs.val_examples is None or not windows_share_inputs(groups):
            return None
        return PerInputValidation(
            inputs.val_examples, groups, self.recipe.data.batch_size,
            loss=self.kind.loss(phase.label_smoothing), metrics=self._metrics(phase),
            encode_targets=lambda labels: self.kind.encode_targets(labels, self.num_classes),
            length_buckets=inputs.val_buckets, jit_compile=self.recipe.distribute.jit_compile,
            between_batches=stop_on_request.check,
        )

    def _length_buckets(self, plan):
        """The `LengthBuckets` `plan`'s training batches are cut to, or None.

        Pooled features have no padding left to cut. Token inputs are bucketed, and so are cached
        frozen-block outputs that carry the padding mask (stored at their bucket's length).
        """
        if plan.mode == FULL_MODEL:
            return self._token_buckets()
        if plan.mode == ON_FROZEN_PREFIX:
            return self._prefix_buckets(plan.frozen_blocks)
        return None

    def _token_buckets(self):
        """The data's `LengthBuckets` (text) when training batches may have several shapes, else None.

        Under `multi_worker` every worker must take the same number of batches; with
        `data.drop_remainder` every training batch must have one static shape.
        """
        if self.share != WHOLE or self.recipe.data.drop_remainder:
            return None
        return self.splits.length_buckets

    def _prefix_buckets(self, frozen_blocks):
        """`_token_buckets` for the cached outputs of `frozen_blocks`, when they include the padding mask."""
        buckets = self._token_buckets()
        if buckets is None or buckets.mask_key not in self._prefixes[frozen_blocks].names:
            return None
        return buckets

    def _train_label_counts(self) -> np.ndarray:
        """Examples per class in the whole training split: under `multi_worker` summed over the workers' shares."""
        counts = label_counts(self.splits.train, self.num_classes)
        return from_every_worker(self.strategy, self.share, counts).sum(axis=0)

    def _share_batching(self, examples: int) -> tuple[int, int, int | None]:
        """`(batch size, steps per epoch, examples per epoch or None)` for `examples` training examples on this worker.

        One worker batches at `data.batch_size`. Under `multi_worker` each worker holds its share of
        the training split (`data.shares`) and batches it per replica (`data.batch_size` divided by all
        replicas, so a step still takes the global batch); every worker takes as many steps as the
        worker with the largest share needs, a smaller share starting over within the epoch. Those batches
        are all full, so `data.drop_remainder` changes the steps of one worker only.
        """
        batch_size = self.recipe.data.batch_size
        if self.share == WHOLE and self.recipe.data.drop_remainder:
            if examples < batch_size:
                raise ConfigError(
                    f"data.drop_remainder is true but the training split has {examples} examples, fewer than "
                    f"data.batch_size {batch_size}: no batch would be left. Lower data.batch_size or set "
                    "data.drop_remainder: false."
                )
            return batch_size, examples // batch_size, None
        if self.share == WHOLE:
            return batch_size, max(1, -(-examples // batch_size)), None
        per_replica = per_replica_batch(self.strategy, batch_size)
        per_worker = batch_size // self.share.count
        steps = int(from_every_worker(self.strategy, self.share, max(1, -(-examples // per_worker))).max())
        return per_replica, steps, steps * per_worker

    def _fit_train(self, inputs, class_weight) -> tuple:
        """`(x, class_weight)` for `fit`: the phase's training set and class weights as they are on one worker;
        under `multi_worker` the worker's share handed to the strategy as it is (no re-sharding, no
        re-batching), with the class weights as sample weights in it (Keras cannot add them to it)."""
        if self.share == WHOLE:
            return inputs.train, class_weight
        train = inputs.train if class_weight is None else inputs.train.map(make_class_weight_map_fn(class_weight))
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF  # sharded already
        train = train.with_options(options)
        return self.strategy.distribute_datasets_from_function(lambda context: train), None

    def find_learning_rate(self, phase, inputs=None, steps=100, start=1e-7, end=10.0) -> LRFindResult:
        """Sweeps `phase`'s learning rate (see `tfx_transfer.lr_find`) on what the phase trains, with its
        optimizer, multipliers and class weights at a constant rate, then restores the weights.

        `inputs` are `phase_inputs(phase)` (built when not given). The chief writes the curve to
        `run_dir/lr_find/<phase>.csv` and `.png`.
        """
        inputs = inputs or self.phase_inputs(phase)
        self._compile(inputs, dataclasses.replace(phase, learning_rate=start, schedule="constant", warmup_epochs=0.0))
        return find_learning_rate(
            inputs.trained, inputs.train, start=start, end=end, steps=steps,
            class_weight=class_weights(phase, self.kind, self.num_classes, self._train_label_counts),
            out_dir=storage.join(self.run_dir, RUN_SUBDIR) if self.chief else None, name=phase.name,
        )

    def _learning_rate(self, phase, inputs) -> tuple[float, str]:
        """`(rate, source)`: the recipe's rate, or for `auto` the finder's valley (recorded, so a resumed
        phase reuses it instead of sweeping again)."""
        if phase.learning_rate != AUTO_LEARNING_RATE:
            return phase.learning_rate, "recipe"
        recorded = recorded_choice(self._backup_dir(phase))
        if recorded:
            rate, suggestion = recorded
            logger.info(f"phase {phase.name!r}: learning_rate auto -> {rate:.3g} ({suggestion}, chosen before the resume)")
            return rate, "lr_find"
        result = self.find_learning_rate(phase, inputs)
        if result.valley is None:
            index = self.recipe.phases.index(phase)
            raise ConfigError(
                f"phase {phase.name!r}: learning_rate auto: the LR finder's loss diverged after "
                f"{len(result.learning_rates)} steps, too early to suggest a rate "
                f"(curves in {storage.join(self.run_dir, RUN_SUBDIR)}). "
                f"Set a number instead, e.g. --set phases.{index}.learning_rate=1e-4."
            )
        logger.info(f"phase {phase.name!r}: learning_rate auto -> {result.valley:.3g} (valley)")
        if self.chief:
            record_choice(self._backup_dir(phase), result.valley, "valley")
        return result.valley, "lr_find"

    def _compile(self, inputs, phase) -> dict:
        """Compiles `inputs.trained` for `phase` (a numeric learning rate); returns the backbone blocks' multipliers."""
        block_rates = block_multipliers(self.backbone, phase.layer_decay, phase.lr_multipliers)
        with self.strategy.scope():
            inputs.trained.compile(
                optimizer=make_optimizer(
                    phase, inputs.steps_per_epoch, variable_multipliers(self.backbone, block_rates),
                    inputs.trained.trainable_variables,
                ),
                loss=self.kind.loss(phase.label_smoothing),
                metrics=self._metrics(phase),
                jit_compile=self.recipe.distribute.jit_compile,
            )
        return block_rates

    def _metrics(self, phase) -> list:
        """Fresh metrics `phase` compiles (and validation per input computes): accuracy, and what its monitor needs."""
        threshold = self.recipe.head.threshold
        return self.kind.metrics(self.num_classes, threshold) + monitor_metrics(
            phase.monitor, self.kind.name, self.num_classes, threshold
        )

    def plan(self, phase, next_phase=None):
        """How `phase` trains (a `PhasePlan`), measuring frozen-block outputs on the data."""
        return plan_phase(
            phase, select_trainable(self.backbone, phase.freeze), self.backbone.blocks,
            augmentation=self.augment is not None, cache_limit_mb=self.recipe.cache_limit_mb,
            prefix_megabytes=self._prefix_megabytes, next_phase=next_phase,
            next_selection=select_trainable(self.backbone, next_phase.freeze) if next_phase else None,
        )

    def _inputs(self, plan):
        """The train and validation sets `plan` trains on: the splits, or cached outputs of frozen layers."""
        self._cache.keep_only(plan.cache_keys | {POOLED_FEATURES})
        splits = {name: self._counted.get(name) for name in SPLITS}
        if plan.mode == FULL_MODEL:
            train_set, val_set = splits["train"], splits["validation"]
        elif plan.mode == ON_FROZEN_PREFIX:
            prefix, buckets = self._prefixes[plan.frozen_blocks], self._prefix_buckets(plan.frozen_blocks)
            train_set, val_set = self._cache.compute(
                FrozenBlockOutputs(plan.frozen_blocks), lambda: prefix.prefix, splits, buckets
            )
        elif plan.frozen_blocks:  # head on features, through the next phase's frozen prefix
            prefix, key = self._prefixes[plan.frozen_blocks], FrozenBlockOutputs(plan.frozen_blocks)
            buckets = self._prefix_buckets(plan.frozen_blocks)
            self._cache.compute(key, lambda: prefix.prefix, splits, buckets)
            train_set, val_set = self._cache.compute(
                POOLED_FEATURES,
                lambda: submodels.on_frozen_prefix(prefix, lambda x: submodels.pooled(self.head, x), "features_on_prefix"),
                self._cache.datasets(key),
                buckets,
            )
        else:
            train_set, val_set = self._cache.compute(
                POOLED_FEATURES, lambda: submodels.features_model(self.model, self.head), splits,
                self.splits.length_buckets,
            )
        return with_length(train_set), with_length(val_set) if val_set is not None else None

    def _backup_dir(self, phase) -> str:
        return storage.join(self.run_dir, "backup", phase.name)

    def _tensorboard(self, phase) -> list:
        if not self.chief:
            return []
        return [keras.callbacks.TensorBoard(storage.join(self.run_dir, "logs", phase.name))]

    def _best_dir(self, phase) -> str:
        return storage.join(self.run_dir, "best", phase.name)

    def _best_epoch(self, phase, baseline) -> BestEpoch:
        """Keeps the phase's best epoch by `phase.monitor` (unless `keep_best_epoch` is off) and stops it early."""
        return BestEpoch(
            monitor=phase.monitor, patience=phase.early_stopping_patience, keep_best=phase.keep_best_epoch,
            state_dir=self._best_dir(phase), writes=self.chief, baseline=baseline,
        )

    def _trained_model(self, plan):
        if plan.mode == HEAD_ON_FEATURES:
            return submodels.head_on_features(self.head)
        if plan.mode == ON_FROZEN_PREFIX:
            return submodels.on_frozen_prefix(self._prefixes[plan.frozen_blocks], self.head, "trainable_part")
        return self.model

    def _prefix_megabytes(self, frozen_blocks) -> float | None:
        """Megabytes of the outputs of `frozen_blocks` for the larger split, as the cache stores them (each
        text at its bucket's length when bucketed); builds their cut once, so a phase and the phase looking
        ahead at it share it."""
        if frozen_blocks not in self._prefixes:
            with self.strategy.scope():
                self._prefixes[frozen_blocks] = split_after_blocks(self.backbone, len(frozen_blocks))
        prefix = self._prefixes[frozen_blocks]
        if prefix is None:
            return None
        example, _ = next(iter(self.splits.train.batch(1)))
        buckets = self._prefix_buckets(frozen_blocks)
        if buckets is not None:
            return max(
                prefix.bytes_per_example(example, positions=positions / examples) * examples
                for examples, positions in self._stored_positions(buckets).values()
            ) / 2**20
        # The largest share on any worker, so that every worker plans the phase alike.
        largest = int(from_every_worker(self.strategy, self.share, self._counted.largest()).max())
        return prefix.bytes_per_example(example) * largest / 2**20

    def _stored_positions(self, buckets) -> dict:
        """`{split: (examples, token positions)}` of the train and validation splits stored at their bucket lengths
        (bucketing runs on one worker only), counted once per run."""
        if self._positions is None:
            self._positions = {
                name: (int(split.cardinality()), buckets.stored_positions(split))
                for name in SPLITS
                if (split := self._counted.get(name)) is not None
            }
        return self._positions
