"""Concurrent writers: distinct export versions for concurrent exports; one run per run directory."""

import json
import logging
import os
import subprocess
import sys
import threading
import time

import pytest

from tfx_transfer.locks import LOCK_FILE, RunDirectoryInUse, reserve_export_version, run_dir_lock

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)


def test_concurrent_reservations_get_distinct_versions(tmp_path):
    reservations, barrier = [], threading.Barrier(16)

    def reserve():
        barrier.wait()
        reservations.append(reserve_export_version(tmp_path / "m"))

    threads = [threading.Thread(target=reserve) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.version for r in reservations) == list(range(1, 17))
    for reservation in reservations:
        reservation.release()
    assert os.listdir(tmp_path / "m") == []


def test_a_reserved_or_existing_version_is_not_handed_out_again(tmp_path):
    (tmp_path / "m" / "3").mkdir(parents=True)
    held = reserve_export_version(tmp_path / "m")
    assert held.version == 4
    assert reserve_export_version(tmp_path / "m").version == 5
    for taken in (3, 4):
        with pytest.raises(FileExistsError, match=f"Export version '.*{taken}' already exists or is being written"):
            reserve_export_version(tmp_path / "m", version=taken)
    assert reserve_export_version(tmp_path / "m", version=7).version == 7


def test_a_second_run_on_a_run_directory_in_use_is_refused_with_its_holder(tmp_path):
    with run_dir_lock(tmp_path):
        with pytest.raises(RunDirectoryInUse) as error:
            with run_dir_lock(tmp_path):
                pass
        message = str(error.value)
        assert f"is in use by another run (pid {os.getpid()} on host" in message
        assert str(tmp_path / LOCK_FILE) in message and "--set run_dir=" in message
    with run_dir_lock(tmp_path):  # released at the end of the first run
        pass


def _train_error(recipe, recipe_text, capsys) -> list[str]:
    """The stderr lines of `tfx-transfer train` on a recipe holding `recipe_text`, which must exit 2."""
    from tfx_transfer.cli import main

    recipe.write_text(recipe_text)
    assert main(["train", str(recipe)]) == 2
    return capsys.readouterr().err.strip().splitlines()


def test_a_run_dir_that_is_a_file_exits_2_naming_it(tmp_path, capsys):
    (tmp_path / "file.txt").write_text("kept")
    recipe = tmp_path / "r.yaml"
    assert _train_error(recipe, f"run_dir: {tmp_path / 'file.txt'}\n", capsys) == [
        f"tfx-transfer: error: run_dir '{tmp_path / 'file.txt'}' is a file, not a directory: set run_dir to a "
        "directory (e.g. --set run_dir=<new directory>)."
    ]
    assert (tmp_path / "file.txt").read_text() == "kept"
    assert _train_error(recipe, f"run_dir: {tmp_path / 'file.txt' / 'run'}\n", capsys) == [
        f"tfx-transfer: error: run_dir '{tmp_path / 'file.txt' / 'run'}' is under '{tmp_path / 'file.txt'}', which "
        "is a file, not a directory: set run_dir to a directory (e.g. --set run_dir=<new directory>)."
    ]


def test_an_export_base_dir_under_a_file_stops_the_run_before_training(tmp_path, capsys):
    (tmp_path / "file.txt").write_text("kept")
    recipe_text = f"run_dir: {tmp_path / 'run'}\nexport: {{base_dir: {tmp_path / 'file.txt' / 'models'}}}\n"
    assert _train_error(tmp_path / "r.yaml", recipe_text, capsys) == [
        f"tfx-transfer: error: export.base_dir '{tmp_path / 'file.txt' / 'models'}' is under '{tmp_path / 'file.txt'}', "
        "which is a file, not a directory: set export.base_dir to a directory (e.g. --set export.base_dir=<new directory>)."
    ]
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_the_lock_of_a_run_that_died_is_taken_over_and_said_so(tmp_path, caplog):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": dead.pid, "host": "h", "started": "then"}))
    with caplog.at_level(logging.INFO, logger="tfx_transfer"), run_dir_lock(tmp_path):
        holder = json.loads((tmp_path / LOCK_FILE).read_text())
    assert holder["pid"] == os.getpid()
    assert f"from a run that is no longer running (pid {dead.pid} on host h" in caplog.text


EXPORT_SCRIPT = """
import os, sys, time
sys.path.insert(0, {tests!r})
from conftest import tiny_resnet
from tfx_transfer.data.image import ImagePreprocessor
from tfx_transfer.export import export_saved_model
from tfx_transfer.model import build_model
from tfx_transfer.recipe import HeadConfig

model, _ = build_model(tiny_resnet(), 2, HeadConfig())
print("ready", flush=True)
while not os.path.exists({go!r}):
    time.sleep(0.01)
print(export_saved_model(model, ImagePreprocessor((16, 16)), ["a", "b"], {base!r}, "m", warmup_requests=False))
"""


@pytest.mark.slow
def test_two_processes_exporting_at_once_get_two_complete_versions(tmp_path):
    go = tmp_path / "go"
    script = EXPORT_SCRIPT.format(tests=TESTS, go=str(go), base=str(tmp_path / "exports"))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    runs = [subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for run in runs:
        assert run.stdout.readline().strip() == "ready", run.stderr.read()[-2000:]
    go.touch()
    outputs = []
    for run in runs:
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, err[-2000:]
        outputs.append(out.strip().splitlines()[-1])
    assert sorted(outputs) == [str(tmp_path / "exports" / "m" / v) for v in ("1", "2")]
    for path in outputs:
        assert os.path.exists(os.path.join(path, "saved_model.pb"))
        assert open(os.path.join(path, "assets", "labels.txt")).read() == "a\nb\n"
    assert sorted(os.listdir(tmp_path / "exports" / "m")) == ["1", "2"]
