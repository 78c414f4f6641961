"""Crafted `.pth` files: layouts that point outside their storage, lying sizes, fuzzed tensor records."""

import collections
import itertools
import pickle
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from test_torch_pickle import _container, _Storage, _Tensor, write_pth
from tfx_transfer.weights import torch_pickle


def _one_tensor(tmp_path, offset, size, stride, numel=6, legacy=False, name="weight"):
    storage = _Storage("0", np.arange(numel, dtype=np.float32))
    path = tmp_path / ("legacy.pth" if legacy else "model.pth")
    write_pth(path, collections.OrderedDict({name: _Tensor(storage, offset, size, stride)}), [storage], legacy)
    return path


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize(
    "offset, size, stride, message",
    [
        (5, (3,), (-2,), "negative size, stride or offset"),
        (0, (-1,), (1,), "negative size, stride or offset"),
        (-4, (2,), (1,), "negative size, stride or offset"),
        (0, (10**6, 10**6), (0, 0), r"more than the 6 its storage holds \(overlapping or zero strides"),
        (7, (1,), (1,), "reads element 7, past the end of its storage of 6 elements"),
        (0, (3, 3), (3, 1), "reads element 8, past the end"),
        (0, (2, 3), (3,), "has 2 sizes and 1 strides"),
        (0, (2.5,), (1,), "malformed layout"),
        (0, (True,), (1,), "malformed layout"),
    ],
)
def test_a_layout_outside_its_storage_is_refused_naming_file_and_tensor(tmp_path, legacy, offset, size, stride, message):
    path = _one_tensor(tmp_path, offset, size, stride, legacy=legacy, name="features.0.weight")
    with pytest.raises(pickle.UnpicklingError, match=message) as error:
        torch_pickle.load_state_dict(path)
    assert str(error.value).startswith(f"{path}: tensor 'features.0.weight'")


def test_an_empty_tensor_reads_without_touching_its_storage(tmp_path):
    (array,) = torch_pickle.load_state_dict(_one_tensor(tmp_path, 10**9, (0, 4), (4, 1), numel=0)).values()
    assert array.shape == (0, 4) and array.dtype == np.float32


def test_a_legacy_storage_declaring_more_bytes_than_the_file_has_is_refused_before_reading(tmp_path):
    path = _one_tensor(tmp_path, 0, (6,), (1,), legacy=True)
    data = bytearray(path.read_bytes())
    count_at = len(data) - 6 * 4 - 8
    data[count_at : count_at + 8] = (2**62).to_bytes(8, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(pickle.UnpicklingError, match=r"truncated inside storage '0' \(4611686018427387904 elements"):
        torch_pickle.load_state_dict(path)


def test_a_compressed_or_short_zip_storage_is_refused_before_reading(tmp_path):
    path = tmp_path / "deflated.pth"
    good = _one_tensor(tmp_path, 0, (6,), (1,))
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info))
    with pytest.raises(pickle.UnpicklingError, match="compressed; storage '0' declares 6 elements"):
        torch_pickle.load_state_dict(path)


@pytest.mark.parametrize("numel", [-1, 2**70])
def test_a_storage_declaring_an_impossible_element_count_is_refused(tmp_path, numel):
    storage = _Storage("0", np.zeros(2, np.float32))
    storage.flat = type("Lying", (), {"size": numel, "dtype": np.dtype(np.float32), "tobytes": lambda self: b""})()
    path = tmp_path / "lying.pth"
    write_pth(path, {"w": _Tensor(storage, 0, (1,), (1,))}, [storage], legacy=False)
    with pytest.raises(pickle.UnpicklingError, match=r"storage '0' (declares -1 elements|.*declares \d+ elements)"):
        torch_pickle.load_state_dict(path)


def _reference(flat, offset, size, stride):
    """The strided view computed one index at a time, for layouts that lie inside `flat`."""
    values = [flat[offset + sum(i * s for i, s in zip(index, stride))] for index in itertools.product(*map(range, size))]
    return np.asarray(values, flat.dtype).reshape(size)


_DIMS = st.integers(0, 3)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.data(),
    numel=st.integers(0, 40),
    offset=st.integers(-3, 45),
    legacy=st.booleans(),
)
def test_fuzzed_tensor_records_read_exactly_or_fail_cleanly(tmp_path, data, numel, offset, legacy):
    """Any (offset, size, stride) either reads what PyTorch would give or raises a clear UnpicklingError."""
    rank = data.draw(_DIMS)
    size = tuple(data.draw(st.lists(st.integers(-1, 6), min_size=rank, max_size=rank)))
    stride = tuple(data.draw(st.lists(st.integers(-3, 8), min_size=rank, max_size=rank)))
    path = _one_tensor(tmp_path, offset, size, stride, numel=numel, legacy=legacy)
    flat = np.arange(numel, dtype=np.float32)
    try:
        (array,) = torch_pickle.load_state_dict(path).values()
    except pickle.UnpicklingError as e:
        assert str(e).startswith(f"{path}: tensor 'weight'"), str(e)
        return
    assert array.shape == size
    if array.size:
        np.testing.assert_array_equal(array, _reference(flat, offset, size, stride))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(legacy=st.booleans(), flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=4))
@example(legacy=False, flips=[(675, 2)])  # a zip header offset that makes zipfile seek before the file start
def test_fuzzed_file_bytes_give_arrays_or_an_unpickling_error(tmp_path, legacy, flips):
    """Corrupting any bytes of a checkpoint never crashes the reader or raises anything but UnpicklingError."""
    path = _one_tensor(tmp_path, 1, (2, 2), (2, 1), numel=6, legacy=legacy)
    data = bytearray(path.read_bytes())
    for where, value in flips:
        data[where % len(data)] = value
    path.write_bytes(bytes(data))
    try:
        arrays = torch_pickle.load_state_dict(path)
    except pickle.UnpicklingError:
        return
    assert all(isinstance(a, np.ndarray) for a in arrays.values())


@pytest.mark.parametrize("layout", ["zip", "legacy"])
def test_a_pickle_declaring_a_huge_bytes_record_is_refused_without_allocating_it(tmp_path, layout):
    huge_bytes_record = pickle.PROTO + b"\x04" + pickle.BINBYTES8 + (2**60).to_bytes(8, "little") + b"tail" + pickle.STOP
    with pytest.raises(pickle.UnpicklingError, match=r"evil_(zip|legacy)\.pth (is not a readable|declares a 1152921504606846976-byte record)"):
        torch_pickle.load_state_dict(_container(tmp_path, huge_bytes_record, layout))
