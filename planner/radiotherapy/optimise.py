"""Fluence optimisation: L-BFGS-B on non-negative beamlet weights.

The objective is a sum of terms on the dose ``A @ w``; its gradient is ``A.T @ (dF/dd)``. With
``row_scale`` r and ``dose_offset`` c (the correction loop's) the dose is ``r * (A @ w) + c``,
its gradient ``A.T @ (r * dF/dd)`` and the curvature below ``sum_r c_r r_r^2 A_rj^2``.
Stops when the relative decrease of the objective in one iteration falls below ``ftol``
(default 1e-5), or over a window of iterations below a multiple of ``ftol`` (the window rule:
``stall_iterations`` and ``stall_factor`` of objectives.toml [optimiser], read by
:func:`optimiser_settings`), or when the projected gradient falls below ``gtol`` (1e-6), or
after ``max_iterations`` (documented, returned in the result).

What makes it fast on the CPU (benchmarks/README.md, Optimisation; each step measured):

- only the rows a term reads enter the loop: the objective does not depend on the others
  (on the peer benchmark's spine case 1,438 of 11,373 rows, one seventh of the entries);
- those rows are nearly full (98 % there), so they are copied once into dense arrays and both
  products run as unit-stride AXPYs (:func:`kernels.sparse_dose_cpu.dense_matvec`), with the
  usual terms (under/overdose, squared deviation) in one compiled loop; sparser or larger row
  sets keep the CSR kernels (the thresholds: objectives.toml [optimiser]);
- L-BFGS-B works on scaled weights ``x = w / s`` with ``s_j`` the inverse square root of the
  objective's curvature along beamlet j when every penalty is active (``sum_r c_r A_rj^2``,
  ``c_r`` twice the priority x volume weight; normalised to a geometric mean of 1): the
  beamlets' very different reach into the target and the cord no longer set the step sizes
  (a third fewer iterations to the same objective there). The bounds ``w >= 0`` stay
  ``x >= 0``; ``gtol`` applies to the scaled gradient ``s * dF/dw``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.optimize import Bounds, minimize

from kernels import sparse_dose_cpu as kernels
from kernels._dispatch import resolve_backend
from kernels.sparse_dose_cpu import default_chunks, row_subset

from .objectives import Overdose, SquaredDeviation, Term, Underdose
from .protocols import read_table

__all__ = ["OptimisationResult", "OptimiserSettings", "optimise", "optimiser_settings", "reoptimise"]

#: The usual separable terms, evaluated in one compiled loop (exact types: a subclass may
#: change the penalty).
_SEPARABLE = {Underdose: kernels.UNDERDOSE, Overdose: kernels.OVERDOSE, SquaredDeviation: kernels.DEVIATION}


@dataclass(frozen=True)
class OptimiserSettings:
    """The loop's numerical settings (objectives.toml [optimiser], each with its note there)."""

    #: The window rule: stop when the objective fell by less than ``stall_factor`` x ftol
    #: (relative, SciPy's form) over the last ``stall_iterations`` iterations.
    stall_iterations: int
    stall_factor: float
    #: The terms' rows are copied densely when at least this fraction of their entries is
    #: non-zero and both copies take at most ``dense_max_bytes``.
    dense_min_fill: float
    dense_max_bytes: int


#: objectives.toml [optimiser] key -> (type, lowest, highest) accepted.
_SETTING_RANGES = {"stall_iterations": (int, 1, 1000), "stall_factor": (float, 0.0, 1e6),
                   "dense_min_fill": (float, 0.0, 1.0), "dense_max_bytes": (int, 0, 2**40)}


@lru_cache(maxsize=1)
def optimiser_settings() -> OptimiserSettings:
    """The optimiser's window rule and dense-copy thresholds, read once from objectives.toml.

    Returns
    -------
    OptimiserSettings
        objectives.toml [optimiser]: ``stall_iterations``, ``stall_factor``,
        ``dense_min_fill``, ``dense_max_bytes`` (each ``{ value, source, note }``; a missing
        key or a value outside its range is a ValueError naming it).

    Examples
    --------
    >>> settings = optimiser_settings()
    >>> settings.stall_iterations, settings.stall_factor
    (10, 30.0)
    """
    table = read_table("objectives").get("optimiser", {})
    values = {}
    for key, (kind, low, high) in _SETTING_RANGES.items():
        entry = table.get(key)
        value = entry.get("value") if isinstance(entry, dict) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high \
                or (kind is int and value != int(value)):
            raise ValueError(f"objectives.toml [optimiser] {key} = {{ value = ... }} must be "
                             f"{'an integer' if kind is int else 'a number'} in "
                             f"[{low:g}, {high:g}], got {value!r}")
        values[key] = kind(value)
    return OptimiserSettings(**values)


@dataclass(frozen=True, eq=False)
class OptimisationResult:
    """The optimised beamlet weights, the final objective, iterations, and SciPy's verdict."""
    weights: np.ndarray
    objective: float
    iterations: int
    converged: bool
    message: str


def _rows_read(terms, n_rows):
    """The rows the terms read (sorted), the terms moved onto them (row ``rows[i]`` becomes
    ``i``), and each row's curvature weight ``sum 2 x priority x volume weight`` over the terms.
    A term that does not say which rows it reads (not a :class:`Term`) reads all, and the
    curvature weights are then all 1 (plain column norms)."""
    if not all(isinstance(term, Term) for term in terms):
        return np.arange(n_rows), list(terms), np.ones(n_rows)
    for term in terms:
        if term.rows.min() < 0 or term.rows.max() >= n_rows:
            raise ValueError(f"term {term.label!r}: rows must lie in 0..{n_rows - 1}")
    rows = np.unique(np.concatenate([term.rows for term in terms]))
    local = []
    for term in terms:  # the same term on the local rows (a shallow copy: weights shared)
        moved = copy.copy(term)
        object.__setattr__(moved, "rows", np.searchsorted(rows, term.rows))
        local.append(moved)
    curvature_weights = np.zeros(rows.size)
    for term in local:
        curvature_weights += np.bincount(term.rows, weights=2 * term.priority * term.weights, minlength=rows.size)
    return rows, local, curvature_weights


def _column_scale(matrix, rows, curvature_weights):
    """The variable scaling ``s_j = (sum_i c_i A[rows_i, j]^2)^(-1/2)`` (module's note), with a
    geometric mean of 1 over the columns the rows reach; 1 for the columns they do not."""
    curvature = np.zeros(matrix.shape[1])
    kernels.column_curvature(matrix.indptr, matrix.indices, matrix.data, rows, curvature_weights, curvature)
    scale = np.ones(matrix.shape[1])
    positive = curvature > 0
    if positive.any():
        scale[positive] = 1 / np.sqrt(curvature[positive])
        scale[positive] /= np.exp(np.mean(np.log(scale[positive])))
    return scale


class _CpuObjective:
    """Value and gradient on the rows the terms read (see the module's note), in the scaled
    variables ``x = w / scale``."""

    def __init__(self, matrix, terms, *, dose_offset, row_scale=None):
        n_rows, n_columns = matrix.shape
        indptr, indices, data = matrix.indptr, matrix.indices, matrix.data
        rows, local, curvature_weights = _rows_read(terms, n_rows)
        self.n_rows = rows.size
        self.offset = None if dose_offset is None else np.ascontiguousarray(dose_offset[rows], dtype=np.float64)
        # Each read row's dose times its scale (diag(r) A, without a scaled copy of the matrix).
        self.row_scale = None if row_scale is None else np.ascontiguousarray(row_scale[rows], dtype=np.float64)
        if self.row_scale is not None:
            curvature_weights = curvature_weights * self.row_scale ** 2
        self.scale = _column_scale(matrix, rows, curvature_weights)

        entries = int(np.sum(indptr[rows + 1] - indptr[rows]))
        itemsize = np.dtype(data.dtype).itemsize
        settings = optimiser_settings()
        self.dense = entries >= settings.dense_min_fill * rows.size * n_columns and \
            2 * rows.size * n_columns * itemsize <= settings.dense_max_bytes
        if self.dense:
            self.by_row = np.zeros((rows.size, n_columns), data.dtype)
            self.by_column = np.zeros((n_columns, rows.size), data.dtype)
            kernels.dense_rows(indptr, indices, data, rows, self.by_row, self.by_column)
        else:
            # The rows the terms read, in place (a CSR copy of them held up to the matrix again);
            # every row alike: the subset's products are the whole matrix's bit for bit.
            self.matrix = row_subset(matrix, rows)

        separable = [t for t in local if type(t) in _SEPARABLE]
        self.others = [t for t in local if type(t) not in _SEPARABLE]
        if separable:
            self.entry_rows = np.concatenate([t.rows for t in separable])
            self.entry_coefficients = np.concatenate([t.priority * t.weights for t in separable])
            self.entry_levels = np.concatenate([np.full(t.rows.size, float(t.dose_gy)) for t in separable])
            self.entry_kinds = np.concatenate([np.full(t.rows.size, _SEPARABLE[type(t)], np.int8) for t in separable])
        else:
            self.entry_rows = None
        self.dose = np.empty(self.n_rows)
        self.dose_gradient = np.empty(self.n_rows)
        self.gradient = np.empty(n_columns)

    def __call__(self, x):
        w = x * self.scale
        dose = self.dose
        if self.dense:
            kernels.dense_matvec(self.by_column, w, dose)
        else:
            dose = self.matrix.dose(w)
        if self.row_scale is not None:
            dose *= self.row_scale
        if self.offset is not None:
            dose += self.offset
        if self.entry_rows is not None:
            value = kernels.separable_penalties(dose, self.entry_rows, self.entry_coefficients, self.entry_levels,
                                                self.entry_kinds, self.dose_gradient)
        else:
            value = 0.0
            self.dose_gradient[:] = 0.0
        for term in self.others:
            v, g = term.value_and_gradient(dose)
            value += v
            self.dose_gradient += g
        dose_gradient = self.dose_gradient if self.row_scale is None else self.dose_gradient * self.row_scale
        if self.dense:
            kernels.dense_rmatvec(self.by_row, dose_gradient, self.gradient)
            gradient = self.gradient
        else:
            gradient = self.matrix.gradient(dose_gradient)
        return float(value), gradient * self.scale


def optimise(matrix, terms, *, initial_weights=None, max_iterations: int = 500, ftol: float = 1e-5,
             gtol: float = 1e-6, backend: str = "cpu", dose_offset=None, row_scale=None, bounds=None,
             stop=None) -> OptimisationResult:
    """Minimise the terms over beamlet weights >= 0 (L-BFGS-B).

    Parameters
    ----------
    matrix : scipy.sparse.csr_matrix
        Influence matrix (rows x beamlets, Gy per unit beamlet weight; float32 or float64
        values), e.g. :attr:`Influence.matrix <planner.radiotherapy.influence.Influence.matrix>`.
    terms : list of Term
        Objective terms on the rows (:mod:`planner.radiotherapy.objectives`), at least one
        (ValueError otherwise). Any object with ``value_and_gradient(dose)`` works too; then
        every row of the matrix enters the loop (a :class:`Term` says which rows it reads).
    initial_weights : array_like of float, optional
        Warm start (e.g. the previous plan), one finite value >= 0 per column (ValueError
        otherwise); default all ones.
    max_iterations : int, default 500
        Iteration limit, 1..100000 (ValueError otherwise).
    ftol : float, default 1e-5
        Stop when the relative decrease of the objective falls below this in one iteration,
        or below ``stall_factor`` x this over the last ``stall_iterations``
        (:func:`optimiser_settings`).
    gtol : float, default 1e-6
        Stop when the projected gradient (of the scaled weights, see the module's note) falls
        below this.
    backend : str, default "cpu"
        'cpu', 'cuda' or 'auto' (the GPU when one is present): on the GPU the matrix, dose and
        terms stay on the device (:class:`~planner.radiotherapy.device_objective.DeviceObjective`).
    dose_offset : array_like of float, optional
        A fixed dose (Gy) added to every row's ``A @ w`` before the terms see it, one finite
        value per row (ValueError otherwise), e.g. a dose correction from another engine.
    row_scale : array_like of float, optional
        Each row's ``A @ w`` times this factor before the offset (the terms see
        ``row_scale * (A @ w) + dose_offset``), one finite value >= 0 per row (ValueError
        otherwise): a per-row dose correction without a scaled copy of the matrix. CPU only.
    bounds : tuple of array_like, optional
        ``(lower, upper)`` weights, one value per column each, 0 <= lower <= upper (upper may
        be ``inf``; ValueError otherwise), e.g. a trust region around a previous plan; default
        ``(0, inf)``. The warm start is clipped into them.
    stop : callable, optional
        Called with no arguments before every objective evaluation (a line search may take
        several an iteration); when it returns True the loop ends there (e.g. a newer slider
        move cancels a background convergence): the result holds the best weights evaluated
        (the warm start when none was), ``converged`` False and a message that says so.

    Returns
    -------
    OptimisationResult
        Weights, objective value (Gy^2 x priority), iterations, whether SciPy reports
        convergence, and its message.
    """
    if not terms:
        raise ValueError("optimise needs at least one objective term")
    n_rows, n = matrix.shape
    if initial_weights is None:
        w0 = np.ones(n)
    else:
        w0 = np.asarray(initial_weights, float)
        if w0.shape != (n,) or np.any(w0 < 0) or not np.all(np.isfinite(w0)):
            raise ValueError(f"initial_weights must be {n} finite values >= 0")
    if not 1 <= max_iterations <= 100_000:
        raise ValueError(f"max_iterations must be 1..100000, got {max_iterations}")
    if dose_offset is not None:
        dose_offset = np.asarray(dose_offset, float)
        if dose_offset.shape != (n_rows,) or not np.all(np.isfinite(dose_offset)):
            raise ValueError(f"dose_offset must be {n_rows} finite values (Gy), one per matrix row")

    lower, upper = np.zeros(n), np.full(n, np.inf)
    if bounds is not None:
        lower, upper = (np.broadcast_to(np.asarray(b, float), (n,)).copy() for b in bounds)
        if np.any(np.isnan(lower)) or np.any(np.isnan(upper)) or np.any(lower < 0) or np.any(upper < lower) \
                or not np.all(np.isfinite(lower)):
            raise ValueError(f"bounds must be (lower, upper), {n} values each with 0 <= lower <= upper (finite lower)")
        w0 = np.clip(w0, lower, upper)

    if row_scale is not None:
        row_scale = np.asarray(row_scale, float)
        if row_scale.shape != (n_rows,) or not np.all(np.isfinite(row_scale)) or np.any(row_scale < 0):
            raise ValueError(f"row_scale must be {n_rows} finite values >= 0, one per matrix row")

    if resolve_backend(backend) == "cuda":
        given = [name for name, value in (("dose_offset", dose_offset), ("row_scale", row_scale)) if value is not None]
        if given:
            raise ValueError(f"{', '.join(given)}: the GPU objective has no per-row dose offset or scale; "
                             "use backend='cpu'")
        from .device_objective import DeviceObjective

        device = DeviceObjective(matrix, terms)  # uploads once; one beamlet-sized vector each way per call
        rows, _, curvature_weights = _rows_read(terms, n_rows)
        scale = _column_scale(matrix, rows, curvature_weights)

        def fun(x):
            value, gradient = device(x * scale)
            return value, gradient * scale
    else:
        # No transposed copy of the matrix for A.T @ g: its row product streams every entry, while
        # the CSR product skips the rows whose dose gradient is zero - the one-sided terms' rows
        # that are within their level, most of an optimisation's rows (benchmarks/README.md:
        # T10 plan_case 2.4x faster, TG-119 1.75x, and no second matrix in memory).
        fun = _CpuObjective(matrix, terms, dose_offset=dose_offset, row_scale=row_scale)
        scale = fun.scale

    history = []
    settings = optimiser_settings()
    window, factor = settings.stall_iterations, settings.stall_factor

    def stalled(intermediate_result):  # the window rule (module's note), in SciPy's relative form
        history.append(float(intermediate_result.fun))
        if len(history) > window:
            before, now = history[-1 - window], history[-1]
            if before - now <= factor * ftol * max(abs(before), abs(now), 1.0):
                raise StopIteration

    # BLAS on one thread while L-BFGS-B runs: its small vector operations gain nothing from
    # OpenBLAS threads, which on 2 cores fight numba's OpenMP workers (still spinning after
    # each sparse product) - measured 1.6 s -> 0.3 s to convergence on the reference case.
    # A CSR product of one row block (default_chunks: under 2^17 entries) runs on one thread
    # anyway; numba's other workers only wait for it, and on loaded cores that wait costs up to
    # 30 ms a product (measured: 28 iterations of a 40-row problem took 0.94 s at load 3).
    single_block = isinstance(fun, _CpuObjective) and not fun.dense and default_chunks(fun.matrix.nnz) == 1
    if stop is not None:
        fun = _Stoppable(fun, stop)
    with _one_blas_thread(), _numba_threads(1 if single_block else None):
        try:
            result = minimize(fun, w0 / scale, jac=True, method="L-BFGS-B", bounds=Bounds(lower / scale, upper / scale),
                              callback=stalled, options=dict(maxiter=max_iterations, ftol=ftol, gtol=gtol))
        except _Stopped:
            x, value = fun.best if fun.best is not None else (w0 / scale, float("nan"))
            return OptimisationResult(x * scale, value, len(history), False,
                                      f"STOPPED by the caller after {len(history)} iterations")
    converged, message = bool(result.success), str(result.message)
    if result.status == 99:  # SciPy's code for a callback's StopIteration: only the window rule raises it
        converged = True
        message = (f"CONVERGENCE: the objective fell by less than {factor:g} x ftol over the last "
                   f"{window} iterations")
    return OptimisationResult(np.asarray(result.x) * scale, float(result.fun), int(result.nit), converged, message)


class _Stopped(Exception):
    """Raised inside the loop when the caller's ``stop`` says so."""


class _Stoppable:
    """The objective with the caller's stop checked before each evaluation (a line search
    evaluates several times an iteration: this ends a cancelled run within one evaluation),
    keeping the best point evaluated."""

    def __init__(self, fun, stop):
        self.fun, self.stop, self.best = fun, stop, None

    def __call__(self, x):
        if self.stop():
            raise _Stopped
        value, gradient = self.fun(x)
        if self.best is None or value < self.best[1]:
            self.best = (np.array(x, float), float(value))
        return value, gradient


class _numba_threads:
    """numba's thread count for this thread within the block (None: unchanged), restored after."""

    def __init__(self, threads):
        self.threads, self.before = threads, None

    def __enter__(self):
        if self.threads is not None:
            import numba

            self.before = numba.get_num_threads()
            numba.set_num_threads(self.threads)

    def __exit__(self, *exc):
        if self.before is not None:
            import numba

            numba.set_num_threads(self.before)


_CONTROLLER = []


def _one_blas_thread():
    """threadpoolctl's limit to one BLAS thread, with its library scan done once per process
    (a new scan per call costs milliseconds, against a ~50 ms optimisation)."""
    if not _CONTROLLER:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=1, user_api="blas")


def reoptimise(matrix, terms, previous_weights, *, scale: float = 1.0, max_iterations: int = 6,
               backend: str = "cpu") -> OptimisationResult:
    """Quick interactive update after a slider change.

    Warm start from ``previous_weights`` (times ``scale``, e.g. the prescription ratio) and at
    most ``max_iterations`` L-BFGS-B iterations. On the reference spine case
    (benchmarks/test_planning.py: a 24 Gy plan moved to 22, 23, 25, 26, 27 and 28 Gy) the six
    iterations end 0.6% (median) and 1.5% (worst) above the objective a full :func:`optimise`
    from the same warm start reaches (measured with the scaled variables; its time is in
    benchmarks/README.md, Planning); a full :func:`optimise` can follow in the background.

    Parameters
    ----------
    matrix : scipy.sparse.csr_matrix
        Influence matrix (rows x beamlets).
    terms : list of Term
        Objective terms at the new setting.
    previous_weights : array_like of float
        Weights of the previous plan, one finite value >= 0 per column.
    scale : float, default 1.0
        Factor applied to ``previous_weights`` first, > 0 (ValueError otherwise).
    max_iterations : int, default 6
        Iteration limit, 1..100000.
    backend : str, default "cpu"
        'cpu', 'cuda' or 'auto', as for :func:`optimise`.

    Returns
    -------
    OptimisationResult
        The updated weights and the objective they reach.
    """
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    return optimise(matrix, terms, initial_weights=np.asarray(previous_weights, float) * scale,
                    max_iterations=max_iterations, backend=backend)
