"""Reads PyTorch `.pth` state dicts into NumPy arrays without PyTorch and without running pickled code.

A `.pth` file is a Python pickle. `torch.load` unpickles it with the stock
unpickler, so a file from the internet can run any code it likes. Here the
unpickler resolves only the few globals a state dict needs (the tensor rebuild
functions, `collections.OrderedDict` and the typed storage classes) and refuses
every other global with `UnsafePickleError` before anything is called.

Both on-disk layouts are read:
- the zip layout (PyTorch >= 1.6): `<archive>/data.pkl` plus one raw file per
  storage under `<archive>/data/`;
- the legacy layout: five pickles in a row (magic number, protocol version,
  system info, the object, the storage keys) followed by each storage as an
  int64 element count and raw little-endian bytes.
"""

import collections
import dataclasses
import io
import math
import os
import pickle
import struct
import zipfile
import zlib
from typing import Any, BinaryIO

import numpy as np

_LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL_VERSION = 1001
# A state dict's pickle holds names and tensor layouts only (hundreds of KB for large models).
MAX_PICKLE_BYTES = 64 * 2**20

# Storage class name -> NumPy dtype of its elements. BFloat16 has no NumPy type:
# it is read as uint16 and widened to float32 (its upper 16 bits).
_STORAGE_DTYPES = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "BFloat16Storage": np.uint16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class UnsafePickleError(pickle.UnpicklingError):
    """A `.pth` file asked for a Python global that a plain state dict never needs."""


@dataclasses.dataclass(frozen=True)
class _StorageType:
    name: str

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(_STORAGE_DTYPES[self.name]).newbyteorder("<")


@dataclasses.dataclass
class _Storage:
    """A flat typed buffer; `data` is filled when its bytes are read."""

    storage_type: _StorageType
    numel: int
    data: np.ndarray | None = None


@dataclasses.dataclass
class _TensorRef:
    """A strided view of a storage, materialised once every storage has been read.

    The layout comes from an untrusted file: `to_numpy` checks it against the
    storage before any memory is touched.
    """

    storage: _Storage
    offset: Any
    size: Any
    stride: Any

    def to_numpy(self, source: str, name: str) -> np.ndarray:
        """The tensor as a new array; `pickle.UnpicklingError` naming `source` and `name` if its layout is invalid."""
        problem = self._layout_problem()
        if problem:
            raise pickle.UnpicklingError(f"{source}: tensor {name!r} {problem}; the file is corrupt or crafted.")
        flat = self.storage.data
        if flat is None:
            raise pickle.UnpicklingError(f"{source}: tensor {name!r} refers to a storage whose bytes are missing.")
        if 0 in self.size:
            return np.zeros(self.size, dtype=flat.dtype.newbyteorder("="))
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset :], shape=self.size, strides=[s * flat.itemsize for s in self.stride], writeable=False
        )
        array = np.array(view, dtype=view.dtype.newbyteorder("="))
        if self.storage.storage_type.name == "BFloat16Storage":
            array = (array.astype(np.uint32) << 16).view(np.float32)
        return array

    def _layout_problem(self) -> str | None:
        """Why this view does not lie inside its storage, or None when it does."""
        size, stride, offset = self.size, self.stride, self.offset
        if not (_is_int_tuple(size) and _is_int_tuple(stride) and _is_int(offset)):
            return f"has a malformed layout (size {size!r}, stride {stride!r}, offset {offset!r})"
        if len(size) != len(stride) or len(size) > _MAX_DIMS:
            return f"has {len(size)} sizes and {len(stride)} strides; expected as many, at most {_MAX_DIMS}"
        if min(size, default=0) < 0 or min(stride, default=0) < 0 or offset < 0:
            return f"has a negative size, stride or offset (size {size}, stride {stride}, offset {offset})"
        elements = math.prod(size)
        if elements == 0:
            return None
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        capacity = self.storage.numel
        if last >= capacity:
            return (
                f"of shape {size} with strides {stride} at offset {offset} reads element {last}, past the end "
                f"of its storage of {capacity} elements"
            )
        if elements > capacity:
            return (
                f"of shape {size} has {elements} elements, more than the {capacity} its storage holds "
                f"(overlapping or zero strides {stride})"
            )
        return None


_MAX_DIMS = 64


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_int_tuple(value) -> bool:
    return isinstance(value, (tuple, list)) and all(_is_int(v) for v in value)


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError(f"A tensor was rebuilt from {type(storage).__name__}, not from a storage.")
    return _TensorRef(storage, storage_offset, tuple(size) if isinstance(size, list) else size,
                      tuple(stride) if isinstance(stride, list) else stride)


def _rebuild_parameter(data, *unused):
    return data


_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in _STORAGE_DTYPES},
}


class _StateDictUnpickler(pickle._Unpickler):
    """Unpickles a state dict, resolving only `_ALLOWED_GLOBALS` and storage persistent ids.

    The pure-Python unpickler: the C one allocates the length a `BINBYTES8`
    opcode declares before reading (a crafted length is a MemoryError); this one
    reads first, from a bounded in-memory pickle or a `_BoundedReader`.
    """

    def __init__(self, file: BinaryIO, source: str, storages: dict[str, _Storage]):
        super().__init__(file)
        self._source = source
        self._storages = storages

    def find_class(self, module, name):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self._source} asks to load the Python global {module}.{name}, which a plain PyTorch "
                "state dict never needs; refusing it so that no code from the file runs. Only tensors, "
                "storages and OrderedDict are allowed: re-save the file as a state dict "
                "(torch.save(model.state_dict(), path))."
            ) from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and _as_str(pid[0]) == "storage"):
            kind = _as_str(pid[0]) if isinstance(pid, tuple) and pid else type(pid).__name__
            raise UnsafePickleError(
                f"{self._source} has a persistent id of kind {kind!r} that is not a tensor storage "
                "(a pickled module or custom object?); refusing it."
            )
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"{self._source}: storage {key!r} has no known storage type.")
        key = _as_str(key)
        if not _is_int(numel) or numel < 0:
            raise pickle.UnpicklingError(f"{self._source}: storage {key!r} declares {numel!r} elements.")
        storage = self._storages.setdefault(key, _Storage(storage_type, numel))
        view = pid[5] if len(pid) > 5 else None
        if view is not None:
            raise pickle.UnpicklingError(
                f"{self._source} uses storage views (saved by PyTorch < 0.4); re-save it with a newer PyTorch."
            )
        return storage


def _as_str(value) -> str:
    return value.decode("ascii") if isinstance(value, bytes) else str(value)


def load_state_dict(path: os.PathLike) -> dict[str, np.ndarray]:
    """Reads a PyTorch state dict file into `{name: array}` without importing or running PyTorch.

    Raises:
        UnsafePickleError: the file references a global other than the tensor
            rebuilding ones (for example a whole pickled `nn.Module`, or code).
        pickle.UnpicklingError: the file is not a readable `.pth` state dict.
    """
    path = os.fspath(path)
    storages: dict[str, _Storage] = {}
    try:
        if zipfile.is_zipfile(path):
            obj = _load_zip(path, storages)
        else:
            obj = _load_legacy(path, storages)
    except pickle.UnpicklingError:
        raise
    except (EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError, struct.error, zlib.error,
            zipfile.BadZipFile, OverflowError, NotImplementedError, RuntimeError) as e:
        # The pickle VM and zipfile raise these on malformed input (RuntimeError: an "encrypted"
        # member; NotImplementedError: an unknown compression method): the file is what is wrong.
        raise pickle.UnpicklingError(
            f"{path} is not a readable PyTorch state dict ({type(e).__name__}: {e})."
        ) from None
    return _to_arrays(obj, path)


def _load_zip(path: str, storages: dict[str, _Storage]) -> Any:
    with zipfile.ZipFile(path) as archive:
        try:
            return _read_zip_checkpoint(archive, path, storages)
        except OSError as e:
            # The file opened; a seek or read inside it failed, so its offsets are what is wrong
            # (a corrupt header offset makes zipfile seek to a negative position).
            raise pickle.UnpicklingError(f"{path} is not a readable PyTorch state dict (OSError: {e}).") from None


def _read_zip_checkpoint(archive: zipfile.ZipFile, path: str, storages: dict[str, _Storage]) -> Any:
    names = archive.namelist()
    pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
    if len(pickles) != 1:
        raise pickle.UnpicklingError(f"{path} is a zip file but not a PyTorch checkpoint (no single data.pkl).")
    prefix = pickles[0][: -len("data.pkl")]
    byteorder_name = prefix + "byteorder"
    if byteorder_name in names and _read_member(archive, byteorder_name, 16).strip() != b"little":
        raise pickle.UnpicklingError(f"{path} was saved on a big-endian machine; this reader is little-endian only.")
    pickled = archive.getinfo(pickles[0])
    if pickled.file_size > MAX_PICKLE_BYTES:
        raise pickle.UnpicklingError(
            f"{path}: {pickles[0]} declares {pickled.file_size} bytes; a state dict's pickle is far "
            f"smaller (at most {MAX_PICKLE_BYTES} read)."
        )
    obj = _StateDictUnpickler(io.BytesIO(archive.read(pickled)), path, storages).load()
    for key, storage in storages.items():
        member = f"{prefix}data/{key}"
        if member not in names:
            raise pickle.UnpicklingError(f"{path} has no {member} for storage {key!r}.")
        info = archive.getinfo(member)
        needed = storage.numel * storage.storage_type.dtype.itemsize
        if info.compress_type != zipfile.ZIP_STORED or info.file_size < needed:
            raise pickle.UnpicklingError(
                f"{path}: {member} holds {info.file_size} bytes"
                f"{'' if info.compress_type == zipfile.ZIP_STORED else ' compressed'}; storage {key!r} "
                f"declares {storage.numel} elements ({needed} bytes), stored uncompressed as torch.save writes them."
            )
        with archive.open(info) as f:
            storage.data = _storage_array(f.read(needed), storage, path, key)
    return obj


def _read_member(archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
    with archive.open(name) as f:
        return f.read(limit)


class _BoundedReader:
    """A binary file whose reads may not ask for more bytes than it has left (a crafted length is refused)."""

    def __init__(self, file: BinaryIO, path: str):
        self._file, self._path = file, path
        self._size = os.fstat(file.fileno()).st_size

    def left(self) -> int:
        return self._size - self._file.tell()

    def read(self, n: int = -1) -> bytes:
        if n > self.left():
            raise pickle.UnpicklingError(
                f"{self._path} declares a {n}-byte record with {self.left()} bytes left in the file (truncated or crafted)."
            )
        return self._file.read(n)

    def readline(self) -> bytes:
        return self._file.readline()


def _load_legacy(path: str, storages: dict[str, _Storage]) -> Any:
    with open(path, "rb") as raw_file:
        f = _BoundedReader(raw_file, path)
        header = _StateDictUnpickler(f, path, {})
        try:
            magic = header.load()
        except (pickle.UnpicklingError, EOFError, ValueError) as e:
            if isinstance(e, UnsafePickleError):
                raise
            raise pickle.UnpicklingError(f"{path} is neither a zip nor a legacy PyTorch checkpoint: {e}") from None
        if magic != _LEGACY_MAGIC_NUMBER:
            raise pickle.UnpicklingError(
                f"{path} is not a PyTorch checkpoint (bad magic number; tar-format files from PyTorch < 0.4 are "
                "not supported)."
            )
        protocol = header.load()
        if protocol != _LEGACY_PROTOCOL_VERSION:
            raise pickle.UnpicklingError(f"{path} has unknown legacy protocol version {protocol!r}.")
        sys_info = header.load()
        if not (isinstance(sys_info, dict) and sys_info.get("little_endian", False)):
            raise pickle.UnpicklingError(f"{path} was saved on a big-endian machine; this reader is little-endian only.")
        obj = _StateDictUnpickler(f, path, storages).load()
        keys = [_as_str(k) for k in _StateDictUnpickler(f, path, {}).load()]
        for key in keys:
            if key not in storages:
                raise pickle.UnpicklingError(f"{path} lists storage {key!r} that no tensor uses.")
            storage = storages[key]
            count = f.read(8)
            numel = struct.unpack("<q", count)[0] if len(count) == 8 else -1
            nbytes = numel * storage.storage_type.dtype.itemsize
            if numel < 0 or nbytes > f.left():
                raise pickle.UnpicklingError(
                    f"{path} is truncated inside storage {key!r} ({numel} elements declared, "
                    f"{f.left()} bytes left in the file)."
                )
            raw = f.read(nbytes)
            storage.data = _storage_array(raw, storage, path, key)
    return obj


def _storage_array(raw: bytes, storage: _Storage, path: str, key: str) -> np.ndarray:
    dtype = storage.storage_type.dtype
    if len(raw) < storage.numel * dtype.itemsize:
        raise pickle.UnpicklingError(
            f"{path}: storage {key!r} has {len(raw)} bytes, fewer than its {storage.numel} elements need."
        )
    return np.frombuffer(raw, dtype=dtype, count=storage.numel)


def _to_arrays(obj: Any, path: str) -> dict[str, np.ndarray]:
    if not isinstance(obj, dict):
        raise pickle.UnpicklingError(f"{path} holds a {type(obj).__name__}, not a state dict (a mapping of tensors).")
    arrays = {}
    for name, value in obj.items():
        if not isinstance(value, _TensorRef):
            raise pickle.UnpicklingError(
                f"{path}: entry {name!r} is a {type(value).__name__}, not a tensor; expected a flat state dict."
            )
        arrays[str(name)] = value.to_numpy(path, str(name))
    return arrays
