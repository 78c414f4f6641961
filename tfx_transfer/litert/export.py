"""Writes a run's LiteRT models into its export version and measures each against the Keras model.

For each quantization in `export.litert.quantization`, `export_litert` writes
`<export_dir>/litert/<file>` (`model.tflite` for `none`, `model_<quantization>.tflite`
otherwise) and `labels.txt`, then runs every model in the `ai-edge-litert`
interpreter on the test split and returns what `metrics.json` stores under
`litert`: test accuracy, size and single-example latency on 1 and 2 threads,
next to the Keras model's.

Example:

```python
metrics["litert"] = export_litert(model, splits, recipe.head, result.export_dir, recipe.export.litert)
```
"""

import time

import keras
import numpy as np
import tensorflow as tf

from tfx_transfer import head_kinds, storage
from tfx_transfer.evaluate import average_per_group, classification_report
from tfx_transfer.litert.convert import convert_to_litert, litert_input_specs
from tfx_transfer.litert.interpreter import LiteRTRunner
from tfx_transfer.log import logger

LITERT_DIR = "litert"
THREADS = (1, 2)


def litert_filename(quantization: str) -> str:
    return "model.tflite" if quantization == "none" else f"model_{quantization}.tflite"


def export_litert(
    model: keras.Model,
    splits,
    head_config,
    export_dir: str,
    config,
    keras_file: str | None = None,
    vocabulary: list[str] | None = None,
) -> dict:
    """Converts, writes and measures one LiteRT model per `config.quantization`; returns their metrics.

    `splits` is the run's `DataSplits`: int8 calibrates on
    `config.representative_examples` training examples spread over the split, and accuracy is measured
    on the test split (averaged per clip for windowed audio, as the Keras
    model's test metrics are). A text model's `vocabulary` is written to
    `vocab.txt`: its LiteRT model takes token ids, tokenized on the device.
    """
    head_kind = head_config.kind
    representative = [
        {name: value[np.newaxis] for name, value in _named(model, x).items()}
        for x, _ in spread_examples(splits.train, config.representative_examples).as_numpy_iterator()
    ]
    if not representative:
        raise ValueError("The training split is empty: LiteRT int8 calibration and latency need examples.")
    target = storage.join(export_dir, LITERT_DIR)
    storage.makedirs(target)
    storage.write_text_atomic(storage.join(target, "labels.txt"), "".join(f"{c}\n" for c in splits.class_names))
    if vocabulary is not None:
        storage.write_text_atomic(storage.join(target, "vocab.txt"), "".join(f"{token}\n" for token in vocabulary))

    runners, models = {}, {}
    for quantization in config.quantization:
        start = time.perf_counter()
        conversion = convert_to_litert(model, quantization, head_kind, config.image_input, representative)
        path = storage.join(target, litert_filename(quantization))
        storage.write_bytes_atomic(path, conversion.flatbuffer)
        logger.info("LiteRT %s model written to %s (%d bytes)", quantization, path, len(conversion.flatbuffer))
        runners[quantization] = {threads: LiteRTRunner(conversion.flatbuffer, threads) for threads in THREADS}
        models[quantization] = {
            "path": path,
            "size_bytes": len(conversion.flatbuffer),
            "float_fallback": conversion.float_fallback,
            "convert_seconds": round(time.perf_counter() - start, 2),
        }

    def test_metrics(probabilities):
        report = classification_report(probabilities, test_labels, splits.class_names, head_kind, head_config.threshold)
        return {key: report[key] for key in ("accuracy", "loss", "examples")}

    keras_probabilities = test_labels = None
    if splits.test is not None:
        keras_probabilities, litert_probabilities, labels = _predict_test(model, splits, head_kind, runners)
        keras_probabilities, test_labels = average_per_group(keras_probabilities, labels, splits.test_groups)
    for quantization, entry in models.items():
        entry["test"] = None
        if keras_probabilities is not None:
            probabilities, _ = average_per_group(litert_probabilities[quantization], labels, splits.test_groups)
            entry["test"] = test_metrics(probabilities)
            entry["agreement_with_keras"] = float(np.mean(probabilities.argmax(1) == keras_probabilities.argmax(1)))
            entry["max_probability_difference"] = float(np.max(np.abs(probabilities - keras_probabilities)))
        entry["latency_ms"] = {
            f"{threads}_thread{'s' if threads > 1 else ''}": round(runner.latency_ms(representative[0], config.latency_runs), 3)
            for threads, runner in runners[quantization].items()
        }
    return {
        "inputs": {
            name: {"shape": spec.shape.as_list(), "dtype": spec.dtype.name}
            for name, spec in litert_input_specs(model, config.image_input).items()
        },
        "labels": storage.join(target, "labels.txt"),
        "keras": {
            "test": test_metrics(keras_probabilities) if keras_probabilities is not None else None,
            "size_bytes": len(storage.read_bytes(keras_file)) if keras_file else None,
            "latency_ms": round(keras_latency_ms(model, representative[0], config.latency_runs), 3),
            "latency_threads": "TensorFlow default (all cores)",
        },
        "models": models,
    }


def spread_examples(dataset, count: int):
    """`count` examples spread evenly over `dataset` (splits list examples class by class), in one pass.

    >>> [int(x) for x in spread_examples(tf.data.Dataset.range(10), 3)]
    [0, 3, 6]
    """
    size = int(dataset.cardinality())
    if size > count:
        dataset = dataset.shard(size // count, 0)
    return dataset.take(count)


def _named(model, inputs) -> dict:
    """Model inputs (a tensor or a dict) as `{input name: value}`."""
    if isinstance(inputs, dict):
        return dict(inputs)
    (tensor,) = keras.tree.flatten(model.input)
    return {tensor.name: inputs}


def _predict_test(model, splits, head_kind, runners):
    """One pass over the test split: Keras and every LiteRT model's probabilities, and the labels."""
    step = _inference_step(model)
    keras_parts, litert_parts, labels = [], {q: [] for q in runners}, []
    for x, y in splits.test.batch(32).as_numpy_iterator():
        named = _named(model, x)
        # The LiteRT model gets what a device would: uint8 pixels are the rounded test pixels.
        keras_parts.append(np.asarray(head_kinds.head_kind(head_kind).class_probabilities(step(x))))
        for quantization, by_threads in runners.items():
            litert_parts[quantization].append(by_threads[1].predict(named))
        labels.append(y)
    return (
        np.concatenate(keras_parts),
        {q: np.concatenate(parts) for q, parts in litert_parts.items()},
        np.concatenate(labels),
    )


def _inference_step(model):
    def forward(inputs):
        return model(inputs, training=False)

    return tf.function(forward, reduce_retracing=True)


def keras_latency_ms(model, single: dict, runs: int) -> float:
    """Median milliseconds of the Keras model (a traced `tf.function`) on one example."""
    step = _inference_step(model)
    inputs = single if isinstance(model.input, dict) else next(iter(single.values()))
    step(inputs)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        np.asarray(keras.tree.flatten(step(inputs))[0])
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)
