"""SIGINT/SIGTERM become stop requests; a second one exits at once; signals while TensorFlow loads exit cleanly."""

import os
import signal
import subprocess
import sys
import time

import pytest

from tfx_transfer import stop

STOP_MODULE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tfx_transfer", "stop.py")

# Loads stop.py on its own (no TensorFlow: milliseconds) and sends itself two signals.
TWO_SIGNALS = f"""
import importlib.util, signal, time
spec = importlib.util.spec_from_file_location("stop", {STOP_MODULE!r})
stop = importlib.util.module_from_spec(spec)
spec.loader.exec_module(stop)
with stop.handling_signals():
    signal.raise_signal(signal.SIGINT)
    print("requested:", stop.requested().name, flush=True)
    signal.raise_signal(signal.SIGINT)
    time.sleep(5)
    print("not reached", flush=True)
"""


def test_the_first_signal_is_a_request_and_the_second_exits_at_once_saying_so():
    result = subprocess.run([sys.executable, "-c", TWO_SIGNALS], capture_output=True, text=True, timeout=60)
    assert result.returncode == 130
    assert result.stdout == "requested: SIGINT\n"
    assert "SIGINT received: stopping after the current batch and writing a backup" in result.stderr
    assert "second SIGINT: exiting now without writing a backup" in result.stderr


def test_work_with_nothing_to_save_exits_at_the_first_signal_saying_so():
    script = TWO_SIGNALS.replace("stop.handling_signals()", "stop.handling_signals(graceful=False)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 130 and result.stdout == ""
    assert "SIGINT received: exiting." in result.stderr


def test_a_signal_after_the_command_finished_exits_at_once_saying_its_results_are_complete():
    script = TWO_SIGNALS.replace("stop.handling_signals()", "stop.handling_signals(until_exit=True)").replace(
        '    signal.raise_signal(signal.SIGINT)\n    time.sleep(5)\n    print', 'signal.raise_signal(signal.SIGTERM)\ntime.sleep(5)\nprint')
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 143 and result.stdout == "requested: SIGINT\n"
    assert "SIGTERM received after the command had finished: exiting; its results are complete." in result.stderr


def test_a_request_is_raised_only_at_a_safe_point_and_forgotten_after_the_block():
    with stop.handling_signals():
        stop.raise_if_requested("nothing")
        signal.raise_signal(signal.SIGTERM)
        with pytest.raises(stop.Interrupted) as error:
            stop.raise_if_requested("the same command resumes.")
    assert error.value.exit_code == 143 and str(error.value) == "stopped on SIGTERM; the same command resumes."
    assert stop.requested() is None
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


@pytest.mark.slow
def test_a_signal_while_tensorflow_loads_exits_143_after_the_import(tmp_path):
    """`train` arms its handlers before TensorFlow loads: a SIGTERM then is honoured once the import ends."""
    recipe = os.path.join(os.path.dirname(__file__), "..", "recipes", "smoke_synthetic.yaml")
    command = [sys.executable, "-m", "tfx_transfer.cli", "train", recipe, "--set", f"run_dir={tmp_path / 'run'}"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    time.sleep(1.0)  # the CLI starts in ~0.6 s; TensorFlow then loads for several seconds
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 143, err[-2000:]
    assert "SIGTERM received: stopping" in err and "stopped on SIGTERM; nothing was started." in err
    assert "Traceback" not in err and out == ""
    assert not (tmp_path / "run").exists()
