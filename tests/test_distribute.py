"""Training under tf.distribute.MirroredStrategy on two logical CPU devices, in a fresh process."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, {tests!r})
    from harness import tiny_resnet, write_image_folder
    from tfx_transfer.backbones.registry import register_source
    from tfx_transfer.pipeline import train
    from tfx_transfer.recipe import recipe_from_dict

    register_source("test_tiny", lambda c: tiny_resnet())
    write_image_folder({root!r} + "/data", per_class=8)
    recipe = recipe_from_dict({{
        "name": "mirrored",
        "run_dir": {root!r} + "/run",
        "data": {{"source": "folder", "path": {root!r} + "/data", "batch_size": 4}},
        "backbone": {{"source": "test_tiny"}},
        "phases": [{{"name": "head", "epochs": 1}},
                   {{"name": "fine_tune", "epochs": 1, "freeze": {{"last_blocks": 1}}}}],
        "distribute": {{"strategy": "mirrored", "devices": ["/cpu:0", "/cpu:1"]}},
        "export": {{"base_dir": {root!r} + "/exports"}},
    }})
    result = train(recipe)
    variable = result.model.trainable_weights[0].value
    print(json.dumps({{"replicas": type(variable).__name__, "metrics": result.metrics}}))
    """
)


@pytest.mark.slow
def test_mirrored_strategy_two_logical_cpus_trains_both_phases_and_exports(tmp_path):
    script = SCRIPT.format(tests=os.path.dirname(__file__), root=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert "Mirrored" in payload["replicas"]  # variables were created under the strategy
    phases = payload["metrics"]["phases"]
    assert [p["cached_features"] for p in phases] == [True, False]
    assert all(p["epochs_run"] == 1 for p in phases)
    assert os.path.exists(os.path.join(payload["metrics"]["export_dir"], "saved_model.pb"))
