"""The CLI starts without TensorFlow for --help, and keeps TF's C++ start-up lines off stderr."""

import os
import subprocess
import sys

ENV = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}


def _run(*args, code=None):
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "tfx_transfer.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=300)


def test_import_and_help_do_not_import_tensorflow():
    result = _run(code=(
        "import sys\n"
        "import tfx_transfer, tfx_transfer.cli\n"
        "try:\n"
        "    tfx_transfer.cli.main(['--help'])\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0, e.code\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n"
    ))
    assert result.returncode == 0, result.stderr
    assert "usage: tfx-transfer" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_an_error_is_one_line_without_tensorflow_start_up_noise(tmp_path):
    result = _run("predict", str(tmp_path / "missing"), "x.png")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"tfx-transfer: error: {str(tmp_path / 'missing')!r} holds no saved_model.pb and no integer version "
        "directory. Pass an export directory such as saved_models/<name>/<version>."
    ]


def test_debug_keeps_tensorflow_logs_and_tracebacks(tmp_path):
    result = _run("--debug", "predict", str(tmp_path / "missing"), "x.png")
    assert result.returncode == 2
    assert "Traceback" in result.stderr
