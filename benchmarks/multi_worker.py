"""Two workers on localhost against one: test accuracy, wall time, peak memory and training examples decoded per worker.

One small image recipe (an image class folder from `tests/harness`, the tiny random-weight
ResNet of the test suite registered as `backbone.source: tiny_resnet`, a head phase on cached
features and a fine-tune phase on the cached frozen prefix, same seed) runs twice:

- `one worker`: one process, `distribute.strategy: default`;
- `two workers`: two processes on localhost, `distribute.strategy: multi_worker`, each with
  its own `TF_CONFIG` (free ports, as `tests/test_multi_worker.py` does), one shared run directory.

Every worker runs in its own process, so its peak RSS (`os.wait4`'s `ru_maxrss`) and wall time
(start to exit, TensorFlow import included) are its own. Each worker records, as the sharding
test does, the files its training dataset maps over (decodes) and the training rows of each
feature-cache entry. Prints one markdown table and checks that the two workers' training files
are disjoint and together the training split of `splits.csv`.

    nice -n 19 python benchmarks/multi_worker.py --per-class 80 --epochs 20 --work-dir /tmp/mwbench

took 2-4 minutes on 2 CPU cores shared with other work (benchmarks/RESULTS.md).
"""

import argparse
import csv
import json
import os
import pathlib
import resource
import shutil
import subprocess
import sys
import tempfile
import time

REPOSITORY = pathlib.Path(__file__).resolve().parent.parent
TIMEOUT_SECONDS = 900
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the data writer below imports TensorFlow
COLUMNS = (
    "run", "worker", "test accuracy (metrics.json)", "test loss (metrics.json)", "test accuracy (worker)",
    "last train loss per phase", "train() s", "wall s", "peak RSS MB", "training files decoded",
    "cached training rows", "training split",
)

# One worker process: records what its training pipeline decodes and caches, trains, writes a JSON record.
WORKER = """
import json, os, sys, time
settings = json.loads(sys.argv[1])
sys.path.insert(0, settings["tests"])
from harness import tiny_resnet
from harness.worker_record import record_decoding_and_caching
from tfx_transfer.backbones.registry import register_source
from tfx_transfer.pipeline import train
from tfx_transfer.recipe import recipe_from_dict

decoded, cached = record_decoding_and_caching()
register_source("tiny_resnet", lambda config: tiny_resnet(tuple(config.image_size), width=16))
start = time.perf_counter()
result = train(recipe_from_dict(settings["recipe"]))
seconds = time.perf_counter() - start
with open(settings["record"], "w") as f:
    json.dump({
        "decoded": decoded,
        "cached": cached,
        "seconds": seconds,
        "accuracy": result.metrics["test"]["accuracy"],
        "losses": [p["history"]["loss"] for p in result.metrics["phases"]],
    }, f)
"""


def make_recipe(name: str, data: str, run_dir: str, strategy: str, epochs: int, seed: int = 42) -> dict:
    return {
        "name": name,
        "run_dir": run_dir,
        "seed": seed,
        "data": {"source": "folder", "path": data, "batch_size": 16},  # the global batch: 8 per worker of two
        "backbone": {"source": "tiny_resnet", "image_size": [32, 32]},
        "head": {"dropout": 0.0},
        "phases": [
            {"name": "head", "epochs": epochs, "learning_rate": 0.01, "early_stopping_patience": None},
            {"name": "fine_tune", "epochs": epochs, "learning_rate": 0.001, "freeze": {"last_blocks": 1},
             "early_stopping_patience": None},
        ],
        "distribute": {"strategy": strategy},
        "export": {"enabled": False},
    }


def run_workers(recipe: dict, workers: int, run_root: str) -> list[dict]:
    """Runs the recipe in `workers` processes (a localhost cluster when 2); returns each one's record,
    wall seconds and peak RSS. Kills them all past TIMEOUT_SECONDS."""
    from harness.ports import free_ports  # tests/ is on sys.path (main puts it there)

    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env["PYTHONPATH"] = os.pathsep.join([str(REPOSITORY), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(workers)]} if workers > 1 else None
    processes = []
    for index in range(workers):
        worker_env = dict(env)
        if cluster:
            worker_env["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        settings = {"tests": str(REPOSITORY / "tests"), "recipe": recipe,
                    "record": os.path.join(run_root, f"worker_{index}.json")}
        log = open(os.path.join(run_root, f"worker_{index}.log"), "w")
        start = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-c", WORKER, json.dumps(settings)], env=worker_env,
                                   stdout=log, stderr=subprocess.STDOUT, cwd=str(REPOSITORY))
        processes.append({"process": process, "log": log, "start": start, "settings": settings, "index": index})
    deadline = time.monotonic() + TIMEOUT_SECONDS
    waiting = list(processes)
    try:
        while waiting:
            for worker in list(waiting):
                pid, status, usage = os.wait4(worker["process"].pid, os.WNOHANG)
                if pid:
                    worker["wall"] = time.perf_counter() - worker["start"]
                    worker["rss_mb"] = usage.ru_maxrss / 1024  # kilobytes on Linux
                    worker["returncode"] = os.waitstatus_to_exitcode(status)
                    worker["process"].returncode = worker["returncode"]  # reaped here, not by Popen
                    waiting.remove(worker)
            if time.monotonic() > deadline:
                raise TimeoutError(f"workers still running after {TIMEOUT_SECONDS} s (logs in {run_root})")
            time.sleep(0.1)
    finally:
        for worker in waiting:
            worker["process"].kill()
            worker["process"].wait()
        for worker in processes:
            worker["log"].close()
    for worker in processes:
        if worker["returncode"] != 0:
            log = open(worker["log"].name).read()
            raise RuntimeError(f"worker {worker['index']} exited {worker['returncode']}:\n{log[-3000:]}")
        with open(worker["settings"]["record"]) as f:
            worker["record"] = json.load(f)
    return processes


def training_split(run_dir: str) -> set:
    with open(os.path.join(run_dir, "splits.csv")) as f:
        return {row["source"] for row in csv.DictReader(f) if row["split"] == "train"}


def measure(
    label: str, workers: int, strategy: str, data: str, work_dir: str, epochs: int, seed: int = 42,
) -> list[dict]:
    run_root = os.path.join(work_dir, label.replace(" ", "_"))
    shutil.rmtree(run_root, ignore_errors=True)
    os.makedirs(run_root)
    run_dir = os.path.join(run_root, "run")
    start = time.perf_counter()
    recipe = make_recipe(label.replace(" ", "_"), data, run_dir, strategy, epochs, seed)
    processes = run_workers(recipe, workers, run_root)
    print(f"{label}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    with open(os.path.join(run_dir, "metrics.json")) as f:
        test = json.load(f)["test"]
    train = training_split(run_dir)
    decoded = [{os.path.relpath(p, data) for p in w["record"]["decoded"]} for w in processes]
    if set().union(*decoded) != train or sum(map(len, decoded)) != len(train):
        raise AssertionError(f"{label}: the workers' training files are not disjoint shares of the training split")
    losses = [w["record"]["losses"] for w in processes]
    if any(l != losses[0] for l in losses):
        print(f"{label}: the workers' loss histories differ: {losses}", file=sys.stderr)
    return [
        {
            "run": label, "worker": w["index"], "test accuracy (metrics.json)": test["accuracy"],
            "test loss (metrics.json)": test["loss"],
            "last train loss per phase": " / ".join(f"{l[-1]:.4f}" for l in w["record"]["losses"]),
            "test accuracy (worker)": w["record"]["accuracy"], "train() s": w["record"]["seconds"],
            "wall s": w["wall"], "peak RSS MB": w["rss_mb"], "training files decoded": len(w["record"]["decoded"]),
            "cached training rows": "/".join(str(n) for n in w["record"]["cached"].values()),
            "training split": len(train),
        }
        for w in processes
    ]


def markdown_table(rows) -> str:
    """Rows as a markdown table; seconds and megabytes whole, accuracies and losses with 4 decimals."""
    def cell(column, value):
        if isinstance(value, float):
            return f"{value:.0f}" if column.endswith((" s", " MB")) else f"{value:.4f}"
        return "" if value is None else str(value)

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(c, row.get(c)) for c in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def _load(averages) -> str:
    return ", ".join(f"{a:.2f}" for a in averages)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=80, help="images per class, 3 classes of 32x32 (default 80)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per phase (default 3)")
    parser.add_argument("--seed", type=int, default=42, help="the recipe's seed, the same for both runs (default 42)")
    parser.add_argument(
        "--work-dir", default=None, help="data and run directories go here (default: a new temporary directory)",
    )
    args = parser.parse_args(argv)
    work_dir = os.path.abspath(args.work_dir or tempfile.mkdtemp(prefix="multi_worker_benchmark_"))
    os.makedirs(work_dir, exist_ok=True)
    sys.path[:0] = [str(REPOSITORY), str(REPOSITORY / "tests")]  # this checkout's package, as the workers get
    from harness.image import write_image_folder

    data = os.path.join(work_dir, "data")
    shutil.rmtree(data, ignore_errors=True)
    write_image_folder(data, classes=("a", "b", "c"), per_class=args.per_class, size=(32, 32))
    load_start = os.getloadavg()
    rows = measure("one worker", 1, "default", data, work_dir, args.epochs, args.seed)
    rows += measure("two workers", 2, "multi_worker", data, work_dir, args.epochs, args.seed)
    load_end = os.getloadavg()
    print(f"\n3 classes x {args.per_class} images 32x32, tiny ResNet (width 16), batch 16 (global), "
          f"{args.epochs} epochs per phase, seed {args.seed}; "
          f"load average (1, 5, 15 min) at start {_load(load_start)}, "
          f"at end {_load(load_end)}\n")
    print(markdown_table(rows))
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n(this script's own peak RSS: {own:.0f} MB)")
    return rows


if __name__ == "__main__":
    main()
