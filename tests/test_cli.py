"""The `tfx-transfer` command end to end on a tiny backbone: contract files, exit codes, one-line errors."""

import csv
import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from harness import tiny_resnet, write_image_folder
from tfx_transfer.backbones.registry import register_source
from tfx_transfer.cli import main
from tfx_transfer.data.image import load_data
from tfx_transfer.recipe import load_recipe

register_source("test_tiny", lambda config: tiny_resnet(tuple(config.image_size or (16, 16))))

RECIPE = """
name: pets
data: {{source: folder, path: {data}, batch_size: 4, validation_fraction: 0.25, test_fraction: 0.25}}
backbone: {{source: test_tiny}}
augment: {{flip: horizontal}}
phases:
  - {{name: head, epochs: 2, learning_rate: 0.01}}
  - {{name: fine_tune, epochs: 1, freeze: {{last_blocks: 1}}, learning_rate: 0.001, schedule: cosine}}
run_dir: {run_dir}
export: {{base_dir: {export}}}
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    write_image_folder(root / "data", per_class=8)
    recipe = root / "pets.yaml"
    recipe.write_text(RECIPE.format(data=root / "data", run_dir=root / "run", export=root / "exports"))
    code = main(["train", str(recipe), "--set", "phases.0.epochs=1"])
    return root, recipe, code


def test_train_writes_the_contract(trained, capsys):
    root, _, code = trained
    assert code == 0
    metrics = json.loads((root / "run" / "metrics.json").read_text())
    assert set(metrics["test"]) >= {"accuracy", "loss"}
    assert isinstance(metrics["test"]["accuracy"], float) and isinstance(metrics["test"]["loss"], float)
    assert [p["name"] for p in metrics["phases"]] == ["head", "fine_tune"]
    assert [p["epochs_run"] for p in metrics["phases"]] == [1, 1]  # --set phases.0.epochs=1 applied
    for phase in metrics["phases"]:
        assert isinstance(phase["seconds"], float) and "loss" in phase["history"]
    head, fine_tune = metrics["phases"]
    # The frozen phase's own test metrics sit beside the final ones; the last phase's are `test`.
    assert head["test"]["examples"] == metrics["test"]["examples"] and 0.0 <= head["test"]["accuracy"] <= 1.0
    assert fine_tune["test"] is None
    assert metrics["class_names"] == ["cat", "dog"]
    assert metrics["export_dir"] == str(root / "exports" / "pets" / "1")
    assert os.path.exists(os.path.join(metrics["export_dir"], "saved_model.pb"))
    assert (root / "run" / "recipe.yaml").read_text().startswith("name: pets")
    assert (root / "run" / "model.keras").exists()
    assert (root / "run" / "checkpoints" / "fine_tune.weights.h5").exists()
    assert any((root / "run" / "logs").rglob("events.out.tfevents.*"))


def test_train_writes_a_split_manifest_that_reads_back_with_another_seed(trained):
    root, recipe_path, _ = trained
    run_dir = root / "run"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["split_manifest"] == str(run_dir / "splits.csv")
    with open(run_dir / "splits.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["source"] for r in rows) == sorted(f"{c}/{i}.png" for c in ("cat", "dog") for i in range(8))
    assert all(r["label"] == r["source"].split("/")[0] for r in rows)
    for split, counts in metrics["data"]["counts"].items():
        assert sum(r["split"] == split for r in rows) == sum(counts.values())
    with open(run_dir / "test_predictions.csv", newline="") as f:
        evaluated = [p["true"] for p in csv.DictReader(f)]
    assert evaluated == [r["label"] for r in rows if r["split"] == "test"]  # the test rows, in evaluation order

    recipe = load_recipe(recipe_path, ["seed=7", f"data.split_manifest={run_dir / 'splits.csv'}"])
    again = load_data(recipe, tiny_resnet())
    assert again.manifest.to_csv() == (run_dir / "splits.csv").read_text()


def test_train_with_a_manifest_that_disagrees_with_the_data_exits_2_naming_the_row(trained, tmp_path, capsys):
    root, recipe_path, _ = trained
    manifest = tmp_path / "splits.csv"
    manifest.write_text((root / "run" / "splits.csv").read_text().replace("cat/0.png,cat", "cat/0.png,dog"))
    overrides = ["--set", f"data.split_manifest={manifest}", "--set", f"run_dir={tmp_path / 'run'}"]
    assert main(["train", str(recipe_path), *overrides]) == 2
    err = capsys.readouterr().err
    assert re.search(r"error: data.split_manifest: .*1 label\(s\) disagree \(line \d+: 'cat/0.png' is 'dog' in the "
                     r"manifest but 'cat' in the data\)", err)
    assert "Traceback" not in err


def test_saved_keras_file_reloads_in_safe_mode(trained):
    import keras
    import numpy as np

    root, _, _ = trained
    model = keras.saving.load_model(root / "run" / "model.keras", safe_mode=True)
    x = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 3)).astype("float32")
    assert model.predict(x, verbose=0).shape == (2, 2)


def test_predict_prints_label_and_probability(trained, capsys):
    root, _, _ = trained
    image = next((root / "data" / "dog").glob("*.png"))
    assert main(["predict", str(root / "exports" / "pets"), str(image), "--top", "2"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1].split("\t")
    assert line[0] == str(image) and {line[1], line[3]} == {"cat", "dog"}
    assert abs(float(line[2]) + float(line[4]) - 1.0) < 1e-3


def test_inspect_prints_a_table_per_phase(trained, capsys):
    _, recipe, _ = trained
    assert main(["inspect", str(recipe)]) == 0
    out = capsys.readouterr().out
    assert "phase 'head'" in out and "phase 'fine_tune'" in out
    assert out.count("total params") == 2


def test_bad_recipe_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nphases: [{name: a, epoch: 3}]\n")
    result = subprocess.run(
        [sys.executable, "-m", "tfx_transfer.cli", "train", str(bad)],
        capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "tfx-transfer: error: recipe.phases[0]: unknown key 'epoch'. Did you mean 'epochs'? Valid keys: "
        "augment, cache_features, class_weight, early_stopping_patience, epochs, freeze, keep_best_epoch, "
        "label_smoothing, layer_decay, learning_rate, lr_multipliers, min_steps, monitor, name, optimizer, schedule, "
        "warmup_epochs, weight_decay."
    )
    assert "Traceback" not in result.stderr


def test_missing_data_folder_exits_2(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"data: {{source: folder, path: {tmp_path / 'nope'}}}\nbackbone: {{source: test_tiny}}\n"
                      f"run_dir: {tmp_path / 'run'}\n")
    assert main(["train", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "error: data.path: image folder" in err and "does not exist" in err and "Traceback" not in err


def test_rerun_resumes_and_refuses_a_different_recipe_in_the_same_run_dir(trained, capsys, caplog):
    root, recipe, _ = trained
    with caplog.at_level("INFO", logger="tfx_transfer"):
        assert main(["train", str(recipe), "--set", "phases.0.epochs=1"]) == 0
    assert "phase 'head' already completed" in caplog.text and "phase 'fine_tune' already completed" in caplog.text
    assert main(["train", str(recipe), "--set", "phases.0.epochs=3"]) == 2
    assert "different recipe" in capsys.readouterr().err


def test_a_run_whose_recipe_predates_a_new_key_still_resumes(trained, caplog):
    """A run directory written before a recipe key existed holds no line for it; the key's default
    is what that run used, so the same command still resumes it."""
    root, recipe, _ = trained
    stored = root / "run" / "recipe.yaml"
    older = yaml.safe_load(stored.read_text())
    del older["backup_interval_seconds"]
    stored.write_text(yaml.safe_dump(older, sort_keys=False))
    with caplog.at_level("INFO", logger="tfx_transfer"):
        assert main(["train", str(recipe), "--set", "phases.0.epochs=1"]) == 0
    assert "phase 'head' already completed" in caplog.text


@pytest.mark.slow
def test_a_run_killed_with_sigkill_resumes_after_its_last_backup(tmp_path):
    """A real `kill -9` in the middle of a phase: the re-run continues, nothing is lost or repeated."""
    import signal
    import time

    run_dir = tmp_path / "run"
    command = [
        sys.executable, "-m", "tfx_transfer.cli", "train", "recipes/smoke_synthetic.yaml",
        "--set", f"run_dir={run_dir}", "--set", "export.enabled=false", "--set", "backup_interval_seconds=0",
        "--set", "phases=[{name: head, epochs: 12, cache_features: false, early_stopping_patience: null}]",
    ]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    first = subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    record = run_dir / "backup" / "head" / "backup.json"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and first.poll() is None:
        if record.exists() and json.loads(record.read_text())["epoch"] >= 2:
            break
        time.sleep(0.05)
    assert first.poll() is None, "the first run ended before it could be killed:\n" + first.communicate()[0][-2000:]
    first.send_signal(signal.SIGKILL)
    first.communicate()
    backed_up = json.loads(record.read_text())["epoch"]
    assert not (run_dir / "metrics.json").exists()

    second = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    resumed_at = int(second.stderr.split("resuming after epoch ")[1].split()[0])  # a log message: stderr
    assert resumed_at >= backed_up
    (phase,) = json.loads((run_dir / "metrics.json").read_text())["phases"]
    assert phase["epochs_run"] == 12 and len(phase["history"]["loss"]) == 12
    assert second.stderr.count("phase 'head' epoch ") == 12 - resumed_at  # EpochLog's line per epoch run


def test_train_writes_the_run_report_and_its_test_examples(trained):
    root, _, _ = trained
    run_dir = root / "run"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    page = (run_dir / "report.html").read_text()
    assert 'id="curves"' in page and 'id="confusion-counts"' in page and "ran all epochs" in page
    assert (run_dir / "curves.png").read_bytes().startswith(b"\x89PNG")
    predictions = (run_dir / "test_predictions.csv").read_text().splitlines()
    assert predictions[0] == "index,true,predicted,confidence,cat,dog"
    assert len(predictions) == 1 + metrics["test"]["examples"]
    index = json.loads((run_dir / "examples" / "worst_errors.json").read_text())
    wrong = sum(row.split(",")[1] != row.split(",")[2] for row in predictions[1:])
    assert index["errors"] == wrong and len(index["examples"]) == min(wrong, 12)
    assert all((run_dir / example["file"]).read_bytes().startswith(b"\x89PNG") for example in index["examples"])
