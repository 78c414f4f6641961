"""LiteRT models of a trained run: test accuracy, size and latency per quantization, next to Keras.

Trains the recipe (by default Fashion-MNIST on EfficientNet-Lite0, phase 1 only, to keep it short)
with `export.formats: [saved_model, litert]` and all four quantizations, then prints the table
that `metrics.json` holds under `litert`. Every number comes from that file.

    nice -n 5 .venv/bin/python benchmarks/litert.py --work-dir /tmp/litertbench
"""

import argparse
import json
import os
import subprocess
import sys

HEAD_ONLY = "phases=[{name: head, epochs: 10, learning_rate: 0.001, early_stopping_patience: 2, augment: false}]"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="recipes/fashion_mnist_efficientnet_lite0.yaml")
    parser.add_argument("--work-dir", default="/tmp/litertbench")
    parser.add_argument("--set", dest="overrides", action="append", default=[HEAD_ONLY])
    args = parser.parse_args()
    run_dir = os.path.join(args.work_dir, "run")
    command = [
        sys.executable, "-m", "tfx_transfer.cli", "train", args.recipe,
        "--set", f"run_dir={run_dir}", "--set", f"export.base_dir={os.path.join(args.work_dir, 'exports')}",
        "--set", "export.formats=[saved_model, litert]",
        "--set", "export.litert.quantization=[none, float16, dynamic_range, int8]",
    ]
    for override in args.overrides:
        command += ["--set", override]
    print(" ".join(repr(c) if " " in c else c for c in command), flush=True)
    subprocess.run(command, check=True)
    with open(os.path.join(run_dir, "metrics.json"), encoding="utf-8") as f:
        litert = json.load(f)["litert"]
    keras = litert["keras"]
    print("\n| model | test accuracy | size (bytes) | latency 1 thread (ms) | latency 2 threads (ms) | top-1 agreement with Keras |")
    print("|---|---|---|---|---|---|")
    print(f"| Keras (.keras file, TF default threads) | {keras['test']['accuracy']:.4f} | {keras['size_bytes']:,} "
          f"| {keras['latency_ms']} (all cores) | | 1 |")
    for quantization, entry in litert["models"].items():
        latency = entry["latency_ms"]
        print(f"| LiteRT {quantization} | {entry['test']['accuracy']:.4f} | {entry['size_bytes']:,} | "
              f"{latency['1_thread']} | {latency['2_threads']} | {entry['agreement_with_keras']:.4f} |")
    print(f"\ninputs: {litert['inputs']}; examples: {keras['test']['examples']}")


if __name__ == "__main__":
    main()
