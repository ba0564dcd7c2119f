"""Backend selection: ``backend="auto" | "cpu" | "cuda"`` for every kernel entry point.

``auto`` runs the CUDA twins (``<algo>_cuda.py``) only where numba-cuda sees a real NVIDIA GPU;
numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, for tests) never counts as one, so ``auto``
stays on the CPU there. ``cuda`` runs the twins on a real GPU or on the simulator, and is
refused with the reason (no GPU, numba-cuda missing) before any work, never deep inside numba.
"""

from __future__ import annotations

import functools
import os

__all__ = ["resolve_backend", "BACKENDS", "cuda_available", "cuda_simulated", "cuda_host_facts", "twin", "ALGORITHMS"]

BACKENDS = ("auto", "cpu", "cuda")
#: Kernels with a CPU and a CUDA twin: ``kernels/<algo>_cpu.py`` and ``kernels/<algo>_cuda.py``.
ALGORITHMS = ("raytrace", "terma", "pencil_beam", "superposition", "sparse_dose")


def cuda_simulated() -> bool:
    """True when numba's CUDA simulator is switched on (``NUMBA_ENABLE_CUDASIM=1``).

    Examples
    --------
    >>> isinstance(cuda_simulated(), bool)
    True
    """
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


@functools.lru_cache(maxsize=None)
def _cuda_importable() -> bool:
    try:
        from numba import cuda

        return bool(cuda.is_available())
    except Exception:  # numba-cuda missing or the driver unusable: no GPU for us
        return False


def cuda_available() -> bool:
    """True if numba-cuda is installed and sees a real NVIDIA GPU (never raises; the simulator
    does not count). The answer is cached for the process."""
    return not cuda_simulated() and _cuda_importable()


def cuda_host_facts() -> dict:
    """GPU name, compute capability, memory and driver of device 0, or ``{}`` without a GPU."""
    if not cuda_available():
        return {}
    from numba import cuda

    device = cuda.get_current_device()
    free, total = cuda.current_context().get_memory_info()
    facts = dict(gpu_name=device.name.decode() if isinstance(device.name, bytes) else str(device.name),
                 compute_capability=".".join(map(str, device.compute_capability)), gpu_memory_bytes=int(total),
                 multiprocessors=int(device.MULTIPROCESSOR_COUNT))
    try:
        from numba.cuda.cudadrv import driver

        facts["cuda_driver_api"] = ".".join(map(str, driver.get_version()))
    except Exception:  # another numba-cuda layout: the release below and the name suffice
        facts["cuda_driver_api"] = None
    facts["driver_version"] = _nvidia_smi_driver()
    return facts


def _nvidia_smi_driver():
    """The NVIDIA driver release (e.g. '580.159.04') from nvidia-smi, or 'unknown'."""
    import subprocess

    try:
        found = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                               capture_output=True, text=True, timeout=20, check=True)
        return found.stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


def resolve_backend(backend: str) -> str:
    """The backend to run: 'cuda' or 'cpu'.

    'auto' gives 'cuda' on a host with a real GPU, else 'cpu'; 'cuda' needs a GPU or the
    simulator (RuntimeError with the reason otherwise).

    Examples
    --------
    >>> resolve_backend("cpu")
    'cpu'
    >>> resolve_backend("auto") in ("cpu", "cuda")
    True
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "cpu":
        return "cpu"
    if backend == "auto":
        return "cuda" if cuda_available() else "cpu"
    if cuda_simulated() or cuda_available():
        return "cuda"
    raise RuntimeError("backend 'cuda': the CUDA twins of the dose kernels need an NVIDIA GPU and numba-cuda "
                       "(pip install 'spinesim[gpu]'); this machine has no usable GPU: use backend='cpu' or 'auto'")


def twin(algorithm: str, backend: str):
    """The kernel module of ``algorithm`` for ``backend`` (resolved first): e.g.
    ``twin("sparse_dose", "cpu")`` is :mod:`kernels.sparse_dose_cpu`. The CUDA twins are
    imported only here, so a CPU run never loads numba-cuda.

    Examples
    --------
    >>> twin("raytrace", "cpu").__name__
    'kernels.raytrace_cpu'
    """
    import importlib

    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}")
    return importlib.import_module(f"kernels.{algorithm}_{resolve_backend(backend)}")
