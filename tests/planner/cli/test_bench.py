"""`spinesim bench`: flags refused before any work, a (coarsened) CPU run whose JSON holds the
host facts and every figure, and `bench compare` on two files."""

import copy
import json

import pytest

from planner.cli.commands import main


@pytest.mark.parametrize("argv, message", [
    (["--grid", "3"], "--grid must be 2.5 or 1.25"),
    (["--beams", "5"], "--beams must be in 7..13"),
    (["--repeats", "0"], "--repeats must be in 1..50"),
    (["--n-azimuth", "2"], "--n-azimuth must be >= 3"),
    (["--slider-moves", "0"], "--slider-moves must be in 1..200"),
    (["compare", "only-one.json"], "`compare A.json B.json`"),
    (["--json", "/no/such/folder/out.json"], "does not exist"),
])
def test_bad_flags_are_refused_before_any_work(argv, message, capsys):
    assert main(["bench", *argv]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_cpu_run_writes_comparable_json(tmp_path, monkeypatch, capsys):
    from planner.cli import bench_run

    import numba

    # The reference case on 5 mm voxels, 7 beams, 3 cone azimuths: the same code path, small.
    monkeypatch.setitem(bench_run.GRIDS_MM, 2.5, (5.0, 5.0, 5.0))
    out = tmp_path / "a.json"
    # One numba thread: on CI's shared cores the parallel kernels' barriers made this run 3x
    # slower (measured 38 s against 13 s at load average 10); the figures are not used here.
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        assert main(["bench", "--backend", "cpu", "--beams", "7", "--n-azimuth", "3", "--repeats", "1",
                     "--slider-moves", "2", "--json", str(out)]) == 0
    finally:
        numba.set_num_threads(threads)
    printed = capsys.readouterr().out
    assert "not for clinical use" in printed and "influence_build" in printed
    result = json.loads(out.read_text())
    host = result["host"]
    assert host["cpu_cores"] >= 1 and host["cpu_model"] and host["memory_bytes"] > 0
    assert host["versions"]["numpy"] and host["versions"]["numba"] and host["numba_threads"] == 1
    assert host["gpu"] is None or "gpu_name" in host["gpu"]  # filled on a GPU host, even with --backend cpu
    figures = result["results"]["cpu"]
    for name in ("influence_build", "optimisation", "final_dose", "slider", "matvec", "rmatvec", "rmatvec_transposed"):
        assert 0 < figures[name]["best_s"] <= figures[name]["median_s"], name
    assert figures["stream"]["triad_gb_s"] > 0 and figures["stream"]["read_gb_s"] > 0
    assert figures["matvec"]["bytes_moved"] == 8 * figures["influence_build"]["nnz"] + 16 * figures["influence_build"]["rows"]
    assert figures["optimisation"]["iterations"] > 1 and figures["final_dose"]["max_gy"] > 0
    assert result["settings"]["beams"] == 7 and result["settings"]["n_azimuth"] == 3

    # Another "host" twice as fast, with a GPU: compare prints the ratios and the GPU speed-ups.
    faster = copy.deepcopy(result)
    faster["host"]["cpu_model"] = "another CPU"
    for figure in faster["results"]["cpu"].values():
        for key in ("best_s", "median_s"):
            if key in figure:
                figure[key] /= 2
    faster["results"]["cuda"] = copy.deepcopy(faster["results"]["cpu"])
    faster["results"]["cuda"]["final_dose"]["best_s"] /= 25
    other = tmp_path / "b.json"
    other.write_text(json.dumps(faster))
    assert main(["bench", "compare", str(out), str(other)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("final_dose") and line.split()[-1] == "2.00" for line in lines)
    assert any("final_dose" in line and "GPU over CPU: 25.0x" in line for line in lines)
    assert any(line.startswith("B's GPU over A's CPU final_dose") and line.endswith(" 50.0x") for line in lines)


def test_compare_refuses_other_json(tmp_path, capsys):
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    assert main(["bench", "compare", str(bad), str(bad)]) == 2
    assert "is not a spinesim bench JSON file" in capsys.readouterr().err


def test_agreement_of_the_twins_is_judged_with_the_stated_tolerances():
    from types import SimpleNamespace

    import numpy as np
    import scipy.sparse as sparse

    from planner.cli.bench_run import agreement

    matrix = sparse.csr_matrix(np.array([[1.0, 0.0], [0.5, 2.0]], np.float32))
    dose = np.array([1.0, 3.0])
    same = agreement((matrix, SimpleNamespace(objective=4.0), dose), (matrix, SimpleNamespace(objective=4.0), dose))
    assert same["all_ok"] and same["influence_max_difference"] == 0.0
    moved = agreement((matrix, SimpleNamespace(objective=4.0), dose),
                      (matrix * 1.01, SimpleNamespace(objective=4.0), dose + 1e-6))
    assert not moved["influence_ok"] and not moved["final_dose_ok"] and not moved["all_ok"]
