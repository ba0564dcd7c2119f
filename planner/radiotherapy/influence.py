"""The one adapter between scenes and dose kernels: influence matrix and final dose.

``build_influence`` runs the pencil-beam engine: a voxels x beamlets CSR matrix (float32
values, int32 indices) in Gy per unit beamlet weight, restricted to a dose region of
interest, with entries below ``cutoff`` times the beamlet kernel's maximum dropped. Its
memory is counted exactly before anything is allocated and refused above a budget.

``final_dose`` runs the collapsed-cone superposition engine on the optimised fluence.

Unit beamlet weight = the fluence that gives 1 Gy at dmax on the axis of a 10 x 10 cm field
at SSD 100 cm in water (``kernels/data/beam_6mv.toml``, written by ``kernels.commission``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sparse

from kernels._dispatch import twin
from kernels.beam_model import load_beam_model
from kernels.engine import superposition_dose
from kernels.pencil_kernel import beamlet_table
from scenes.scene import Scene

from .beams import BeamSet

__all__ = ["kept_energy_of", "cutoff_for_kept_energy", "Influence", "InfluenceTooLarge", "build_influence", "final_dose", "dose_region", "influence_memory_bytes",
           "fluence_per_unit_weight"]


class InfluenceTooLarge(MemoryError):
    """The influence matrix would exceed the memory budget."""


@dataclass(frozen=True, eq=False)
class Influence:
    """A beamlet influence matrix and where its rows and columns lie.

    ``matrix`` is a voxels x beamlets CSR matrix (float32, Gy per unit beamlet weight) whose
    rows are the flat grid indices ``voxel_indices`` (the dose region of interest) and whose
    columns are the beamlets of ``beams`` in :meth:`BeamSet.offsets` order; ``memory_bytes``
    its counted size, ``cutoff`` the relative cut-off it was built with.
    """
    matrix: sparse.csr_matrix = field(repr=False)  # voxels (ROI rows) x beamlets
    voxel_indices: np.ndarray = field(repr=False)  # flat grid index of each row
    beams: BeamSet = field(repr=False)
    grid_shape: tuple = ()
    memory_bytes: int = 0
    cutoff: float = 0.0
    #: Fraction of each beamlet's energy (its kernel's sum in water) the cut-off keeps.
    kept_energy: float = float("nan")

    def dose_volume(self, weights) -> np.ndarray:
        """Dose on the full grid for beamlet weights (zero outside the region of interest).

        Parameters
        ----------
        weights : array_like of float
            One weight per column of :attr:`matrix` (unit beamlet weight, >= 0).

        Returns
        -------
        numpy.ndarray
            Dose (Gy) of shape :attr:`grid_shape`, the pencil-beam engine's dose on the rows and 0
            on every other voxel.
        """
        from kernels.sparse_dose_cpu import dose_from_weights

        out = np.zeros(int(np.prod(self.grid_shape)))
        out[self.voxel_indices] = dose_from_weights(self.matrix, weights)
        return out.reshape(self.grid_shape)


def fluence_per_unit_weight() -> float:
    """Photons/cm^2 at the isocentre plane per unit beamlet weight (the calibration).

    Raises RuntimeError when the beam model is not calibrated (run
    ``python -m kernels.commission``).

    Returns
    -------
    float
        The commissioned ``fluence_per_cm2_for_1gy`` of ``kernels/data/beam_6mv.toml``.
    """
    calibration = load_beam_model().calibration
    if "fluence_per_cm2_for_1gy" not in calibration:
        raise RuntimeError("the beam model is not calibrated: run `python -m kernels.commission`")
    return float(calibration["fluence_per_cm2_for_1gy"])


def dose_region(scene: Scene, target: str, *, margin_mm: float = 30.0) -> np.ndarray:
    """Flat indices of voxels inside the body within ``margin_mm`` of the target's bounding box.

    Parameters
    ----------
    scene : Scene
        The scene; its ``body_outline`` structure (if present, else density > 0.1 g/cc)
        limits the region to the patient.
    target : str
        Name of a non-empty structure of the scene (an empty one raises ValueError).
    margin_mm : float, default 30.0
        Margin (mm) added on every side of the target's bounding box.

    Returns
    -------
    numpy.ndarray
        int64 flat indices into the scene's grid, increasing.
    """
    mask = scene.structure(target)
    if mask.is_empty:
        raise ValueError(f"target structure {target!r} is empty")
    grid = scene.grid
    occupied = np.argwhere(mask.full() > 0)
    low = grid.index_to_mm(occupied.min(axis=0)) - margin_mm
    high = grid.index_to_mm(occupied.max(axis=0)) + margin_mm
    z, y, x = grid.centres_mm()
    box = (z >= low[0]) & (z <= high[0]) & (y >= low[1]) & (y <= high[1]) & (x >= low[2]) & (x <= high[2])
    body = scene.structure("body_outline").full() > 0 if "body_outline" in scene.structures else scene.density_g_cc > 0.1
    return np.flatnonzero(box & body).astype(np.int64)


def _beam_geometry(scene: Scene, beam, voxels: np.ndarray, backend: str = "cpu"):
    grid = scene.grid
    k, j, i = np.unravel_index(voxels, grid.shape)
    centres = grid.index_to_mm(np.stack([k, j, i], axis=1))
    axis, u, v = beam.frame
    rel = centres - beam.source_mm
    depth_axis = rel @ axis
    sad = beam.source_axis_distance_mm
    a = rel @ u * sad / depth_axis
    b = rel @ v * sad / depth_axis
    radiological = np.empty(len(voxels))
    twin("raytrace", backend).path_integrals_to_voxels(np.ascontiguousarray(scene.electron_density, dtype=np.float64),
                             np.asarray(grid.origin_mm), np.asarray(grid.spacing_mm), beam.source_mm,
                             voxels.astype(np.int64), radiological)
    return a, b, radiological, (sad / depth_axis) ** 2


def kept_energy_of(kernel: np.ndarray, cutoff: float) -> float:
    """Fraction of a beamlet kernel's energy in its entries at or above ``cutoff`` x its maximum.

    The kernel is a dose per unit fluence on a regular water grid, so its sum is proportional
    to the energy the beamlet deposits there.

    Parameters
    ----------
    kernel : numpy.ndarray
        The beamlet kernel (e.g. ``kernels.pencil_kernel.beamlet_table(5.0).table``), >= 0.
    cutoff : float
        Relative cut-off, in (0, 0.5).

    Returns
    -------
    float
        The fraction kept, in (0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> kept_energy_of(np.array([10.0, 1.0, 0.01]), 0.05)
    0.9990...
    """
    kernel = np.asarray(kernel, dtype=float)
    return float(kernel[kernel >= cutoff * kernel.max()].sum() / kernel.sum())


def cutoff_for_kept_energy(kernel: np.ndarray, kept_energy: float) -> float:
    """The largest relative cut-off that keeps at least ``kept_energy`` of the kernel's energy.

    Parameters
    ----------
    kernel : numpy.ndarray
        The beamlet kernel, >= 0.
    kept_energy : float
        Fraction to keep, in [0.9, 1) (ValueError otherwise).

    Returns
    -------
    float
        Relative cut-off (fraction of the kernel's maximum) for :func:`build_influence`.

    Examples
    --------
    >>> import numpy as np
    >>> kernel = np.array([10.0, 1.0, 0.01])
    >>> round(cutoff_for_kept_energy(kernel, 0.95), 6)
    0.1
    >>> kept_energy_of(kernel, cutoff_for_kept_energy(kernel, 0.9999)) >= 0.9999
    True
    """
    if not 0.9 <= kept_energy < 1:
        raise ValueError(f"kept_energy must be in [0.9, 1), got {kept_energy}")
    values = np.sort(np.asarray(kernel, dtype=float).ravel())[::-1]
    cumulative = np.cumsum(values)
    last = min(int(np.searchsorted(cumulative, kept_energy * cumulative[-1])), values.size - 1)
    return float(np.nextafter(values[last] / values[0], 0.0))  # the last kept entry stays at or above it


def influence_memory_bytes(nnz: int, n_rows: int) -> int:
    """CSR memory: float32 values + int32 column indices + int64 row pointers.

    Parameters
    ----------
    nnz : int
        Number of stored entries.
    n_rows : int
        Number of rows (voxels) the row pointers cover.

    Returns
    -------
    int
        Bytes: ``8 * nnz + 8 * (n_rows + 1)``.
    """
    return int(nnz) * 8 + (int(n_rows) + 1) * 8


def build_influence(scene: Scene, beams: BeamSet, *, target: str = "gtv", roi: np.ndarray | None = None,
                    margin_mm: float = 30.0, cutoff: float = 1e-3, memory_budget_gb: float = 1.0,
                    backend: str = "cpu", report=None, kept_energy: float | None = None) -> Influence:
    """Beamlet influence matrix of ``beams`` on ``scene`` (pencil-beam engine).

    ``report``, when given, receives a one-line memory estimate before the matrix is
    allocated (silent by default: a library does not print; the command line passes its
    progress printer). A matrix above ``memory_budget_gb`` raises :class:`InfluenceTooLarge`
    naming the sizes.

    Parameters
    ----------
    scene : Scene
        The scene the dose is computed on (electron density, grid).
    beams : BeamSet
        The beams; all share the first beam's beamlet size (2.5, 5 or 10 mm).
    target : str, default "gtv"
        Structure whose surroundings form the rows when ``roi`` is not given
        (:func:`dose_region`).
    roi : numpy.ndarray, optional
        Flat grid indices of the rows to compute (overrides ``target`` and ``margin_mm``).
    margin_mm : float, default 30.0
        Margin (mm) of the default region around the target's bounding box.
    cutoff : float, default 1e-3
        Entries below this fraction of the beamlet kernel's maximum are dropped; in (0, 0.5)
        (ValueError otherwise). Ignored when ``kept_energy`` is given.
    kept_energy : float, optional
        Choose the cut-off that keeps this fraction of each beamlet's energy instead, in
        [0.9, 1) (ValueError otherwise; :func:`cutoff_for_kept_energy`). The fraction kept
        either way is :attr:`Influence.kept_energy`.
    memory_budget_gb : float, default 1.0
        Largest matrix allowed (GiB), > 0 (ValueError otherwise).
    backend : str, default "cpu"
        Kernel twins: 'cpu', 'cuda' (an NVIDIA GPU; RuntimeError without one) or 'auto' (the
        GPU when one is present). The matrices agree to float32 rounding.
    report : callable, optional
        ``report(line)`` receives the memory estimate.

    Returns
    -------
    Influence
        The matrix (Gy per unit beamlet weight) with its rows, beams and counted memory.
    """
    pencil = twin("pencil_beam", backend)  # resolves the backend first: a refused one fails before any work
    if not getattr(beams, "beams", None):
        raise ValueError("beams must be a BeamSet with at least one beam (make_beams with one or more gantry angles)")
    if not 0 < cutoff < 0.5:
        raise ValueError(f"cutoff must be in (0, 0.5) (fraction of the beamlet kernel maximum), got {cutoff}")
    if not memory_budget_gb > 0:
        raise ValueError(f"memory_budget_gb must be > 0, got {memory_budget_gb}")
    voxels = dose_region(scene, target, margin_mm=margin_mm) if roi is None else np.asarray(roi, np.int64)
    table = beamlet_table(beams.beams[0].beamlet_mm)
    if kept_energy is not None:
        cutoff = cutoff_for_kept_energy(table.table, kept_energy)
    kept = kept_energy_of(table.table, cutoff)
    fluence = fluence_per_unit_weight()
    absolute_cutoff = cutoff * table.table.max() * fluence
    kernel = np.ascontiguousarray(table.table)
    per_beam = []
    nnz = 0
    for beam in beams.beams:
        a, b, depth, inverse_square = _beam_geometry(scene, beam, voxels, backend)
        grid_index, origin = beam.beamlet_grid()
        scale = inverse_square * fluence
        counts = np.zeros(len(voxels), np.int64)
        args = (a, b, depth * 1.0, scale, grid_index, np.asarray(origin, float), float(beam.beamlet_mm), kernel,
                table.depth_step_mm, table.lateral_step_mm, table.reach_mm, absolute_cutoff)
        # Radiological depth from the path integral is density x mm: mm of water equivalent.
        pencil.count_entries(*args, counts)
        per_beam.append((args, counts))
        nnz += int(counts.sum())
    need = influence_memory_bytes(nnz, len(voxels) * len(beams.beams))
    if report is not None:
        report(f"influence matrix: {len(voxels)} voxels x {beams.n_beamlets} beamlets, {nnz} entries, "
               f"{need / 2**20:.1f} MiB (budget {memory_budget_gb:g} GiB)")
    if need > memory_budget_gb * 2**30:
        raise InfluenceTooLarge(f"influence matrix would need {need / 2**30:.2f} GiB, over the budget of "
                                f"{memory_budget_gb:g} GiB: raise memory_budget_gb, coarsen the grid or beamlets, "
                                f"shrink margin_mm ({margin_mm:g}) or raise cutoff ({cutoff:g})")
    blocks = []
    for (args, counts), beam in zip(per_beam, beams.beams):
        indptr = np.zeros(len(voxels) + 1, np.int64)
        np.cumsum(counts, out=indptr[1:])
        indices = np.empty(indptr[-1], np.int32)
        data = np.empty(indptr[-1], np.float32)
        pencil.fill_entries(*args, indptr, indices, data)
        blocks.append(sparse.csr_matrix((data, indices, indptr), shape=(len(voxels), beam.n_beamlets)))
    matrix = sparse.hstack(blocks, format="csr", dtype=np.float32)
    matrix.indices = matrix.indices.astype(np.int32, copy=False)
    matrix.indptr = matrix.indptr.astype(np.int64, copy=False)
    return Influence(matrix, voxels, beams, scene.grid.shape, need, cutoff, kept)


def final_dose(scene: Scene, beams: BeamSet, weights, *, backend: str = "cpu", n_azimuth: int | None = None) -> np.ndarray:
    """Dose on the scene's grid by collapsed-cone superposition of the weighted beamlets.

    Parameters
    ----------
    scene : Scene
        The scene the dose is computed on (mass and electron density, grid).
    beams : BeamSet
        The beams the weights belong to.
    weights : array_like of float
        One weight per beamlet of the set (unit beamlet weight), finite and >= 0 (ValueError
        otherwise); a beam whose weights are all zero is skipped.
    backend : str, default "cpu"
        Kernel twins: 'cpu', 'cuda' (RuntimeError without a GPU) or 'auto' (the GPU when one
        is present).
    n_azimuth : int, optional
        Azimuthal cone directions per zenith bin, >= 3; default the beam model's.

    Returns
    -------
    numpy.ndarray
        Dose (Gy) of the scene's grid shape.
    """
    twin("superposition", backend)  # a refused backend fails before any work
    model = load_beam_model()
    fluence_unit = fluence_per_unit_weight()
    grid = scene.grid
    total = np.zeros(grid.shape)
    density = np.asarray(scene.density_g_cc, dtype=np.float64)
    electron = np.asarray(scene.electron_density, dtype=np.float64)
    for beam, w in zip(beams.beams, beams.split(weights)):
        if not np.any(w):
            continue
        if np.any(w < 0) or not np.all(np.isfinite(w)):
            raise ValueError("beamlet weights must be finite and >= 0")
        fluence, origin, spacing = beam.fluence_map(w)
        axis, u, v = beam.frame
        dose, _, _ = superposition_dose(density, electron, np.asarray(grid.origin_mm), np.asarray(grid.spacing_mm),
                                        beam.source_mm, axis, u, v, fluence, origin, spacing, model,
                                        n_azimuth=n_azimuth, backend=backend,
                                        source_axis_distance_mm=beam.source_axis_distance_mm)
        total += dose * fluence_unit
    return total
