"""The pencil-beam (beamlet) dose table, by direct convolution of TERMA with the point kernel.

One square beamlet of ``beamlet_mm`` (parallel, no inverse square: the pencil-beam engine
applies the inverse square per voxel) in semi-infinite water: its TERMA column, with the
polyenergetic attenuation of the beam model, is convolved in 3-D (FFT) with the Monte Carlo
point kernel of ``kernels/data/edk_water_mohan6.npz`` integrated over each voxel. Unlike a
collapsed-cone beamlet this has no ray effect, and in water it is the reference the
superposition engine approximates; the two agree for open fields (tests). Heterogeneity
enters the pencil-beam engine only through the radiological depth (its known limitation).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import scipy
from scipy import fft

from ._disk_cache import cached_arrays, fingerprint, package_fingerprint
from .beam_model import BeamModel, load_beam_model

__all__ = ["BeamletTable", "beamlet_table", "point_kernel_on_grid"]


@dataclass(frozen=True, eq=False)
class BeamletTable:
    table: np.ndarray  # (n_depth, n_v, n_u) Gy per unit fluence, parallel beam (no inverse square)
    depth_step_mm: float
    lateral_step_mm: float
    beamlet_mm: float
    normalisation: np.ndarray = None  # per-depth broad-field factor applied (a few percent above 1)

    @property
    def reach_mm(self) -> float:
        """Half-width of the table: farthest lateral offset it describes."""
        return (self.table.shape[1] - 1) / 2 * self.lateral_step_mm


def point_kernel_on_grid(spacing_mm, half_extent_mm, *, subsamples: int = 4) -> np.ndarray:
    """Energy fraction the point kernel deposits in each voxel around a release point at the
    centre voxel (array (2n+1) per axis; axis 0 along the photon direction)."""
    edk = np.load(str(resources.files("kernels.data").joinpath("edk_water_mohan6.npz")))
    density = edk["total"] / edk["bin_volume_cm3"]  # fraction per cm^3, (theta, r)
    r_edges, theta_edges = edk["r_edges_cm"], np.radians(edk["theta_edges_deg"])
    spacing = np.asarray(spacing_mm, float)
    n = np.ceil(np.asarray(half_extent_mm, float) / spacing).astype(int)
    offsets = (np.arange(subsamples) + 0.5) / subsamples - 0.5
    axes = [(np.arange(-m, m + 1)[:, None] + offsets[None, :]).ravel() * s / 10 for m, s in zip(n, spacing)]  # cm
    shape = tuple(2 * m + 1 for m in n)
    kernel = np.empty(shape)
    y, x = np.meshgrid(axes[1], axes[2], indexing="ij")
    lateral_squared = y * y + x * x
    # One plane of voxels at a time: the sub-sampled points of the whole kernel at once took
    # over 1 GiB (the beamlet table's peak in a fresh process); each voxel sums its own points.
    for plane in range(shape[0]):
        z = axes[0][plane * subsamples:(plane + 1) * subsamples, None, None]
        r = np.sqrt(z * z + lateral_squared[None])
        theta = np.arccos(np.clip(np.divide(z, r, out=np.ones_like(r), where=r > 0), -1, 1))
        ri = np.clip(np.searchsorted(r_edges, r, side="right") - 1, 0, len(r_edges) - 2)
        ti = np.clip(np.searchsorted(theta_edges, theta, side="right") - 1, 0, len(theta_edges) - 2)
        values = np.where(r < r_edges[-1], density[ti, ri], 0.0) * np.prod(spacing / 10) / subsamples**3
        kernel[plane] = values.reshape(1, subsamples, shape[1], subsamples, shape[2], subsamples).sum(axis=(1, 3, 5))[0]
    # The central voxel: the kernel is too peaked to sample; use its cumulative energy within
    # the sphere of the voxel's volume.
    radius = (3 * np.prod(spacing / 10) / (4 * np.pi)) ** (1 / 3)
    cumulative = np.concatenate([[0.0], np.cumsum(edk["total"].sum(axis=0))])
    kernel[tuple(n)] = np.interp(radius, r_edges, cumulative)
    return kernel


def _compute(model: BeamModel, beamlet_mm: float, lateral_step_mm: float, depth_step_mm: float, half_width_mm: float,
             depth_mm: float) -> BeamletTable:
    n_lat = 2 * int(round(half_width_mm / lateral_step_mm)) + 1
    n_depth = int(round(depth_mm / depth_step_mm))
    centre = (n_lat - 1) // 2
    lateral = (np.arange(n_lat) - centre) * lateral_step_mm
    depth_cm = (np.arange(n_depth) + 0.5) * depth_step_mm / 10
    # Energy released per cm^3 per unit fluence along a parallel beam (MeV/cm^3).
    released = (model.photon_fractions * model.energies_mev * model.mu_water_cm2_g)[None, :] * \
        np.exp(-np.outer(depth_cm, model.mu_water_cm2_g))
    released = released.sum(axis=1)
    # Fraction of each lateral voxel inside the beamlet's square (exact overlap of intervals).
    low, high = lateral - lateral_step_mm / 2, lateral + lateral_step_mm / 2
    cover = np.clip(np.minimum(high, beamlet_mm / 2) - np.maximum(low, -beamlet_mm / 2), 0, None) / lateral_step_mm
    source = released[:, None, None] * np.outer(cover, cover)[None] * (depth_step_mm * lateral_step_mm**2 / 1000)  # MeV
    spacing = (depth_step_mm, lateral_step_mm, lateral_step_mm)
    kernel = point_kernel_on_grid(spacing, (depth_mm, half_width_mm + beamlet_mm, half_width_mm + beamlet_mm), subsamples=2)
    # Linear convolution by FFT; the medium continues beyond the table (semi-infinite water,
    # nothing above the surface: no release there).
    shape = [a + b - 1 for a, b in zip(source.shape, kernel.shape)]
    fast = [fft.next_fast_len(s) for s in shape]
    spectrum = fft.rfftn(source, fast)
    spectrum *= fft.rfftn(kernel, fast)  # in place: one spectrum-sized array fewer at the peak
    deposited = fft.irfftn(spectrum, fast)
    del spectrum
    k0 = [(k - 1) // 2 for k in kernel.shape]
    deposited = deposited[k0[0]:k0[0] + n_depth, k0[1]:k0[1] + n_lat, k0[2]:k0[2] + n_lat]
    mass_g = depth_step_mm * lateral_step_mm**2 / 1000
    from .beam_model import MEV_PER_G_TO_GY

    table = np.clip(deposited, 0, None) / mass_g * MEV_PER_G_TO_GY
    # The kernel is cut at the table's reach, which drops the long-range photon scatter
    # (a few percent of the dose). Restore it as pencil-beam kernels are commissioned, from
    # field depth doses: at each depth the beamlets tiling a 4 x 4 cm field (a spine target's
    # size) must add up
    # to the superposition engine's dose on that field's axis.
    normalisation = _broad_field_normalisation(model, table, depth_step_mm, lateral_step_mm, beamlet_mm, half_width_mm,
                                               n_depth)
    table *= normalisation[:, None, None]
    return BeamletTable(np.ascontiguousarray(table), depth_step_mm, lateral_step_mm, beamlet_mm, normalisation)


def _broad_field_normalisation(model, table, depth_step_mm, lateral_step_mm, beamlet_mm, half_width_mm, n_depth,
                               field_mm=40.0):
    from .engine import square_field, superposition_dose
    from .pencil_beam_cpu import table_lookup

    sad = model.source_axis_distance_mm
    n_lat = table.shape[1]
    centre = (n_lat - 1) // 2
    spacing = np.array([depth_step_mm, lateral_step_mm, lateral_step_mm])
    origin = np.array([depth_step_mm / 2, -centre * lateral_step_mm, -centre * lateral_step_mm])
    water = np.ones((n_depth, n_lat, n_lat))
    fluence, fluence_origin, fluence_spacing = square_field(field_mm)
    field, _, _ = superposition_dose(water, water, origin, spacing, np.array([-sad, 0.0, 0.0]), (1.0, 0.0, 0.0),
                                     (0.0, 0.0, 1.0), (0.0, 1.0, 0.0), fluence, fluence_origin, fluence_spacing, model)
    depth = origin[0] + depth_step_mm * np.arange(n_depth)
    reference = field[:, centre, centre] * ((sad + depth) / sad) ** 2  # parallel-beam equivalent
    offsets = (np.arange(int(round(field_mm / beamlet_mm))) + 0.5) * beamlet_mm - field_mm / 2
    tiled = np.array([sum(table_lookup(table, depth_step_mm, lateral_step_mm, d, dv, du) for dv in offsets for du in offsets)
                      for d in depth])
    # Smooth over 5 depth samples: the ratio is a slow function of depth; the collapsed-cone
    # field has small line artefacts that should not be copied into the table.
    ratio = reference / tiled
    smooth = np.convolve(np.pad(ratio, 2, mode="edge"), np.ones(5) / 5, mode="valid")
    return smooth


#: Bump when a cached table's meaning changes in a way its key cannot see (the file layout).
TABLE_CACHE_VERSION = 1


@lru_cache(maxsize=1)
def _code_fingerprint() -> str:
    # The table is the output of the engine (TERMA, collapsed cone, table lookup) and of the
    # point kernel file: any edit to them, or another numpy/scipy/numba, is a new table.
    import numba

    code = package_fingerprint(Path(__file__).parent, data_files=("data/edk_water_mohan6.npz",))
    return fingerprint(code, np.__version__, scipy.__version__, numba.__version__)


def _table_key(model: BeamModel, *arguments) -> str:
    """The disk-cache key of a beamlet table: the beam model's every array and number, the
    arguments of :func:`_compute` (type and value), the code and data, and the version."""
    return fingerprint("beamlet_table", TABLE_CACHE_VERSION, model, arguments, _code_fingerprint())


@lru_cache(maxsize=4)
def beamlet_table(beamlet_mm: float = 5.0, *, lateral_step_mm: float = 1.25, depth_step_mm: float = 2.5,
                  half_width_mm: float = 50.0, depth_mm: float = 300.0) -> BeamletTable:
    """The beamlet table for the commissioned beam.

    It takes seconds to compute, so it is computed once per machine: kept in memory for the
    process and on disk across processes (:mod:`kernels._disk_cache`, next to numba's cache),
    under a key of every input; the table read back is bit-identical to the computed one.

    Parameters
    ----------
    beamlet_mm : float
        Side of the square beamlet at the isocentre plane, 1..20 mm.
    lateral_step_mm, depth_step_mm : float
        Sampling of the table across and along the beam.
    half_width_mm, depth_mm : float
        Lateral reach of the table either side of the axis, and its depth.

    Returns
    -------
    BeamletTable
        Dose per unit fluence of one beamlet in water, parallel beam.
    """
    if not 1.0 <= beamlet_mm <= 20.0:
        raise ValueError(f"beamlet_mm must be in 1..20 mm, got {beamlet_mm}")
    model = load_beam_model()
    arguments = (float(beamlet_mm), lateral_step_mm, depth_step_mm, half_width_mm, depth_mm)

    def compute():
        table = _compute(model, *arguments)
        return {"table": table.table, "normalisation": table.normalisation}

    arrays = cached_arrays("beamlet_table", _table_key(model, *arguments), compute, ("table", "normalisation"))
    return BeamletTable(arrays["table"], depth_step_mm, lateral_step_mm, float(beamlet_mm), arrays["normalisation"])
