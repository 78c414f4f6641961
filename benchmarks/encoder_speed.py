"""Forward-pass speed of the packaged MiniLM encoder with and without XLA (`distribute.jit_compile`).

Random token ids, batch 32, 256 sequences per measurement after one warm-up batch. Prints a
Markdown table for `benchmarks/RESULTS.md`.

    .venv/bin/python benchmarks/encoder_speed.py [--lengths 128 256]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfx_transfer.backbones.packaged import build_packaged  # noqa: E402


def sequences_per_second(model, length, jit_compile, count=256, batch_size=32):
    rng = np.random.default_rng(0)
    batches = [
        {"token_ids": rng.integers(1000, 20000, (batch_size, length)).astype("int32"),
         "padding_mask": np.ones((batch_size, length), "int32"),
         "segment_ids": np.zeros((batch_size, length), "int32")}
        for _ in range(count // batch_size)
    ]
    step = tf.function(lambda inputs: model(inputs, training=False), jit_compile=jit_compile)
    step(batches[0])
    start = time.perf_counter()
    for inputs in batches:
        step(inputs).numpy()
    return count / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 256])
    args = parser.parse_args()
    print("| tokens | sequences/s, default graph | sequences/s, XLA | XLA speed-up |")
    print("|---|---|---|---|")
    for length in args.lengths:
        model = build_packaged("minilm_l6", sequence_length=length, pooling="mean").model
        plain, xla = (sequences_per_second(model, length, jit) for jit in (False, True))
        print(f"| {length} | {plain:.1f} | {xla:.1f} | {xla / plain:.2f}x |")


if __name__ == "__main__":
    main()
