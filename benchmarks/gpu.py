"""Training speed and accuracy of an image and a text recipe in float32, mixed_float16 and mixed_bfloat16, with and without XLA.

Every combination runs the recipe through `tfx_transfer.train` with its own
`distribute.precision` and `distribute.jit_compile`: phase 1 trains the head on
the frozen backbone, phase 2 unfreezes the last blocks. Feature caching is
turned off (`cache_features: false`), so every epoch runs the backbone and the
numbers are the backbone's speed in that precision, not the cache's. Prints
one markdown table: examples per second of each phase's fastest training epoch
after the first (training batches only: the first epoch holds tracing and XLA
compilation, and Keras' retrace for a smaller last batch can compile once more
in the second), each phase's wall time, and the test accuracy of the run.

    python benchmarks/gpu.py              # recipes/fashion_mnist_efficientnet_lite0.yaml and bbc_news_minilm.yaml
    python benchmarks/gpu.py --small      # tiny random-weight models on generated data (CPU: 12 min on 2 busy cores)

A combination that fails (e.g. no float16 kernel on this device) gets a row
saying why instead of stopping the script.
"""

import argparse
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
import yaml  # noqa: E402

from tfx_transfer import storage, train  # noqa: E402
from tfx_transfer.backbones.registry import register_source  # noqa: E402
from tfx_transfer.recipe import recipe_from_dict  # noqa: E402

REPOSITORY = pathlib.Path(__file__).resolve().parent.parent
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
COMPILERS = (False, True)
COLUMNS = (
    "modality", "precision", "XLA", "phase 1 ex/s", "phase 2 ex/s", "phase 1 s", "phase 2 s", "test accuracy", "note",
)


class TrainingTime(keras.callbacks.Callback):
    """Seconds of each epoch's training batches (epoch start to validation start), one list per `fit`."""

    def __init__(self):
        super().__init__()
        self.fits = []

    def on_train_begin(self, logs=None):
        self.fits.append([])
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_test_begin(self, logs=None):
        self._record()

    def on_epoch_end(self, epoch, logs=None):
        self._record()  # an epoch without validation

    def _record(self):
        if self._start is not None:  # validation inside an epoch ends the epoch's training batches
            self.fits[-1].append(time.perf_counter() - self._start)
            self._start = None


def small_recipes(work_dir: str, epochs: int) -> dict:
    """Recipes (as dicts) for the test suite's tiny random-weight models: a 3-block ResNet on generated
    stripes (registered as `backbone.source: tiny_resnet`) and a 2-layer BERT preset on topic texts."""
    sys.path.insert(0, str(REPOSITORY / "tests"))
    from harness.image import tiny_resnet
    from harness.text import save_tiny_bert_preset, write_topic_folder

    register_source("tiny_resnet", lambda config: tiny_resnet(tuple(config.image_size), width=16))
    preset = save_tiny_bert_preset(os.path.join(work_dir, "tiny_bert"), max_sequence_length=32)
    topics = write_topic_folder(os.path.join(work_dir, "topics"), per_class=40)
    phases = [
        {"name": "head", "epochs": epochs, "learning_rate": 0.01},
        {"name": "fine_tune", "epochs": epochs, "freeze": {"last_blocks": 2}, "learning_rate": 0.001},
    ]
    return {
        "image": {
            "name": "gpu_small_image", "modality": "image",
            "data": {"source": "synthetic", "batch_size": 14},  # 126 training examples: no smaller last batch
            "backbone": {"source": "tiny_resnet", "image_size": [32, 32]},
            "phases": phases,
        },
        "text": {
            "name": "gpu_small_text", "modality": "text",
            "data": {"source": "folder", "path": topics, "batch_size": 14},  # 84 training examples
            "backbone": {"source": "kerashub", "name": preset, "sequence_length": 32},
            "phases": phases,
        },
    }


def recipe_file(path: str, epochs: int) -> dict:
    """A recipe file as a dict, its phases cut to `epochs` each; phase 2 unfreezes at most the last 2 blocks."""
    recipe = yaml.safe_load(storage.read_text(path))
    for phase in recipe["phases"]:
        phase["epochs"] = epochs
    fine_tune = recipe["phases"][-1].setdefault("freeze", {})
    if fine_tune.get("trainable") == "all":
        fine_tune.pop("trainable")
        fine_tune["last_blocks"] = 2
    return recipe


def benchmark_settings(recipe: dict, precision: str, jit_compile: bool, run_dir: str) -> dict:
    """`recipe` with the precision and compiler to measure, no feature cache, no early stop, no export."""
    phases = [{**phase, "cache_features": False, "early_stopping_patience": None} for phase in recipe["phases"]]
    return {
        **recipe, "run_dir": run_dir, "phases": phases,
        "distribute": {**recipe.get("distribute", {}), "precision": precision, "jit_compile": jit_compile},
        "export": {"enabled": False},
    }


def examples_per_second(examples: int, epoch_seconds: list) -> float:
    """Training examples per second of the fastest epoch after the first (the first holds tracing and compilation).

    >>> examples_per_second(100, [9.0, 2.0, 1.0])
    100.0
    """
    return examples / min(epoch_seconds[1:] or epoch_seconds)


def measure(modality: str, recipe: dict, precision: str, jit_compile: bool, work_dir: str) -> dict:
    """One table row: a whole `train` run of `recipe` in `precision`, with or without XLA."""
    row = {"modality": modality, "precision": precision, "XLA": "on" if jit_compile else "off"}
    run_dir = tempfile.mkdtemp(prefix=f"{modality}_{precision}_", dir=work_dir)
    timer = TrainingTime()
    keras.backend.clear_session()
    try:
        result = train(recipe_from_dict(benchmark_settings(recipe, precision, jit_compile, run_dir)), callbacks=[timer])
    except Exception as e:  # a row that says why this combination cannot run here
        return {**row, "note": f"failed: {type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"}
    finally:
        keras.mixed_precision.set_global_policy("float32")
    examples = sum(result.metrics["data"]["counts"]["train"].values())
    for number, (phase, seconds) in enumerate(zip(result.metrics["phases"], timer.fits), start=1):
        row[f"phase {number} ex/s"] = examples_per_second(examples, seconds)
        row[f"phase {number} s"] = phase["seconds"]
    row["test accuracy"] = result.metrics["test"]["accuracy"]
    row["note"] = device_note(precision)
    return row


def device_note(precision: str) -> str:
    """What to keep in mind reading a row measured on this machine."""
    if tf.config.list_physical_devices("GPU") or precision == "float32":
        return ""
    return "no GPU: mixed precision speeds up GPUs and TPUs, not CPUs; this row checks that it runs"


def markdown_table(rows: list) -> str:
    """The rows as a markdown table with the `COLUMNS`; numbers rounded, missing cells `-`."""

    def cell(value):
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.3f}" if value < 1 else f"{value:,.1f}"
        return str(value)

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(row.get(column)) for column in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def devices() -> str:
    gpus = tf.config.list_physical_devices("GPU")
    names = [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name) for gpu in gpus]
    return ", ".join(names) or f"CPU only ({os.cpu_count()} cores)"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="tiny random-weight models on generated data (CPU)")
    parser.add_argument("--image-recipe", default=str(REPOSITORY / "recipes/fashion_mnist_efficientnet_lite0.yaml"))
    parser.add_argument("--text-recipe", default=str(REPOSITORY / "recipes/bbc_news_minilm.yaml"))
    parser.add_argument("--epochs", type=int, default=3, help="epochs per phase (default 3)")
    parser.add_argument("--work-dir", default=None, help="run directories go here (default: a new temporary directory)")
    parser.add_argument("--xla", choices=("both", "off", "on"), default="both", help="which compilers to measure")
    parser.add_argument("--modalities", default="image,text", help="comma-separated: image, text")
    args = parser.parse_args(argv)
    compilers = COMPILERS if args.xla == "both" else (args.xla == "on",)
    work_dir = args.work_dir or tempfile.mkdtemp(prefix="gpu_benchmark_")
    if args.small:
        recipes = small_recipes(work_dir, args.epochs)
    else:
        recipes = {"image": recipe_file(args.image_recipe, args.epochs), "text": recipe_file(args.text_recipe, args.epochs)}
    unknown = set(args.modalities.split(",")) - set(recipes)
    if unknown:
        parser.error(f"--modalities takes image and/or text, received {sorted(unknown)}")
    recipes = {modality: recipe for modality, recipe in recipes.items() if modality in args.modalities.split(",")}
    rows = []
    for modality, recipe in recipes.items():
        for precision in PRECISIONS:
            for jit_compile in compilers:
                start = time.perf_counter()
                rows.append(measure(modality, recipe, precision, jit_compile, work_dir))
                print(f"{modality} {precision} XLA {rows[-1]['XLA']}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    batches = ", ".join(f"{modality} {recipe['data'].get('batch_size', 32)}" for modality, recipe in recipes.items())
    print(f"\n{devices()}; TensorFlow {tf.__version__}, Keras {keras.__version__}; {args.epochs} epochs per phase; batch {batches}\n")
    print(markdown_table(rows))
    return rows


if __name__ == "__main__":
    main()
