"""`tfx-transfer lr-find` and `learning_rate: auto`: the finder on what a phase really trains, weights put back,
the choice logged, recorded and kept across a resume."""

import keras
import numpy as np
import pytest

from harness import tiny_resnet
from test_training import _recipe, _splits
from tfx_transfer.backbones.registry import register_source
from tfx_transfer.cli import main
from tfx_transfer.config import ConfigError
from tfx_transfer.model import build_model
from tfx_transfer.recipe import PhaseConfig, load_recipe, recipe_from_dict
from tfx_transfer.training import PhaseRunner, make_optimizer
from tfx_transfer.training.lr_choice import record_choice

register_source("test_tiny_lr_find", lambda config: tiny_resnet(image_size=(32, 32)))

SMOKE = "recipes/smoke_synthetic.yaml"
TINY = ["--set", "backbone.source=test_tiny_lr_find", "--set", "phases.1.freeze.last_blocks=1"]
TWO_PHASES = [
    {"name": "head", "epochs": 1, "learning_rate": 0.01},
    {"name": "fine_tune", "epochs": 1, "freeze": {"last_blocks": 1}, "learning_rate": "auto"},
]


def _runner(run_dir, phases, callbacks=()):
    keras.utils.set_random_seed(3)
    recipe = _recipe(run_dir, phases)
    backbone = tiny_resnet()
    model, head = build_model(backbone, 3, recipe.head)
    return PhaseRunner(model, head, backbone, _splits(), recipe, recipe.run_dir, callbacks=callbacks)


def test_cli_lr_find_writes_the_curve_and_prints_a_rate_the_recipe_accepts(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code = main(["lr-find", SMOKE, "--phase", "1", "--steps", "30", "--set", f"run_dir={run_dir}", *TINY])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = (run_dir / "lr_find" / "fine_tune.csv").read_text().splitlines()
    assert lines[0] == "step,learning_rate,loss,smoothed_loss" and 20 < len(lines) <= 31
    assert (run_dir / "lr_find" / "fine_tune.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "(valley)" in out and "(steepest)" in out
    (set_line,) = [line for line in out.splitlines() if line.startswith("use it: --set ")]
    override = set_line.removeprefix("use it: --set ")
    assert override.startswith("phases.1.learning_rate=")
    rate = load_recipe(SMOKE, [override]).phases[1].learning_rate
    first, last = (float(line.split(",")[1]) for line in (lines[1], lines[-1]))
    assert first <= rate <= last


@pytest.mark.parametrize(
    "args, message",
    [
        (["--phase", "2"], "phase index 2 (--phase) is out of range: recipe 'smoke_synthetic' has the phases 0 (head), 1 (fine_tune)"),
        (["--phase", "-1"], "phase index -1 (--phase)"),
        (["--steps", "5000"], r"steps must be in [20, 1000], received 5000"),
        (["--start", "1", "--end", "0.1"], "0 < start < end, received start=1.0, end=0.1"),
    ],
)
def test_cli_lr_find_refuses_a_bad_phase_or_sweep_with_exit_2(tmp_path, capsys, args, message):
    assert main(["lr-find", SMOKE, "--set", f"run_dir={tmp_path / 'run'}", *TINY, *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "run" / "lr_find").exists()


@pytest.mark.parametrize(
    "phase_index, cache_features, mode",
    [(0, True, "head_on_features"), (1, True, "on_frozen_prefix"), (1, False, "full_model")],
)
def test_the_sweep_runs_on_the_phase_inputs_and_restores_every_weight(tmp_path, phase_index, cache_features, mode):
    runner = _runner(tmp_path / "run", [TWO_PHASES[0], {**TWO_PHASES[1], "cache_features": cache_features}])
    phase = runner.recipe.phases[phase_index]
    inputs = runner.phase_inputs(phase)
    assert inputs.plan.mode == mode
    before = [v.numpy() for v in runner.model.weights]
    result = runner.find_learning_rate(phase, inputs, steps=25)
    assert result.valley is not None and len(result.learning_rates) > 10
    for value, variable in zip(before, runner.model.weights):
        np.testing.assert_array_equal(variable.numpy(), value, err_msg=variable.path)
    assert result.csv_path == str(tmp_path / "run" / "lr_find" / f"{phase.name}.csv")


class _RateAtTrainBegin(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.rates = []

    def on_train_begin(self, logs=None):
        self.rates.append(float(self.model.optimizer.learning_rate))


def test_auto_trains_at_the_finders_valley_records_it_and_a_rerun_does_not_sweep_again(tmp_path, caplog, monkeypatch):
    seen = _RateAtTrainBegin()
    runner = _runner(tmp_path / "run", TWO_PHASES, callbacks=[seen])
    with caplog.at_level("INFO", logger="tfx_transfer"):
        head, fine_tune = runner.run()
    assert (head.learning_rate, head.learning_rate_source) == (0.01, "recipe")
    assert fine_tune.learning_rate_source == "lr_find"
    assert seen.rates == pytest.approx([0.01, fine_tune.learning_rate])
    assert f"phase 'fine_tune': learning_rate auto -> {fine_tune.learning_rate:.3g} (valley)" in caplog.text
    assert (tmp_path / "run" / "lr_find" / "fine_tune.png").exists()
    assert not (tmp_path / "run" / "backup" / "fine_tune").exists()  # the choice went with the finished phase's backups

    monkeypatch.setattr(PhaseRunner, "find_learning_rate", _no_sweep)
    again = _runner(tmp_path / "run", TWO_PHASES).run()
    assert again[1].learning_rate == fine_tune.learning_rate and again[1].learning_rate_source == "lr_find"


def _no_sweep(*args, **kwargs):
    raise AssertionError("the LR finder ran again")


def test_a_resumed_auto_phase_reuses_the_rate_chosen_before_it_was_interrupted(tmp_path, monkeypatch):
    phases = [{"name": "head", "epochs": 1, "learning_rate": "auto"}]
    record_choice(str(tmp_path / "run" / "backup" / "head"), 0.0123, "valley")
    monkeypatch.setattr(PhaseRunner, "find_learning_rate", _no_sweep)
    seen = _RateAtTrainBegin()
    (head,) = _runner(tmp_path / "run", phases, callbacks=[seen]).run()
    assert (head.learning_rate, head.learning_rate_source) == (0.0123, "lr_find")
    assert seen.rates == pytest.approx([0.0123])


def test_auto_is_the_only_word_a_learning_rate_accepts(tmp_path):
    recipe = load_recipe(SMOKE, ["phases.1.learning_rate=auto"])
    assert recipe.phases[1].learning_rate == "auto"
    with pytest.raises(ConfigError, match=r"recipe\.phases\[1\]\.learning_rate: expected a number, received 'fast' .*\. Or write 'auto'\.$"):
        load_recipe(SMOKE, ["phases.1.learning_rate=fast"])
    with pytest.raises(ConfigError, match=r"learning_rate: expected a number, received 'Auto'.* Or write 'auto'"):
        recipe_from_dict({"name": "x", "phases": [{"learning_rate": "Auto"}]})
    with pytest.raises(ConfigError, match="learning_rate must be a positive number or 'auto', received 'fast'"):
        PhaseConfig(learning_rate="fast")
    with pytest.raises(ValueError, match="'auto', not a number; PhaseRunner replaces"):
        make_optimizer(PhaseConfig(learning_rate="auto"), steps_per_epoch=10)


def test_the_run_report_shows_the_phase_sweeps(tmp_path):
    from report_helpers import png_bytes, write_run_dir
    from tfx_transfer.report import write_report

    run_dir = write_run_dir(tmp_path / "run", extra_plot=False)
    (run_dir / "lr_find").mkdir()
    (run_dir / "lr_find" / "fine_tune.png").write_bytes(png_bytes((200, 30, 30)))
    (run_dir / "lr_find" / "fine_tune.csv").write_text("step,learning_rate,loss,smoothed_loss\n")
    write_report(run_dir)
    page = (run_dir / "report.html").read_text()
    assert '<a href="lr_find/fine_tune.png">lr_find/fine_tune.png</a>' in page
    assert "fine_tune.csv" not in page


def test_auto_stops_with_what_to_set_when_the_finder_has_no_suggestion(tmp_path, monkeypatch):
    from tfx_transfer.lr_find import LRFindResult

    diverged = LRFindResult([1e-7] * 8, [9.0] * 8, [9.0] * 8, valley=None, steepest=None, diverged=True)
    monkeypatch.setattr(PhaseRunner, "find_learning_rate", lambda *args, **kwargs: diverged)
    runner = _runner(tmp_path / "run", [{"name": "head", "epochs": 1, "learning_rate": "auto"}])
    with pytest.raises(ConfigError, match=r"phase 'head': learning_rate auto: .*diverged after 8 steps.*--set phases\.0\.learning_rate="):
        runner.run()


def test_cli_lr_find_starts_a_later_phase_from_the_earlier_phase_finished_in_run_dir(tmp_path, capsys, caplog):
    run_dir = tmp_path / "run"
    tiny = [*TINY, "--set", f"run_dir={run_dir}", "--set", "export.enabled=false"]
    assert main(["train", SMOKE, *tiny, "--set", "phases.0.epochs=1", "--set", "phases.1.epochs=1"]) == 0
    with caplog.at_level("INFO", logger="tfx_transfer"):
        assert main(["lr-find", SMOKE, "--phase", "1", "--steps", "20", *tiny]) == 0
    assert f"lr-find: phase 'fine_tune' starts from the weights of phase 'head' in {run_dir}" in caplog.text
    assert "use it: --set phases.1.learning_rate=" in capsys.readouterr().out


MIRRORED_SCRIPT = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path[:0] = [{tests!r}]
import numpy as np
from harness import tiny_resnet
from test_training import _recipe, _splits
from tfx_transfer.model import build_model
from tfx_transfer.training import PhaseRunner

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
phases = [{{"name": "head", "epochs": 1, "learning_rate": "auto"}},
          {{"name": "fine_tune", "epochs": 1, "freeze": {{"last_blocks": 1}}, "learning_rate": "auto",
            "layer_decay": 0.5, "cache_features": False}}]
recipe = _recipe({run_dir!r}, phases)
with strategy.scope():
    backbone = tiny_resnet()
    model, head = build_model(backbone, 3, recipe.head)
runner = PhaseRunner(model, head, backbone, _splits(), recipe, recipe.run_dir, strategy=strategy)
before = [v.numpy() for v in model.weights]
runner.find_learning_rate(recipe.phases[1], steps=20)
restored = all(np.array_equal(a, v.numpy()) for a, v in zip(before, model.weights))
results = runner.run()
print(json.dumps({{"restored": restored, "rates": [[r.learning_rate, r.learning_rate_source] for r in results]}}))
"""


@pytest.mark.slow
def test_auto_and_the_sweep_work_under_mirrored_strategy_on_two_logical_cpus(tmp_path):
    import json
    import os
    import subprocess
    import sys

    script = MIRRORED_SCRIPT.format(tests=os.path.dirname(__file__), run_dir=str(tmp_path / "run"))
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["restored"]
    assert [source for _, source in payload["rates"]] == ["lr_find", "lr_find"]
    assert all(rate > 0 for rate, _ in payload["rates"])
