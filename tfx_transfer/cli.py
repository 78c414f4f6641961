"""The `tfx-transfer` command: train, inspect, predict, and dataset helpers.

```
tfx-transfer train recipes/fashion_mnist_efficientnet_lite0.yaml --set phases.0.epochs=2
tfx-transfer inspect recipes/fashion_mnist_efficientnet_lite0.yaml --layers
tfx-transfer predict saved_models/fashion_mnist/1 shoe.png shirt.jpg
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

    predict = commands.add_parser("predict", help="classify files with an exported SavedModel")
    predict.add_argument("export_dir", help="saved_models/<name>/<version> (or saved_models/<name> for the latest)")
    predict.add_argument("files", nargs="+")
    predict.add_argument("--top", type=int, default=1, help="how many classes to print per file")
    predict.set_defaults(run=_predict)

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
    fortunes.set_defaults(run=_make_fortunes)
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


def _make_fortunes(args):
    from tfx_transfer.datasets.fortunes import FORTUNES_DIR, make_fortunes

    path = make_fortunes(args.out_dir, source_dir=args.source_dir or FORTUNES_DIR)
    print(f"fortunes dataset written to {path}")


if __name__ == "__main__":
    sys.exit(main())
