"""The converted-weights cache: keyed by the source's SHA-256, converted once, never half-written."""

import pytest

from tfx_transfer.weights import cache


def test_conversion_runs_once_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TFX_TRANSFER_HOME", str(tmp_path / "home"))
    source = tmp_path / "weights.pth"
    source.write_bytes(b"pretend checkpoint")
    calls = []

    def convert(path):
        calls.append(path)
        path.write_bytes(b"converted")

    first = cache.cached_conversion(source, "demo", convert)
    second = cache.cached_conversion(source, "demo", convert)
    assert first == second and first.read_bytes() == b"converted" and len(calls) == 1
    assert first.name == cache.sha256_of(source) + ".weights.h5"
    assert [p.name for p in first.parent.iterdir()] == [first.name]


def test_a_failed_conversion_leaves_no_cache_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("TFX_TRANSFER_HOME", str(tmp_path / "home"))
    source = tmp_path / "weights.pth"
    source.write_bytes(b"x")

    def convert(path):
        path.write_bytes(b"half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        cache.cached_conversion(source, "demo", convert)
    assert list((tmp_path / "home" / "demo").iterdir()) == []
