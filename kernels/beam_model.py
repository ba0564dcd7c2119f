"""The commissioned 6 MV photon beam: spectrum, attenuation, collapsed-cone kernel, output.

Everything here is data from ``kernels/data`` (each file names its source) plus the
numbers ``python -m kernels.commission`` wrote to ``kernels/data/beam_6mv.toml``:

* spectrum: Mohan, Chui and Lidofsky (1985) 6 MV, 24 bins of 0.25 MeV (``spectrum_mohan6.csv``);
* attenuation: EGSnrc 521icru mu/rho without coherent scattering for water
  (``attenuation_egsnrc_521icru.csv``), log-log interpolated to the bin centres; other media
  scale with their relative electron density (Compton-dominated approximation);
* kernel: the EGSnrc EDKnrc polyenergetic point kernel in water, grouped into zenith bins and
  fitted, per bin, with a sum of exponentials (``collapsed_cone_kernel.npz``);
* geometry: source 1000 mm from the isocentre; optional Gaussian focal-spot blur at the
  isocentre plane (0 for the commissioning beam, which has none); collimator transmission.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import numpy as np

__all__ = ["BeamModel", "load_beam_model", "read_csv_table", "MEV_PER_G_TO_GY", "cone_directions"]

#: 1 MeV/g in Gy (J/kg): 1.602176634e-13 J / 1e-3 kg.
MEV_PER_G_TO_GY = 1.602176634e-10


def read_csv_table(name: str) -> dict[str, np.ndarray]:
    """A packaged CSV (comment lines start with '#', then a header row) as name -> column."""
    text = resources.files("kernels.data").joinpath(name).read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    header = rows[0].split(",")
    values = np.array([[float(x) for x in row.split(",")] for row in rows[1:]])
    return {key: values[:, i] for i, key in enumerate(header)}


@dataclass(frozen=True, eq=False)
class BeamModel:
    """Arrays describing one photon beam (all numpy; handed to the kernels as they are)."""

    energies_mev: np.ndarray
    photon_fractions: np.ndarray
    mu_water_cm2_g: np.ndarray
    mu_en_water_cm2_g: np.ndarray
    zenith_edges_deg: np.ndarray
    kernel_amplitudes: np.ndarray  # (n_zenith, K) energy fraction per component
    kernel_rates_per_cm: np.ndarray  # (n_zenith, K)
    source_axis_distance_mm: float = 1000.0
    focal_spot_sigma_mm: float = 0.0
    collimator_transmission: float = 0.0
    n_azimuth: int = 6
    calibration: dict = field(default_factory=dict)

    @property
    def mean_energy_mev(self) -> float:
        return float(np.sum(self.photon_fractions * self.energies_mev))

    def directions(self, axis_zyx, *, n_azimuth: int | None = None):
        """Cone directions, amplitudes and rates for a beam travelling along ``axis_zyx``."""
        return cone_directions(axis_zyx, self.zenith_edges_deg, self.kernel_amplitudes, self.kernel_rates_per_cm,
                               n_azimuth or self.n_azimuth)


def cone_directions(axis_zyx, zenith_edges_deg, amplitudes, rates, n_azimuth):
    """Unit vectors (n, 3) around ``axis_zyx`` at each zenith bin's solid-angle-mean zenith and
    ``n_azimuth`` azimuths; each direction carries its bin's amplitudes / n_azimuth."""
    if n_azimuth < 3:
        raise ValueError(f"n_azimuth must be >= 3, got {n_azimuth}")
    axis = np.asarray(axis_zyx, float)
    axis = axis / np.linalg.norm(axis)
    helper = np.array([0.0, 1.0, 0.0]) if abs(axis[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    first = np.cross(axis, helper)
    first /= np.linalg.norm(first)
    second = np.cross(axis, first)
    edges = np.radians(np.asarray(zenith_edges_deg, float))
    zenith = np.arccos((np.cos(edges[:-1]) + np.cos(edges[1:])) / 2)
    directions, amps, rats = [], [], []
    for m, theta in enumerate(zenith):
        for n in range(n_azimuth):
            phi = 2 * np.pi * (n + 0.5) / n_azimuth
            directions.append(np.cos(theta) * axis + np.sin(theta) * (np.cos(phi) * first + np.sin(phi) * second))
            amps.append(amplitudes[m] / n_azimuth)
            rats.append(rates[m])
    return np.array(directions), np.array(amps), np.array(rats)


@lru_cache(maxsize=1)
def load_beam_model() -> BeamModel:
    """The commissioned 6 MV beam model (cached)."""
    spectrum = read_csv_table("spectrum_mohan6.csv")
    energies = (spectrum["e_low_MeV"] + spectrum["e_high_MeV"]) / 2
    fractions = spectrum["weight_per_bin_normalised"] / spectrum["weight_per_bin_normalised"].sum()
    table = read_csv_table("attenuation_egsnrc_521icru.csv")

    def loglog(column):
        return np.exp(np.interp(np.log(energies), np.log(table["energy_MeV"]), np.log(table[column])))

    kernel = np.load(str(resources.files("kernels.data").joinpath("collapsed_cone_kernel.npz")))
    config = tomllib.loads(resources.files("kernels.data").joinpath("beam_6mv.toml").read_text(encoding="utf-8"))
    beam = config["beam"]
    return BeamModel(
        energies_mev=energies, photon_fractions=fractions,
        mu_water_cm2_g=loglog("water_mu_rho_nocoh"), mu_en_water_cm2_g=loglog("water_mu_en_rho"),
        zenith_edges_deg=kernel["zenith_edges_deg"], kernel_amplitudes=kernel["amplitudes"],
        kernel_rates_per_cm=kernel["rates_per_cm"],
        source_axis_distance_mm=float(beam["source_axis_distance_mm"]["value"]),
        focal_spot_sigma_mm=float(beam["focal_spot_sigma_mm"]["value"]),
        collimator_transmission=float(beam["collimator_transmission"]["value"]),
        n_azimuth=int(beam["n_azimuth"]["value"]),
        calibration=dict(config.get("calibration", {})),
    )
