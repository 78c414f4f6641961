"""`benchmarks/gpu.py` keeps working: its small configuration prints a row for every modality, precision and
compiler, with finite numbers, and a combination that cannot run becomes a row saying why."""

import importlib.util
import math
import pathlib
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "gpu.py"
NUMBER_COLUMNS = ("phase 1 ex/s", "phase 2 ex/s", "phase 1 s", "phase 2 s", "test accuracy")


def load_script():
    spec = importlib.util.spec_from_file_location("benchmark_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_table(stdout: str) -> list[dict]:
    """The markdown table's rows as dicts keyed by its header."""
    lines = [line for line in stdout.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    return [dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")))) for line in lines[2:]]


@pytest.mark.slow
def test_small_configuration_prints_every_row_with_finite_numbers(tmp_path):
    result = subprocess.run(
        # Image, XLA off: the text model's XLA compiles would take most of the test's time (the text
        # rows run the same `measure`); the XLA train step of both modalities is checked in
        # test_tpu_readiness.py.
        [sys.executable, str(SCRIPT), "--small", "--epochs", "2", "--xla", "off", "--modalities", "image",
         "--work-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=900, cwd=SCRIPT.parent.parent,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = parse_table(result.stdout)
    combinations = {(row["modality"], row["precision"], row["XLA"]) for row in rows}
    assert combinations == {
        (modality, precision, xla)
        for modality in ("image",)
        for precision in ("float32", "mixed_float16", "mixed_bfloat16")
        for xla in ("off",)
    }
    assert len(rows) == 3
    for row in rows:
        assert not row["note"].startswith("failed"), row  # every precision runs on CPU in TF 2.21, slowly
        values = {column: float(row[column].replace(",", "")) for column in NUMBER_COLUMNS}
        assert all(math.isfinite(value) and value >= 0 for value in values.values()), row
        assert values["phase 1 ex/s"] > 0 and values["phase 2 ex/s"] > 0, row
        assert 0.0 <= values["test accuracy"] <= 1.0, row


def test_a_combination_that_fails_is_a_row_saying_why(tmp_path):
    gpu = load_script()
    recipe = {"name": "broken", "backbone": {"source": "no_such_source"}, "phases": [{"name": "head"}]}
    row = gpu.measure("image", recipe, "mixed_float16", True, str(tmp_path))
    assert row["modality"] == "image" and row["precision"] == "mixed_float16" and row["XLA"] == "on"
    assert row["note"].startswith("failed: ValueError") and "no_such_source" in row["note"]
    table = gpu.markdown_table([row])
    assert table.splitlines()[2].startswith("| image | mixed_float16 | on | - | - |")


def test_benchmark_settings_turn_off_the_cache_early_stopping_and_export():
    gpu = load_script()
    recipe = {"name": "r", "phases": [{"name": "head", "epochs": 4}], "distribute": {"strategy": "default"}}
    settings = gpu.benchmark_settings(recipe, "mixed_bfloat16", True, "/tmp/run")
    assert settings["phases"] == [
        {"name": "head", "epochs": 4, "cache_features": False, "early_stopping_patience": None}
    ]
    assert settings["distribute"] == {"strategy": "default", "precision": "mixed_bfloat16", "jit_compile": True}
    assert settings["export"] == {"enabled": False} and settings["run_dir"] == "/tmp/run"
