"""`train(recipe)`: backbone, data, model, phases, test metrics, `.keras` file and SavedModel in one call.

Example:

```python
from tfx_transfer import load_recipe, train

result = train(load_recipe("recipes/smoke_synthetic.yaml"))
print(result.metrics["test"]["accuracy"], result.export_dir)
```
"""

import dataclasses
import platform
import re
import time

import keras
import tensorflow as tf
import yaml

from tfx_transfer import stop, storage
from tfx_transfer.backbones.registry import resolve
from tfx_transfer.config import ConfigError
from tfx_transfer.data.modality import modality_for
from tfx_transfer.data.split_manifest import SPLIT_MANIFEST_FILE
from tfx_transfer.data_summary import log_data_summary, split_class_counts
from tfx_transfer.data.shares import reading_share
from tfx_transfer.distribute import is_chief, make_strategy, set_precision, worker_share
from tfx_transfer.evaluate import classification_report, predict_probabilities
from tfx_transfer.export import export_saved_model
from tfx_transfer.guards import require_finite
from tfx_transfer.locks import run_dir_lock
from tfx_transfer.log import logger
from tfx_transfer.lr_find import check_arguments
from tfx_transfer.litert.run import export_recipe_litert
from tfx_transfer.model import build_model
from tfx_transfer.recipe import recipe_from_dict
from tfx_transfer.report import write_report
from tfx_transfer.report.examples import save_test_examples
from tfx_transfer.training import PhaseRunner
from tfx_transfer.training.state import RunState


@dataclasses.dataclass
class RunResult:
    """What a finished run produced: the model, where it went, and `metrics.json` as a dict."""

    model: keras.Model
    run_dir: str
    export_dir: str | None
    metrics: dict


@dataclasses.dataclass
class Prepared:
    """Everything built before training starts; `inspect` stops here."""

    backbone: object
    splits: object
    preprocessor: object
    model: keras.Model
    head: keras.Model
    strategy: tf.distribute.Strategy


def prepare(recipe, strategy=None) -> Prepared:
    """Seeds, sets precision, builds the backbone, data and model under the strategy's scope."""
    keras.utils.set_random_seed(recipe.seed)
    set_precision(recipe.distribute.precision)
    strategy = strategy or make_strategy(recipe.distribute)
    with strategy.scope():
        backbone = resolve(recipe.backbone)
    if backbone.modality != recipe.modality:
        raise ConfigError(
            f"recipe.modality is {recipe.modality!r} but backbone {backbone.name!r} is a "
            f"{backbone.modality} backbone. Set modality: {backbone.modality} or pick another backbone."
        )
    modality = modality_for(recipe.modality)
    with reading_share(worker_share(strategy)):  # under multi_worker, this worker's share of the training split
        splits = modality.load_data(recipe, backbone)
    preprocessor = modality.make_preprocessor(recipe, backbone)
    with strategy.scope():
        model, head = build_model(backbone, len(splits.class_names), recipe.head, name=_model_name(recipe))
    return Prepared(backbone, splits, preprocessor, model, head, strategy)


def train(recipe, strategy=None, callbacks=()) -> RunResult:
    """Runs every phase of `recipe`, evaluates on the test split, saves and exports.

    Re-running the same recipe with the same `run_dir` resumes: finished phases
    are skipped and the phase in progress continues from its last epoch. A run
    directory is used by one run at a time (`tfx_transfer.locks`).
    """
    strategy = strategy or make_strategy(recipe.distribute)  # a multi-worker strategy precedes any TF op
    with run_dir_lock(recipe.resolved_run_dir, enabled=is_chief(strategy)):
        return _train(recipe, strategy, callbacks)


def _train(recipe, strategy, callbacks) -> RunResult:
    run_dir = recipe.resolved_run_dir
    start = time.perf_counter()
    chief = is_chief(strategy)
    stop.raise_if_requested(stop.RESUMES_RUN)
    if chief:
        _claim_run_dir(run_dir, recipe)
        if recipe.export.enabled:  # found now, not after training
            storage.require_directory(recipe.export.base_dir, "export.base_dir")
    prepared = prepare(recipe, strategy)
    stop.raise_if_requested(stop.RESUMES_RUN)
    model, splits = prepared.model, prepared.splits
    manifest_path = _write_split_manifest(run_dir, splits.manifest) if chief else None
    imbalance = log_data_summary(split_class_counts(splits), any(p.class_weight for p in recipe.phases))

    def test_predictions():
        return predict_probabilities(
            model, splits.test, recipe.data.batch_size, recipe.head.kind, splits.test_groups,
            recipe.distribute.jit_compile, splits.length_buckets,
        )

    def test_metrics(probabilities, labels):
        return classification_report(probabilities, labels, splits.class_names, recipe.head.kind, recipe.head.threshold)

    evaluate_test = (lambda: test_metrics(*test_predictions())) if splits.test is not None else None
    phases = _phase_runner(prepared, recipe, callbacks, evaluate_test).run()
    require_finite(model)  # the guards stop a diverging phase; this keeps any other path from saving NaN

    metrics = {
        "recipe": recipe.name,
        "seed": recipe.seed,
        "backbone": prepared.backbone.name,
        "class_names": list(splits.class_names),
        "data": {**splits.report, "imbalance_warning": imbalance},
        "split_manifest": manifest_path,
        "phases": [dataclasses.asdict(p) for p in phases],
    }
    if splits.test is not None:
        probabilities, labels = test_predictions()
        metrics["test"] = test_metrics(probabilities, labels)
        if chief:
            save_test_examples(
                run_dir, probabilities, labels, splits.test, splits.class_names, recipe.head.kind, recipe.modality,
                prepared.preprocessor, group_ids=splits.test_groups, threshold=recipe.head.threshold,
            )
    else:
        metrics["test"] = None
    stop.raise_if_requested(stop.RESUMES_RUN)
    keras_path = storage.join(run_dir, "model.keras") if chief else None
    if chief:
        model.save(keras_path)
    metrics["keras_file"] = keras_path

    export_dir = None
    if recipe.export.enabled and chief:
        export_dir = export_saved_model(
            model,
            prepared.preprocessor,
            splits.class_names,
            recipe.export.base_dir,
            recipe.export.model_name or _model_name(recipe),
            head_kind=recipe.head.kind,
            version=recipe.export.version,
            recipe_yaml=recipe.to_yaml(),
            warmup_requests=recipe.export.warmup_requests,
        )
    metrics["export_dir"] = export_dir
    if export_dir and "litert" in recipe.export.formats:
        metrics["litert"] = export_recipe_litert(recipe, model, prepared.backbone, splits, export_dir, keras_path)
    metrics["seconds"] = round(time.perf_counter() - start, 2)
    metrics["versions"] = {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }
    if chief:
        storage.write_json_atomic(storage.join(run_dir, "metrics.json"), metrics)
        _write_report(run_dir)
    return RunResult(model=model, run_dir=run_dir, export_dir=export_dir, metrics=metrics)


def find_phase_learning_rate(recipe, phase_index: int, steps=100, start=1e-7, end=10.0, strategy=None):
    """Runs the LR finder on phase `phase_index` of `recipe` as `train` would train it; an `LRFindResult`.

    The phase starts from the weights of the last earlier phase finished in `run_dir` (a fresh model
    when there is none). The sweep restores the weights afterwards and writes
    `run_dir/lr_find/<phase>.csv` and `.png`.

    ```python
    result = find_phase_learning_rate(load_recipe("recipes/smoke_synthetic.yaml"), phase_index=1)
    print(result.valley, result.plot_path)   # runs/smoke_synthetic/lr_find/fine_tune.png
    ```
    """
    if not 0 <= phase_index < len(recipe.phases):
        names = ", ".join(f"{i} ({p.name})" for i, p in enumerate(recipe.phases))
        raise ConfigError(
            f"phase index {phase_index} (--phase) is out of range: recipe {recipe.name!r} has the phases {names}; "
            "give one of those numbers."
        )
    try:
        check_arguments(start, end, steps)
    except ValueError as e:
        raise ConfigError(f"{e} (--start, --end, --steps)") from None
    strategy = strategy or make_strategy(recipe.distribute)
    run_dir = recipe.resolved_run_dir
    with run_dir_lock(run_dir, enabled=is_chief(strategy)):
        prepared = prepare(recipe, strategy)
        phase = recipe.phases[phase_index]
        state = RunState.load(run_dir)
        finished = [p.name for p in recipe.phases[:phase_index] if p.name in state.completed]
        if finished:
            state.restore(finished[-1], prepared.model)
            logger.info(f"lr-find: phase {phase.name!r} starts from the weights of phase {finished[-1]!r} in {run_dir}")
        elif phase_index:
            logger.warning(
                f"lr-find: no earlier phase has finished in {run_dir}, so phase {phase.name!r} is swept from the "
                "new model (untrained head); train the earlier phases first for the rate a run would use."
            )
        return _phase_runner(prepared, recipe).find_learning_rate(phase, steps=steps, start=start, end=end)


def _phase_runner(prepared, recipe, callbacks=(), evaluate_test=None) -> PhaseRunner:
    return PhaseRunner(
        prepared.model, prepared.head, prepared.backbone, prepared.splits, recipe, recipe.resolved_run_dir,
        strategy=prepared.strategy, augment=modality_for(recipe.modality).make_augmentation(recipe), callbacks=callbacks,
        evaluate_test=evaluate_test,
    )


def _write_split_manifest(run_dir: str, manifest) -> str | None:
    """Writes `run_dir/splits.csv` (every example's source, label and split); its path, or None without a manifest."""
    if manifest is None:  # a modality registered outside the package that does not fill DataSplits.manifest
        return None
    path = storage.join(run_dir, SPLIT_MANIFEST_FILE)
    storage.write_text_atomic(path, manifest.to_csv())
    return path


def _write_report(run_dir: str) -> None:
    """Writes `run_dir/report.html`; a failure is logged, not raised: the run's results are already saved."""
    try:
        write_report(run_dir)
    except Exception as e:  # the report reads files back; `tfx-transfer report` retries with the traceback
        logger.warning(f"report.html was not written ({type(e).__name__}: {e}); run `tfx-transfer report {run_dir}`.")


def _model_name(recipe) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", recipe.name) or "model"


def _claim_run_dir(run_dir: str, recipe) -> None:
    """Writes `recipe.yaml` into `run_dir`; refuses to resume a run of a different recipe there."""
    path = storage.join(run_dir, "recipe.yaml")
    text = recipe.to_yaml()
    if storage.exists(path) and storage.exists(storage.join(run_dir, "state.json")) and _stored_recipe_yaml(path) != text:
        raise ConfigError(
            f"run_dir {run_dir!r} holds an unfinished or finished run of a different recipe. "
            "Set run_dir to a new directory (e.g. --set run_dir=runs/new) or delete the old one."
        )
    storage.write_text_atomic(path, text)


def _stored_recipe_yaml(path: str) -> str | None:
    """The run's `recipe.yaml` as this version writes it (keys added since then take their defaults),
    or None when it no longer reads as a recipe."""
    try:
        return recipe_from_dict(yaml.safe_load(storage.read_text(path)) or {}).to_yaml()
    except (ConfigError, yaml.YAMLError, UnicodeDecodeError):
        return None
