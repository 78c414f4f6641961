"""`write_comparison(run_dirs, path)`: several runs side by side in one self-contained HTML file.

```python
from tfx_transfer.report import write_comparison

write_comparison(["runs/a", "runs/b"], "comparison.html")
```
"""

from tfx_transfer import storage
from tfx_transfer.log import logger
from tfx_transfer.report import html, plots
from tfx_transfer.report.run import load_run


def write_comparison(run_dirs, path) -> str:
    """Writes a page with one metrics row per run and their learning curves overlaid; returns `path`."""
    if not run_dirs:
        raise ValueError("compare needs at least one run directory.")
    runs = [load_run(d) for d in run_dirs]
    labels = _labels(runs)
    rows = []
    for label, run in zip(labels, runs):
        test = run.metrics.get("test") or {}
        rows.append([
            label, run.metrics.get("backbone"), test.get("accuracy"), test.get("loss"), _macro_f1(test),
            test.get("examples"), " + ".join(f"{p.name} {p.epochs_run}" for p in run.phases),
            sum(p.seconds or 0.0 for p in run.phases), run.path,
        ])
    headers = ["run", "backbone", "test accuracy", "test loss", "macro F1", "test examples", "epochs per phase",
               "training seconds", "run directory"]
    curves = plots.overlaid_curves_png([(label, run.phases) for label, run in zip(labels, runs)])
    body = (
        html.section("Metrics", html.table(headers, rows), element_id="metrics")
        + html.section("Learning curves", html.image(curves, "learning curves of all runs", element_id="curves"),
                       html.paragraph("Epochs counted across phases; validation values where recorded.", "note"))
    )
    storage.write_text_atomic(str(path), html.page(f"Comparison of {len(runs)} runs", body))
    logger.info("comparison: %s", path)
    return str(path)


def _macro_f1(test):
    """`macro_f1` when recorded, else the mean of the per-class F1 scores."""
    if test.get("macro_f1") is not None:
        return test["macro_f1"]
    per_class = test.get("per_class") or {}
    return sum(v.get("f1", 0.0) for v in per_class.values()) / len(per_class) if per_class else None


def _labels(runs) -> list:
    """Each run's recipe name, made unique with the run directory when two runs share one."""
    names = [run.name for run in runs]
    return [name if names.count(name) == 1 else f"{name} ({run.path})" for name, run in zip(names, runs)]
