"""Compile-only check: every CUDA kernel compiles to PTX for compute capability 9.0 (Hopper).

The simulator runs plain Python and accepts code a real GPU rejects (unsupported NumPy calls,
type unification failures, dynamic allocation); compiling each kernel with the real CUDA
target, with no GPU present, catches those. Needs numba-cuda with NVVM (``numba-cuda[cu13]``)
and a process WITHOUT ``NUMBA_ENABLE_CUDASIM`` (``.ci/run`` runs it after the simulator run).
"""

import os

import pytest

pytestmark = pytest.mark.cuda

if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"):
    pytest.skip("compile_ptx needs the real CUDA target: run without NUMBA_ENABLE_CUDASIM", allow_module_level=True)

F8_1, F8_2, F8_3 = "float64[::1]", "float64[:, ::1]", "float64[:, :, ::1]"
I8_1, I4_1 = "int64[::1]", "int32[::1]"

KERNELS = {
    "raytrace_cuda.path_integrals_kernel": f"void({F8_3}, {F8_1}, {F8_1}, {F8_2}, {F8_2}, {F8_1})",
    "raytrace_cuda.path_integrals_to_voxels_kernel": f"void({F8_3}, {F8_1}, {F8_1}, {F8_1}, {I8_1}, {F8_1})",
    "raytrace_cuda.depths_and_upstream_densities_to_voxels_kernel":
        f"void({F8_3}, {F8_1}, {F8_1}, {F8_1}, {I8_1}, float64, {F8_1}, {F8_1})",
    "terma_cuda.terma_kernel":
        f"void(float64[:, :, :, ::1], {', '.join([F8_1] * 6)}, float64, {F8_2}, {', '.join([F8_1] * 4)}, {F8_2}, {F8_2}, "
        f"int64, {F8_3}, {F8_3}, boolean)",
    "pencil_beam_cuda.count_entries_kernel":
        f"void({', '.join([F8_1] * 5)}, int32[:, ::1], {F8_1}, float64, {F8_3}, {F8_3}, {F8_3}, {F8_2}, float64, "
        f"float64, float64, {I8_1})",
    "pencil_beam_cuda.fill_entries_kernel":
        f"void({', '.join([F8_1] * 5)}, int32[:, ::1], {F8_1}, float64, {F8_3}, {F8_3}, {F8_3}, {F8_2}, float64, "
        f"float64, float64, {I8_1}, int64, {I4_1}, float32[::1])",
    "superposition_cuda.one_direction_kernel":
        f"void(float64[:, :, :, ::1], uint8[:, :, ::1], {F8_3}, int64, int64, int64, int64, int64[:, ::1], int64, int64, "
        f"int64, int64, float64, {F8_2}, {F8_1}, {F8_3})",
    "superposition_cuda.releasing_kernel": "void(float64[:, :, :, ::1], uint8[:, :, ::1])",
    "sparse_dose_cuda.csr_matvec_kernel": f"void({I8_1}, {I4_1}, float32[::1], {F8_1}, {F8_1}, int64)",
    "sparse_dose_cuda.csr_rmatvec_kernel": f"void({I8_1}, {I4_1}, float32[::1], {F8_1}, {F8_1}, int64)",
    "sparse_dose_cuda.csr_rmatvec_global_kernel": f"void({I8_1}, {I4_1}, float32[::1], {F8_1}, {F8_1}, int64)",
    "sparse_dose_cuda.stream_triad_kernel": f"void({F8_1}, {F8_1}, {F8_1}, float64)",
    "objective_cuda.fill_kernel": f"void({F8_1}, float64)",
    "objective_cuda.gather_kernel": f"void({F8_1}, {I8_1}, {F8_1})",
    "objective_cuda.term_means_kernel": f"void({F8_1}, {I8_1}, {F8_1}, {I4_1}, {I4_1}, {F8_1})",
    "objective_cuda.penalty_kernel": f"void({F8_1}, {I8_1}, {F8_1}, {I4_1}, {I4_1}, {', '.join([F8_1] * 7)})",
}


def test_every_kernel_module_is_listed():
    """A new kernel in a *_cuda.py module must be added to KERNELS (so it is compiled here)."""
    import importlib

    from kernels._dispatch import ALGORITHMS

    found = set()
    for module_name in [f"{a}_cuda" for a in ALGORITHMS] + ["objective_cuda"]:
        module = importlib.import_module(f"kernels.{module_name}")
        found |= {f"{module_name}.{name}" for name in module.__all__ if name.endswith("_kernel")}
    assert found == set(KERNELS)


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_kernel_compiles_for_hopper(name, monkeypatch):
    import importlib
    from types import SimpleNamespace

    pytest.importorskip("numba.cuda")
    from numba.cuda import compile_ptx, dispatcher

    # A kernel that calls a device function compiles it for the *current* device's compute
    # capability, which needs a driver; with no GPU, say the current device is a Hopper.
    from kernels._dispatch import cuda_available

    if not cuda_available():
        monkeypatch.setattr(dispatcher, "get_current_device", lambda: SimpleNamespace(compute_capability=(9, 0)))

    module_name, kernel_name = name.split(".")
    kernel = getattr(importlib.import_module(f"kernels.{module_name}"), kernel_name)
    try:
        ptx, _ = compile_ptx(kernel.py_func, KERNELS[name], cc=(9, 0))
    except Exception as error:  # NVVM missing is a setup problem, reported as such
        if "NVVM" in str(error) and "not found" in str(error).lower():
            pytest.skip(f"NVVM not installed (pip install 'numba-cuda[cu13]'): {error}")
        raise
    assert ".target sm_90" in ptx
    assert ".entry" in ptx
