"""The result store: transactional rows, no duplicates, one spec per database, atomic side
store, tidy export."""

from __future__ import annotations

import csv
import sqlite3

import numpy as np
import pytest

from planner.common.safety import DISCLAIMER
from planner.sweeps.spec import parse_spec
from planner.sweeps.store import ResultStore, StoreError, dose_folder, export_table, tidy_rows


def _sweep(gaps=(1, 2, 3), name="s"):
    return parse_spec({"sweep": {"name": name, "cases": ["t10_rcc_escc2"]},
                       "fixed": {"strategy": "separation_sbrt_27gy_3fx", "grid_mm": 5.0},
                       "grid": {"gap_mm": list(gaps)}}, where=f"{name}.toml")


def _row(scenario, **metrics):
    return {"key": scenario.key, "index": scenario.index, "params": scenario.params, "status": "ok", "message": "",
            "metrics": {"achievable_prescription_gy": 20.0 + scenario.index, **metrics}, "wall_s": 0.5}


def test_rows_are_stored_once_and_read_back_in_spec_order(tmp_path):
    sweep = _sweep()
    path = tmp_path / "r.sqlite"
    with ResultStore(path, sweep, removed=["removed 2 scenarios: a reason"]) as store:
        assert store.commit([_row(sweep.scenarios[2]), _row(sweep.scenarios[0])], seed=sweep.seed) == 2
        # a row already stored (e.g. a batch Dask ran twice) is not written again
        assert store.commit([_row(sweep.scenarios[0], extra=1.0), _row(sweep.scenarios[1])], seed=sweep.seed) == 1
    with ResultStore(path, sweep) as store:  # reopened for the same spec
        rows = store.rows()
        assert [r["index"] for r in rows] == [0, 1, 2]
        assert "extra" not in rows[0]["metrics"] and rows[0]["params"]["gap_mm"] == 1.0
        assert store.finished_keys() == {s.key for s in sweep.scenarios}
        assert rows[0]["version"] and rows[0]["seed"] == 0
        assert store.meta["removed"] == '["removed 2 scenarios: a reason"]' and store.meta["spec_hash"] == sweep.spec_hash


def test_a_failed_commit_writes_nothing(tmp_path):
    sweep = _sweep()
    with ResultStore(tmp_path / "r.sqlite", sweep) as store:
        bad = _row(sweep.scenarios[1], broken=float("nan"))  # NaN is not JSON: the batch fails whole
        with pytest.raises(ValueError):
            store.commit([_row(sweep.scenarios[0]), bad], seed=0)
        assert store.count() == 0


def test_two_sweeps_never_share_a_database(tmp_path):
    path = tmp_path / "r.sqlite"
    ResultStore(path, _sweep()).close()
    with pytest.raises(StoreError, match="holds sweep 's'.*two sweeps never share a database"):
        ResultStore(path, _sweep(gaps=(1, 2, 4), name="other"))
    plain = tmp_path / "plain.sqlite"
    sqlite3.connect(plain).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(StoreError, match="not a sweep database"):
        ResultStore(plain, _sweep())
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match="not a sweep database"):
        ResultStore(tmp_path / "junk.sqlite", _sweep())
    with pytest.raises(StoreError, match="no such sweep database"):
        ResultStore(tmp_path / "missing.sqlite")


def test_dose_arrays_go_to_the_side_store(tmp_path):
    sweep = _sweep()
    path = tmp_path / "r.sqlite"
    dose = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    with ResultStore(path, sweep) as store:
        row = _row(sweep.scenarios[0]) | {"dose": {"dose_gy": dose, "spacing_mm": np.array([5.0, 5.0, 5.0])}}
        store.commit([row], seed=0)
        stored = store.rows()[0]
    assert stored["dose_file"] == f"{dose_folder(path).name}/{sweep.scenarios[0].key}.npz"
    with np.load(path.parent / stored["dose_file"]) as data:
        assert np.array_equal(data["dose_gy"], dose)
    assert [p.name for p in dose_folder(path).iterdir()] == [f"{sweep.scenarios[0].key}.npz"]  # no temporary left


def test_the_tidy_table_has_one_row_per_scenario_and_one_column_per_variable(tmp_path):
    sweep = _sweep()
    path = tmp_path / "r.sqlite"
    with ResultStore(path, sweep) as store:
        store.commit([_row(s) for s in sweep.scenarios[:2]] + [_row(sweep.scenarios[2], only_here=True)], seed=0)
        columns, records = tidy_rows(store.rows())
    assert columns[:3] == ["key", "index", "status"]
    assert {"gap_mm", "strategy", "grid_mm", "achievable_prescription_gy", "only_here"} <= set(columns)
    assert [r["gap_mm"] for r in records] == [1.0, 2.0, 3.0]
    assert records[0]["only_here"] is None and records[0]["grid_mm"] == "[5.0, 5.0, 5.0]"
    export_table(path, tmp_path / "t.csv", kind="csv")
    lines = (tmp_path / "t.csv").read_text(encoding="utf-8").splitlines()
    assert lines[-1] == f"# {DISCLAIMER}"
    read = list(csv.DictReader(lines[:-1]))
    assert len(read) == 3 and read[1]["gap_mm"] == "2.0"
    pq = pytest.importorskip("pyarrow.parquet")
    export_table(path, tmp_path / "t.parquet", kind="parquet")
    table = pq.read_table(tmp_path / "t.parquet")
    assert table.num_rows == 3 and table.column_names == columns
    assert table.column("achievable_prescription_gy").to_pylist() == [20.0, 21.0, 22.0]
    assert table.schema.metadata[b"disclaimer"] == DISCLAIMER.encode()
