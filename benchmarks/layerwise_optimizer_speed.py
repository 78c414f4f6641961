"""Training-step cost of layer-wise learning rates: AdamW against LayerwiseAdamW with `layer_decay`.

Fine-tunes the packaged MiniLM-L6 encoder (every block trainable) plus a 5-class head on random
token ids, batch 16, and times `train_on_batch` over `--steps` batches after two warm-up steps,
for plain AdamW and for LayerwiseAdamW with a multiplier on each of its 101 trainable variables.
Prints a Markdown table for `benchmarks/RESULTS.md`.

    .venv/bin/python benchmarks/layerwise_optimizer_speed.py [--steps 20 --length 64]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tfx_transfer.backbones.packaged import build_packaged  # noqa: E402
from tfx_transfer.freezing import apply_freeze_policy  # noqa: E402
from tfx_transfer.layerwise_optimizers import LayerwiseAdamW, exclude_norms_and_biases  # noqa: E402
from tfx_transfer.lr_multipliers import block_lr_multipliers  # noqa: E402
from tfx_transfer.model import build_model  # noqa: E402
from tfx_transfer.recipe import FreezeConfig, HeadConfig  # noqa: E402


def seconds_per_step(layer_decay, steps, length, batch_size=16):
    keras.utils.set_random_seed(0)
    backbone = build_packaged("minilm_l6", sequence_length=length, pooling="mean")
    apply_freeze_policy(backbone, FreezeConfig(trainable="all"))
    model, _ = build_model(backbone, 5, HeadConfig())
    if layer_decay is None:
        optimizer = keras.optimizers.AdamW(5e-5, weight_decay=0.01)
    else:
        optimizer = LayerwiseAdamW(
            5e-5, weight_decay=0.01, lr_multipliers=block_lr_multipliers(backbone, layer_decay=layer_decay)
        )
    exclude_norms_and_biases(optimizer, model.trainable_variables)
    model.compile(optimizer, "categorical_crossentropy")
    rng = np.random.default_rng(0)
    inputs = {
        "token_ids": rng.integers(1000, 20000, (batch_size, length)).astype("int32"),
        "padding_mask": np.ones((batch_size, length), "int32"),
        "segment_ids": np.zeros((batch_size, length), "int32"),
    }
    labels = np.eye(5, dtype="float32")[rng.integers(0, 5, batch_size)]
    for _ in range(2):
        model.train_on_batch(inputs, labels)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(inputs, labels)
    return (time.perf_counter() - start) / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--length", type=int, default=64)
    args = parser.parse_args()
    plain = seconds_per_step(None, args.steps, args.length)
    layerwise = seconds_per_step(0.8, args.steps, args.length)
    print("| optimizer | seconds per step | relative |")
    print("|---|---|---|")
    print(f"| AdamW | {plain:.3f} | 1.00 |")
    print(f"| LayerwiseAdamW, layer_decay 0.8 | {layerwise:.3f} | {layerwise / plain:.2f} |")


if __name__ == "__main__":
    main()
