"""The CUDA twin tests: collected only in their own pytest process.

Run them with numba's simulator (no GPU needed; the variable must be set before numba is
imported, hence a separate process)::

    NUMBA_ENABLE_CUDASIM=1 python -m pytest -m cuda tests/kernels/cuda

and on a GPU host, on the hardware (plus the compile-only PTX check)::

    python -m pytest -m cuda tests/kernels/cuda

The main ``python -m pytest`` run never collects this folder (so it never imports numba-cuda
in simulator mode): it is collected only with the simulator on or with a marker expression
that selects ``cuda``.
"""

import os

import pytest

# Launch shapes of the tests: few threads per block and few blocks, so that several blocks
# run (and grid-stride loops take several passes) and the simulator (~2-4k threads/s) stays fast.
SMALL = dict(threads_per_block=8, max_blocks=3)


def _selected(config) -> bool:
    expression = (config.getoption("markexpr", "") or "").replace(" ", "")
    return "cuda" in expression and "notcuda" not in expression


def pytest_ignore_collect(collection_path, config):
    if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0") or _selected(config):
        return None
    return True


@pytest.fixture(autouse=True)
def _needs_cuda(request):
    """Twin tests need the simulator or a real GPU; the PTX check needs neither (it skips itself)."""
    if request.node.module.__name__.endswith("test_ptx"):
        return
    from kernels._dispatch import cuda_available, cuda_simulated

    if not (cuda_simulated() or cuda_available()):
        pytest.skip("no NVIDIA GPU and NUMBA_ENABLE_CUDASIM is not set")
    # On hardware numba-cuda warns about the deliberately small launches ("Grid size 3 will
    # likely result in GPU under-utilization"); its warning class is numba-cuda's own, not the
    # numba.core one the project's filterwarnings ignores, so pytest's "error" would fail them.
    import warnings

    warnings.filterwarnings("ignore", message="Grid size", category=Warning)
