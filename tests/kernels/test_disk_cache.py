"""The disk cache of slow pure tables (kernels._disk_cache) and the beamlet table's use of it.

Every test points the cache at its own temporary directory, so the user's cache is never read
or written. The beamlet tables here are small (coarse steps, short reach) to stay fast.
"""

from dataclasses import fields, replace

import numpy as np
import pytest

import kernels.engine  # noqa: F401 - import the numba kernels before the environment changes
import kernels.pencil_beam_cpu  # noqa: F401
from kernels import _disk_cache, pencil_kernel
from kernels.beam_model import load_beam_model

SMALL = dict(lateral_step_mm=2.5, depth_step_mm=5.0, half_width_mm=10.0, depth_mm=50.0)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh cache directory (through XDG_CACHE_HOME, so numba's own settings stay as they are)."""
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "spinesim"


def _small_table():
    # Past the in-memory cache, so each call reads the disk or computes.
    return pencil_kernel.beamlet_table.__wrapped__(5.0, **SMALL)


def test_cache_dir_follows_numba_then_xdg_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _disk_cache.cache_dir() == tmp_path / "numba" / "spinesim"
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    assert _disk_cache.cache_dir() == tmp_path / "xdg" / "spinesim"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert _disk_cache.cache_dir() == tmp_path / "home" / ".cache" / "spinesim"


def test_beamlet_table_read_back_equals_the_computed_one(cache, monkeypatch):
    direct = pencil_kernel._compute(load_beam_model(), 5.0, *SMALL.values())
    first = _small_table()
    assert len(list(cache.glob("beamlet_table-*.npz"))) == 1

    def no_compute(*args, **kwargs):
        raise AssertionError("the table should have been read from the disk cache")

    monkeypatch.setattr(pencil_kernel, "_compute", no_compute)
    again = _small_table()
    for table in (first, again):
        for name in ("table", "normalisation"):
            ours, reference = getattr(table, name), getattr(direct, name)
            assert ours.dtype == reference.dtype and ours.shape == reference.shape
            assert np.array_equal(ours, reference)
        assert (table.depth_step_mm, table.lateral_step_mm, table.beamlet_mm, table.reach_mm) == \
            (direct.depth_step_mm, direct.lateral_step_mm, direct.beamlet_mm, direct.reach_mm)
        assert table.table.flags.c_contiguous


def test_every_input_changes_the_key(monkeypatch):
    model = load_beam_model()
    arguments = (5.0, 1.25, 2.5, 50.0, 300.0)
    base = pencil_kernel._table_key(model, *arguments)
    assert pencil_kernel._table_key(model, *arguments) == base
    keys = set()
    for i in range(len(arguments)):
        changed = list(arguments)
        changed[i] = np.nextafter(changed[i], np.inf).item()
        keys.add(pencil_kernel._table_key(model, *changed))
    keys.add(pencil_kernel._table_key(model, 5, 1.25, 2.5, 50.0, 300.0))  # an int is another input
    for field in fields(model):
        value = getattr(model, field.name)
        if isinstance(value, np.ndarray):
            value = value.copy()
            value.flat[-1] = np.nextafter(value.flat[-1], np.inf)
        elif isinstance(value, dict):  # the calibration, the media tables: change the first entry
            first = next(iter(value))
            value = dict(value, **{first: np.asarray(value[first]) * (1 + 1e-12)})
        else:
            value = value + 1
        keys.add(pencil_kernel._table_key(replace(model, **{field.name: value}), *arguments))
    monkeypatch.setattr(pencil_kernel, "TABLE_CACHE_VERSION", pencil_kernel.TABLE_CACHE_VERSION + 1)
    keys.add(pencil_kernel._table_key(model, *arguments))
    monkeypatch.setattr(pencil_kernel, "_code_fingerprint", lambda: "edited code")
    keys.add(pencil_kernel._table_key(model, *arguments))
    expected = len(arguments) + 1 + len(fields(model)) + 2
    assert len(keys) == expected and base not in keys


def test_package_fingerprint_sees_code_and_data(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "data" / "k.npz").write_bytes(b"\x00\x01")
    base = _disk_cache.package_fingerprint(tmp_path, ("data/k.npz",))
    (tmp_path / "a.py").write_text("x = 2\n")
    code = _disk_cache.package_fingerprint(tmp_path, ("data/k.npz",))
    (tmp_path / "data" / "k.npz").write_bytes(b"\x00\x02")
    data = _disk_cache.package_fingerprint(tmp_path, ("data/k.npz",))
    (tmp_path / "b.py").write_text("")
    added = _disk_cache.package_fingerprint(tmp_path, ("data/k.npz",))
    assert len({base, code, data, added}) == 4


def test_fingerprint_tells_inputs_apart():
    values = [1, 1.0, True, "1", b"1", (1,), [1], np.array(1), np.array(1.0), np.array([1]), np.array([[1]]),
              np.array(1, np.int32), {"a": 1}, {"a": 1.0}, None, ("a", "b"), ("ab",), 0.1, np.nextafter(0.1, 1.0),
              np.arange(6.0).reshape(2, 3), np.arange(6.0).reshape(3, 2), np.arange(6.0).reshape(3, 2).T]
    assert len({_disk_cache.fingerprint(v) for v in values}) == len(values)
    assert _disk_cache.fingerprint({"a": 1, "b": 2}) == _disk_cache.fingerprint({"b": 2, "a": 1})
    transposed = np.arange(6.0).reshape(3, 2).T
    assert _disk_cache.fingerprint(transposed) == _disk_cache.fingerprint(np.ascontiguousarray(transposed))
    with pytest.raises(TypeError):
        _disk_cache.fingerprint(object())


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "other_key", "missing_array"])
def test_a_damaged_file_is_computed_again(cache, damage):
    calls = []

    def compute():
        calls.append(1)
        return {"a": np.arange(5.0), "b": np.eye(2, dtype=np.float32)}

    key = _disk_cache.fingerprint("test", 1)
    first = _disk_cache.cached_arrays("test", key, compute, ("a", "b"))
    (path,) = cache.glob("test-*.npz")
    raw = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"not a zip file" * 10)
    elif damage == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "other_key":
        np.savez(path, __key__=np.array("another key"), a=np.zeros(5), b=np.zeros((2, 2), np.float32))
    else:
        np.savez(path, __key__=np.array(key), a=np.arange(5.0))
    again = _disk_cache.cached_arrays("test", key, compute, ("a", "b"))
    assert len(calls) == 2
    assert all(np.array_equal(first[n], again[n]) and first[n].dtype == again[n].dtype for n in "ab")
    # The file was written anew and is used from now on.
    _disk_cache.cached_arrays("test", key, compute, ("a", "b"))
    assert len(calls) == 2
    assert not list(cache.glob("*.tmp"))


def test_damaged_beamlet_table_file_is_rebuilt(cache):
    first = _small_table()
    (path,) = cache.glob("beamlet_table-*.npz")
    path.write_bytes(path.read_bytes()[:1000])
    again = _small_table()
    assert np.array_equal(first.table, again.table) and np.array_equal(first.normalisation, again.normalisation)
    assert path.stat().st_size > 1000


def test_unwritable_cache_dir_keeps_results_in_memory(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # a file: no directory can be made under it
    calls = []

    def compute():
        calls.append(1)
        return {"a": np.arange(3.0)}

    for _ in range(2):
        result = _disk_cache.cached_arrays("test", "k", compute, ("a",))
        assert np.array_equal(result["a"], np.arange(3.0))
    assert len(calls) == 2


def test_only_the_most_recently_used_files_are_kept(cache, monkeypatch):
    import os

    monkeypatch.setattr(_disk_cache, "KEEP_PER_NAME", 3)
    keys = [f"k{i}" for i in range(5)]
    for age, key in enumerate(keys):
        _disk_cache.cached_arrays("test", key, lambda: {"a": np.zeros(1)}, ("a",))
        os.utime(cache / f"test-{key}.npz", (1e9 + age, 1e9 + age))
    # A hit marks k2 used: when k5 arrives, k2 stays and the older k3 goes (other names stay).
    _disk_cache.cached_arrays("test", "k2", lambda: pytest.fail("k2 is cached"), ("a",))
    _disk_cache.cached_arrays("other", "k0", lambda: {"a": np.zeros(1)}, ("a",))
    _disk_cache.cached_arrays("test", "k5", lambda: {"a": np.zeros(1)}, ("a",))
    kept = sorted(p.name for p in cache.glob("test-*.npz"))
    assert kept == ["test-k2.npz", "test-k4.npz", "test-k5.npz"]
    assert (cache / "other-k0.npz").exists()
