"""The optimiser's objective with the matrix, the dose and the terms on the GPU.

:class:`DeviceObjective` uploads the influence matrix, a transposed copy of it (the gradient
``A.T @ g`` becomes a deterministic row product) and the terms once; each evaluation then
moves the beamlet weights down and the objective's value with its beamlet gradient up in one
vector (a few KiB each way): the voxel dose and its gradient stay on the device. L-BFGS-B
itself runs on the host (SciPy), on beamlet-sized vectors.

One exception: a dose-volume term (:class:`~planner.radiotherapy.objectives.DoseVolumeMin`
/ ``DoseVolumeMax``) needs the dose at its volume, a weighted quantile of its rows' doses;
those rows' doses (one structure, tens of KiB) are copied to the host, the quantile is taken
there by the term itself, and the penalised window goes back with the launch. Plain
under/overdose and mean terms copy nothing.

CUDA is imported when an objective is built, never at import: CPU hosts never load it.
"""

from __future__ import annotations

import weakref

import numpy as np

from .objectives import DoseVolumeMax, DoseVolumeMin, MeanDose, Overdose, SquaredDeviation, Underdose

__all__ = ["DeviceObjective"]

# scipy matrix -> (matrix, transposed copy) on the device: a session's slider moves and the
# escalation's probes re-optimise on the same matrix, which is uploaded once. Entries go
# when the host matrix is collected (matrices are never modified in place in the planner).
# (scipy matrices are unhashable: keyed by id, with a weak reference to tell a reused id.)
_UPLOADED = {}


def _on_device(matrix, sparse, transposed_copy):
    entry = _UPLOADED.get(id(matrix))
    if entry is None or entry[0]() is not matrix:
        entry = (weakref.ref(matrix), sparse.device_csr(matrix), sparse.device_csr(transposed_copy(matrix)))
        _UPLOADED[id(matrix)] = entry
        weakref.finalize(matrix, _UPLOADED.pop, id(matrix), None)
    return entry[1], entry[2]


class DeviceObjective:
    """Objective value and beamlet gradient evaluated on the GPU (see the module's note).

    Parameters
    ----------
    matrix : scipy.sparse.csr_matrix
        Influence matrix (rows x beamlets, float32 values, int32 indices).
    terms : list of Term
        Objective terms on the rows: Underdose, Overdose, SquaredDeviation (an underdose and
        an overdose at one level), MeanDose, DoseVolumeMin or DoseVolumeMax (ValueError for any
        other kind).
    threads_per_block : int, default 256
        CUDA block size of every launch.
    threads_per_row : int, default 8
        Threads per matrix row in the sparse products (a power of two dividing the block).
    max_blocks : int, optional
        Upper bound on blocks per launch (the simulator tests keep launches small).
    """

    def __init__(self, matrix, terms, *, threads_per_block: int = 256, threads_per_row: int = 8,
                 max_blocks: int | None = None):
        from numba import cuda

        from kernels import objective_cuda as objective
        from kernels import sparse_dose_cuda as sparse
        from kernels.sparse_dose_cpu import transposed_copy

        if not terms:
            raise ValueError("DeviceObjective needs at least one objective term")
        self._cuda, self._objective, self._sparse = cuda, objective, sparse
        self._launch = dict(threads_per_block=threads_per_block, threads_per_row=threads_per_row, max_blocks=max_blocks)
        self.shape = tuple(matrix.shape)
        self._matrix, self._transposed = _on_device(matrix, sparse, transposed_copy)
        kinds, levels, priorities, rows, weights, owners = [], [], [], [], [], []
        self._volume_terms = []  # (term index, term, device rows)
        # A squared deviation is an underdose plus an overdose at the same level: two kernel terms.
        parts = []
        for term in terms:
            if isinstance(term, SquaredDeviation):
                parts += [(objective.UNDERDOSE, term), (objective.OVERDOSE, term)]
            elif isinstance(term, (DoseVolumeMin, Underdose)):
                parts.append((objective.UNDERDOSE, term))
            elif isinstance(term, (DoseVolumeMax, Overdose)):
                parts.append((objective.OVERDOSE, term))
            elif isinstance(term, MeanDose):
                parts.append((objective.MEAN, term))
            else:
                label = getattr(term, "label", "")
                raise ValueError(f"term {label!r}: {type(term).__name__} has no GPU form; use backend='cpu'")
        for t, (kind, term) in enumerate(parts):
            if np.any(term.rows < 0) or np.any(term.rows >= self.shape[0]):
                raise ValueError(f"term {term.label!r}: rows must lie in 0..{self.shape[0] - 1}")
            kinds.append(kind)
            levels.append(term.dose_gy)
            priorities.append(term.priority)
            rows.append(term.rows)
            weights.append(term.weights)
            owners.append(np.full(term.rows.size, t, np.int32))
            if isinstance(term, (DoseVolumeMin, DoseVolumeMax)):
                self._volume_terms.append((t, term, cuda.to_device(term.rows)))
        self._terms = [term for _, term in parts]
        self._kind = cuda.to_device(np.asarray(kinds, np.int32))
        self._level = cuda.to_device(np.asarray(levels, np.float64))
        self._priority = cuda.to_device(np.asarray(priorities, np.float64))
        self._low = np.full(len(parts), -np.inf)
        self._high = np.full(len(parts), np.inf)
        self._rows = cuda.to_device(np.concatenate(rows))
        self._weights = cuda.to_device(np.concatenate(weights))
        self._owner = cuda.to_device(np.concatenate(owners))
        self._has_mean = objective.MEAN in kinds
        self._dose = cuda.device_array(self.shape[0], np.float64)
        self._dose_gradient = cuda.device_array(self.shape[0], np.float64)
        self._means = cuda.device_array(len(parts), np.float64)
        # One vector comes back per evaluation: the beamlet gradient, then the value.
        self._result = cuda.device_array(self.shape[1] + 1, np.float64)

    def _blocks(self, n):
        from kernels._cuda import blocks_for

        return blocks_for(n, self._launch["threads_per_block"], self._launch["max_blocks"])

    def value_and_gradient(self, weights):
        """The objective's value and its gradient with respect to the beamlet weights.

        Parameters
        ----------
        weights : numpy.ndarray
            One weight per matrix column (float).

        Returns
        -------
        value : float
            Sum of the terms' values (Gy^2 x priority).
        gradient : numpy.ndarray
            d(value)/d(weights), float64, one per column.
        """
        objective, sparse, cuda = self._objective, self._sparse, self._cuda
        tpb = self._launch["threads_per_block"]
        products = dict(threads_per_block=tpb, threads_per_row=self._launch["threads_per_row"],
                        max_blocks=self._launch["max_blocks"])
        sparse.dose_from_weights(self._matrix, np.asarray(weights, np.float64), out=self._dose, **products)
        for t, term, rows in self._volume_terms:
            local = cuda.device_array(rows.shape[0], np.float64)
            objective.gather_kernel[self._blocks(rows.shape[0]), tpb](self._dose, rows, local)
            local = local.copy_to_host()
            at_volume = term._dose_at_volume(local)
            if isinstance(term, DoseVolumeMax):
                self._low[t], self._high[t] = -np.inf, at_volume
            else:
                self._low[t], self._high[t] = at_volume, np.inf
        n_entries = self._rows.shape[0]
        objective.fill_kernel[self._blocks(self.shape[0]), tpb](self._dose_gradient, 0.0)
        objective.fill_kernel[self._blocks(self.shape[1] + 1), tpb](self._result, 0.0)
        if self._has_mean:
            objective.fill_kernel[self._blocks(len(self._terms)), tpb](self._means, 0.0)
            objective.term_means_kernel[self._blocks(n_entries), tpb](self._dose, self._rows, self._weights, self._owner,
                                                                      self._kind, self._means)
        value = self._result[self.shape[1]:]
        objective.penalty_kernel[self._blocks(n_entries), tpb](
            self._dose, self._rows, self._weights, self._owner, self._kind, self._level, self._priority,
            cuda.to_device(self._low), cuda.to_device(self._high), self._means, value, self._dose_gradient)
        sparse.dose_from_weights(self._transposed, self._dose_gradient, out=self._result[:self.shape[1]], **products)
        result = self._result.copy_to_host()
        return float(result[-1]), result[:-1]

    def __call__(self, weights):
        return self.value_and_gradient(weights)
