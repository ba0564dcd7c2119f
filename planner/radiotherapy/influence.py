"""The pencil-beam side of the adapter between scenes and dose kernels: the influence matrix.

``build_influence`` runs the pencil-beam engine: a voxels x beamlets CSR matrix (float32
values, int32 indices) in Gy per unit beamlet weight, restricted to a dose region of
interest, with entries below ``cutoff`` times the beamlet kernel's maximum dropped. Its
memory is counted exactly before anything is allocated and refused above a budget.
Heterogeneity enters through the radiological depth and a lateral density scaling of each
beamlet (:mod:`kernels.pencil_beam_cpu`: the kernel stretched by 1/eta, eta the electron
density the secondary electrons reaching the voxel crossed, :func:`lateral_scaling`).

The delivered dose (``final_dose``, the collapsed-cone superposition engine on the optimised
fluence), ``scene_media`` and the calibration ``fluence_per_unit_weight`` live in
:mod:`planner.radiotherapy.delivered_dose`; they are imported here too, where they have always
been reached from.

Unit beamlet weight = the fluence that gives 1 Gy at dmax on the axis of a 10 x 10 cm field
at SSD 100 cm in water (``kernels/data/beam_6mv.toml``, written by ``kernels.commission``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import scipy.sparse as sparse

from kernels._dispatch import twin
from kernels.beam_model import load_beam_model
from kernels.pencil_beam_cpu import cumulative_table, kernel_envelopes, radial_envelope
from kernels.pencil_kernel import BeamletTable, beamlet_table
from scenes.materials import label_of
from scenes.scene import Scene

from .beams import BeamSet
from .delivered_dose import final_dose, fluence_per_unit_weight, scene_media
from .sampled_dose import interpolate_between_samples

__all__ = ["kept_energy_of", "cutoff_for_kept_energy", "Influence", "InfluenceTooLarge", "build_influence", "final_dose", "dose_region", "influence_memory_bytes",
           "fluence_per_unit_weight", "lateral_scaling", "electron_range_mm", "scene_media",
           "planning_kept_energy", "walk_density"]


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
    #: Voxel stride (z, y, x) of the lattice the rows sample the far region on
    #: (``planner.radiotherapy.case_objectives.optimisation_stride``), or None when the rows are not sampled.
    sampling_stride: tuple | None = None

    def dose_volume(self, weights) -> np.ndarray:
        """Dose on the full grid for beamlet weights (zero outside the region of interest).

        Where the rows sample the far region on a lattice (:attr:`sampling_stride`), the
        voxels between its points are interpolated trilinearly from them
        (:func:`interpolate_between_samples`), so a picture of the dose has no holes; the rows'
        own values are unchanged.

        Parameters
        ----------
        weights : array_like of float
            One weight per column of :attr:`matrix` (unit beamlet weight, >= 0).

        Returns
        -------
        numpy.ndarray
            Dose (Gy) of shape :attr:`grid_shape`, the pencil-beam engine's dose on the rows,
            interpolated between the sampling lattice's points, and 0 on every other voxel.
        """
        from kernels.sparse_dose_cpu import dose_from_weights

        out = np.zeros(int(np.prod(self.grid_shape)))
        out[self.voxel_indices] = dose_from_weights(self.matrix, weights)
        out = out.reshape(self.grid_shape)
        if self.sampling_stride is None or all(s == 1 for s in self.sampling_stride):
            return out
        return interpolate_between_samples(out, self._known(), self.sampling_stride)

    def _known(self) -> np.ndarray:
        """The rows as a boolean grid (computed once per matrix)."""
        cached = self.__dict__.get("_known_grid")
        if cached is None:
            cached = np.zeros(int(np.prod(self.grid_shape)), bool)
            cached[self.voxel_indices] = True
            cached = cached.reshape(self.grid_shape)
            object.__setattr__(self, "_known_grid", cached)
        return cached


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
    """Isocentre-plane crossing (a, b), radiological depth and inverse square of each voxel."""
    a, b, inverse_square = _beam_projection(scene, beam, voxels)
    return a, b, _rays(scene, beam, voxels, backend)[0], inverse_square


def _beam_projection(scene: Scene, beam, voxels: np.ndarray):
    """Where each voxel's ray crosses the isocentre plane (a along u, b along v, mm) and its
    inverse-square factor (SAD / distance along the axis)^2."""
    grid = scene.grid
    centres = grid.index_to_mm(np.stack(np.unravel_index(voxels, grid.shape), axis=1))
    axis, u, v = beam.frame
    rel = centres - beam.source_mm
    depth_axis = rel @ axis
    sad = beam.source_axis_distance_mm
    return rel @ u * sad / depth_axis, rel @ v * sad / depth_axis, (sad / depth_axis) ** 2


def electron_range_mm() -> float:
    """Radiological length (mm of water) over which :func:`lateral_scaling` averages: the depth
    of maximum dose of the commissioned beam.

    Charged-particle equilibrium on the axis of a broad beam is reached where the forward
    secondary electrons set in motion at the surface stop: the build-up depth d_max is the
    practical range of the electrons that carry the dose (Khan, The Physics of Radiation
    Therapy, ch. 13). It is a measured property of the beam (``dmax_cm`` of the calibration),
    not a fitted number. RuntimeError when the beam model is not calibrated.

    Returns
    -------
    float
        The range in mm of water (16.25 for the commissioned 6 MV beam).
    """
    calibration = load_beam_model().calibration
    if "dmax_cm" not in calibration:
        raise RuntimeError("the beam model is not calibrated: run `python -m kernels.commission`")
    return float(calibration["dmax_cm"]) * 10.0


def lateral_scaling(scene: Scene, beam, voxels: np.ndarray, *, backend: str = "cpu", electron=None) -> np.ndarray:
    """Effective relative electron density of each voxel for the pencil beam's lateral scaling.

    The dose at a voxel is carried by secondary electrons set in motion upstream within their
    range (:func:`electron_range_mm` of radiological path) and travelling mostly forward; an
    electron released l upstream has crossed the geometric length s(l), so its lateral spread
    is s(l) / l times water's (density scaling). Averaged per unit mass (electrons are released
    per unit mass) over the range, the mean stretch is integral(s(l) / l dl) / range, and the
    effective density its inverse (:func:`kernels.raytrace_cpu.depth_and_upstream_density`).
    It is the medium's own electron density in a uniform medium (water's in water), reaches
    lung's over range / eta after entering it (water's electrons cross the lung: the
    build-down) and water's over the range after leaving it (the build-up); the air a ray
    crosses before the patient is massless for this walk (:func:`walk_density`): the build-up
    region's electrons come from the medium, not from the air (whose per-mass stretch would
    otherwise grow with the air's length inside the grid).

    Parameters
    ----------
    scene : Scene
        The scene (its electron density).
    beam : Beam
        The beam (its source).
    voxels : numpy.ndarray
        Flat grid indices.
    backend : str, default "cpu"
        Kernel twins ('cpu' or 'cuda').
    electron : numpy.ndarray, optional
        :func:`walk_density` of the scene, C-contiguous float64 (saves a copy per beam).

    Returns
    -------
    numpy.ndarray
        float64, one value > 0 per voxel (1.0 where the path holds no medium at all).
    """
    return _rays(scene, beam, voxels, backend, electron)[1]


def walk_density(scene: Scene) -> np.ndarray:
    """The relative electron density the pencil beam's ray walks read: the scene's, with the
    voxels it labels air set to 0 (no medium).

    The radiological depth loses the air's water-equivalent path (about 0.1 mm per 10 cm of
    air); the lateral scaling stops counting air as a medium whose electrons reach the patient.

    Parameters
    ----------
    scene : Scene
        The scene (its electron density and material labels).

    Returns
    -------
    numpy.ndarray
        C-contiguous float64 of the grid's shape.

    Examples
    --------
    >>> import numpy as np
    >>> from scenes.scene import scene_from_arrays
    >>> density = np.ones((1, 1, 3)); density[0, 0, 0] = 0.0012  # air, then water
    >>> walk_density(scene_from_arrays(density_g_cc=density, spacing_mm=(2, 2, 2)))[0, 0].round(3).tolist()
    [0.0, 1.0, 1.0]
    """
    electron = np.array(scene.electron_density, dtype=np.float64, order="C")
    electron[np.asarray(scene.labels) == label_of("air")] = 0.0
    return electron


def _rays(scene: Scene, beam, voxels: np.ndarray, backend: str = "cpu", electron=None):
    """Radiological depth (mm of water) and lateral scaling of each voxel: one walk per ray."""
    grid = scene.grid
    if electron is None:
        electron = walk_density(scene)
    depth, eta = np.empty(len(voxels)), np.empty(len(voxels))
    twin("raytrace", backend).depths_and_upstream_densities_to_voxels(
        electron, np.asarray(grid.origin_mm, float), np.asarray(grid.spacing_mm, float), np.asarray(beam.source_mm, float),
        np.asarray(voxels, np.int64), electron_range_mm(), depth, eta)
    return depth, eta


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


def planning_kept_energy() -> float:
    """The fraction of each beamlet's energy the planners' matrices keep.

    Returns
    -------
    float
        objectives.toml [influence] ``kept_energy``, passed as ``kept_energy`` to
        :func:`build_influence` by ``plan_scene``, ``plan_case`` and the slider sessions.

    Examples
    --------
    >>> planning_kept_energy()
    0.995
    """
    from .protocols import read_table

    return float(read_table("objectives")["influence"]["kept_energy"])


def build_influence(scene: Scene, beams: BeamSet, *, target: str = "gtv", roi: np.ndarray | None = None,
                    margin_mm: float = 30.0, cutoff: float = 1e-3, memory_budget_gb: float = 1.0,
                    backend: str = "cpu", report=None, kept_energy: float | None = None,
                    sampling_stride=None) -> Influence:
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
        Entries below this fraction of the beamlet kernel's maximum are dropped (times eta^2
        below water density, where a beamlet spreads over 1/eta^2 the area: the same fraction
        of its energy is kept); in (0, 0.5) (ValueError otherwise). Ignored when
        ``kept_energy`` is given.
    kept_energy : float, optional
        Choose the cut-off that keeps this fraction of each beamlet's energy instead, in
        [0.9, 1) (ValueError otherwise; :func:`cutoff_for_kept_energy`). The fraction kept
        either way is :attr:`Influence.kept_energy`.
    sampling_stride : tuple of int, optional
        The voxel stride (z, y, x) of the lattice ``roi`` samples the far region on (e.g.
        :func:`planner.radiotherapy.case_objectives.optimisation_stride`); kept as
        :attr:`Influence.sampling_stride` so :meth:`Influence.dose_volume` interpolates
        between the lattice's points. Three integers >= 1 (ValueError otherwise).
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
    stride = None
    if sampling_stride is not None:
        stride = tuple(int(k) for k in np.atleast_1d(sampling_stride))
        if len(stride) != 3 or min(stride) < 1 or not np.allclose(stride, np.atleast_1d(sampling_stride)):
            raise ValueError(f"sampling_stride must be three integers >= 1 (z, y, x), got {sampling_stride!r}")
    pencil = twin("pencil_beam", backend)  # resolves the backend first: a refused one fails before any work
    if not getattr(beams, "beams", None):
        raise ValueError("beams must be a BeamSet with at least one beam (make_beams with one or more gantry angles)")
    if not 0 < cutoff < 0.5:
        raise ValueError(f"cutoff must be in (0, 0.5) (fraction of the beamlet kernel maximum), got {cutoff}")
    if not memory_budget_gb > 0:
        raise ValueError(f"memory_budget_gb must be > 0, got {memory_budget_gb}")
    voxels = dose_region(scene, target, margin_mm=margin_mm) if roi is None else np.asarray(roi, np.int64)
    table = beamlet_table(beams.beams[0].beamlet_mm)
    cutoff, kept, kernel, envelope = _kernel_facts(table, kept_energy, None if kept_energy is not None else cutoff)
    fluence = fluence_per_unit_weight()
    absolute_cutoff = cutoff * kernel.max() * fluence
    electron = walk_density(scene)
    n_rows = len(voxels)
    per_beam = []
    counts = np.zeros((len(beams.beams), n_rows), np.int64)
    for number, beam in enumerate(beams.beams):
        # Radiological depth from the path integral is density x mm: mm of water equivalent.
        a, b, inverse_square = _beam_projection(scene, beam, voxels)
        depth, eta = _rays(scene, beam, voxels, backend, electron)
        grid_index, origin = beam.beamlet_grid()
        # The narrow-beamlet table is read only below water density: a water scene never needs it.
        if np.any(eta < 1.0):
            cumulative, narrow_envelope = _narrow_facts(table)
        else:
            cumulative, narrow_envelope = np.zeros((2, 2, 2)), np.zeros((2, 2))
        args = (a, b, depth, inverse_square * fluence, eta, grid_index, np.asarray(origin, float),
                float(beam.beamlet_mm), kernel, envelope, cumulative, narrow_envelope, table.depth_step_mm,
                table.lateral_step_mm, absolute_cutoff)
        pencil.count_entries(*args, counts[number])
        per_beam.append(args)
    nnz = int(counts.sum())
    need = influence_memory_bytes(nnz, n_rows * len(beams.beams))
    if report is not None:
        report(f"influence matrix: {n_rows} voxels x {beams.n_beamlets} beamlets, {nnz} entries, "
               f"{need / 2**20:.1f} MiB (budget {memory_budget_gb:g} GiB)")
    if need > memory_budget_gb * 2**30:
        raise InfluenceTooLarge(f"influence matrix would need {need / 2**30:.2f} GiB, over the budget of "
                                f"{memory_budget_gb:g} GiB: raise memory_budget_gb, coarsen the grid or beamlets, "
                                f"shrink margin_mm ({margin_mm:g}) or raise cutoff ({cutoff:g})")
    # One CSR matrix filled in place: row r holds beam 0's entries, then beam 1's, ... (the
    # layout of stacking the beams' blocks side by side), each beam's columns shifted by the
    # beamlets of the beams before it.
    indptr = np.zeros(n_rows + 1, np.int64)
    np.cumsum(counts.sum(axis=0), out=indptr[1:])
    starts = indptr[:-1].copy()
    indices, data = _entry_arrays(pencil, nnz)
    column_offset = 0
    for number, (args, beam) in enumerate(zip(per_beam, beams.beams)):
        pencil.fill_entries(*args, starts, column_offset, indices, data)
        starts += counts[number]
        column_offset += beam.n_beamlets
    if hasattr(indices, "copy_to_host"):  # filled on the GPU: one copy back for every beam
        indices, data = indices.copy_to_host(), data.copy_to_host()
    matrix = sparse.csr_matrix((n_rows, beams.n_beamlets), dtype=np.float32)
    matrix.data, matrix.indices, matrix.indptr = data, indices, indptr
    return Influence(matrix, voxels, beams, scene.grid.shape, need, cutoff, kept, stride)


@lru_cache(maxsize=8)
def _kernel_facts(table: BeamletTable, kept_energy: float | None, cutoff: float | None):
    """Cut-off, kept energy, contiguous kernel and envelopes of a (cached) beamlet table:
    sorting the table for the kept-energy cut-off costs more than a small matrix."""
    kernel = np.ascontiguousarray(table.table)
    if kept_energy is not None:
        cutoff = cutoff_for_kept_energy(kernel, kept_energy)
    return cutoff, kept_energy_of(kernel, cutoff), kernel, kernel_envelopes(kernel)


@lru_cache(maxsize=4)
def _narrow_facts(table: BeamletTable):
    """The cumulative narrow-beamlet table (one lateral sample wide, on ``table``'s grid) that
    stretches ``table`` below water density, and its radial envelope."""
    narrow = beamlet_table(table.lateral_step_mm, lateral_step_mm=table.lateral_step_mm,
                           depth_step_mm=table.depth_step_mm, half_width_mm=table.reach_mm,
                           depth_mm=table.table.shape[0] * table.depth_step_mm)
    return cumulative_table(narrow.table), radial_envelope(narrow.table)


def _entry_arrays(pencil, nnz: int):
    """CSR ``indices``/``data`` for ``nnz`` entries, on the GPU when the CUDA twin fills them."""
    if pencil.__name__.endswith("_cuda"):
        from numba import cuda

        return cuda.device_array(nnz, np.int32), cuda.device_array(nnz, np.float32)
    return np.empty(nnz, np.int32), np.empty(nnz, np.float32)
