"""Backend selection: ``backend="auto" | "cpu" | "cuda"`` for every kernel entry point.

CUDA twins of the kernels are not written yet: asking for ``"cuda"`` fails with a message
saying so (and whether this machine could run them), never deep inside numba.
"""

from __future__ import annotations

__all__ = ["resolve_backend", "BACKENDS", "cuda_available"]

BACKENDS = ("auto", "cpu", "cuda")


def cuda_available() -> bool:
    """True if numba-cuda is installed and sees an NVIDIA GPU (never raises)."""
    try:
        from numba import cuda

        return bool(cuda.is_available())
    except Exception:  # numba-cuda missing or the driver unusable: no GPU for us
        return False


def resolve_backend(backend: str) -> str:
    """The backend to run: 'cpu' for 'auto' and 'cpu'; 'cuda' is refused with a clear reason.

    Examples
    --------
    >>> resolve_backend("auto")
    'cpu'
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "cuda":
        where = "this machine has an NVIDIA GPU" if cuda_available() else \
            "this machine has no usable NVIDIA GPU or numba-cuda (pip install 'spinesim[gpu]')"
        raise RuntimeError(f"backend 'cuda': the CUDA twins of the dose kernels are not written yet ({where}); "
                           "use backend='cpu' or 'auto'")
    return "cpu"
