"""Running sweeps: local and LocalCluster give identical rows; a run killed with SIGKILL at
several points and resumed gives exactly the complete set; a Dask worker killed mid-run
loses nothing; the command line end to end. Dask binds 127.0.0.1 only."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from planner.cli.commands import main
from planner.common.safety import DISCLAIMER
from planner.sweeps.execute import make_batches, run_sweep
from planner.sweeps.spec import load_spec, parse_spec
from planner.sweeps.store import ResultStore

ROOT = Path(__file__).resolve().parents[3]
STUB = "tests.planner.sweeps.stub:evaluate_batch"
#: A real sweep small enough for the test budget: a cervical case (small scenes), 5 mm grid.
SMALL = """
[sweep]
name = "small"
cases = ["c5_myeloma_escc2"]
[fixed]
grid_mm = 5.0
[grid]
strategy = ["sbrt_24gy_2fx", "cebrt_8gy_1fx"]
weeks_delay = [0, 4]
[outputs]
dose_arrays = true
"""


def _gap_sweep(n: int, name: str = "stub"):
    gaps = [round(10.0 * (i + 1) / n, 3) for i in range(n)]
    return parse_spec({"sweep": {"name": name, "cases": ["t10_rcc_escc2"]},
                       "fixed": {"strategy": "separation_sbrt_27gy_3fx"}, "grid": {"gap_mm": gaps}}, where=f"{name}.toml")


def _comparable(rows):
    return [{k: v for k, v in row.items() if k != "wall_s"} for row in rows]


def test_batches_keep_scenes_together_and_never_split_a_plan():
    sweep = parse_spec({"sweep": {"name": "b", "cases": ["t10_rcc_escc2"]},
                        "fixed": {"strategy": "separation_sbrt_27gy_3fx"},
                        "grid": {"level": ["T6", "T10"], "gap_mm": [1, 2, 3], "weights": [{"walking": 1}, {"walking": 3}]}},
                       where="b.toml")
    batches = make_batches(sweep.scenarios, batch_size=2)
    assert sorted(s["key"] for b in batches for s in b) == sorted(s.key for s in sweep.scenarios)
    for batch in batches:
        assert len({s["params"]["level"] for s in batch}) == 1
        plans = {}
        for s in batch:
            plans.setdefault(s["params"]["gap_mm"], []).append(s)
        assert len(plans) <= 2 and all(len(v) == 2 for v in plans.values())  # both weights of a plan together


def test_case_overrides_that_contradict_the_case_are_removed_before_the_run_with_their_count():
    from planner.sweeps.execute import check_cases

    sweep = parse_spec({"sweep": {"name": "c", "cases": ["t10_rcc_escc2"]}, "fixed": {"strategy": "sbrt_24gy_2fx"},
                        "grid": {"level": ["T10", "L3"], "weeks_delay": [0, 2, 4]}}, where="c.toml")
    kept, removed = check_cases(sweep)
    assert [s.params["level"] for s in kept] == ["T10"] * 3
    assert len(removed) == 1 and removed[0].startswith("removed 3 scenarios: t10_rcc_escc2 with case.level = 'L3': ")
    assert "field 'patient.neurology' = 'myelopathy'" in removed[0]


@pytest.mark.slow
def test_local_and_local_cluster_give_identical_rows_and_the_cli_exports_and_reports(tmp_path, monkeypatch, capsys):
    pytest.importorskip("distributed")
    spec_path = tmp_path / "small.toml"
    spec_path.write_text(SMALL, encoding="utf-8")
    sweep = load_spec(spec_path)
    local = run_sweep(sweep, tmp_path / "local.sqlite", workers=2)
    cluster = run_sweep(sweep, tmp_path / "cluster.sqlite", local_cluster=2, dashboard=None)
    assert (local.done, cluster.done) == (4, 4) and cluster.executor == "dask"
    with ResultStore(tmp_path / "local.sqlite") as a, ResultStore(tmp_path / "cluster.sqlite") as b:
        rows_a, rows_b = a.rows(), b.rows()
    assert len(rows_a) == 4 and all(r["status"] == "ok" for r in rows_a)
    assert [r["dose_file"].split("/")[1] for r in rows_a] == [r["dose_file"].split("/")[1] for r in rows_b]
    for r in rows_a + rows_b:
        r.pop("dose_file")
    assert _comparable(rows_a) == _comparable(rows_b)
    metrics = rows_a[0]["metrics"]
    assert metrics["escc_grade_measured"] in ("1c", "2", "3") and metrics["achievable_prescription_gy"] > 0
    assert {"local_control_pct", "walking_pct", "myelopathy_pct", "score", "constraints_pass"} <= set(metrics)
    for name in (r["key"] for r in rows_a):
        with np.load(tmp_path / f"local.sqlite.doses/{name}.npz") as x, np.load(tmp_path / f"cluster.sqlite.doses/{name}.npz") as y:
            assert np.array_equal(x["dose_gy"], y["dose_gy"]) and x["dose_gy"].max() > 0

    # The command line on the same results: rerun skips, export, report, and another spec is refused.
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["sweep", str(spec_path), "--db", "local.sqlite", "--workers", "1"]) == 0
    assert "0 scenarios run (0 infeasible), 4 already stored" in capsys.readouterr().out
    assert main(["sweep", "export", "local.sqlite", "--csv", "t.csv"]) == 0
    assert main(["sweep", "export", "local.sqlite", "--parquet", "t.parquet"]) == 0
    assert len((tmp_path / "t.csv").read_text(encoding="utf-8").splitlines()) == 1 + 4 + 1
    assert main(["sweep", "report", "local.sqlite", "--out", "report"]) == 0
    page = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert page.count(DISCLAIMER) >= 2 and "data:image/png;base64," in page and "weeks_delay" in page
    assert sorted(p.name for p in (tmp_path / "report" / "images").iterdir()) == ["00_tradeoff.png", "01_delay.png"]
    other = tmp_path / "other.toml"
    other.write_text(SMALL.replace('"small"', '"other"').replace("[0, 4]", "[0, 8]"), encoding="utf-8")
    capsys.readouterr()
    assert main(["sweep", str(other), "--db", "local.sqlite"]) == 2
    assert "two sweeps never share a database" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["sweep", "nothing_like_it"], "no sweep spec 'nothing_like_it'"),
    (["sweep", "gap_vs_dose", "--workers", "0"], "--workers must be in 1..1024"),
    (["sweep", "gap_vs_dose", "--workers", "2", "--local-cluster", "2"], "give one of --workers, --local-cluster"),
    (["sweep", "gap_vs_dose", "--scheduler", "8786"], "--scheduler must be an address like tcp://HOST:8786"),
    (["sweep", "gap_vs_dose", "--csv", "x.csv"], "--csv is for sweep export"),
    (["sweep", "export"], "sweep export needs the results database"),
    (["sweep", "export", "missing.sqlite", "--csv", "x.csv"], "no such sweep database"),
    (["sweep", "report", "spec.toml"], "sweep report needs --out DIR"),
    (["sweep", "export", "spec.toml", "--csv", "a.csv", "--parquet", "b.parquet"], "exactly one of --csv"),
    (["sweep", "spec.toml"], "spec.toml: field 'grid.gap_mm[0]' = 11 is not valid; allowed: a number in 0..10"),
])
def test_command_line_errors_are_one_line_and_nothing_runs(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.toml").write_text('[sweep]\nname = "x"\ncases = ["t10_rcc_escc2"]\n[fixed]\n'
                                        'strategy = "separation_sbrt_27gy_3fx"\n[grid]\ngap_mm = [11]\n', encoding="utf-8")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.toml"]


_DRIVER = textwrap.dedent("""
    import sys
    from planner.sweeps.execute import run_sweep
    from planner.sweeps.spec import parse_spec
    gaps = [round(10.0 * (i + 1) / {n}, 3) for i in range({n})]
    sweep = parse_spec({{"sweep": {{"name": "stub", "cases": ["t10_rcc_escc2"]}},
                        "fixed": {{"strategy": "separation_sbrt_27gy_3fx"}}, "grid": {{"gap_mm": gaps}}}}, where="stub.toml")
    run_sweep(sweep, sys.argv[1], workers=1, batch_size=1, evaluator="{stub}", validate_cases=False)
""")


def _stored(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            return dict(db.execute("SELECT key, metrics || finished_at FROM scenarios"))
    except sqlite3.OperationalError:  # the table is not created yet
        return {}


def test_a_run_killed_with_sigkill_at_several_points_resumes_to_exactly_the_complete_set(tmp_path):
    n = 80
    db = tmp_path / "killed.sqlite"
    script = _DRIVER.format(n=n, stub=STUB)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    seen: dict = {}
    for kill_after in (0, 7, 23, 41):
        process = subprocess.Popen([sys.executable, "-c", script, str(db)], cwd=ROOT, env=env, start_new_session=True)
        deadline = time.monotonic() + 60
        while len(_stored(db)) < kill_after and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        os.killpg(process.pid, signal.SIGKILL)  # the driver and anything it started, at once
        process.wait()
        now = _stored(db)
        assert len(now) >= kill_after
        assert all(now[key] == value for key, value in seen.items()), "a finished row was lost or rewritten"
        seen = now
    assert len(seen) < n  # the kills did land part-way
    subprocess.run([sys.executable, "-c", script, str(db)], cwd=ROOT, env=env, check=True, timeout=120)
    sweep = _gap_sweep(n)
    with ResultStore(db, sweep) as store:
        rows = store.rows()
    assert sorted(r["key"] for r in rows) == sorted(s.key for s in sweep.scenarios)  # complete, no duplicate
    by_key = {s.key: s for s in sweep.scenarios}
    for row in rows:  # every row whole and right
        assert row["metrics"] == {"twice_gap_mm": 2 * by_key[row["key"]].params["gap_mm"], "index_seen": row["index"]}
    final = _stored(db)
    assert all(final[key] == value for key, value in seen.items())


@pytest.mark.slow
def test_a_dask_worker_killed_mid_run_loses_nothing(tmp_path):
    distributed = pytest.importorskip("distributed")
    marker = tmp_path / "killed-worker.pid"
    sweep = _gap_sweep(16, name="dask")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None,
                                  env={"SWEEP_STUB_KILL": str(marker), "PYTHONPATH": str(ROOT)}) as cluster:
        summary = run_sweep(sweep, tmp_path / "d.sqlite", scheduler=cluster.scheduler_address, batch_size=2,
                            evaluator=STUB, validate_cases=False)
    assert marker.exists()  # a worker did die holding a batch
    assert summary.done == 16
    with ResultStore(tmp_path / "d.sqlite", sweep) as store:
        rows = store.rows()
    assert sorted(r["key"] for r in rows) == sorted(s.key for s in sweep.scenarios)
    assert all(r["metrics"]["twice_gap_mm"] == 2 * r["params"]["gap_mm"] for r in rows)
