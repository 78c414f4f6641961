"""`write_report(run_dir)`: the run's `report.html` (self-contained) and its PNGs, from the run dir alone.

```python
from tfx_transfer.report import write_report

path = write_report("runs/smoke_synthetic")   # runs/smoke_synthetic/report.html
```
"""

import urllib.parse

import numpy as np

from tfx_transfer import storage
from tfx_transfer.data.split_manifest import SPLIT_MANIFEST_FILE
from tfx_transfer.log import logger
from tfx_transfer.report import html, plots
from tfx_transfer.report.run import PREDICTIONS_FILE, REPORT_FILE, load_run

MAX_SKIPPED_ROWS = 200
CONFUSED_PAIRS = 10
MIME = {".png": "image/png", ".wav": "audio/wav"}


def write_report(run_dir) -> str:
    """Writes `report.html`, `curves.png` and the confusion-matrix PNGs into `run_dir`; returns the HTML path."""
    run = load_run(run_dir)
    plots_written = {"curves.png": plots.learning_curves_png(run.phases)}
    confusion = (run.metrics.get("test") or {}).get("confusion_matrix")
    class_names = run.metrics.get("class_names") or []
    if confusion:
        plots_written["confusion_counts.png"] = plots.confusion_png(confusion, class_names, normalised=False)
        plots_written["confusion_normalised.png"] = plots.confusion_png(confusion, class_names, normalised=True)
    for name, png in plots_written.items():
        storage.write_bytes_atomic(storage.join(run.path, name), png)
    body = "".join([
        _summary(run),
        html.section("Learning curves", html.image(plots_written["curves.png"], "learning curves", element_id="curves"),
                     html.paragraph("Dotted lines separate phases; a star marks the epoch whose weights the phase "
                                    "kept (validation values where recorded).", "note"), element_id="learning-curves"),
        _phases(run),
        _test_by_stage(run.metrics),
        _confusion(run, plots_written),
        _per_class(run.metrics),
        _confused_pairs(confusion, class_names),
        _worst_errors(run),
        _data_summary(run.metrics.get("data") or {}, run.metrics.get("split_manifest")),
        _extra_plots(run.extra_plots),
        _recipe_and_versions(run),
    ])
    path = storage.join(run.path, REPORT_FILE)
    storage.write_text_atomic(path, html.page(f"Run report: {run.name}", body))
    logger.info("report: %s", path)
    return path


def _summary(run) -> str:
    metrics, test = run.metrics, run.metrics.get("test") or {}
    rows = [
        ["recipe", run.name], ["backbone", metrics.get("backbone")], ["run directory", run.path],
        ["test accuracy", test.get("accuracy")], ["test loss", test.get("loss")],
        ["test examples", test.get("examples")], ["export", metrics.get("export_dir")],
        ["total seconds", metrics.get("seconds")],
    ]
    return html.section("Summary", html.table(["", "value"], [r for r in rows if r[1] is not None]), element_id="summary")


def _phases(run) -> str:
    rows = []
    for phase in run.phases:
        planned = phase.epochs_planned if phase.epochs_planned is not None else ""
        stop = f"early stopping at epoch {phase.epochs_run}" if phase.stopped_early else "ran all epochs"
        per_epoch = phase.seconds / phase.epochs_run if phase.seconds is not None and phase.epochs_run else None
        kept = phase.kept_epoch if phase.kept_epoch else "none: kept the weights it started with"
        rows.append([phase.name, phase.epochs_run, planned, stop, kept,
                     phase.seconds, per_epoch, f"{phase.first_epoch}–{phase.last_epoch}"])
    headers = ["phase", "epochs run", "planned", "how it ended", "kept epoch", "seconds", "seconds per epoch",
               "epochs on the curve"]
    return html.section("Phases and time", html.table(headers, rows), element_id="phases")


def _test_by_stage(metrics) -> str:
    """Test metrics after each phase but the last (`phases[].test`) and the final ones (`test`)."""
    stages = []
    for phase in metrics.get("phases") or []:
        if isinstance(phase.get("test"), dict):
            stages.append((f"after phase {phase.get('name')!r}", phase["test"]))
    if not stages or not metrics.get("test"):
        return ""
    stages.append(("final", metrics["test"]))
    keys = [k for k in ("accuracy", "loss", "macro_f1", "exact_match", "examples") if any(k in s for _, s in stages)]
    rows = [[label] + [values.get(k) for k in keys] for label, values in stages]
    return html.section("Test metrics: after the frozen phase and final", html.table(["model"] + keys, rows),
                        element_id="test-by-stage")


def _confusion(run, plots_written) -> str:
    if "confusion_counts.png" not in plots_written:
        return html.section("Confusion matrix", html.paragraph(
            "No confusion matrix in metrics.json (multi-label runs and runs without a test split have none).", "note"))
    return html.section(
        "Confusion matrix",
        html.image(plots_written["confusion_counts.png"], "confusion matrix (counts)", element_id="confusion-counts"),
        html.image(plots_written["confusion_normalised.png"], "confusion matrix (normalised)",
                   element_id="confusion-normalised"),
        element_id="confusion",
    )


def _per_class(metrics) -> str:
    per_class = (metrics.get("test") or {}).get("per_class") or {}
    if not per_class:
        return ""
    keys = ["precision", "recall", "f1", "support"]
    rows = [[name] + [values.get(k) for k in keys] for name, values in per_class.items()]
    return html.section("Per-class precision, recall and F1", html.table(["class"] + keys, rows), element_id="per-class")


def most_confused_pairs(confusion, class_names, limit: int = CONFUSED_PAIRS) -> list:
    """`(true, predicted, count, fraction of the true class)` of the largest off-diagonal cells, largest first.

    >>> most_confused_pairs([[5, 3], [1, 4]], ["a", "b"])
    [('a', 'b', 3, 0.375), ('b', 'a', 1, 0.2)]
    """
    counts = np.asarray(confusion, dtype=np.int64)
    totals = counts.sum(axis=1)
    pairs = [(counts[i, j], i, j) for i in range(len(counts)) for j in range(len(counts)) if i != j and counts[i, j]]
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    return [(class_names[i], class_names[j], int(n), float(n / totals[i])) for n, i, j in pairs[:limit]]


def _confused_pairs(confusion, class_names) -> str:
    if not confusion:
        return ""
    pairs = most_confused_pairs(confusion, class_names)
    content = (html.table(["true class", "predicted as", "test examples", "share of the true class"], pairs)
               if pairs else html.paragraph("No test example was misclassified."))
    return html.section("Most confused class pairs", content, element_id="confused-pairs")


def _worst_errors(run) -> str:
    index = run.worst_errors
    if index is None:
        return html.section("Worst test errors", html.paragraph(
            "This run saved no test examples (examples/worst_errors.json is missing).", "note"))
    rows = []
    for example in index["examples"]:
        rows.append([
            _example_input(run, example),
            ", ".join(map(str, example.get("true", []))),
            ", ".join(map(str, example.get("predicted", []))),
            example.get("confidence"),
            example.get("true_probability"),
            example.get("index"),
        ])
    note = (f"The {len(rows)} test examples with the highest loss among {index.get('errors', '?')} errors "
            f"(of {index.get('examples_total', '?')}). " + (index.get("note") or ""))
    if not rows:
        return html.section("Worst test errors", html.paragraph("No test example was misclassified."),
                            element_id="worst-errors")
    table = html.table(["input", "true", "predicted", "confidence", "probability of the true class", "test index"], rows)
    predictions = html.Markup(f'<p class="note">All test predictions: <a href="{PREDICTIONS_FILE}">'
                              f"{PREDICTIONS_FILE}</a></p>")
    return html.section("Worst test errors", html.paragraph(note, "note"), table, predictions, element_id="worst-errors")


def _example_input(run, example) -> html.Markup:
    parts = []
    if example.get("file"):
        content = run.example_bytes(example["file"])
        suffix = str(example["file"])[str(example["file"]).rfind("."):].lower()
        if suffix == ".png":
            parts.append(html.image(content, f"test example {example.get('index')}", css_class="thumb"))
        elif suffix == ".wav":
            parts.append(f'<audio controls preload="none" src="{html.data_uri(content, MIME[suffix])}"></audio>')
        else:
            parts.append(f'<div class="snippet">{html.escape(content.decode("utf-8", "replace"))}</div>')
    if example.get("text"):
        parts.append(f'<div class="snippet">{html.escape(example["text"])}</div>')
    if example.get("source"):
        parts.append(f'<div class="note">{html.escape(example["source"])}</div>')
    return html.Markup("".join(parts))


def _data_summary(data, split_manifest) -> str:
    if not data:
        return ""
    parts = []
    if split_manifest:  # written into the run directory, next to this report
        parts.append(html.Markup(
            f'<p class="note">Every example\'s source, label and split: <a href="{SPLIT_MANIFEST_FILE}">'
            f"{SPLIT_MANIFEST_FILE}</a> (<code>data.split_manifest</code> reproduces the split)</p>"
        ))
    counts = data.get("counts") or {}
    if counts:
        splits = list(counts)
        classes = list(dict.fromkeys(c for split in counts.values() for c in split))
        rows = [[c] + [counts[s].get(c, 0) for s in splits] for c in classes]
        rows.append([html.Markup("<b>all</b>")] + [sum(counts[s].values()) for s in splits])
        parts.append(html.table(["class"] + splits, rows))
    skipped = data.get("skipped") or []
    if skipped:
        rows = [[item.get("source", ""), item.get("reason", "")] for item in skipped[:MAX_SKIPPED_ROWS]]
        parts.append(html.paragraph(f"{len(skipped)} input(s) skipped:"))
        parts.append(html.table(["input", "reason"], rows))
        if len(skipped) > MAX_SKIPPED_ROWS:
            parts.append(html.paragraph(f"... and {len(skipped) - MAX_SKIPPED_ROWS} more (metrics.json, data.skipped).",
                                        "note"))
    else:
        parts.append(html.paragraph("No input was skipped."))
    other = [[k, v] for k, v in data.items() if k not in ("counts", "skipped") and not isinstance(v, (dict, list))]
    other += [[k, str(v)] for k, v in data.items() if k not in ("counts", "skipped") and isinstance(v, (dict, list)) and v]
    if other:
        parts.append(html.table(["", "value"], other))
    return html.section("Data", *parts, element_id="data")


def _extra_plots(extra_plots) -> str:
    if not extra_plots:
        return ""
    parts = []
    for name, png in sorted(extra_plots.items()):
        link = html.Markup(f'<p><a href="{html.escape(urllib.parse.quote(name))}">{html.escape(name)}</a></p>')
        parts += [link, html.image(png, name)]
    return html.section("Other plots in the run directory", *parts, element_id="other-plots")


def _recipe_and_versions(run) -> str:
    versions = run.metrics.get("versions") or {}
    parts = [html.table(["library", "version"], sorted(versions.items()))] if versions else []
    parts.append(f"<pre>{html.escape(run.recipe_text or '(recipe.yaml not found)')}</pre>")
    return html.section("Recipe and versions", *parts, element_id="recipe")
