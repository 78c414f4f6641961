"""SIGINT and SIGTERM as a request to stop: training stops between batches, backs up, and exits 130 or 143.

A `KeyboardInterrupt` raised wherever the signal lands can unwind through TensorFlow while it
runs (issue 18: heap corruption, SIGABRT). Here the signal handler only records the request;
the training loop checks it between batches (`raise_if_requested`), writes its backup and
raises `Interrupted`, which the command line turns into exit code 128 + the signal number
(130 for SIGINT, 143 for SIGTERM). A second signal exits at once, after saying so. This module
imports nothing but the standard library, so it can be armed before TensorFlow loads.

>>> import signal
>>> from tfx_transfer import stop
>>> with stop.handling_signals():
...     signal.raise_signal(signal.SIGTERM)
...     stop.requested()
<Signals.SIGTERM: 15>
"""

import contextlib
import os
import signal
import sys
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)
RESUMES_RUN = "the same command resumes the run: finished phases and backed-up epochs are kept."

_requested: signal.Signals | None = None
_console: int | None = None  # a descriptor of the terminal's stderr, taken when the handlers are armed


class Interrupted(Exception):
    """A stop request honoured at a safe point; `exit_code` is 128 + the signal number."""

    def __init__(self, signum, what_remains: str):
        self.signal = signal.Signals(signum)
        self.exit_code = 128 + int(signum)
        super().__init__(f"stopped on {self.signal.name}; {what_remains}")


def requested() -> signal.Signals | None:
    """The signal that asked the process to stop, or None."""
    return _requested


def raise_if_requested(what_remains: str) -> None:
    """Raises `Interrupted` if a stop was requested; `what_remains` tells what a re-run will do."""
    if _requested is not None:
        raise Interrupted(_requested, what_remains)


@contextlib.contextmanager
def handling_signals(until_exit: bool = False, graceful: bool = True):
    """Within the block, SIGINT and SIGTERM request a stop instead of interrupting; a second one exits at once.

    With `graceful=False` (work with nothing to save, e.g. `predict`), the first signal exits at
    once, after saying so. With `until_exit` (the command line, whose process ends after the
    block), a signal after the block ends the process at once with 128 + its number instead of
    interrupting its shutdown.
    """
    global _requested, _console
    if threading.current_thread() is not threading.main_thread():
        yield  # Python delivers signals to the main thread only; nothing to arm here.
        return
    _console = os.dup(2)  # the process's stderr, which may be redirected meanwhile (quiet TensorFlow import)
    previous = {s: signal.signal(s, _request_stop if graceful else _exit_saying_so) for s in SIGNALS}
    _requested = None
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, _exit_after_the_command if until_exit else handler)
        _requested = None
        os.close(_console)
        _console = None


def _exit_saying_so(signum, frame):
    _say(f"{signal.Signals(signum).name} received: exiting.")
    _exit_now(signum, frame)


def _exit_after_the_command(signum, frame):
    _say(f"{signal.Signals(signum).name} received after the command had finished: exiting; its results are complete.")
    _exit_now(signum, frame)


def _exit_now(signum, frame):
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a stream closed during shutdown has nothing left to flush
            pass
    os._exit(128 + signum)


def _request_stop(signum, frame):
    global _requested
    name = signal.Signals(signum).name
    if _requested is None:
        _requested = signal.Signals(signum)
        _say(f"{name} received: stopping after the current batch and writing a backup "
             f"(send {name} again to exit at once, without a backup).")
        return
    _say(f"second {name}: exiting now without writing a backup; a re-run resumes from the last backup.")
    os._exit(128 + signum)


def _say(text: str) -> None:
    # os.write, not print or logging: the handler may run while the main thread is inside a print.
    os.write(2 if _console is None else _console, f"\n[tfx-transfer] {text}\n".encode())
