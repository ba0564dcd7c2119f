"""Sweeps: scenarios per minute for the shipped gap sweep (planner/sweeps/examples/gap_vs_dose.toml,
2.5 mm grid, 64 scenarios), with 1 and 2 local workers, and the share of the workers' time
spent outside the evaluator (start-up, scheduling, serialisation, database, idle).

Run: python -m pytest benchmarks/test_sweep.py --benchmark-enable --benchmark-columns=min -s
(SPINESIM_SWEEP_BENCH_SCENARIOS=N runs the first N scenarios only.) One round each: a sweep
is minutes long, and its start-up (spawning workers, imports, numba's cache) is part of what
a user waits for; the extra_info splits it out.
"""

import os
from dataclasses import replace
from pathlib import Path

import pytest

from planner.sweeps.execute import run_sweep
from planner.sweeps.spec import load_spec

SPEC = Path(__file__).resolve().parents[1] / "planner" / "sweeps" / "examples" / "gap_vs_dose.toml"


@pytest.mark.parametrize("workers", [1, 2])
def test_gap_sweep(benchmark, tmp_path, workers):
    sweep = load_spec(SPEC)
    limit = int(os.environ.get("SPINESIM_SWEEP_BENCH_SCENARIOS", len(sweep.scenarios)))
    sweep = replace(sweep, scenarios=sweep.scenarios[:limit])
    runs = iter(range(1000))
    summaries = []

    def once():
        summaries.append(run_sweep(sweep, tmp_path / f"run{next(runs)}.sqlite", workers=workers))

    benchmark.pedantic(once, rounds=1, iterations=1)
    summary = summaries[-1]
    assert summary.done == len(sweep.scenarios)
    benchmark.extra_info.update(scenarios=summary.done, per_minute=round(summary.per_minute, 2),
                                outside_share=round(summary.outside_share, 3), startup_s=round(summary.startup_s, 2),
                                compute_s=round(summary.compute_s, 1), database_s=round(summary.database_s, 3))
    print(f"\n{workers} worker(s): {summary.text()}")
