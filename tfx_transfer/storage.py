"""Every file the toolkit reads or writes goes through here, on any `tf.io.gfile` filesystem.

Local paths, `gs://`, `s3://` (with the matching TF filesystem plugin) and TF's in-memory
`ram://` all work, so a multi-worker run can keep its run directory and exports on storage
that every worker sees.

"Atomic" means: a reader sees either the old file or the complete new one, never a half
write. On a local disk (POSIX) that holds because the new content is written to a temporary
name in the same directory and renamed over the target. Object stores (GCS, S3) have no
rename; there a write becomes visible only when the upload completes, which gives the same
guarantee for one object, but a rename of a *directory* (an export version) is a copy of each
object and is not atomic: a server polling an export base on GCS can see a partial version
for the duration of the copy.

Local file names need not be valid UTF-8 (Python hands them over with surrogate escapes);
`tf.io.gfile` decodes the names it lists strictly and raises UnicodeDecodeError
(tensorflow/tensorflow#37286), so local listing uses `os` and local reads pass the
name's bytes. `tests/compat/test_gfile_names.py` fails once gfile lists such names.

>>> import tfx_transfer.storage as storage
>>> storage.write_json_atomic("ram://doc/metrics.json", {"accuracy": 0.5})
>>> storage.read_json("ram://doc/metrics.json")
{'accuracy': 0.5}
"""

import json
import math
import os
import posixpath
import uuid

import tensorflow as tf

gfile = tf.io.gfile


def join(*parts) -> str:
    """Joins path parts; URLs (`gs://...`, `ram://...`) always use `/`."""
    first = os.fspath(parts[0])
    if "://" in first:
        return posixpath.join(first, *map(os.fspath, parts[1:]))
    return os.path.join(first, *map(os.fspath, parts[1:]))


def parent(path) -> str:
    """The directory holding `path`; URLs keep their `/` separators."""
    path = os.fspath(path)
    return posixpath.dirname(path) if "://" in path else os.path.dirname(path)


def _native(path):
    """`path` as gfile takes it: a URL as it is, a local name as its bytes (which may not be UTF-8)."""
    path = os.fspath(path)
    return path if isinstance(path, bytes) or "://" in path else os.fsencode(path)


def exists(path) -> bool:
    return gfile.exists(_native(path))


def isdir(path) -> bool:
    return gfile.isdir(_native(path))


def makedirs(path) -> None:
    gfile.makedirs(os.fspath(path))


def listdir(path) -> list[str]:
    """Entry names in `path` (without trailing `/`), or [] when it does not exist."""
    path = os.fspath(path)
    if not isdir(path):
        return []
    if "://" not in path:
        return sorted(os.listdir(path))
    return sorted(name.rstrip("/") for name in gfile.listdir(path))


def walk(top):
    """`(directory, subdirectories, filenames)` below `top`, like `os.walk` (whose order it keeps)."""
    top = os.fspath(top)
    return os.walk(top) if "://" not in top else gfile.walk(top)


def remove(path) -> None:
    """Removes a file if it exists."""
    path = os.fspath(path)
    if gfile.exists(path):
        gfile.remove(path)


def rmtree(path) -> None:
    """Removes a directory tree if it exists."""
    path = os.fspath(path)
    if gfile.exists(path):
        try:
            gfile.rmtree(path)
        except tf.errors.NotFoundError:  # a prefix with no objects left (object stores, ram://)
            pass


def rename(source, target, overwrite: bool = False) -> None:
    gfile.rename(os.fspath(source), os.fspath(target), overwrite=overwrite)


def move_dir(source, target) -> None:
    """Moves directory `source` to `target`, which must not exist.

    On a local disk: one rename, atomic. On a URL filesystem (`gs://`, `s3://`,
    `ram://`): a copy of every file, then removing `source` - not atomic, readers
    can see `target` partly copied. (Those filesystems have no directory rename;
    `ram://` even "renames" a directory by dropping its files.)
    """
    source, target = os.fspath(source), os.fspath(target)
    if "://" not in source:
        gfile.rename(source, target)
        return
    for directory, _, filenames in gfile.walk(source):
        destination = target + directory[len(source):]
        gfile.makedirs(destination)
        for filename in filenames:
            if not gfile.exists(join(directory, filename)):
                continue  # ram:// lists `assets.extra` inside `assets` as `.extra` (a prefix match)
            with gfile.GFile(join(destination, filename), "wb") as f:  # gfile.copy fails on ram://
                f.write(read_bytes(join(directory, filename)))
    rmtree(source)


def size(path) -> int:
    """The size of the file at `path` in bytes."""
    return gfile.stat(_native(path)).length


def read_bytes(path) -> bytes:
    with gfile.GFile(_native(path), "rb") as f:
        return f.read()


def read_text(path) -> str:
    return read_bytes(path).decode("utf-8")


def read_json(path):
    """The JSON document at `path`; a truncated or corrupt file raises ValueError naming it."""
    text = read_bytes(path)
    try:
        return json.loads(text)
    except ValueError as e:
        raise ValueError(f"{os.fspath(path)!r} is not valid JSON ({e}); it may be truncated or corrupt.") from None


def write_bytes_atomic(path, data: bytes) -> None:
    """Writes `data` to `path` so that readers see the old or the new content, never a part.

    A path that cannot be written raises an OSError naming `path` and what is in the way.
    """
    path = os.fspath(path)
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        if parent(path):
            gfile.makedirs(parent(path))
        with gfile.GFile(tmp, "wb") as f:
            f.write(data)
        gfile.rename(tmp, path, overwrite=True)
    except tf.errors.OpError as e:
        raise _write_error(path, e.message.replace(tmp, path)) from None
    finally:
        if gfile.exists(tmp):
            gfile.remove(tmp)


def _write_error(path: str, cause: str) -> OSError:
    if isdir(path):
        return IsADirectoryError(f"Cannot write the file {path!r}: it is a directory. Give a file path instead.")
    blocking = file_in_the_way(parent(path))
    if blocking:
        return NotADirectoryError(
            f"Cannot write {path!r}: {blocking!r} is a file, where a directory was expected. "
            "Choose another path or move that file."
        )
    return OSError(f"Cannot write {path!r}: {cause}")


def file_in_the_way(directory) -> str | None:
    """`directory` or its nearest existing parent when that is a file (so the directory cannot be made), else None.

    >>> file_in_the_way(os.path.join(__file__, "runs")) == __file__
    True
    """
    current = os.fspath(directory)
    while current and not exists(current):
        above = parent(current)
        if above == current:
            return None
        current = above
    return current if current and not isdir(current) else None


def require_directory(directory, key: str) -> None:
    """Raises NotADirectoryError naming the recipe `key` when `directory` is, or is under, a regular file."""
    directory = os.fspath(directory)
    blocking = file_in_the_way(directory)
    if blocking:
        where = "is a file" if blocking == directory else f"is under {blocking!r}, which is a file"
        raise NotADirectoryError(
            f"{key} {directory!r} {where}, not a directory: set {key} to a directory (e.g. --set {key}=<new directory>)."
        )


def write_text_atomic(path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path, payload, indent: int | None = 2) -> None:
    """Writes strict JSON (no NaN or Infinity: those become null) atomically."""
    text = json.dumps(_finite(payload), indent=indent, allow_nan=False)
    write_text_atomic(path, text)


def _finite(value):
    """`value` with every non-finite float replaced by None, so the JSON is strict."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
