"""Peer benchmark: spinesim against pyRadPlan on the same spine phantom (issue 13).

Skipped unless pyRadPlan is importable. pyRadPlan pins numpy 2.3, so it lives in its own
environment, never in the project's dev extra or CI (see benchmarks/README.md)::

    python -m venv /work/peer-venv
    /work/peer-venv/bin/pip install 'pyRadPlan' 'pydantic<2.14' pytest pytest-benchmark
    /work/peer-venv/bin/pip install -e .
    NUMBA_NUM_THREADS=2 /work/peer-venv/bin/python -m pytest benchmarks/test_peer_pyradplan.py --benchmark-enable -s

One round (~5-10 min on 2 cores): both tools plan in their own processes; the figures are
printed and kept in the benchmark's extra_info. The same run as a script, with its table:
``benchmarks/peer_pyradplan.py``.
"""

import warnings

import numpy as np
import pytest

with warnings.catch_warnings():  # pyRadPlan's dependencies warn at import; pytest makes warnings errors
    warnings.simplefilter("ignore")
    pytest.importorskip("pyRadPlan", reason="peer benchmark: pyRadPlan is not installed (it pins numpy 2.3: install "
                                            "'pyRadPlan' 'pydantic<2.14' in its own venv, see benchmarks/README.md)")

from benchmarks.peer_pyradplan import PRESCRIPTION_GY, REACH, format_report, run_benchmark  # noqa: E402


@pytest.mark.slow
def test_peer_pyradplan_spine_phantom(benchmark, tmp_path):
    result = benchmark.pedantic(run_benchmark, kwargs={"spacing_mm": 2.5, "workdir": tmp_path}, rounds=1, iterations=1)
    print()
    print(format_report(result))
    benchmark.extra_info.update(ratios=result["ratios"], reach=REACH, peak_rss_mib=result["peak_rss_mib"],
                                pyradplan_s=result["pyradplan"]["times"], spinesim_s=result["spinesim"]["times"],
                                quality=result["spinesim"]["quality"], load_average=result["load_average"])
    ours = result["spinesim"]
    # Same problem on both sides: the rows plan_scene builds are the rows handed to pyRadPlan,
    # and every beamlet pyRadPlan placed is one spinesim planned on.
    assert ours["plan_rows_match"]
    assert ours["n_beamlets"] == result["pyradplan"]["n_beamlets"]
    assert result["pyradplan"]["beamlets_per_ray"] == [1]
    # Both plans are plans: the PTV is dosed near the prescription by each tool's own dose, and
    # spinesim's final dose keeps the cord within its limit.
    quality = ours["quality"]
    assert quality["spinesim_plan"]["cord_dmax_gy"] <= 14.0 * (1 + 1e-6)
    for name in ("spinesim_plan", "pyradplan_own"):
        assert 0.5 * PRESCRIPTION_GY < quality[name]["ptv_d95_gy"] < 1.2 * PRESCRIPTION_GY, name
    assert all(np.isfinite(v) and v > 0 for v in result["ratios"].values())
