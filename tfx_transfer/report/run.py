"""A finished run directory read back for reporting: `metrics.json`, the recipe, saved test examples, plots.

Reading needs no model and no TensorFlow graph: everything the report shows
was written as plain files (JSON, YAML, PNG, WAV, text) by the run.

```python
run = load_run("runs/smoke_synthetic")
for phase in run.phases:
    print(phase.name, phase.first_epoch, phase.kept_epoch, phase.stopped_early)
```
"""

import dataclasses
import fnmatch
import posixpath

import yaml

from tfx_transfer import storage
from tfx_transfer.lr_find import RUN_SUBDIR

METRICS_FILE = "metrics.json"
RECIPE_FILE = "recipe.yaml"
EXAMPLES_DIR = "examples"
EXAMPLES_INDEX = "examples/worst_errors.json"
PREDICTIONS_FILE = "test_predictions.csv"
REPORT_FILE = "report.html"
# The PNGs the report writes itself; any other `*.png` in the run dir (an LR sweep, a peers table) is shown as extra.
OWN_PLOTS = ("curves.png", "confusion_counts.png", "confusion_normalised.png")
MAX_JSON_BYTES = 64 << 20
MAX_RECIPE_BYTES = 1 << 20
MAX_EXAMPLE_BYTES = 8 << 20
MAX_EXTRA_PLOT_BYTES = 16 << 20
MAX_EXAMPLES = 100


@dataclasses.dataclass
class PhaseCurve:
    """One phase's epochs placed on the run's epoch axis (1-based, counted across phases)."""

    name: str
    first_epoch: int
    history: dict
    epochs_run: int
    epochs_planned: int | None
    kept_epoch: int  # 1-based within the phase: whose weights the phase ended with (0: those it started with)
    stopped_early: bool
    seconds: float | None

    @property
    def last_epoch(self) -> int:
        return self.first_epoch + self.epochs_run - 1


@dataclasses.dataclass
class Run:
    """What a run directory holds, as the report needs it."""

    path: str
    metrics: dict
    recipe: dict
    recipe_text: str
    phases: list
    worst_errors: dict | None
    extra_plots: dict  # file name -> PNG bytes

    @property
    def name(self) -> str:
        return str(self.metrics.get("recipe") or self.recipe.get("name") or posixpath.basename(self.path.rstrip("/")))

    def example_bytes(self, relative_path: str) -> bytes:
        """A saved example file, by its path relative to the run dir (bounded, inside the run dir)."""
        return read_bounded(_inside(self.path, relative_path), MAX_EXAMPLE_BYTES)


def load_run(run_dir) -> Run:
    """Reads `run_dir`; a missing or invalid `metrics.json` raises ValueError saying what to do."""
    run_dir = str(run_dir)
    metrics_path = storage.join(run_dir, METRICS_FILE)
    if not storage.exists(metrics_path):
        raise ValueError(
            f"{metrics_path!r} does not exist: {run_dir!r} is not a finished run directory "
            "(metrics.json is written when `tfx-transfer train` ends)."
        )
    metrics = _json_object(metrics_path)
    recipe_path = storage.join(run_dir, RECIPE_FILE)
    recipe_text = read_bounded(recipe_path, MAX_RECIPE_BYTES).decode("utf-8") if storage.exists(recipe_path) else ""
    recipe = yaml.safe_load(recipe_text) if recipe_text else {}
    if not isinstance(recipe, dict):
        raise ValueError(f"{recipe_path!r} is not a recipe mapping (got {type(recipe).__name__}).")
    index_path = storage.join(run_dir, EXAMPLES_INDEX)
    worst_errors = _json_object(index_path) if storage.exists(index_path) else None
    if worst_errors is not None:
        worst_errors["examples"] = list(worst_errors.get("examples", []))[:MAX_EXAMPLES]
    return Run(
        path=run_dir,
        metrics=metrics,
        recipe=recipe,
        recipe_text=recipe_text,
        phases=phase_curves(metrics.get("phases") or [], recipe.get("phases") or []),
        worst_errors=worst_errors,
        extra_plots=_extra_plots(run_dir),
    )


def _extra_plots(run_dir: str) -> dict:
    """The other `*.png` in the run dir and the LR finder's curves (`lr_find/<phase>.png`), by path in the run dir."""
    plots = {}
    for folder in ("", RUN_SUBDIR):
        path = storage.join(run_dir, folder) if folder else run_dir
        if not storage.isdir(path):
            continue
        for name in storage.listdir(path):
            relative = f"{folder}/{name}" if folder else name
            if fnmatch.fnmatch(name.lower(), "*.png") and relative not in OWN_PLOTS:
                plots[relative] = read_bounded(storage.join(run_dir, relative), MAX_EXTRA_PLOT_BYTES)
    return plots


def phase_curves(phases: list, recipe_phases: list) -> list:
    """The `phases` of `metrics.json` on one epoch axis, with the epoch each phase kept.

    A phase's kept epoch is `best_epoch.kept_epoch` when the phase recorded it; otherwise,
    with early stopping on (`early_stopping_patience` in its recipe) and a
    validation loss, the epoch of the lowest validation loss (Keras'
    `restore_best_weights`); otherwise its last epoch.

    >>> curves = phase_curves(
    ...     [{"name": "head", "epochs_run": 3, "history": {"loss": [3, 2, 1], "val_loss": [2, 1, 1.5]}}],
    ...     [{"name": "head", "epochs": 10, "early_stopping_patience": 1}])
    >>> curves[0].kept_epoch, curves[0].stopped_early
    (2, True)
    """
    planned = {p.get("name"): p for p in recipe_phases if isinstance(p, dict)}
    curves, first = [], 1
    for phase in phases:
        history = {k: [float("nan") if v is None else float(v) for v in values]
                   for k, values in (phase.get("history") or {}).items()}
        epochs_run = int(phase.get("epochs_run") or len(history.get("loss", [])))
        plan = planned.get(phase.get("name"), {})
        epochs_planned = phase.get("epochs_planned") or plan.get("epochs")
        outcome = phase.get("best_epoch") or {}
        kept = outcome.get("kept_epoch")
        if kept is None and plan.get("early_stopping_patience") is not None and history.get("val_loss"):
            losses = history["val_loss"]
            kept = min(range(len(losses)), key=lambda i: (losses[i] != losses[i], losses[i])) + 1
        stopped = outcome.get("stopped_early")
        if stopped is None:
            stopped = epochs_planned is not None and epochs_run < int(epochs_planned)
        curves.append(PhaseCurve(
            name=str(phase.get("name")),
            first_epoch=first,
            history=history,
            epochs_run=epochs_run,
            epochs_planned=epochs_planned,
            kept_epoch=int(epochs_run if kept is None else kept),
            stopped_early=bool(stopped),
            seconds=phase.get("seconds"),
        ))
        first += epochs_run
    return curves


def read_bounded(path, limit: int) -> bytes:
    """The bytes of `path`, refusing files larger than `limit` with an error naming both."""
    _check_size(path, limit)
    return storage.read_bytes(path)


def _check_size(path, limit: int) -> None:
    size = storage.gfile.stat(str(path)).length
    if size > limit:
        raise ValueError(f"{path!r} is {size:,} bytes, more than the {limit:,} bytes a report reads from it.")


def _json_object(path) -> dict:
    _check_size(path, MAX_JSON_BYTES)
    value = storage.read_json(path)
    if not isinstance(value, dict):
        raise ValueError(f"{path!r} must hold a JSON object, found {type(value).__name__}.")
    return value


def _inside(run_dir: str, relative_path: str) -> str:
    """`run_dir/relative_path`, refusing absolute paths and `..` so a crafted index cannot read elsewhere."""
    parts = str(relative_path).replace("\\", "/").split("/")
    if str(relative_path).startswith("/") or ".." in parts or "://" in str(relative_path):
        raise ValueError(f"example path {relative_path!r} in {EXAMPLES_INDEX} must be relative to the run dir.")
    return storage.join(run_dir, *parts)
