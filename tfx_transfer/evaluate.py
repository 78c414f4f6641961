"""Test-set metrics: accuracy, loss, macro-F1, per-class precision/recall/F1 and the confusion matrix."""

import numpy as np
import tensorflow as tf

from tfx_transfer import stop
from tfx_transfer.console import track
from tfx_transfer.data.bucketing import has_token_axis
from tfx_transfer.data.windows import mean_per_group
from tfx_transfer.head_kinds import head_kind


def predict_dataset(
    model, dataset, batch_size: int, jit_compile: bool = False, what: str = "predicting", length_buckets=None,
    between_batches=None, quiet_seconds: float = 3.0,
):
    """`(outputs, labels)` of an unbatched `(inputs, label)` dataset, in one pass, as NumPy arrays.

    `outputs` has the structure of the model's output (e.g. a list of arrays). A pass longer than
    `quiet_seconds` logs `what` with the count and the time left (`console.track`).

    One pass matters: reading the dataset twice (once for `predict`, once for
    the labels) would decode every image or WAV file twice. `jit_compile`
    compiles the forward step with XLA. With `length_buckets` (a `LengthBuckets`, for token
    inputs) batches group texts of one bucket and are cut to its length, and the outputs are put
    back in the data's order. An output with a token axis (the model's symbolic output has shape
    `[None, None, ...]`, e.g. hidden states of frozen layers) then comes back as a `tf.RaggedTensor`
    whose row `i` is example `i`'s output at its bucket's length: no padding beyond that is stored.
    `between_batches` is called before each batch; by default it honours a stop request (`stop`).
    """
    between_batches = between_batches or (lambda: stop.raise_if_requested(stop.RESUMES_RUN))
    total = int(dataset.cardinality())
    batches = dataset.batch(batch_size) if length_buckets is None else length_buckets.indexed_batches(dataset, batch_size)
    step = tf.function(lambda x: model(x, training=False), jit_compile=jit_compile)
    # One trace for every batch shape: a new tf.function per call tracing twice (full and last batch)
    # trips TF's "triggered tf.function retracing" warning when several models are evaluated in a row.
    step = step.get_concrete_function(
        tf.nest.map_structure(lambda s: tf.TensorSpec([None, *s.shape[1:]], s.dtype), batches.element_spec[0])
    )
    outputs, labels, indices = [], [], []
    batches = batches.prefetch(tf.data.AUTOTUNE)
    for batch in track(batches, what, total=total if total >= 0 else None, size=lambda batch: len(batch[1]),
                       quiet_seconds=quiet_seconds):
        between_batches()
        outputs.append(tf.nest.map_structure(np.asarray, step(batch[0])))
        labels.append(batch[1].numpy())
        if length_buckets is not None:
            indices.append(batch[2].numpy())
    if length_buckets is None:
        return tf.nest.map_structure(lambda *parts: np.concatenate(parts), *outputs), np.concatenate(labels)
    order = np.argsort(np.concatenate(indices), kind="stable")
    outputs = tf.nest.map_structure(
        lambda has_tokens, *parts: _ragged_rows(parts, order) if has_tokens else np.concatenate(parts)[order],
        tf.nest.map_structure(has_token_axis, model.output), *outputs,
    )
    return outputs, np.concatenate(labels)[order]


def _ragged_rows(parts, order) -> tf.RaggedTensor:
    """Batches `[B, L, ...]` of varying `L` as one ragged tensor of their rows, in `order` (row indices)."""
    values = np.concatenate([part.reshape(-1, *part.shape[2:]) for part in parts])
    row_lengths = np.concatenate([np.full(len(part), part.shape[1], np.int64) for part in parts])
    return tf.gather(tf.RaggedTensor.from_row_lengths(values, row_lengths), order)


def predict_probabilities(
    model, dataset, batch_size: int, kind: str, group_ids=None, jit_compile: bool = False, length_buckets=None
):
    """`(probabilities [N, num_classes], labels)` of an unbatched `(inputs, label)` dataset.

    With `group_ids` (the input each example is a window of, e.g. `DataSplits.test_groups`),
    the probabilities of one input's windows are averaged into one row per input
    by `windows.mean_per_group`, exactly as the exported model does.
    """
    outputs, labels = predict_dataset(model, dataset, batch_size, jit_compile, "evaluating", length_buckets)
    return average_per_group(np.asarray(head_kind(kind).class_probabilities(outputs)), labels, group_ids)


def average_per_group(probabilities, labels, group_ids):
    """One row per group (e.g. the windows of one clip): the mean of its rows' probabilities, and its label.

    Without `group_ids` (every example is its own input) both come back unchanged.

    >>> probabilities, labels = average_per_group(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]), np.array([1, 1, 0]), [7, 7, 3])
    >>> probabilities.tolist(), labels.tolist()
    ([[1.0, 0.0], [0.5, 0.5]], [0, 1])
    """
    if group_ids is None:
        return probabilities, labels
    groups, first, dense_ids = np.unique(np.asarray(group_ids), return_index=True, return_inverse=True)
    return mean_per_group(probabilities, dense_ids, len(groups)).numpy(), labels[first]


def classification_report(probabilities, labels, class_names, kind: str = "multiclass", threshold: float = 0.5) -> dict:
    """Metrics of predicted `probabilities` against `labels` (ids, or multi-hot for multi-label).

    `macro_f1` averages F1 over the classes present in the labels or the predictions (as
    scikit-learn's `f1_score(average="macro")`); `recall` maps each class to its recall, the
    number that shows a class the model never predicts.

    >>> report = classification_report(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 0]), ["a", "b"])
    >>> report["accuracy"], report["confusion_matrix"], report["recall"], round(report["macro_f1"], 3)
    (0.5, [[1, 1], [0, 0]], {'a': 0.5, 'b': 0.0}, 0.333)
    """
    eps = 1e-7
    p = np.clip(probabilities.astype(np.float64), eps, 1 - eps)
    if kind == "multilabel":
        truth = labels.astype(bool)
        predicted = probabilities >= threshold
        loss = float(-np.mean(truth * np.log(p) + (~truth) * np.log(1 - p)))
        per_class = {
            name: _prf(np.sum(predicted[:, k] & truth[:, k]), np.sum(predicted[:, k]), np.sum(truth[:, k]))
            for k, name in enumerate(class_names)
        }
        return {
            "accuracy": float(np.mean(predicted == truth)),
            "exact_match": float(np.mean(np.all(predicted == truth, axis=1))),
            "loss": loss,
            "examples": int(len(labels)),
            "per_class": per_class,
            **_imbalance_metrics(per_class, predicted.sum(axis=0)),
        }
    labels = labels.astype(np.int64).ravel()
    predicted = probabilities.argmax(axis=1)
    n = len(class_names)
    confusion = np.zeros((n, n), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = {
        name: _prf(confusion[k, k], confusion[:, k].sum(), confusion[k, :].sum())
        for k, name in enumerate(class_names)
    }
    return {
        "accuracy": float(np.mean(predicted == labels)) if len(labels) else 0.0,
        "loss": float(-np.mean(np.log(p[np.arange(len(labels)), labels]))) if len(labels) else 0.0,
        "examples": int(len(labels)),
        "per_class": per_class,
        "confusion_matrix": confusion.tolist(),
        **_imbalance_metrics(per_class, confusion.sum(axis=0)),
    }


def _imbalance_metrics(per_class: dict, predicted_counts) -> dict:
    """`macro_f1` over the classes seen in labels or predictions, and `recall` by class name."""
    seen = [m["f1"] for m, predicted in zip(per_class.values(), predicted_counts) if m["support"] or predicted]
    return {
        "macro_f1": float(np.mean(seen)) if seen else 0.0,
        "recall": {name: m["recall"] for name, m in per_class.items()},
    }


def _prf(true_positive, predicted_positive, actual_positive) -> dict:
    precision = float(true_positive / predicted_positive) if predicted_positive else 0.0
    recall = float(true_positive / actual_positive) if actual_positive else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "support": int(actual_positive)}
