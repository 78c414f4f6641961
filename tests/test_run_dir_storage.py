"""A run directory and export base on TF's in-memory filesystem (`ram://`): every run file goes through gfile."""

import os
import uuid

import pytest

import tfx_transfer.storage as storage
from conftest import tiny_resnet
from tfx_transfer.backbones.registry import register_source
from tfx_transfer.pipeline import train
from tfx_transfer.recipe import load_recipe


@pytest.fixture(scope="module")
def ram_run(tmp_path_factory):
    """Trains recipes/smoke_synthetic.yaml on a tiny backbone with `run_dir` and `export.base_dir` on `ram://`,
    from a scratch working directory (a write through `os` would land in `./ram:/...` there), then again."""
    register_source("test_tiny_32", lambda config: tiny_resnet(image_size=(32, 32)))
    root = f"ram://run_dir_storage_{uuid.uuid4().hex[:8]}"
    recipe = load_recipe("recipes/smoke_synthetic.yaml", [
        f"run_dir={root}/run", f"export.base_dir={root}/exports", "backbone.source=test_tiny_32",
        "phases.0.epochs=1", "phases.1.epochs=1", "phases.1.freeze.last_blocks=1",
    ])
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.mktemp("cwd"))
        first = train(recipe)
        second = train(recipe)
    return root, first, second


@pytest.mark.slow
def test_run_files_are_written_to_the_ram_filesystem_and_a_rerun_resumes_from_them(ram_run):
    root, first, second = ram_run
    run_dir = f"{root}/run"
    assert first.run_dir == run_dir
    for name in ("recipe.yaml", "state.json", "metrics.json", "model.keras", "history_head.csv",
                 "checkpoints/head.weights.h5", "checkpoints/fine_tune.weights.h5"):
        assert storage.exists(f"{run_dir}/{name}"), name
    metrics = storage.read_json(f"{run_dir}/metrics.json")
    assert [p["name"] for p in metrics["phases"]] == ["head", "fine_tune"]
    assert 0.0 <= metrics["test"]["accuracy"] <= 1.0
    assert list(storage.read_json(f"{run_dir}/state.json")["completed"]) == ["head", "fine_tune"]
    assert storage.read_text(f"{run_dir}/history_head.csv").startswith("epoch,")
    # The second run found both phases completed in ram:// and trained nothing.
    assert second.metrics["phases"] == first.metrics["phases"]
    assert second.metrics["test"]["accuracy"] == pytest.approx(first.metrics["test"]["accuracy"])


@pytest.mark.slow
def test_export_is_written_to_the_ram_filesystem(ram_run):
    root, first, _ = ram_run
    assert first.export_dir.startswith(f"{root}/exports/")
    assert storage.exists(f"{first.export_dir}/saved_model.pb")
    assert storage.read_text(f"{first.export_dir}/assets/labels.txt").split() == first.metrics["class_names"]


def test_a_write_to_a_directory_or_under_a_file_is_an_os_error_naming_the_path_and_leaves_nothing(tmp_path):
    (tmp_path / "dir").mkdir()
    (tmp_path / "file.txt").write_text("kept")
    with pytest.raises(IsADirectoryError) as directory:
        storage.write_text_atomic(tmp_path / "dir", "x")
    assert str(directory.value) == (
        f"Cannot write the file '{tmp_path / 'dir'}': it is a directory. Give a file path instead."
    )
    with pytest.raises(NotADirectoryError) as under_file:
        storage.write_json_atomic(tmp_path / "file.txt" / "out" / "a.json", {})
    assert str(under_file.value) == (
        f"Cannot write '{tmp_path / 'file.txt' / 'out' / 'a.json'}': '{tmp_path / 'file.txt'}' is a file, "
        "where a directory was expected. Choose another path or move that file."
    )
    assert sorted(os.listdir(tmp_path)) == ["dir", "file.txt"] and os.listdir(tmp_path / "dir") == []
    assert (tmp_path / "file.txt").read_text() == "kept"
