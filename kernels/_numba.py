"""The one place for numba options used by every kernel.

Tunables (threads per block, tile sizes) are *arguments* of the kernels, never globals:
numba's disk cache freezes globals at compile time.
"""

from __future__ import annotations

import os

import numba

#: Options for CPU kernels: cached to disk (next to the source, or $NUMBA_CACHE_DIR),
#: no fastmath (reproducible sums; kernels are compared to NumPy references), parallel.
CPU = dict(cache=True, nogil=True, fastmath=False)
CPU_PARALLEL = dict(CPU, parallel=True)

prange = numba.prange


def threads() -> int:
    """Worker threads numba uses (NUMBA_NUM_THREADS, else the machine's cores)."""
    return int(os.environ.get("NUMBA_NUM_THREADS", numba.config.NUMBA_NUM_THREADS))
