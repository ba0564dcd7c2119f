"""The delivered dose: the collapsed-cone superposition of the weighted beamlets on a scene.

The other half of the adapter between scenes and dose kernels (the pencil-beam influence
matrix is :mod:`planner.radiotherapy.influence`): the beam model's calibration, the scene's
tabulated media for the superposition engine, and ``final_dose``.

Unit beamlet weight = the fluence that gives 1 Gy at dmax on the axis of a 10 x 10 cm field
at SSD 100 cm in water (``kernels/data/beam_6mv.toml``, written by ``kernels.commission``).
"""

from __future__ import annotations

import numpy as np

from kernels._dispatch import twin
from kernels.beam_model import load_beam_model
from kernels.engine import superposition_dose
from scenes.materials import MATERIAL_NAMES, materials
from scenes.scene import Scene

from .beams import BeamSet

__all__ = ["final_dose", "fluence_per_unit_weight", "scene_media"]


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


def scene_media(scene: Scene) -> tuple[np.ndarray | None, tuple[str, ...]]:
    """The superposition engine's media of a scene: ``(medium, media)`` for
    :func:`kernels.engine.superposition_dose`.

    Voxels whose medium (the scene's ``labels``) has its own attenuation table other than
    water's (``attenuation_table`` in scenes/data/materials.toml, e.g. ICRP cortical bone)
    attenuate with it; every other voxel is water scaled by its electron density.
    ``(None, ())`` when the scene has none.

    Parameters
    ----------
    scene : Scene
        The scene whose ``labels`` say each voxel's medium.

    Returns
    -------
    medium : numpy.ndarray of int64 or None
        0 where a voxel is electron-density-scaled water, k where it is ``media[k - 1]``.
    media : tuple of str
        The attenuation tables named (:data:`kernels.beam_model.TABULATED_MEDIA`).

    Examples
    --------
    >>> import numpy as np
    >>> from scenes.scene import scene_from_arrays
    >>> bone = np.zeros((2, 2, 2), bool); bone[1] = True
    >>> scene = scene_from_arrays(density_g_cc=np.ones((2, 2, 2)), spacing_mm=(2, 2, 2),
    ...                           media={"icrp_cortical_bone": bone})
    >>> medium, media = scene_media(scene)
    >>> media, medium[:, 0, 0].tolist()
    (('bone',), [0, 1])
    """
    tables = {code: materials()[name].attenuation_table for code, name in enumerate(MATERIAL_NAMES)}
    present = [int(code) for code in np.unique(scene.labels) if tables.get(int(code)) not in (None, "water")]
    if not present:
        return None, ()
    names = tuple(dict.fromkeys(tables[code] for code in present))
    lookup = np.zeros(len(MATERIAL_NAMES), dtype=np.int64)
    for code in present:
        lookup[code] = names.index(tables[code]) + 1
    return lookup[scene.labels], names


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
        Dose (Gy) of the scene's grid shape. On the CPU each beam is computed only where its
        energy goes (:mod:`kernels.irradiated_region`): the whole grid's dose to rounding.
    """
    twin("superposition", backend)  # a refused backend fails before any work
    model = load_beam_model()
    fluence_unit = fluence_per_unit_weight()
    grid = scene.grid
    total = np.zeros(grid.shape)
    density = np.asarray(scene.density_g_cc, dtype=np.float64)
    electron = np.asarray(scene.electron_density, dtype=np.float64)
    medium, media = scene_media(scene)
    # On the CPU the same dose (to rounding) computed only where each beam's energy goes.
    from kernels._dispatch import resolve_backend
    from kernels.irradiated_region import dose_from_deposited, superposition_dose_in_region

    region = resolve_backend(backend) == "cpu"
    for beam, w in zip(beams.beams, beams.split(weights)):
        if not np.any(w):
            continue
        if np.any(w < 0) or not np.all(np.isfinite(w)):
            raise ValueError("beamlet weights must be finite and >= 0")
        fluence, origin, spacing = beam.fluence_map(w)
        axis, u, v = beam.frame
        if region:  # total holds the deposited energy (MeV per unit fluence) until the end
            superposition_dose_in_region(density, electron, np.asarray(grid.origin_mm), np.asarray(grid.spacing_mm),
                                         beam.source_mm, axis, u, v, fluence, origin, spacing, model, n_azimuth=n_azimuth,
                                         source_axis_distance_mm=beam.source_axis_distance_mm, deposited=total,
                                         medium=medium, media=media)
            continue
        dose, _, _ = superposition_dose(density, electron, np.asarray(grid.origin_mm), np.asarray(grid.spacing_mm),
                                        beam.source_mm, axis, u, v, fluence, origin, spacing, model,
                                        n_azimuth=n_azimuth, backend=backend,
                                        source_axis_distance_mm=beam.source_axis_distance_mm,
                                        medium=medium, media=media)
        total += dose * fluence_unit
    if not region:
        return total
    dose = dose_from_deposited(total, density, grid.spacing_mm)
    dose *= fluence_unit  # in place: no second grid-sized result
    return dose
