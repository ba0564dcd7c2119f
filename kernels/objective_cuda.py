"""Piecewise-quadratic dose penalties on the GPU: value and gradient with respect to the dose.

Arrays in, arrays out, so that an optimiser keeps the dose on the device. Every term ``t`` is
a list of entries (row, volume weight) and a kind:

- 0 underdose: ``p * sum w (D - d)_+^2`` over rows whose dose lies in ``[low, high]``;
- 1 overdose: ``p * sum w (d - D)_+^2`` over rows whose dose lies in ``[low, high]``;
- 2 mean: ``p * (sum w d - D)_+^2`` (the weighted mean first, in a separate launch).

The window ``[low, high]`` is (-inf, inf) for plain terms; a dose-volume term's penalised set
(Wu and Mohan 2000) is the window its caller computes from the dose at the term's volume.
Sums use float64 atomics (value: one atomic per thread; gradient: per entry, rows repeat
across terms), so their order, and the last bits, vary run to run. There is no CPU twin in
``kernels``: the reference is :mod:`planner.radiotherapy.objectives` (NumPy), which the tests
compare against.
"""

from __future__ import annotations

from numba import cuda

from ._cuda import CUDA

__all__ = ["UNDERDOSE", "OVERDOSE", "MEAN", "term_means_kernel", "penalty_kernel", "gather_kernel", "fill_kernel"]

UNDERDOSE = 0
OVERDOSE = 1
MEAN = 2


@cuda.jit(**CUDA)
def fill_kernel(out, value):
    """out[:] = value."""
    for n in range(cuda.grid(1), out.shape[0], cuda.gridsize(1)):
        out[n] = value


@cuda.jit(**CUDA)
def gather_kernel(values, rows, out):
    """out[n] = values[rows[n]]."""
    for n in range(cuda.grid(1), rows.shape[0], cuda.gridsize(1)):
        out[n] = values[rows[n]]


@cuda.jit(**CUDA)
def term_means_kernel(dose, entry_rows, entry_weights, entry_term, term_kind, means):
    """means[t] += w * dose[row] for the entries of mean terms (``means`` zeroed first)."""
    for e in range(cuda.grid(1), entry_rows.shape[0], cuda.gridsize(1)):
        t = entry_term[e]
        if term_kind[t] == MEAN:
            cuda.atomic.add(means, t, entry_weights[e] * dose[entry_rows[e]])


@cuda.jit(**CUDA)
def penalty_kernel(dose, entry_rows, entry_weights, entry_term, term_kind, term_dose, term_priority, term_low,
                   term_high, means, value, gradient):
    """value[0] += the terms' values; gradient[row] += d(value)/d(dose[row]) (both zeroed first)."""
    local = 0.0
    for e in range(cuda.grid(1), entry_rows.shape[0], cuda.gridsize(1)):
        t = entry_term[e]
        row = entry_rows[e]
        w = entry_weights[e]
        p = term_priority[t]
        kind = term_kind[t]
        d = dose[row]
        if kind == MEAN:
            x = max(means[t] - term_dose[t], 0.0)
            local += p * w * x * x  # the weights of a term sum to 1: sum_e p w x^2 = p x^2
            if x > 0.0:
                cuda.atomic.add(gradient, row, 2.0 * p * x * w)
            continue
        if d < term_low[t] or d > term_high[t]:
            continue
        if kind == OVERDOSE:
            x = max(d - term_dose[t], 0.0)
            sign = 2.0
        else:
            x = max(term_dose[t] - d, 0.0)
            sign = -2.0
        if x > 0.0:
            local += p * w * x * x
            cuda.atomic.add(gradient, row, sign * p * w * x)
    if local != 0.0:  # NaN too: a NaN dose must reach the optimiser
        cuda.atomic.add(value, 0, local)
