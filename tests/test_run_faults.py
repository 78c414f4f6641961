"""`tfx-transfer train` under faults: divergence, a run directory in use, and SIGINT/SIGTERM at random moments."""

import concurrent.futures
import csv
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from conftest import tiny_resnet
from tfx_transfer.backbones.registry import register_source
from tfx_transfer.cli import EXIT_DIVERGED, main
from tfx_transfer.locks import run_dir_lock

register_source("tiny_for_faults", lambda config: tiny_resnet(tuple(config.image_size or (32, 32))))

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

RECIPE = """
name: faults
data: {{source: synthetic, batch_size: 16}}
backbone: {{source: tiny_for_faults, image_size: [32, 32]}}
phases:
  - {{name: head, epochs: 1, learning_rate: 0.01}}
  - {{name: fine_tune, epochs: 2, freeze: {{last_blocks: 1}}, learning_rate: 1.0e+38, optimizer: sgd}}
run_dir: {run_dir}
export: {{base_dir: {export}}}
"""


def _strict_json(path):
    def refuse(constant):
        raise ValueError(f"{path}: non-standard JSON constant {constant}")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_a_diverging_phase_exits_3_naming_phase_epoch_and_fix_and_exports_nothing(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE.format(run_dir=tmp_path / "run", export=tmp_path / "exports"))
    assert main(["train", str(recipe)]) == EXIT_DIVERGED
    err = capsys.readouterr().err
    assert "tfx-transfer: error: phase 'fine_tune' diverged: the training loss became" in err
    assert "in epoch 1, batch" in err or "in epoch 2, batch" in err
    assert "Lower phases.1.learning_rate (now 1e+38), e.g. --set phases.1.learning_rate=1e+37" in err
    assert "Traceback" not in err
    assert not (tmp_path / "exports").exists() or not any((tmp_path / "exports").rglob("saved_model.pb"))
    assert not (tmp_path / "run" / "metrics.json").exists() and not (tmp_path / "run" / "model.keras").exists()
    for path in (tmp_path / "run").rglob("*.json"):
        _strict_json(path)
    assert list(_strict_json(tmp_path / "run" / "state.json")["completed"]) == ["head"]


def test_a_second_run_on_a_run_directory_in_use_exits_2_naming_the_holder(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE.format(run_dir=tmp_path / "run", export=tmp_path / "exports"))
    with run_dir_lock(tmp_path / "run"):
        assert main(["train", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert f"is in use by another run (pid {os.getpid()} on host" in err and "Traceback" not in err
    assert not (tmp_path / "run" / "recipe.yaml").exists()


PHASES = ("[{name: head, epochs: 4, cache_features: false, early_stopping_patience: null},"
          " {name: fine_tune, epochs: 3, freeze: {last_blocks: 1}, learning_rate: 0.001}]")
EPOCHS = {"head": 4, "fine_tune": 3}


def _command(run_dir):
    return [
        sys.executable, "-m", "tfx_transfer.cli", "train", "recipes/smoke_synthetic.yaml",
        "--set", f"run_dir={run_dir}", "--set", "export.enabled=false", "--set", f"phases={PHASES}",
    ]


def _history_epochs(run_dir, phase):
    path = run_dir / f"history_{phase}.csv"
    if not path.exists():
        return []
    with open(path) as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def _assert_resumable(run_dir):
    """Every file a re-run reads parses, and no history file repeats an epoch."""
    for path in run_dir.rglob("*.json"):
        _strict_json(path)
    for phase in EPOCHS:
        epochs = _history_epochs(run_dir, phase)
        assert epochs == list(range(len(epochs))), f"history_{phase}.csv epochs: {epochs}"


def _assert_complete(run_dir):
    _assert_resumable(run_dir)
    metrics = _strict_json(run_dir / "metrics.json")
    assert {p["name"]: p["epochs_run"] for p in metrics["phases"]} == EPOCHS
    for phase, epochs in EPOCHS.items():
        assert _history_epochs(run_dir, phase) == list(range(epochs))
    assert not (run_dir / "backup").exists() or not any((run_dir / "backup").iterdir())


def _signal_moment(rng, log, process):
    """Waits for a random moment: a fifth of the time counted from the start (Python and TensorFlow
    loading), otherwise from the first phase's start (training, validation, phase boundaries, evaluation)."""
    if rng.random() < 0.2:
        return _wait(process, rng.uniform(1.0, 15.0))
    while "[tfx-transfer] phase " not in log.read_text():
        if _wait(process, 0.2):
            return True
    return _wait(process, rng.uniform(0.0, 20.0))


def _wait(process, seconds) -> bool:
    """True if `process` ended within `seconds`."""
    try:
        process.wait(timeout=seconds)
        return True
    except subprocess.TimeoutExpired:
        return False


@pytest.mark.slow
def test_sigint_and_sigterm_at_random_moments_exit_130_or_143_and_leave_a_resumable_run(tmp_path):
    """14 signals in all, to the processes of two chains of runs that go on at once (each chain on its own
    run directories): every re-run resumes what the previous one left; each chain's last run completes.
    Signals land while Python and TensorFlow import, while the model is built, between and inside
    epochs, in validation, between phases and after the command finished."""
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        chains = [pool.submit(_signal_chain, tmp_path / f"chain{seed}", random.Random(seed), 7) for seed in (18, 19)]
        outcomes = [outcome for chain in chains for outcome in chain.result()]
    assert {name for name, _ in outcomes} == {"SIGINT", "SIGTERM"}
    print("\n".join(f"{name}: {line}" for name, line in outcomes))


def _signal_chain(folder, rng, signals):
    """Runs, signals and re-runs until `signals` runs were stopped by a signal; returns (signal, last line) each."""
    folder.mkdir()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    run_dir, runs, outcomes = folder / "run0", 0, []
    while len(outcomes) < signals:
        log = folder / f"log{len(outcomes)}-{runs}.txt"
        with open(log, "w") as out:
            process = subprocess.Popen(_command(run_dir), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        signum, exited_after = None, 0.0
        if not _signal_moment(rng, log, process):
            signum = rng.choice([signal.SIGINT, signal.SIGTERM])
            sent = time.monotonic()
            process.send_signal(signum)
            process.wait(timeout=300)
            exited_after = time.monotonic() - sent
        text = log.read_text()
        if process.returncode == 0:
            # It finished before the signal, or exited as the signal came: either way its results are
            # complete. A run that went on for seconds after the signal ignored it.
            assert exited_after < 3.0, f"{signum!r} ignored: exit 0 {exited_after:.1f} s later\n{text[-3000:]}"
            _assert_complete(run_dir)
            runs += 1
            run_dir = folder / f"run{runs}"
            continue
        assert signum is not None, f"exit {process.returncode} without a signal\n{text[-3000:]}"
        assert process.returncode == 128 + signum, f"{signum!r}: exit {process.returncode}\n{text[-3000:]}"
        assert "Traceback" not in text, text[-3000:]
        said = ("tfx-transfer: stopped on ", "received after the command had finished")
        assert any(message in text for message in said), text[-3000:]
        _assert_resumable(run_dir)
        outcomes.append((signum.name, text.strip().splitlines()[-1]))
    final = subprocess.run(_command(run_dir), cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert final.returncode == 0, final.stderr[-3000:]
    _assert_complete(run_dir)
    return outcomes
