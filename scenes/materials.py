"""Materials of the phantoms: label codes, mass density and relative electron density.

Numbers come from ``scenes/data/materials.toml`` (each with its source key). The relative
electron density (electrons per cm^3 relative to water) is ``density * <Z/A> / (1.0 *
<Z/A>_water)``; mixtures (cancellous bone, blastic lesion) take the mass-weighted <Z/A> of
soft tissue and cortical bone at their density.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ._data import load_data, value_of

__all__ = ["Material", "materials", "material", "z_over_a_of", "label_of", "hu_to_density", "density_to_hu",
           "density_lookup", "electron_density_lookup", "MATERIAL_NAMES"]


@dataclass(frozen=True)
class Material:
    name: str
    label: int
    density_g_cc: float
    relative_electron_density: float
    source: str
    #: Name of the medium's own attenuation table in the dose engine
    #: (kernels.beam_model.TABULATED_MEDIA), or None: water scaled by electron density.
    attenuation_table: str | None = None


def _calibration():
    table = load_data("materials")["ct_calibration"]
    hu = np.asarray(table["hu"], dtype=float)
    density = np.asarray(table["density_g_cc"], dtype=float)
    if np.any(np.diff(hu) <= 0) or np.any(np.diff(density) <= 0):
        raise ValueError("materials.toml [ct_calibration] must be strictly increasing")
    return hu, density


def hu_to_density(hu) -> np.ndarray:
    """CT number (HU) -> mass density (g/cc), piecewise linear, extended past the last point.

    Examples
    --------
    >>> float(hu_to_density(0.0))
    1.0
    """
    points_hu, points_density = _calibration()
    hu = np.asarray(hu, dtype=float)
    out = np.interp(hu, points_hu, points_density)
    slope = (points_density[-1] - points_density[-2]) / (points_hu[-1] - points_hu[-2])
    out = np.where(hu > points_hu[-1], points_density[-1] + slope * (hu - points_hu[-1]), out)
    return np.maximum(out, points_density[0])


def density_to_hu(density_g_cc) -> np.ndarray:
    """Inverse of :func:`hu_to_density` (for writing a synthetic CT)."""
    points_hu, points_density = _calibration()
    density = np.asarray(density_g_cc, dtype=float)
    out = np.interp(density, points_density, points_hu)
    slope = (points_hu[-1] - points_hu[-2]) / (points_density[-1] - points_density[-2])
    return np.where(density > points_density[-1], points_hu[-1] + slope * (density - points_density[-1]), out)


def z_over_a_of(composition: dict) -> float:
    """<Z/A> of a medium from its mass fractions (normalised to sum 1).

    Parameters
    ----------
    composition : dict
        ``{element symbol: mass fraction}`` (other keys such as ``source`` are ignored);
        elements from materials.toml [elements].

    Returns
    -------
    float
        The mass-weighted mean Z/A (mol/g).

    Examples
    --------
    >>> round(z_over_a_of({"H": 0.111894, "O": 0.888106}), 5)
    0.55508
    """
    elements = load_data("materials")["elements"]["z_over_a"]
    fractions = {k: float(v) for k, v in composition.items() if k in elements}
    unknown = [k for k in composition if k not in elements and k not in ("source", "verified", "note")]
    if unknown or not fractions:
        raise ValueError(f"composition has elements without a Z/A in materials.toml [elements]: {unknown}")
    return sum(fractions[k] * float(elements[k]) for k in fractions) / sum(fractions.values())


@lru_cache(maxsize=1)
def materials() -> dict[str, Material]:
    """All materials by name."""
    table = load_data("materials")["materials"]
    water_z_over_a = value_of(table["csf"]["z_over_a"])
    found: dict[str, Material] = {}
    raw: dict[str, tuple[float, float, str]] = {}

    def mixture(parts, density):
        # Mass fraction of the second (denser) part such that volume mixing gives `density`.
        (ra, za), (rb, zb) = (raw[p][:2] for p in parts)
        volume_b = (density - ra) / (rb - ra)
        mass_b = volume_b * rb / density
        return (1 - mass_b) * za + mass_b * zb

    pending = []
    for name, entry in table.items():
        if "density_g_cc" in entry and "composition" in entry:
            raw[name] = (value_of(entry["density_g_cc"]), z_over_a_of(entry["composition"]), entry["density_g_cc"]["source"])
        elif "density_g_cc" in entry and "z_over_a" in entry:
            raw[name] = (value_of(entry["density_g_cc"]), value_of(entry["z_over_a"]), entry["density_g_cc"]["source"])
        else:
            pending.append(name)
    for name in pending:
        entry = table[name]
        if "ct_number_hu" in entry:
            density = float(hu_to_density(value_of(entry["ct_number_hu"])))
            raw[name] = (density, mixture(entry["mixture_of"], density), entry["ct_number_hu"]["source"])
        elif "mixture_of" in entry:
            density = value_of(entry["density_g_cc"])
            raw[name] = (density, mixture(entry["mixture_of"], density), entry["density_g_cc"]["source"])
    lytic, blastic = raw["lytic_lesion"], raw["blastic_lesion"]
    raw["mixed_lesion"] = ((lytic[0] + blastic[0]) / 2, None, "derived")
    for name, entry in table.items():
        density, z_over_a, source = raw[name]
        if z_over_a is None:
            electrons = (lytic[0] * lytic[1] + blastic[0] * blastic[1]) / 2
        else:
            electrons = density * z_over_a
        table_name = entry.get("attenuation_table", {}).get("value")
        found[name] = Material(name, int(entry["label"]), density, electrons / water_z_over_a, source, table_name)
    labels = [m.label for m in found.values()]
    if sorted(labels) != list(range(len(labels))):
        raise ValueError(f"materials.toml labels must be 0..{len(labels) - 1} without gaps, got {sorted(labels)}")
    return found


MATERIAL_NAMES = tuple(sorted(materials(), key=lambda n: materials()[n].label))


def material(name: str) -> Material:
    try:
        return materials()[name]
    except KeyError:
        raise KeyError(f"unknown material {name!r}; known: {', '.join(MATERIAL_NAMES)}") from None


def label_of(name: str) -> int:
    return material(name).label


def density_lookup() -> np.ndarray:
    """Array label -> mass density (g/cc)."""
    return np.array([materials()[n].density_g_cc for n in MATERIAL_NAMES])


def electron_density_lookup() -> np.ndarray:
    """Array label -> relative electron density."""
    return np.array([materials()[n].relative_electron_density for n in MATERIAL_NAMES])
