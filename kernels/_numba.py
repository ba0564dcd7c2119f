"""The one place for numba options used by every kernel.

Tunables (threads per block, tile sizes) are *arguments* of the kernels, never globals:
numba's disk cache freezes globals at compile time.
"""

from __future__ import annotations

import numba

#: Options for CPU kernels: cached to disk (next to the source, or $NUMBA_CACHE_DIR),
#: no fastmath (reproducible sums; kernels are compared to NumPy references), parallel.
CPU = dict(cache=True, nogil=True, fastmath=False)
CPU_PARALLEL = dict(CPU, parallel=True)

prange = numba.prange

