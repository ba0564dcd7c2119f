"""Issue 18: dose and plan results do not depend on the number of threads, so a sweep on a
2-core laptop and on a 64-core node give the same table. A plan runs in two fresh processes
with NUMBA_NUM_THREADS=1 and 2 and must agree bit for bit; the sparse products (the one
reduction whose order followed the thread count) are checked in-process too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest
from scipy import sparse

from kernels.sparse_dose_cpu import default_chunks, dose_from_weights, gradient_to_weights

ROOT = Path(__file__).resolve().parents[2]

# A small plan (5 mm grid, pencil-beam engine, few iterations so that the gradient takes the
# scattered A.T @ g product) and digests of everything it returns that is a number.
PROBE = """
import hashlib, json
import numpy as np
from planner.radiotherapy.plan import Regimen, plan_case

result = plan_case("t10_rcc_escc2", regimen=Regimen(24, 2), grid_mm=(5.0, 5.0, 5.0), engine="pencil",
                   max_iterations=40)

def digest(array):
    return hashlib.sha256(np.ascontiguousarray(np.asarray(array, np.float64)).tobytes()).hexdigest()

print(json.dumps({"dose": digest(result.dose_gy), "weights": digest(result.weights),
                  "achievable_gy": result.achievable_prescription_gy.hex(),
                  "achievable_dose": digest(result.achievable_dose_gy),
                  "constraints": [(c.structure, c.metric, float(c.value_gy).hex()) for c in result.constraints]}))
"""


def _plan_in_a_process(threads: int) -> dict:
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_plan_is_bit_identical_on_one_and_two_threads():
    one, two = _plan_in_a_process(1), _plan_in_a_process(2)
    assert one == two


def _matrix(rows=20000, columns=300, density=0.06, seed=3):
    matrix = sparse.random(rows, columns, density=density, format="csr", dtype=np.float32,
                           random_state=np.random.default_rng(seed))
    matrix.indices = matrix.indices.astype(np.int32)
    matrix.sort_indices()
    return matrix


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs numba with 2 threads or more")
def test_sparse_products_do_not_depend_on_the_thread_count():
    matrix = _matrix()
    assert default_chunks(matrix.nnz) > 1  # several blocks, so the order of their sum matters
    rng = np.random.default_rng(4)
    w, g = rng.uniform(0, 1, matrix.shape[1]), rng.normal(size=matrix.shape[0])
    before = numba.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            numba.set_num_threads(threads)
            results.append((dose_from_weights(matrix, w), gradient_to_weights(matrix, g)))
    finally:
        numba.set_num_threads(before)
    (dose_1, back_1), (dose_2, back_2) = results
    assert np.array_equal(dose_1, dose_2) and np.array_equal(back_1, back_2)


def test_default_chunks_follow_the_matrix_only():
    assert default_chunks(0) == 1 and default_chunks(10) == 1
    assert default_chunks(1 << 20) == 16 and default_chunks(1 << 40) == 64
