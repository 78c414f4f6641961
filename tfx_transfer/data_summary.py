"""The data summary printed before training: examples per class and split, and a warning on imbalance.

A class with a third of the examples of the largest one is often never predicted by a model
trained with an unweighted loss (recall 0.0 on the issue-13 review set): the summary says so
before training and names the setting that fixes it.

Example:

```python
counts = split_class_counts(splits)        # {"train": {"neg": 633, ...}, "validation": {...}, ...}
log_data_summary(counts, class_weight_set=any(p.class_weight for p in recipe.phases))
```
"""

import numpy as np

from tfx_transfer.log import logger

# Largest / smallest training class count from which the summary warns.
IMBALANCE_RATIO = 3.0
SPLITS = ("train", "validation", "test")


def split_class_counts(splits) -> dict[str, dict[str, int]]:
    """`{split: {class name: examples}}` of a `DataSplits`, from its loader's report when it has one.

    For multi-label data a class counts the examples that carry it.
    """
    reported = splits.report.get("counts") if splits.report else None
    if reported:
        return {split: dict(reported[split]) for split in SPLITS if split in reported}
    counts = {}
    for split in SPLITS:
        dataset = getattr(splits, split)
        if dataset is not None:
            counts[split] = dict(zip(splits.class_names, _count_labels(dataset, len(splits.class_names)).tolist()))
    return counts


def _count_labels(dataset, num_classes) -> np.ndarray:
    counts = np.zeros(num_classes, dtype=np.int64)
    for labels in dataset.map(lambda x, y: y).batch(4096):
        labels = labels.numpy()
        if labels.ndim == 2:  # multi-hot
            counts += labels.astype(np.int64).sum(axis=0)
        else:
            counts += np.bincount(labels.astype(np.int64), minlength=num_classes)
    return counts


def class_count_table(counts: dict[str, dict[str, int]]) -> str:
    """A text table, one row per class and one column per split, with totals.

    >>> print(class_count_table({"train": {"a": 6, "b": 2}, "test": {"a": 1, "b": 1}}))
    class  train  test
    -----  -----  ----
    a          6     1
    b          2     1
    total      8     2
    """
    splits = list(counts)
    classes = list(next(iter(counts.values()))) if counts else []
    rows = [[name, *(f"{counts[s].get(name, 0):,}" for s in splits)] for name in classes]
    rows.append(["total", *(f"{sum(counts[s].values()):,}" for s in splits)])
    header = ["class", *splits]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row):
        return "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def imbalance_warning(train_counts: dict[str, int], ratio: float = IMBALANCE_RATIO) -> str | None:
    """A warning naming the largest and smallest class when one has `ratio` times the examples of the other.

    >>> imbalance_warning({"neg": 633, "mixed": 256, "pos": 90})[:72]
    'training classes are imbalanced: neg has 633 examples, pos 90 (7.0x). Se'
    >>> imbalance_warning({"a": 10, "b": 5}) is None
    True
    """
    if len(train_counts) < 2:
        return None
    largest = max(train_counts, key=train_counts.get)
    smallest = min(train_counts, key=train_counts.get)
    big, small = train_counts[largest], train_counts[smallest]
    if small and big < ratio * small:
        return None
    comparison = f"{smallest} {small:,} ({big / small:.1f}x)" if small else f"{smallest} none"
    return (
        f"training classes are imbalanced: {largest} has {big:,} examples, {comparison}. "
        "Set `class_weight: auto` in each phase (e.g. --set phases.0.class_weight=auto "
        "--set phases.1.class_weight=auto) so every class weighs the same in the loss, and judge the "
        "run by macro_f1 and per-class recall in metrics.json rather than accuracy."
    )


def log_data_summary(counts: dict[str, dict[str, int]], class_weight_set: bool = False) -> str | None:
    """Logs the class-count table and, unless class weights are already set, the imbalance warning.

    Returns the warning (or None) so that the caller can also record it in `metrics.json`.
    """
    logger.info("examples per class and split:\n" + class_count_table(counts))
    warning = None if class_weight_set or "train" not in counts else imbalance_warning(counts["train"])
    if warning:
        logger.warning(warning)
    return warning
