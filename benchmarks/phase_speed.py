"""Speed of the phase runner against plain Keras on the same backbone, data and batch size.

Prints one table: phase 1 (head on a frozen backbone) with and without feature
caching; phase 2 (last blocks unfrozen) through the toolkit with the frozen
blocks' outputs cached (the default without augmentation), without caching
(default backup interval, and a backup after every epoch), and through a plain
`keras.Model.fit` written by hand; with the ratios.

    python benchmarks/phase_speed.py --images 512 --epochs 10
"""

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfx_transfer.backbones.keras_apps import build_keras_app  # noqa: E402
from tfx_transfer.data.base import DataSplits  # noqa: E402
from tfx_transfer.freezing import apply_freeze_policy  # noqa: E402
from tfx_transfer.model import build_model  # noqa: E402
from tfx_transfer.recipe import FreezeConfig, recipe_from_dict  # noqa: E402
from tfx_transfer.training import PhaseRunner  # noqa: E402


def data(n, size, num_classes=5, seed=0):
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % num_classes).astype("int32")
    images = rng.uniform(0, 255, (n, size, size, 3)).astype("float32")
    return images, labels


def toolkit_phase(images, labels, args, phase, run_dir, backup_interval_seconds=60.0):
    keras.utils.set_random_seed(0)
    backbone = build_keras_app(args.backbone, weights=None, image_size=(args.size, args.size))
    recipe = recipe_from_dict({
        "name": "bench", "run_dir": run_dir, "backup_interval_seconds": backup_interval_seconds,
        "data": {"batch_size": args.batch_size, "shuffle_buffer": len(labels)},
        "head": {"dropout": 0.0},
        "phases": [{"early_stopping_patience": None, "epochs": args.epochs, **phase}],
    })
    model, head = build_model(backbone, 5, recipe.head)
    splits = DataSplits(tf.data.Dataset.from_tensor_slices((images, labels)), None, None, [str(k) for k in range(5)])
    start = time.perf_counter()
    (result,) = PhaseRunner(model, head, backbone, splits, recipe, run_dir).run()
    return time.perf_counter() - start, result


def plain_keras_phase2(images, labels, args):
    """What a Keras user writes by hand: same backbone layers unfrozen, BN frozen, Adam, fit."""
    keras.utils.set_random_seed(0)
    backbone = build_keras_app(args.backbone, weights=None, image_size=(args.size, args.size))
    apply_freeze_policy(backbone, FreezeConfig(last_blocks=args.last_blocks))
    inputs = keras.Input((args.size, args.size, 3))
    x = backbone.model(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(5, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(1e-4), "categorical_crossentropy", metrics=["accuracy"])
    ds = (tf.data.Dataset.from_tensor_slices((images, tf.one_hot(labels, 5)))
          .shuffle(len(labels), seed=0).batch(args.batch_size).prefetch(tf.data.AUTOTUNE))
    start = time.perf_counter()
    model.fit(ds, epochs=args.epochs, verbose=0)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="MobileNetV2")
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--last-blocks", type=int, default=3)
    args = parser.parse_args()
    images, labels = data(args.images, args.size)
    n = args.images * args.epochs
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cached, _ = toolkit_phase(images, labels, args, {"name": "cached"}, os.path.join(tmp, "a"))
        uncached, _ = toolkit_phase(images, labels, args, {"name": "uncached", "cache_features": False}, os.path.join(tmp, "b"))
        phase2 = {"name": "fine_tune", "learning_rate": 1e-4, "freeze": {"last_blocks": args.last_blocks}}
        prefix2, _ = toolkit_phase(images, labels, args, phase2, os.path.join(tmp, "c"))
        phase2["cache_features"] = False
        toolkit2, _ = toolkit_phase(images, labels, args, phase2, os.path.join(tmp, "d"))
        every_epoch, _ = toolkit_phase(images, labels, args, phase2, os.path.join(tmp, "e"), backup_interval_seconds=0)
    plain2 = plain_keras_phase2(images, labels, args)
    rows = [
        ("phase 1, feature caching (toolkit)", cached, n / cached),
        ("phase 1, no caching (toolkit)", uncached, n / uncached),
        (f"phase 2, last {args.last_blocks} blocks, frozen blocks cached (toolkit)", prefix2, n / prefix2),
        (f"phase 2, last {args.last_blocks} blocks, no caching (toolkit)", toolkit2, n / toolkit2),
        (f"phase 2, last {args.last_blocks} blocks, no caching, backup every epoch", every_epoch, n / every_epoch),
        (f"phase 2, last {args.last_blocks} blocks (plain Keras fit)", plain2, n / plain2),
    ]
    print(f"{args.backbone} @ {args.size}px, weights=None, {args.images} images x {args.epochs} epochs, "
          f"batch {args.batch_size}, {os.cpu_count()} CPU cores, TF {tf.__version__}, Keras {keras.__version__}")
    print(f"| {'run':<60} | {'seconds':>8} | {'images/s':>9} |")
    print(f"|{'-' * 62}|{'-' * 10}|{'-' * 11}|")
    for name, seconds, rate in rows:
        print(f"| {name:<60} | {seconds:8.1f} | {rate:9.1f} |")
    print(f"\nphase 1 speed-up from caching: {uncached / cached:.1f}x")
    print(f"phase 2 speed-up from caching the frozen blocks: {toolkit2 / prefix2:.1f}x "
          f"(against plain Keras: {plain2 / prefix2:.1f}x)")
    print(f"phase 2 toolkit without caching / plain Keras time: {toolkit2 / plain2:.3f} "
          f"(with a backup after every epoch: {every_epoch / plain2:.3f})")


if __name__ == "__main__":
    main()
