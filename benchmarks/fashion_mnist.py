"""Fashion-MNIST on EfficientNet-Lite0: what pretrained weights and fine-tuning are worth.

Trains three variants of `recipes/fashion_mnist_efficientnet_lite0.yaml` (10,000
seeded training images, the full 10,000-image test set), each with the
`tfx-transfer train` command in its own process, and prints a table of test
accuracy and wall time:

- frozen features: phase 1 only (the head on cached features of the frozen backbone);
- two-phase: the recipe as written (head, then fine-tuning);
- two-phase from random initial weights (`backbone.weights=none`): the baseline. Its
  phase 2 trains BatchNorm: with BatchNorm frozen at a random network's initial
  statistics the run stays at chance (0.100, measured), which says nothing about
  what the pretrained weights are worth.

Usage (about 45 minutes on 2 otherwise idle cores):

    nice -n 10 python benchmarks/fashion_mnist.py [--work-dir DIR] [--set KEY=VALUE ...]

`--set` overrides go to every variant, e.g. `--set backbone.image_size=[64,64]`.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
RECIPE = ROOT / "recipes" / "fashion_mnist_efficientnet_lite0.yaml"
TARGET_ACCURACY = 0.92
TARGET_GAIN = 0.02


def variants(recipe_path, overrides):
    """`(label, --set overrides)` of the three runs; phase 1 only keeps the recipe's first phase as written."""
    from tfx_transfer.config import to_dict
    from tfx_transfer.recipe import load_recipe

    first_phase = to_dict(load_recipe(recipe_path, overrides).phases[0])
    return (
        ("two-phase", []),
        ("frozen features (phase 1 only)", ["phases=" + json.dumps([first_phase])]),
        ("two-phase, random initial weights", ["backbone.weights=none", "phases.1.freeze.batchnorm=train"]),
    )


def run_variant(label, overrides, recipe, work_dir, common):
    """Trains one variant with the CLI; returns what its metrics.json says (phase 1's test accuracy too) and the wall time."""
    run_dir = work_dir / label.split(" (")[0].replace(" ", "_").replace(",", "")
    command = [sys.executable, "-m", "tfx_transfer.cli", "train", str(recipe)]
    for override in [f"run_dir={run_dir}", "export.enabled=false", *common, *overrides]:
        command += ["--set", override]
    print(f"\n=== {label}\n$ {' '.join(command)}", flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {
        "variant": label,
        "test_accuracy": metrics["test"]["accuracy"],
        "macro_f1": metrics["test"]["macro_f1"],
        "phase_1_test_accuracy": (metrics["phases"][0]["test"] or metrics["test"])["accuracy"],
        "split_manifest": metrics["split_manifest"],
        "seconds": round(seconds, 1),
        "phases": {p["name"]: {"epochs_run": p["epochs_run"], "seconds": p["seconds"]} for p in metrics["phases"]},
    }


def table(results) -> str:
    lines = ["| variant | test accuracy | wall time (s) | phases (epochs, s) |", "|---|---|---|---|"]
    for r in results:
        phases = ", ".join(f"{name} ({p['epochs_run']}, {p['seconds']:.0f})" for name, p in r["phases"].items())
        lines.append(f"| {r['variant']} | {r['test_accuracy']:.4f} | {r['seconds']:.0f} | {phases} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default=str(RECIPE))
    parser.add_argument("--work-dir", default=None, help="where run directories go (default: a new temp dir)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    work_dir = pathlib.Path(args.work_dir or tempfile.mkdtemp(prefix="fashion_mnist_bench_"))
    work_dir.mkdir(parents=True, exist_ok=True)
    results = [
        run_variant(label, extra, args.recipe, work_dir, args.overrides)
        for label, extra in variants(args.recipe, args.overrides)
    ]

    two_phase, frozen, random_init = (r["test_accuracy"] for r in results)
    print("\n" + table(results))
    print(
        f"\ntwo-phase {two_phase:.4f} (target >= {TARGET_ACCURACY}); gain over frozen features "
        f"{100 * (two_phase - frozen):+.1f} points (target >= {100 * TARGET_GAIN:.0f}); "
        f"gain over random initial weights {100 * (two_phase - random_init):+.1f} points; "
        f"{os.cpu_count()} CPUs, total {sum(r['seconds'] for r in results):.0f} s"
    )
    (work_dir / "results.json").write_text(json.dumps(results, indent=2))
    met = two_phase >= TARGET_ACCURACY and two_phase - frozen >= TARGET_GAIN
    print("targets met" if met else "TARGETS NOT MET")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
