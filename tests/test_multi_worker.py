"""MultiWorkerMirroredStrategy: two local worker processes train, predict and export through `train`."""

import csv
import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from harness import write_image_folder
from harness.ports import free_ports

TIMEOUT_SECONDS = 180

# Both workers get the same run_dir and export base, as on two machines with shared storage:
# only the chief (worker 0) may write there.
TOOLKIT_WORKER = """
import json, os, sys
import numpy as np
import tensorflow as tf
sys.path.insert(0, {tests!r})
from harness import tiny_resnet
from tfx_transfer.backbones.registry import register_source
from tfx_transfer.pipeline import train
from tfx_transfer.recipe import recipe_from_dict

out = {root!r}
register_source("test_tiny", lambda c: tiny_resnet())
recipe = recipe_from_dict({{
    "name": "multi_worker",
    "run_dir": out + "/run",
    "data": {{"source": "folder", "path": {root!r} + "/data", "batch_size": 4}},
    "backbone": {{"source": "test_tiny"}},
    "head": {{"dropout": 0.0}},
    "phases": [{{"name": "head", "epochs": 2, "learning_rate": 0.01}},
               {{"name": "fine_tune", "epochs": 2, "learning_rate": 0.001, "freeze": {{"last_blocks": 1}}}}],
    "distribute": {{"strategy": "multi_worker"}},
    "export": {{"base_dir": out + "/exports", "warmup_requests": False}},
}})
result = train(recipe)
images = np.random.default_rng(0).uniform(0, 255, (8, 16, 16, 3)).astype("float32")
predicted = result.model.predict(images, batch_size=4, verbose=0)
served = result.export_dir and tf.saved_model.load(result.export_dir).signatures["serve_tensor"](image=tf.constant(images))
print(json.dumps({{
    "multi_worker": isinstance(result.model.distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy),
    "losses": [p["history"]["loss"] for p in result.metrics["phases"]],
    "weights": [w.numpy().ravel().tolist() for w in result.model.weights],
    "predict_vs_call": float(np.abs(predicted - result.model(images)).max()),
    "export_vs_predict": served and float(np.abs(served["probabilities"].numpy() - predicted).max()),
    "export_dir": result.export_dir,
}}))
"""

# Records what each worker's training pipeline decodes (the files under the loader's decoding map) and how
# many training rows each cache entry holds, then trains and exports as TOOLKIT_WORKER does.
SHARDING_WORKER = """
import json, os, sys
import tensorflow as tf
sys.path.insert(0, {tests!r})
from harness import tiny_resnet
from harness.worker_record import record_decoding_and_caching
from tfx_transfer.backbones.registry import register_source
from tfx_transfer.pipeline import train
from tfx_transfer.recipe import recipe_from_dict

decoded, cached = record_decoding_and_caching()
out = {root!r}
register_source("test_tiny", lambda c: tiny_resnet())
recipe = recipe_from_dict({{
    "name": "sharded",
    "run_dir": out + "/run",
    "data": {{"source": "folder", "path": out + "/data", "batch_size": 4}},
    "backbone": {{"source": "test_tiny"}},
    "head": {{"dropout": 0.0}},
    "phases": [{{"name": "head", "epochs": 2, "learning_rate": 0.01, "class_weight": "auto"}},
               {{"name": "fine_tune", "epochs": 1, "learning_rate": 0.001, "freeze": {{"last_blocks": 1}}}},
               {{"name": "full", "epochs": 1, "learning_rate": 0.0001, "freeze": {{"trainable": "all"}}}}],
    "distribute": {{"strategy": "multi_worker"}},
    "export": {{"base_dir": out + "/exports", "warmup_requests": False}},
}})
result = train(recipe)
print(json.dumps({{
    "modes": [p["cached_features"] or bool(p["cached_frozen_blocks"]) for p in result.metrics["phases"]],
    "decoded": decoded,
    "cached": cached,
    "losses": [p["history"]["loss"] for p in result.metrics["phases"]],
    "counts": result.metrics["data"]["counts"],
    "export_dir": result.export_dir,
}}))
"""

# A windowed text recipe (made by the test, so the workers do not write its files at once) through `train`;
# prints the validation values of the epoch the run ended with and the same model's accuracy per text.
WINDOWED_TEXT_WORKER = """
import json, sys
sys.path.insert(0, {tests!r})
from harness.text import per_text_validation_report
from tfx_transfer.pipeline import train
from tfx_transfer.recipe import recipe_from_dict

recipe = recipe_from_dict(json.loads({recipe!r}))
result = train(recipe)
ended = next(p for p in reversed(result.metrics["phases"]) if p["best_epoch"]["kept_epoch"])
print(json.dumps({{
    "logged": ended["history"]["val_accuracy"][ended["best_epoch"]["kept_epoch"] - 1],
    "per_text": per_text_validation_report(recipe, result.model)["accuracy"],
    "histories": [{{k: v for k, v in p["history"].items() if k != "epoch_seconds"}} for p in result.metrics["phases"]],
}}))
"""

# Plain Keras, no toolkit import: the bug the patch in tfx_transfer.distribute works around.
UNPATCHED_WORKER = """
import numpy as np
import keras
import tensorflow as tf
strategy = tf.distribute.MultiWorkerMirroredStrategy()
with strategy.scope():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
model.fit(np.ones((16, 4), "float32"), np.zeros((16, 1), "float32"), batch_size=4, epochs=1, verbose=0)
print("fit ok")
"""


def _run_workers(script):
    """Runs `script` as a two-worker cluster on localhost; returns each worker's `CompletedProcess`.

    Raises `subprocess.TimeoutExpired` (and kills both) if they take over TIMEOUT_SECONDS, e.g. a
    collective waiting forever for the other worker.
    """
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(2)]}
    workers = []
    for index in range(2):
        env = {
            **os.environ,
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
        }
        workers.append(subprocess.Popen(
            [sys.executable, "-c", script], env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        ))
    deadline = time.monotonic() + TIMEOUT_SECONDS
    results = []
    try:
        for worker in workers:
            stdout, stderr = worker.communicate(timeout=max(1.0, deadline - time.monotonic()))
            results.append(subprocess.CompletedProcess(worker.args, worker.returncode, stdout, stderr))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    return results


@pytest.mark.slow
def test_two_workers_train_identically_and_export_what_keras_predicts(tmp_path):
    """Pins the workaround for keras-team/keras#20585 (`patch_keras_for_multi_worker`)."""
    write_image_folder(str(tmp_path / "data"), per_class=8, size=(16, 16))
    script = textwrap.dedent(TOOLKIT_WORKER).format(tests=os.path.dirname(__file__), root=str(tmp_path))
    results = _run_workers(script)
    for index, result in enumerate(results):
        assert result.returncode == 0, f"worker {index}:\n{result.stderr[-3000:]}"
    chief, other = (json.loads(r.stdout.strip().splitlines()[-1]) for r in results)
    assert chief["multi_worker"]
    for a, b in zip(chief["weights"], other["weights"]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert chief["losses"] == other["losses"]
    for losses in chief["losses"]:
        assert len(losses) == 2 and all(np.isfinite(losses))
    assert chief["losses"][0][1] < chief["losses"][0][0]
    assert chief["predict_vs_call"] < 1e-5
    assert chief["export_vs_predict"] < 1e-5
    assert chief["export_dir"] == str(tmp_path / "exports" / "multi_worker" / "1")
    assert other["export_dir"] is None
    assert os.listdir(tmp_path / "exports" / "multi_worker") == ["1"]
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["export_dir"] == chief["export_dir"]


@pytest.mark.slow
def test_two_workers_validate_windowed_texts_per_text(tmp_path):
    from harness.text import windowed_topics_recipe

    recipe = windowed_topics_recipe(tmp_path, [
        {"name": "head", "epochs": 2, "learning_rate": 0.05},
        {"name": "fine_tune", "epochs": 2, "freeze": {"last_blocks": 1}, "learning_rate": 1e-3},
    ])
    recipe["distribute"] = {"strategy": "multi_worker"}
    script = textwrap.dedent(WINDOWED_TEXT_WORKER).format(tests=os.path.dirname(__file__), recipe=json.dumps(recipe))
    results = _run_workers(script)
    for index, result in enumerate(results):
        assert result.returncode == 0, f"worker {index}:\n{result.stderr[-3000:]}"
    chief, other = (json.loads(r.stdout.strip().splitlines()[-1]) for r in results)
    assert chief["histories"] == other["histories"]
    assert chief["logged"] == pytest.approx(chief["per_text"])


@pytest.mark.slow
def test_unpatched_keras_still_fails_multi_worker_fit():
    """Documents keras-team/keras#20585: when Keras fixes it, this fails and the patch can go."""
    for index, result in enumerate(_run_workers(textwrap.dedent(UNPATCHED_WORKER))):
        assert "fit ok" not in result.stdout, "Keras fits under MultiWorkerMirroredStrategy now: remove the patch"
        assert "PerReplica" in result.stderr or "Invalid reduction dimension 0" in result.stderr, (
            f"worker {index} failed for another reason:\n{result.stderr[-3000:]}"
        )


@pytest.mark.slow
def test_each_worker_decodes_and_caches_only_its_share_of_the_training_split(tmp_path):
    """Cached phases and a full-model phase on 13 training images: the shares (7 and 6, two per worker and
    step) take 4 and 3 steps, so the smaller share starts over to take 4; a worker taking fewer would leave
    the other waiting in a collective (the run would time out)."""
    write_image_folder(str(tmp_path / "data"), per_class=9, size=(16, 16))
    os.remove(tmp_path / "data" / "cat" / "8.png")  # cat: 6 train, 1 validation, 1 test; dog: 7, 1, 1
    script = textwrap.dedent(SHARDING_WORKER).format(tests=os.path.dirname(__file__), root=str(tmp_path))
    results = _run_workers(script)
    for index, result in enumerate(results):
        assert result.returncode == 0, f"worker {index}:\n{result.stderr[-3000:]}"
    chief, other = (json.loads(r.stdout.strip().splitlines()[-1]) for r in results)
    with open(tmp_path / "run" / "splits.csv") as f:
        train = {str(tmp_path / "data" / row["source"]) for row in csv.DictReader(f) if row["split"] == "train"}
    assert len(train) == 13
    assert sorted([len(chief["decoded"]), len(other["decoded"])]) == [6, 7]
    assert not set(chief["decoded"]) & set(other["decoded"])
    assert set(chief["decoded"]) | set(other["decoded"]) == train
    for worker in (chief, other):
        assert set(worker["cached"].values()) == {len(worker["decoded"])}, worker["cached"]
    assert chief["counts"]["train"] == {"cat": 6, "dog": 7}  # metrics.json describes the whole split
    assert chief["modes"] == [True, True, False]  # head on features, fine_tune on the prefix, full model
    assert chief["losses"] == other["losses"]
    assert all(np.isfinite(loss) for losses in chief["losses"] for loss in losses)
    assert os.path.isdir(chief["export_dir"]) and other["export_dir"] is None


# Each worker gets its own run_dir and export base, so whatever a non-chief worker writes stays visible.
PRIVATE_DIRS_WORKER = """
import json, os, sys
sys.path.insert(0, {tests!r})
from harness import tiny_resnet
from tfx_transfer.backbones.registry import register_source
from tfx_transfer.pipeline import train
from tfx_transfer.recipe import recipe_from_dict

index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
out = {root!r} + f"/worker_{{index}}"
register_source("test_tiny", lambda c: tiny_resnet())
result = train(recipe_from_dict({{
    "name": "private_dirs",
    "run_dir": out + "/run",
    "backup_interval_seconds": 0,
    "data": {{"source": "folder", "path": {root!r} + "/data", "batch_size": 4}},
    "backbone": {{"source": "test_tiny"}},
    "phases": [{{"name": "head", "epochs": 2, "learning_rate": 0.01}},
               {{"name": "fine_tune", "epochs": 2, "learning_rate": 0.001, "freeze": {{"last_blocks": 1}},
                 "cache_features": False}}],
    "distribute": {{"strategy": "multi_worker"}},
    "export": {{"base_dir": out + "/exports", "warmup_requests": False}},
}}))
print(json.dumps({{"export_dir": result.export_dir}}))
"""


@pytest.mark.slow
def test_only_the_chief_writes_run_files_backups_and_exports(tmp_path):
    """A backup after every epoch, best-epoch weights, phase checkpoints, metrics, report and export: all from
    the chief; the other worker, given a run directory and export base of its own, writes not a single file there."""
    write_image_folder(str(tmp_path / "data"), per_class=8, size=(16, 16))
    script = textwrap.dedent(PRIVATE_DIRS_WORKER).format(tests=os.path.dirname(__file__), root=str(tmp_path))
    results = _run_workers(script)
    for index, result in enumerate(results):
        assert result.returncode == 0, f"worker {index}:\n{result.stderr[-3000:]}"
    chief_files = {
        os.path.relpath(os.path.join(directory, name), tmp_path / "worker_0")
        for directory, _, names in os.walk(tmp_path / "worker_0") for name in names
    }
    assert {"run/metrics.json", "run/state.json", "run/history_head.csv", "run/history_fine_tune.csv",
            "run/model.keras", "exports/private_dirs/1/saved_model.pb"} <= chief_files
    other_files = [os.path.join(d, n) for d, _, names in os.walk(tmp_path / "worker_1") for n in names]
    assert other_files == []


# Prints each fitted epoch; with SLOW_EPOCHS set, sleeps after each epoch's backup so that a test can kill a
# worker mid-phase.
RESTARTED_WORKER = """
import json, os, sys, time
import keras
sys.path.insert(0, {tests!r})
from harness import tiny_resnet
from tfx_transfer.backbones.registry import register_source
from tfx_transfer.pipeline import train
from tfx_transfer.recipe import recipe_from_dict

class PrintEpochs(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        print(json.dumps({{"epoch": epoch + 1, "loss": float(logs["loss"])}}), flush=True)
        time.sleep(float(os.environ.get("SLOW_EPOCHS", "0")))

register_source("test_tiny", lambda c: tiny_resnet())
result = train(recipe_from_dict({{
    "name": "restarted",
    "run_dir": {root!r} + "/run",
    "backup_interval_seconds": 0,
    "data": {{"source": "folder", "path": {root!r} + "/data", "batch_size": 4}},
    "backbone": {{"source": "test_tiny"}},
    "phases": [{{"name": "head", "epochs": 4, "learning_rate": 0.01, "early_stopping_patience": None}}],
    "distribute": {{"strategy": "multi_worker"}},
    "export": {{"enabled": False}},
}}), callbacks=[PrintEpochs()])
print(json.dumps({{"done": result.metrics["phases"][0]["epochs_run"]}}), flush=True)
"""


def _start_workers(script, extra_env=None):
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(2)]}
    return [
        subprocess.Popen(
            [sys.executable, "-c", script], text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(extra_env or {}),
                 "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})},
        )
        for index in range(2)
    ]


def _json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.slow
def test_a_job_restarted_after_a_worker_dies_resumes_from_the_last_backup_without_repeating_epochs(tmp_path):
    write_image_folder(str(tmp_path / "data"), per_class=8, size=(16, 16))
    script = textwrap.dedent(RESTARTED_WORKER).format(tests=os.path.dirname(__file__), root=str(tmp_path))
    record = tmp_path / "run" / "backup" / "head" / "backup.json"
    workers = _start_workers(script, {"SLOW_EPOCHS": "3"})
    try:
        deadline = time.monotonic() + 60
        while not record.exists() and time.monotonic() < deadline and workers[0].poll() is None:
            time.sleep(0.2)
        assert record.exists(), workers[0].communicate(timeout=10)[1][-3000:]
        workers[1].kill()  # the other worker dies after the chief backed up its first epoch
        try:
            survivor_stdout, survivor_stderr = workers[0].communicate(timeout=60)
            survivor_exit = workers[0].returncode
        except subprocess.TimeoutExpired:  # still waiting for the dead worker: the restart stops it
            workers[0].kill()
            survivor_stdout, survivor_stderr = workers[0].communicate()
            survivor_exit = None
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
            worker.communicate()
    first = _json_lines(survivor_stdout)
    backed_up = json.loads(record.read_text())["epoch"]
    assert survivor_exit != 0, "the chief finished although its peer was dead"

    results = _run_workers(script)  # the whole job restarts: same TF_CONFIG shape, same run_dir
    for index, result in enumerate(results):
        assert result.returncode == 0, f"worker {index}:\n{result.stderr[-3000:]}"
    second = _json_lines(results[0].stdout)
    resumed = [line["epoch"] for line in second if "epoch" in line]
    assert resumed == list(range(backed_up + 1, 5)), (first, backed_up, second)  # no epoch fitted twice
    assert second[-1] == {"done": 4}
    with open(tmp_path / "run" / "history_head.csv") as f:
        history = list(csv.DictReader(f))
    assert [int(row["epoch"]) for row in history] == [0, 1, 2, 3]
    for line in first:  # the epochs of the first attempt are kept as they were
        if "epoch" in line and line["epoch"] <= backed_up:
            assert float(history[line["epoch"] - 1]["loss"]) == pytest.approx(line["loss"], rel=1e-6)
    print(f"survivor exit code {survivor_exit}; first attempt fitted {[l['epoch'] for l in first if 'epoch' in l]}, "
          f"backed up {backed_up}, resumed {resumed}")
