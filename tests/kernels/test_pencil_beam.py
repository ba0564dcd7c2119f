import numpy as np

from kernels.pencil_beam_cpu import count_entries, fill_entries
from tests import naive


def test_influence_matches_dense_reference(rng):
    table = rng.uniform(0, 1, (6, 9, 9))
    depth_step, lateral_step = 2.5, 1.5
    pitch = 5.0
    grid_index = -np.ones((3, 4), np.int32)
    chosen = rng.choice(12, 8, replace=False)
    grid_index.ravel()[chosen] = np.arange(8, dtype=np.int32)
    origin = np.array([-5.0, -7.5])  # (v, u) of pixel (0, 0)
    rows, cols = np.nonzero(grid_index >= 0)
    beamlets = np.zeros((8, 2))
    beamlets[grid_index[rows, cols]] = np.stack([origin[1] + cols * pitch, origin[0] + rows * pitch], axis=1)
    n = 40
    a, b = rng.uniform(-15, 15, n), rng.uniform(-12, 12, n)
    depth, scale = rng.uniform(-2, 20, n), rng.uniform(0.5, 2, n)
    reach = 4 * lateral_step
    cutoff = 0.2
    args = (a, b, depth, scale, grid_index, origin, pitch, table, depth_step, lateral_step, reach, cutoff)
    counts = np.zeros(n, np.int64)
    count_entries(*args, counts)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    indices, data = np.empty(indptr[-1], np.int32), np.empty(indptr[-1], np.float32)
    fill_entries(*args, indptr, indices, data)
    fast = np.zeros((n, 8))
    for row in range(n):
        fast[row, indices[indptr[row]:indptr[row + 1]]] = data[indptr[row]:indptr[row + 1]]
    slow = naive.pencil_influence(a, b, depth, scale, beamlets, table, depth_step, lateral_step, cutoff)
    assert np.allclose(fast, slow, rtol=1e-5, atol=1e-6)
