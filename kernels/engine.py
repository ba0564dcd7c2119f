"""Superposition dose of one beam: TERMA on the grid, then collapsed-cone transport.

Arrays and a :class:`kernels.beam_model.BeamModel` in, dose (Gy per unit fluence, i.e. per
photon/cm^2 at the isocentre plane where the fluence map is 1) out. Dose is dose to the
local medium: deposited energy over the voxel's mass.

``backend`` ('auto', 'cpu' or 'cuda', :mod:`kernels._dispatch`) picks the kernel twins; on the
GPU the released energy stays on the device between TERMA and the cone transport.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ._dispatch import resolve_backend, twin
from .beam_model import MEV_PER_G_TO_GY, BeamModel

__all__ = ["released_energy", "superposition_dose", "blurred_fluence", "square_field"]


def square_field(field_mm: float, pixel_mm: float = 0.5):
    """Fluence map of an open square field centred on the axis: (map, origin (v, u), spacing).

    Pixels on the field's edge count half, so the map's area equals the field's."""
    centres = np.arange(-field_mm, field_mm + pixel_mm / 2, pixel_mm)
    inside = (np.abs(centres) < field_mm / 2 - 1e-9) + 0.5 * np.isclose(np.abs(centres), field_mm / 2)
    return np.outer(inside, inside).astype(float), (centres[0], centres[0]), (pixel_mm, pixel_mm)


def blurred_fluence(fluence, fluence_spacing_mm, model: BeamModel):
    """Apply the collimator transmission and the focal-spot blur to a fluence map."""
    fluence = np.asarray(fluence, dtype=np.float64)
    open_ = fluence
    if model.collimator_transmission > 0:
        open_ = model.collimator_transmission + (1 - model.collimator_transmission) * fluence
    if model.focal_spot_sigma_mm > 0:
        sigma = [model.focal_spot_sigma_mm / s for s in fluence_spacing_mm]
        open_ = ndimage.gaussian_filter(open_, sigma, mode="nearest")
    return open_


def released_energy(electron_density, origin_mm, spacing_mm, source_mm, axis, u, v, fluence, fluence_origin_mm,
                    fluence_spacing_mm, model: BeamModel, *, subsamples: int = 3, backend: str = "cpu",
                    keep_on_device: bool = False, source_axis_distance_mm: float | None = None):
    """Energy released per voxel (MeV per unit fluence) by the beam's primary photons.

    The fluence map lies on the plane ``source_axis_distance_mm`` from the source (default the
    model's SAD; a beam at another SAD passes its own). ``keep_on_device`` (CUDA backend only)
    returns the device array instead of a host copy."""
    sad_mm = float(model.source_axis_distance_mm if source_axis_distance_mm is None else source_axis_distance_mm)
    if not sad_mm > 0:
        raise ValueError(f"source_axis_distance_mm must be > 0, got {sad_mm}")
    if not 1 <= int(subsamples) <= 8:
        raise ValueError(f"subsamples must be 1..8, got {subsamples}")
    kernel = twin("terma", backend).terma
    eta = np.ascontiguousarray(electron_density, dtype=np.float64)
    if resolve_backend(backend) == "cuda" and keep_on_device:
        from numba import cuda

        out = cuda.device_array(eta.shape, np.float64)
    else:
        out = np.zeros(eta.shape)
    fluence = blurred_fluence(fluence, fluence_spacing_mm, model)
    kernel(eta, np.asarray(origin_mm, float), np.asarray(spacing_mm, float), np.asarray(source_mm, float),
          np.asarray(axis, float), np.asarray(u, float), np.asarray(v, float), sad_mm,
          np.ascontiguousarray(fluence), np.asarray(fluence_origin_mm, float), np.asarray(fluence_spacing_mm, float),
          model.energies_mev, model.photon_fractions, model.mu_water_cm2_g, int(subsamples), out)
    return out


def superposition_dose(density, electron_density, origin_mm, spacing_mm, source_mm, axis, u, v, fluence,
                       fluence_origin_mm, fluence_spacing_mm, model: BeamModel, *, subsamples: int = 3,
                       n_azimuth: int | None = None, backend: str = "cpu", source_axis_distance_mm: float | None = None):
    """Dose (Gy per unit fluence) of one beam by collapsed-cone superposition.

    ``source_axis_distance_mm``: the distance from the source of the plane the fluence map is
    given on (default the model's SAD).

    Returns ``(dose_gy, released_mev, deposited_mev)``; the last two allow an energy balance.
    ``backend``: 'auto', 'cpu' or 'cuda' (the CUDA twins agree with the CPU's to rounding).
    """
    on_device = resolve_backend(backend) == "cuda"
    released = released_energy(electron_density, origin_mm, spacing_mm, source_mm, axis, u, v, fluence,
                               fluence_origin_mm, fluence_spacing_mm, model, subsamples=subsamples, backend=backend,
                               keep_on_device=on_device, source_axis_distance_mm=source_axis_distance_mm)
    directions, amplitudes, rates = model.directions(axis, n_azimuth=n_azimuth)
    eta = np.ascontiguousarray(electron_density, dtype=np.float64)
    deposited = twin("superposition", backend).collapsed_cone(released, eta, spacing_mm, directions, amplitudes, rates)
    if on_device:
        released = released.copy_to_host()
    mass_g = np.asarray(density, dtype=np.float64) * (np.prod(spacing_mm) / 1000.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        dose = np.where(mass_g > 0, deposited / mass_g, 0.0) * MEV_PER_G_TO_GY
    return dose, released, deposited
