"""Dose to medium (the default) or dose to water, on request.

The collapsed-cone engine gives the dose to each voxel's own medium: the energy deposited
per unit mass of that medium (D_m). Clinical experience, protocols and reference dosimetry
speak of dose to water (D_w). Bragg-Gray cavity theory converts one into the other: a voxel
read as a small water cavity inside its medium receives

    D_w = D_m * s_w,m

with s_w,m the Spencer-Attix water-to-medium mass collision stopping-power ratio averaged
over the electron spectrum (Siebers et al. 2000; AAPM TG-105). For 6 MV photons it is a
single number per medium throughout the field (Siebers et al.): about 1.01 in soft tissue,
0.98 in fat, 1.12-1.14 in cortical bone. The ratios, their sources and how each project
material gets one are data (``planner/radiotherapy/protocols/dose_to_water.toml``): the
published ratios where a stored source gives them, an ICRU-44 medium scaled from its
published ICRP counterpart by the Bethe stopping-power ratio, mixtures by Bragg additivity.
A medium with no value (metal, implant plastics, cement) is refused by name, never given a
silent 1.

Which quantity a plan reports is a choice with consequences, not a formality: a plan
normalised to dose to water in a bony target delivers about 1/s_w,m as much energy there
(Andreo 2015 reviews the debate). :func:`~planner.radiotherapy.scene_plan.plan_scene` and
:func:`~planner.radiotherapy.plan.plan_case` take ``dose_to='medium'|'water'``; the
conversion is applied to the delivered dose before the plan is normalised, so the
prescription, the organ limits and every metric are read in the quantity asked for. The two
engines' agreement (the correction loop) is judged on dose to medium, their own quantity. On a
coarse grid an organ's maximum can sit in a partial-volume edge voxel labelled bone, where dose
to water reads about 14% higher (``labels`` are each voxel's majority medium).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from scenes.materials import MATERIAL_NAMES, materials
from scenes.scene import Scene

from .protocols import read_table

__all__ = ["DOSE_QUANTITIES", "check_dose_to", "stopping_power_ratios", "water_to_medium_ratio", "to_dose_quantity",
           "bethe_stopping_power", "describe_dose_quantity"]

#: The quantities a dose can be reported in: each voxel's own medium, or water.
DOSE_QUANTITIES = ("medium", "water")


def check_dose_to(dose_to) -> str:
    """``dose_to`` if it is 'medium' or 'water'; ValueError naming the field otherwise.

    Parameters
    ----------
    dose_to : str
        The quantity asked for, one of :data:`DOSE_QUANTITIES`.

    Returns
    -------
    str
        ``dose_to`` itself.

    Examples
    --------
    >>> check_dose_to("water")
    'water'
    >>> check_dose_to("tissue")
    Traceback (most recent call last):
    ...
    ValueError: dose_to must be 'medium' or 'water', got 'tissue'
    """
    if not isinstance(dose_to, str) or dose_to not in DOSE_QUANTITIES:
        raise ValueError(f"dose_to must be 'medium' or 'water', got {dose_to!r}")
    return dose_to


def _table() -> dict:
    return read_table("dose_to_water")


def _value(entry) -> float:
    return float(entry["value"]) if isinstance(entry, dict) else float(entry)


def bethe_stopping_power(electrons_per_gram: float, mean_excitation_ev: float, *,
                         energy_mev: float | None = None) -> float:
    """Collision mass stopping power of electrons by the Bethe formula, up to a constant factor.

    ICRU Report 37's formula for electrons without the density effect:
    ``S/rho ~ (Z/A) / beta^2 * [ln(tau^2 (tau + 2) / (2 (I / m c^2)^2)) + F(tau)]``, with
    ``F(tau) = 1 - beta^2 + (tau^2 / 8 - (2 tau + 1) ln 2) / (tau + 1)^2``. Only ratios of
    it are used (the constant factor cancels), to scale a published stopping-power ratio
    from one medium to a medium of the same kind.

    Parameters
    ----------
    electrons_per_gram : float
        The medium's <Z/A>, or anything proportional to it (the same scale for both media).
    mean_excitation_ev : float
        The medium's mean excitation energy I (eV).
    energy_mev : float, optional
        Electron kinetic energy (MeV); default the dose-median electron energy of a 6 MV beam
        in water (dose_to_water.toml [bethe]).

    Returns
    -------
    float
        ``S/rho`` in units of ``2 pi r_e^2 m c^2 N_A`` (MeV cm^2/g over that constant).

    Examples
    --------
    >>> water = bethe_stopping_power(0.55508, 75.0)
    >>> bone = bethe_stopping_power(0.52117, 106.4)  # ICRP cortical bone
    >>> round(water / bone, 3)  # no density effect, one energy: the published 1.116 within 1%
    1.106
    """
    bethe = _table()["bethe"]
    rest = _value(bethe["electron_rest_energy_mev"])
    energy = _value(bethe["electron_energy_mev"]) if energy_mev is None else float(energy_mev)
    if not (energy > 0 and mean_excitation_ev > 0 and electrons_per_gram > 0):
        raise ValueError("bethe_stopping_power needs energy_mev, mean_excitation_ev and electrons_per_gram above 0")
    tau = energy / rest
    beta2 = 1 - 1 / (tau + 1) ** 2
    excitation = mean_excitation_ev * 1e-6 / rest
    f_minus = 1 - beta2 + (tau ** 2 / 8 - (2 * tau + 1) * math.log(2)) / (tau + 1) ** 2
    return electrons_per_gram / beta2 * (math.log(tau ** 2 * (tau + 2) / (2 * excitation ** 2)) + f_minus)


def _electrons_per_gram(name: str) -> float:
    # Relative electron density / mass density = <Z/A> / <Z/A>_water: proportional to <Z/A>.
    medium = materials()[name]
    return medium.relative_electron_density / medium.density_g_cc


@lru_cache(maxsize=1)
def stopping_power_ratios() -> dict:
    """s_w,m of every project material that has one, and why the others have none.

    Returns
    -------
    dict
        ``{"ratios": {material: s_w,m}, "missing": {material: reason}}`` over the materials of
        :data:`scenes.materials.MATERIAL_NAMES` (6 MV; see dose_to_water.toml for the source
        and the way each ratio was found).

    Examples
    --------
    >>> found = stopping_power_ratios()
    >>> found["ratios"]["water"], found["ratios"]["icrp_cortical_bone"], found["ratios"]["soft_tissue"]
    (1.0, 1.116, 1.01)
    >>> "titanium" in found["missing"]
    True
    """
    table = _table()
    published = {name: _value(entry["ratio"]) for name, entry in table["reference_media"].items()}
    excitation = {name: _value(entry) for name, entry in table["bethe"]["mean_excitation_energy_ev"].items()}
    rules = table["materials"]
    ratios: dict = {}
    missing: dict = {}

    def ratio_of(name: str, seen: tuple = ()) -> float | None:
        if name in ratios:
            return ratios[name]
        rule = rules.get(name)
        if rule is None or name in seen or name not in materials():
            missing.setdefault(name, table["no_value"].get(name, "no water-to-medium stopping-power ratio in "
                                                                   "planner/radiotherapy/protocols/dose_to_water.toml"))
            return None
        if "medium" in rule:
            value = published[rule["medium"]]
        elif "scaled_from" in rule:
            reference = rule["scaled_from"]
            value = published[reference] * (
                bethe_stopping_power(_electrons_per_gram(reference), excitation[reference])
                / bethe_stopping_power(_electrons_per_gram(name), excitation[name]))
        else:
            (a, b), by = rule["mixture_of"], rule["by"]
            parts = [ratio_of(part, seen + (name,)) for part in (a, b)]
            if None in parts:
                missing[name] = f"a mixture of {a} and {b}, one of which has no ratio"
                return None
            rho, rho_a, rho_b = (materials()[n].density_g_cc for n in (name, a, b))
            # Mass fraction of the second part: by volume mixing at the mixture's density, or
            # equal volumes. Stopping powers add by mass (Bragg additivity).
            mass_b = (rho - rho_a) / (rho_b - rho_a) * rho_b / rho if by == "density" else rho_b / (rho_a + rho_b)
            value = 1 / ((1 - mass_b) / parts[0] + mass_b / parts[1])
        ratios[name] = float(value)
        return ratios[name]

    for name in MATERIAL_NAMES:
        ratio_of(name)
    return {"ratios": ratios, "missing": {name: missing[name] for name in MATERIAL_NAMES if name in missing}}


def water_to_medium_ratio(scene: Scene) -> np.ndarray:
    """s_w,m of each voxel's medium (the scene's ``labels``).

    Parameters
    ----------
    scene : Scene
        Any scene; ValueError names every medium of it that has no ratio (with its voxel
        count), so that dose to water is never reported on a guess.

    Returns
    -------
    numpy.ndarray
        The ratio per voxel, shape ``scene.grid.shape``.

    Examples
    --------
    >>> from scenes.scene import scene_from_arrays
    >>> density = np.ones((1, 1, 3)); density[0, 0, 2] = 1.85
    >>> scene = scene_from_arrays(spacing_mm=(1, 1, 1), density_g_cc=density,
    ...                           media={"icrp_cortical_bone": density > 1.5})
    >>> water_to_medium_ratio(scene).ravel().tolist()
    [1.0, 1.0, 1.116]
    """
    found = stopping_power_ratios()
    lookup = np.array([found["ratios"].get(name, np.nan) for name in MATERIAL_NAMES])
    counts = np.bincount(scene.labels.ravel(), minlength=len(MATERIAL_NAMES))
    lacking = [f"{name} ({int(counts[code])} voxels: {found['missing'].get(name, 'no ratio')})"
               for code, name in enumerate(MATERIAL_NAMES) if counts[code] and np.isnan(lookup[code])]
    if lacking:
        raise ValueError("dose_to='water': no water-to-medium stopping-power ratio for " + "; ".join(lacking)
                         + ". Use dose_to='medium' for this scene.")
    return lookup[scene.labels]


def to_dose_quantity(dose_gy: np.ndarray, scene: Scene, *, dose_to: str = "medium") -> np.ndarray:
    """The dose to medium ``dose_gy`` in the quantity asked for.

    Parameters
    ----------
    dose_gy : numpy.ndarray
        Dose to medium (Gy) on the scene's grid, shape ``scene.grid.shape``.
    scene : Scene
        The scene whose ``labels`` say each voxel's medium.
    dose_to : str, default "medium"
        'medium' returns ``dose_gy`` unchanged; 'water' multiplies each voxel by its
        medium's s_w,m (:func:`water_to_medium_ratio`).

    Returns
    -------
    numpy.ndarray
        Dose (Gy) to medium or to water.

    Examples
    --------
    >>> from scenes.scene import scene_from_arrays
    >>> density = np.ones((1, 1, 2)); density[0, 0, 1] = 1.85
    >>> scene = scene_from_arrays(spacing_mm=(1, 1, 1), density_g_cc=density,
    ...                           media={"icrp_cortical_bone": density > 1.5})
    >>> to_dose_quantity(np.full((1, 1, 2), 2.0), scene, dose_to="water").ravel().tolist()
    [2.0, 2.232]
    """
    check_dose_to(dose_to)
    dose_gy = np.asarray(dose_gy)
    if dose_gy.shape != tuple(scene.grid.shape):
        raise ValueError(f"dose_gy has shape {dose_gy.shape}, the scene's grid is {tuple(scene.grid.shape)}")
    if dose_to == "medium":
        return dose_gy
    return (dose_gy * water_to_medium_ratio(scene)).astype(dose_gy.dtype, copy=False)


def describe_dose_quantity(dose_to: str, scene: Scene | None = None) -> str:
    """One line for a plan's notes: which quantity its dose is, and the ratios applied.

    Parameters
    ----------
    dose_to : str
        'medium' or 'water'.
    scene : Scene, optional
        The planned scene: the ratios of its media are listed (all media's without it).

    Returns
    -------
    str
        The sentence.

    Examples
    --------
    >>> describe_dose_quantity("medium")
    "dose to medium: the energy deposited per unit mass of each voxel's own medium"
    """
    check_dose_to(dose_to)
    if dose_to == "medium":
        return "dose to medium: the energy deposited per unit mass of each voxel's own medium"
    ratios = stopping_power_ratios()["ratios"]
    present = sorted(ratios) if scene is None else sorted({MATERIAL_NAMES[code] for code in np.unique(scene.labels)})
    applied = ", ".join(f"{name} x{ratios[name]:.3f}" for name in present if name in ratios and ratios[name] != 1)
    return ("dose to water: dose to medium times each medium's Spencer-Attix water-to-medium stopping-power ratio "
            f"(6 MV; Siebers et al. 2000){': ' + applied if applied else ''}")
