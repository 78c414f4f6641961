"""Saves what the report shows of the test split: every prediction (CSV) and the worst errors' inputs as files.

Images become PNGs, audio clips WAVs and texts their detokenized snippet, so
`tfx-transfer report` rebuilds the page later from plain files. Called once by
the training pipeline after the test predictions:

```python
save_test_examples(run_dir, probabilities, labels, splits.test, class_names, recipe.head.kind,
                   recipe.modality, preprocessor, group_ids=splits.test_groups)
```
"""

import csv
import io

import numpy as np
import tensorflow as tf

from tfx_transfer import storage
from tfx_transfer.console import track
from tfx_transfer.report.run import EXAMPLES_DIR, EXAMPLES_INDEX, PREDICTIONS_FILE

SNIPPET_CHARACTERS = 600


def save_test_examples(run_dir, probabilities, labels, dataset, class_names, kind, modality, preprocessor=None,
                       group_ids=None, count: int = 12, threshold: float = 0.5) -> None:
    """Writes `test_predictions.csv` and `examples/` (the `count` highest-loss errors, inputs included) in `run_dir`.

    `probabilities` and `labels` are the test predictions as `metrics.json` was
    computed from them (one row per test example, or per group with
    `group_ids`, the group of each element of `dataset`); `dataset` is the
    unbatched `(model_inputs, label)` test split.

    >>> import tempfile
    >>> ds = tf.data.Dataset.from_tensor_slices((np.zeros((2, 4, 4, 3), "float32"), np.array([0, 1])))
    >>> run_dir = tempfile.mkdtemp()
    >>> save_test_examples(run_dir, np.array([[0.9, 0.1], [0.8, 0.2]]), np.array([0, 1]), ds, ["a", "b"],
    ...                    "multiclass", "image")
    >>> storage.read_json(storage.join(run_dir, EXAMPLES_INDEX))["examples"][0]["file"]
    'examples/error_00.png'
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels)
    truth, predicted = _truth_and_prediction(probabilities, labels, kind, threshold)
    storage.write_text_atomic(storage.join(run_dir, PREDICTIONS_FILE),
                              _predictions_csv(probabilities, truth, predicted, class_names))
    wrong = np.flatnonzero(np.any(truth != predicted, axis=1))
    losses = _example_losses(probabilities, truth, kind)
    worst = wrong[np.argsort(-losses[wrong], kind="stable")][:count]
    inputs = _inputs_of(dataset, worst, group_ids)
    examples = []
    for rank, index in enumerate(worst):
        entry = {
            "index": int(index),
            "true": [class_names[k] for k in np.flatnonzero(truth[index])],
            "predicted": [class_names[k] for k in np.flatnonzero(predicted[index])],
            "confidence": float(probabilities[index].max()),
            "true_probability": float(probabilities[index][truth[index]].min()) if truth[index].any() else None,
            "loss": float(losses[index]),
        }
        entry.update(_save_input(run_dir, f"{EXAMPLES_DIR}/error_{rank:02d}", inputs[int(index)], modality, preprocessor))
        examples.append(entry)
    note = ("Audio clips cut into windows show their first window; the prediction averages all windows."
            if group_ids is not None else "")
    storage.write_json_atomic(storage.join(run_dir, EXAMPLES_INDEX), {
        "modality": modality, "kind": kind, "examples_total": int(len(probabilities)),
        "errors": int(len(wrong)), "note": note, "examples": examples,
    })


def _truth_and_prediction(probabilities, labels, kind, threshold):
    """Boolean `[N, classes]` matrices of the true and the predicted classes."""
    if kind == "multilabel":
        return labels.astype(bool), probabilities >= threshold
    classes = np.arange(probabilities.shape[1])
    return labels.astype(np.int64).reshape(-1, 1) == classes, probabilities.argmax(axis=1)[:, None] == classes


def _example_losses(probabilities, truth, kind):
    """Cross-entropy of each example (binary cross-entropy averaged over classes for multi-label)."""
    p = np.clip(probabilities, 1e-7, 1 - 1e-7)
    if kind == "multilabel":
        return -np.mean(np.where(truth, np.log(p), np.log(1 - p)), axis=1)
    return -np.log(p[truth])


def _predictions_csv(probabilities, truth, predicted, class_names) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["index", "true", "predicted", "confidence", *class_names])
    names = np.asarray(class_names, dtype=object)
    for i, row in enumerate(probabilities):
        writer.writerow([i, ";".join(names[truth[i]]), ";".join(names[predicted[i]]), f"{row.max():.6f}",
                         *(f"{p:.6f}" for p in row)])
    return buffer.getvalue()


def _inputs_of(dataset, indices, group_ids):
    """`{index: model input}` of the wanted examples (for groups: of each group's first element), in one pass."""
    if not len(indices):
        return {}
    wanted = {int(i) for i in indices}
    if group_ids is None:
        element_of = {i: i for i in wanted}
    else:
        group_ids = np.asarray(group_ids)
        element_of = {g: int(np.flatnonzero(group_ids == g)[0]) for g in wanted}
    index_of = {e: i for i, e in element_of.items()}
    found, count = {}, max(element_of.values()) + 1
    for element, (inputs, _) in enumerate(track(dataset.take(count), "reading the worst errors' inputs", count)):
        if element in index_of:
            found[index_of[element]] = tf.nest.map_structure(np.asarray, inputs)
    return found


def _save_input(run_dir, stem, inputs, modality, preprocessor) -> dict:
    """Writes one example's input as a file the report embeds; returns its index fields."""
    if modality == "image":
        pixels = tf.cast(tf.clip_by_value(tf.round(inputs), 0, 255), tf.uint8)  # model inputs are 0..255
        storage.write_bytes_atomic(storage.join(run_dir, f"{stem}.png"), tf.io.encode_png(pixels).numpy())
        return {"file": f"{stem}.png"}
    if modality == "audio":
        rate = int(getattr(preprocessor, "sample_rate", 16000))
        wav = tf.audio.encode_wav(tf.reshape(tf.cast(inputs, tf.float32), [-1, 1]), rate).numpy()
        storage.write_bytes_atomic(storage.join(run_dir, f"{stem}.wav"), wav)
        return {"file": f"{stem}.wav"}
    if modality == "text":
        return {"text": _text_snippet(inputs, preprocessor)}
    raise ValueError(f"modality must be image, text or audio to save test examples, received {modality!r}.")


def _text_snippet(inputs, preprocessor) -> str:
    """The text of one example's token ids, detokenized by the backbone's tokenizer without special tokens."""
    ids = np.asarray(inputs["token_ids"] if isinstance(inputs, dict) else inputs).reshape(-1)
    if isinstance(inputs, dict) and "padding_mask" in inputs:
        ids = ids[np.asarray(inputs["padding_mask"]).reshape(-1).astype(bool)]
    tokenizer = getattr(getattr(preprocessor, "tokenizer", None), "tokenizer", None)
    if tokenizer is None or not hasattr(tokenizer, "detokenize"):
        return "token ids: " + " ".join(map(str, ids.tolist()))[:SNIPPET_CHARACTERS]
    special = set(getattr(tokenizer, "special_token_ids", []) or [])
    ids = np.asarray([i for i in ids.tolist() if i not in special], dtype=np.int32)
    text = tokenizer.detokenize(ids)
    text = text.numpy() if hasattr(text, "numpy") else text
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return text if len(text) <= SNIPPET_CHARACTERS else text[:SNIPPET_CHARACTERS] + "…"
