"""The `tfx-transfer` command: train, inspect, predict, and dataset helpers.

```
tfx-transfer train recipes/fashion_mnist_efficientnet_lite0.yaml --set phases.0.epochs=2
tfx-transfer inspect recipes/fashion_mnist_efficientnet_lite0.yaml --layers
tfx-transfer predict saved_models/fashion_mnist/1 shoe.png shirt.jpg
tfx-transfer predict --server http://localhost:8501 --model fashion_mnist shoe.png shirt.jpg
tfx-transfer export runs/fashion_mnist --format litert
tfx-transfer serving-config saved_models --out serving --stable fashion_mnist=1 --canary fashion_mnist=2
```
"""

import argparse
import os
import sys
import traceback


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return args.run(args) or 0
    except KeyboardInterrupt:
        print("tfx-transfer: interrupted; re-run the same command to resume from the last epoch.", file=sys.stderr)
        return 130
    except Exception as e:  # one line for the user; the traceback with --debug
        if args.debug or not _is_user_error(e):
            traceback.print_exc()
        print(f"tfx-transfer: error: {_one_line(e)}", file=sys.stderr)
        return 2 if _is_user_error(e) else 1


def _is_user_error(error) -> bool:
    from tfx_transfer.config import ConfigError

    return isinstance(error, (ConfigError, ValueError, OSError, ModuleNotFoundError, KeyError))


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
    train.set_defaults(run=_train)

    inspect = commands.add_parser("inspect", help="print the backbone's blocks and each phase's trainable flags")
    inspect.add_argument("recipe")
    inspect.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    inspect.add_argument("--layers", action="store_true", help="one row per layer instead of per block")
    inspect.set_defaults(run=_inspect)

    predict = commands.add_parser("predict", help="classify files with an exported SavedModel or a TF Serving server")
    predict.add_argument("export_dir", help="saved_models/<name>/<version> (or saved_models/<name> for the latest); "
                                            "with --server, the first file")
    predict.add_argument("files", nargs="*")
    predict.add_argument("--top", type=int, default=1, help="how many classes to print per file")
    predict.add_argument("--server", help="ask TF Serving instead: http://HOST:8501 (REST) or grpc://HOST:8500")
    predict.add_argument("--model", help="with --server: the served model name")
    predict.add_argument("--version", type=int, help="with --server: a model version (default: the latest)")
    predict.add_argument("--label", help="with --server: a version label such as stable or canary")
    predict.add_argument("--timeout", type=float, default=10.0, help="with --server: seconds per request")
    predict.set_defaults(run=_predict)

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
    from tfx_transfer.freezing import apply_freeze_policy, freeze_table
    from tfx_transfer.recipe import load_recipe

    recipe = load_recipe(args.recipe, args.overrides)
    backbone = resolve(recipe.backbone)
    print(f"backbone {backbone.name} ({backbone.modality}), {len(backbone.blocks)} blocks, input {backbone.input_config}")
    for phase in recipe.phases:
        apply_freeze_policy(backbone, phase.freeze)
        print(f"\nphase {phase.name!r} (the head trains in every phase; BatchNorm {phase.freeze.batchnorm}):")
        print(freeze_table(backbone, layers=args.layers))


def _predict(args):
    if args.server:
        return _predict_with_server(args)
    if not args.files:
        raise ValueError("predict: give one or more FILES after the export directory.")
    import numpy as np
    import tensorflow as tf

    from tfx_transfer.export import SIGNATURE_RAW, load_labels, resolve_export_dir

    export_dir = resolve_export_dir(args.export_dir)
    _import_serving_ops()
    loaded = tf.saved_model.load(export_dir)
    signature = loaded.signatures[SIGNATURE_RAW]
    (input_key,) = signature.structured_input_signature[1].keys()
    labels = load_labels(export_dir)
    missing = [f for f in args.files if not os.path.isfile(f)]
    if missing:
        raise FileNotFoundError(f"no such file: {missing[0]!r}")
    for path in args.files:
        with open(path, "rb") as f:
            raw = f.read()
        try:
            outputs = signature(**{input_key: tf.constant([raw])})
        except tf.errors.InvalidArgumentError as e:
            print(f"{path}\terror: cannot be read as {input_key} ({_one_line(e.message)[:120]})")
            continue
        probabilities = outputs["probabilities"].numpy()[0]
        best = np.argsort(-probabilities)[: max(1, args.top)]
        print(path + "\t" + "\t".join(f"{labels[i]}\t{probabilities[i]:.4f}" for i in best))


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


def _predict_with_server(args):
    """`predict --server`: every file goes to TF Serving; a file it cannot read is reported and skipped."""
    from tfx_transfer.serving.client import Client

    if not args.model:
        raise ValueError("predict --server needs --model NAME: the name the server serves the model under.")
    files = [args.export_dir, *args.files]
    missing = [f for f in files if not os.path.isfile(f)]
    if missing:
        raise FileNotFoundError(f"no such file: {missing[0]!r}")
    with Client(args.server, args.model, version=args.version, label=args.label, timeout=args.timeout) as client:
        for path in files:
            _print_server_prediction(client, path)


def _print_server_prediction(client, path):
    from tfx_transfer.serving.client import MAX_REQUEST_BYTES
    from tfx_transfer.serving.errors import PredictionRequestError

    if os.path.getsize(path) > MAX_REQUEST_BYTES:
        print(f"{path}\terror: larger than {MAX_REQUEST_BYTES} bytes, not sent")
        return
    with open(path, "rb") as f:
        raw = f.read()
    try:
        (prediction,) = client.predict([raw])
    except PredictionRequestError as e:
        print(f"{path}\terror: {_one_line(e.reason)[:160]}")
        return
    print(f"{path}\t{prediction.label}\t{prediction.probability:.4f}")


def _import_serving_ops():
    """Registers TF Text ops (used by exported tokenizers) when tensorflow-text is installed."""
    try:
        import tensorflow_text  # noqa: F401
    except ImportError:
        pass


def _make_keywords(args):
    from tfx_transfer.datasets.keywords import make_keywords

    path = make_keywords(args.out_dir, seed=args.seed)
    print(f"keyword dataset written to {path}")


if __name__ == "__main__":
    sys.exit(main())
