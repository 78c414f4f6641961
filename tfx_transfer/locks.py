"""Concurrent writers: one run per run directory, and a distinct export version for every export.

`run_dir_lock(run_dir)` holds an exclusive `flock` on `run_dir/.lock` for the length of a run and
writes the holder's pid, host and start time into it. A second run on the same directory is
refused with that holder named. A lock left by a run that died is free (the operating system
drops the lock with its process); the next run takes it over and says so.

`reserve_export_version(model_dir, version)` reserves an export version by creating the
directory `model_dir/.reserved-<version>` with `os.mkdir`, which is exclusive: of two
concurrent exports, one gets version N and the other tries N + 1. TF Serving ignores names
that are not integers. A run killed between reserving and publishing leaves the marker, and
that version number stays unused.

Limits: both need a local or NFS filesystem (POSIX `flock` and `mkdir`). On object stores
(`gs://`, `s3://`) there is no exclusive create: the run directory is not locked (a message
says so), and two concurrent exports to one model directory can pick the same version, so give
each run its own `export.version` there.

>>> import tempfile
>>> run_dir = tempfile.mkdtemp()
>>> with run_dir_lock(run_dir):
...     try:
...         with run_dir_lock(run_dir):
...             pass
...     except RunDirectoryInUse:
...         print("refused")
refused
"""

import contextlib
import datetime
import fcntl
import json
import os
import socket

from tfx_transfer import storage
from tfx_transfer.log import logger

LOCK_FILE = ".lock"
RESERVED_PREFIX = ".reserved-"


class RunDirectoryInUse(RuntimeError):
    """Another live run holds the run directory; the message names it and what to do."""


@contextlib.contextmanager
def run_dir_lock(run_dir, enabled: bool = True):
    """Holds `run_dir` for one run; raises `RunDirectoryInUse` if a live run holds it."""
    run_dir = os.fspath(run_dir)
    if not enabled:
        yield
        return
    if "://" in run_dir:
        logger.warning(
            f"run_dir {run_dir!r} is not on a local filesystem and cannot be locked: make sure only one run uses it."
        )
        yield
        return
    storage.require_directory(run_dir, "run_dir")
    os.makedirs(run_dir, exist_ok=True)
    path = os.path.join(run_dir, LOCK_FILE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(_read_holder(fd))
            raise RunDirectoryInUse(
                f"run_dir {run_dir!r} is in use by another run ({holder}; lock file {path}). Wait for it to "
                "finish or stop it, or use another directory: --set run_dir=<new directory>."
            ) from None
        previous = _read_holder(fd)
        if previous:
            logger.info(f"taking over {path} from a run that is no longer running ({_describe(previous)}).")
        _write_holder(fd, {"pid": os.getpid(), "host": socket.gethostname(),
                           "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")})
        try:
            yield
        finally:
            _write_holder(fd, None)
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def _read_holder(fd) -> dict | None:
    os.lseek(fd, 0, os.SEEK_SET)
    data = os.read(fd, 4096)
    try:
        holder = json.loads(data) if data else None
    except ValueError:
        return None
    return holder if isinstance(holder, dict) else None


def _write_holder(fd, holder) -> None:
    os.ftruncate(fd, 0)
    if holder:
        os.pwrite(fd, json.dumps(holder).encode(), 0)


def _describe(holder) -> str:
    if not holder:
        return "holder unknown"
    return f"pid {holder.get('pid')} on host {holder.get('host')}, started {holder.get('started')}"


class ExportReservation:
    """A reserved export version; `release()` once the version directory is in place (or abandoned)."""

    def __init__(self, model_dir: str, version: int, marker: str | None):
        self.model_dir, self.version, self._marker = model_dir, version, marker

    def release(self) -> None:
        if self._marker:
            storage.rmtree(self._marker)
            self._marker = None


def reserve_export_version(model_dir, version: int | None = None) -> ExportReservation:
    """Reserves `version`, or the next free version of `model_dir`, for one export.

    >>> import tempfile
    >>> model_dir = tempfile.mkdtemp()
    >>> first, second = reserve_export_version(model_dir), reserve_export_version(model_dir)
    >>> first.version, second.version
    (1, 2)
    """
    model_dir = os.fspath(model_dir)
    storage.makedirs(model_dir)
    while True:
        candidate = int(version) if version is not None else highest_version(model_dir, reserved=True) + 1
        final = storage.join(model_dir, str(candidate))
        marker = storage.join(model_dir, f"{RESERVED_PREFIX}{candidate}")
        if "://" in model_dir:
            marker = None  # no exclusive create on object stores; see the module docstring
        else:
            try:
                os.mkdir(marker)
            except FileExistsError:
                marker = ""
        taken = marker == "" or storage.exists(final)
        if not taken:
            return ExportReservation(model_dir, candidate, marker)
        if marker:
            storage.rmtree(marker)
        if version is not None:
            raise FileExistsError(
                f"Export version {final!r} already exists or is being written by another run. "
                "Choose another export.version or leave it unset."
            )


def highest_version(model_dir, reserved: bool = False) -> int:
    """The highest integer version directory in `model_dir` (0 when there is none); with `reserved`,
    versions reserved by exports in progress count too."""
    versions = [0]
    for name in storage.listdir(model_dir):
        number = name[len(RESERVED_PREFIX):] if reserved and name.startswith(RESERVED_PREFIX) else name
        if number.isdigit():
            versions.append(int(number))
    return max(versions)
