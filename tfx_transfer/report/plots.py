"""The report's plots as PNG bytes, drawn with matplotlib's Agg canvas (no display, no global pyplot state).

>>> from tfx_transfer.report.run import phase_curves
>>> curves = phase_curves([{"name": "head", "epochs_run": 2, "history": {"loss": [1.0, 0.5]}}], [])
>>> learning_curves_png(curves)[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
True
"""

import io
import math

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

# History keys that are not a model's quality (timings, schedules): never plotted as curves.
NOT_CURVES = ("epoch_seconds", "learning_rate", "lr")


def learning_curves_png(phases, title: str = "") -> bytes:
    """Loss (left) and the accuracy-like metrics (right) of every phase on one epoch axis.

    Dotted vertical lines separate phases; a star marks the epoch whose weights each phase kept.
    """
    figure = Figure(figsize=(11, 4.2), dpi=100)
    loss_axes, metric_axes = figure.subplots(1, 2)
    for axes, names in ((loss_axes, ["loss"]), (metric_axes, _metric_names(phases))):
        for name in names:
            for prefix, style in (("", "-"), ("val_", "--")):
                xs, ys = _series(phases, prefix + name)
                if xs:
                    axes.plot(xs, ys, style, marker="o", markersize=3, label=f"{prefix}{name}")
        kept_x, kept_y = [], []
        for phase in phases if names else []:
            key = f"val_{names[0]}" if f"val_{names[0]}" in phase.history else names[0]
            values = phase.history.get(key, [])
            if 1 <= phase.kept_epoch <= len(values):  # 0: the phase kept its starting weights, no epoch of its own
                kept_x.append(phase.first_epoch + phase.kept_epoch - 1)
                kept_y.append(values[phase.kept_epoch - 1])
        if kept_x:
            axes.plot(kept_x, kept_y, "*", color="black", markersize=13, label="kept epoch", zorder=5)
        _mark_phases(axes, phases)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel("epoch (all phases)")
        axes.set_ylabel("loss" if names == ["loss"] else "metric")
        axes.grid(alpha=0.3)
        if axes.lines:
            axes.legend(fontsize=8)
    loss_axes.set_title("loss")
    metric_axes.set_title(", ".join(_metric_names(phases)) or "no metrics recorded")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return _png(figure)


def overlaid_curves_png(runs) -> bytes:
    """Validation loss and accuracy (training values where no validation exists) of several runs on one axis each.

    `runs` is a list of `(label, phases)`.
    """
    figure = Figure(figsize=(11, 4.2), dpi=100)
    loss_axes, metric_axes = figure.subplots(1, 2)
    for label, phases in runs:
        for axes, name in ((loss_axes, "loss"), (metric_axes, "accuracy")):
            key = f"val_{name}" if _series(phases, f"val_{name}")[0] else name
            xs, ys = _series(phases, key)
            if xs:
                axes.plot(xs, ys, marker="o", markersize=3, label=f"{label} ({key})")
    for axes, name in ((loss_axes, "loss"), (metric_axes, "accuracy")):
        axes.set_title(f"{name} (validation where recorded)")
        axes.set_xlabel("epoch (all phases)")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        if axes.lines:
            axes.legend(fontsize=8)
    figure.tight_layout()
    return _png(figure)


def confusion_png(matrix, class_names, normalised: bool) -> bytes:
    """The confusion matrix (rows: true class, columns: predicted), as counts or as row fractions."""
    counts = np.asarray(matrix, dtype=np.float64)
    values = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1) if normalised else counts
    n = len(class_names)
    side = min(14.0, max(4.0, 0.55 * n + 2.5))
    figure = Figure(figsize=(side + 1.2, side), dpi=100)
    axes = figure.subplots()
    shown = axes.imshow(values, cmap="Blues", vmin=0, vmax=1 if normalised else max(1.0, values.max()))
    figure.colorbar(shown, ax=axes, fraction=0.046, pad=0.04)
    axes.set_xticks(range(n), labels=[_short(c) for c in class_names], rotation=45, ha="right", fontsize=8)
    axes.set_yticks(range(n), labels=[_short(c) for c in class_names], fontsize=8)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title("confusion matrix, " + ("normalised by true class" if normalised else "counts"))
    if n <= 25:
        threshold = (1 if normalised else max(1.0, values.max())) / 2
        for i in range(n):
            for j in range(n):
                text = f"{values[i, j]:.2f}" if normalised else f"{int(values[i, j])}"
                axes.text(j, i, text, ha="center", va="center", fontsize=7,
                          color="white" if values[i, j] > threshold else "black")
    figure.tight_layout()
    return _png(figure)


def _metric_names(phases) -> list:
    """Training metrics other than the loss, in first-seen order (`accuracy`, `auc`, ...)."""
    names = []
    for phase in phases:
        for key in phase.history:
            if not key.startswith("val_") and key != "loss" and key not in NOT_CURVES and key not in names:
                names.append(key)
    return names


def _series(phases, key):
    xs, ys = [], []
    for phase in phases:
        for i, value in enumerate(phase.history.get(key, [])):
            if value is not None and math.isfinite(value):
                xs.append(phase.first_epoch + i)
                ys.append(value)
    return xs, ys


def _mark_phases(axes, phases) -> None:
    for phase in phases:
        if phase.first_epoch > 1:
            axes.axvline(phase.first_epoch - 0.5, color="grey", linestyle=":", linewidth=1)
        if phase.epochs_run:
            axes.annotate(phase.name, xy=((phase.first_epoch + phase.last_epoch) / 2, 0.98),
                          xycoords=("data", "axes fraction"), ha="center", va="top", fontsize=8, color="grey")


def _short(name, width: int = 18) -> str:
    name = str(name)
    return name if len(name) <= width else name[: width - 1] + "…"


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()
