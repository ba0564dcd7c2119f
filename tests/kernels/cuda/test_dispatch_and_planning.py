"""Backend selection under the simulator, and the planning API on the device (tiny inputs)."""

import numpy as np
import pytest

from tests.kernels.cuda.conftest import SMALL  # noqa: F401  (documents the launch sizes used here)

pytestmark = pytest.mark.cuda


def test_auto_stays_on_the_cpu_under_the_simulator():
    from kernels._dispatch import cuda_simulated, resolve_backend, twin

    if not cuda_simulated():
        pytest.skip("simulator-only: on a GPU host 'auto' picks the GPU")
    assert resolve_backend("auto") == "cpu"
    assert resolve_backend("cuda") == "cuda"
    assert twin("sparse_dose", "cuda").__name__ == "kernels.sparse_dose_cuda"
    assert twin("superposition", "auto").__name__ == "kernels.superposition_cpu"


def test_influence_build_backends_agree(rng):
    """build_influence on the GPU twins equals the CPU build on a small random region."""
    from planner.radiotherapy.beams import make_beams
    from planner.radiotherapy.influence import build_influence, dose_region
    from tests.conftest import case_scene

    scene = case_scene("t10_rcc_escc2", spacing=(2.5, 2.5, 2.5))
    points = scene.grid.index_to_mm(np.argwhere(scene.structure("gtv").full() > 0.5))
    beams = make_beams(points, gantry_deg=[180.0, 220.0], beamlet_mm=5.0)
    region = dose_region(scene, "gtv", margin_mm=5.0)
    roi = np.sort(rng.choice(region, 60, replace=False))
    cpu = build_influence(scene, beams, roi=roi, backend="cpu").matrix
    gpu = build_influence(scene, beams, roi=roi, backend="cuda").matrix
    assert cpu.nnz > 100
    cutoff = 1e-3 * cpu.max()  # the relative cut-off, in absolute terms (upper bound)
    assert np.allclose(gpu.toarray(), cpu.toarray(), rtol=1e-6, atol=cutoff)
    assert abs(gpu.nnz - cpu.nnz) <= max(1, cpu.nnz // 1000)
