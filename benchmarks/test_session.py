"""Interactive session on the reference spine case (T10, 24 Gy/2, HyTEC, 2.5 mm): slider
updates with the influence matrix cached.

Run: python -m pytest benchmarks/test_session.py --benchmark-enable --benchmark-columns=min,median,max
"""

import numpy as np
import pytest

from planner.radiotherapy.plan import Regimen
from planner.radiotherapy.session import Session


@pytest.fixture(scope="module")
def session():
    session = Session("t10_rcc_escc2", regimen=Regimen(24.0, 2))
    for gap in (1.0, 2.0, 3.0, 0.0):  # first visits build the operated scenes and their rows
        session.set_gap(gap)
    return session


def test_prescription_slider(benchmark, session):
    values = iter(np.tile([22.0, 26.0, 28.0, 25.0, 27.0, 24.0], 10))
    benchmark.pedantic(lambda: session.set_prescription(float(next(values))), rounds=60, iterations=1)
    benchmark.extra_info["p95_s"] = float(np.percentile(benchmark.stats.stats.data, 95))


def test_gap_slider(benchmark, session):
    values = iter(np.tile([1.0, 2.0, 3.0, 0.0, 2.0, 1.0], 10))
    benchmark.pedantic(lambda: session.set_gap(float(next(values))), rounds=60, iterations=1)
    benchmark.extra_info["p95_s"] = float(np.percentile(benchmark.stats.stats.data, 95))
