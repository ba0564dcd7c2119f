"""The commissioned 6 MV photon beam: spectrum, attenuation, collapsed-cone kernel, output.

Everything here is data from ``kernels/data`` (each file names its source) plus the
numbers ``python -m kernels.commission`` wrote to ``kernels/data/beam_6mv.toml``:

* spectrum: Mohan, Chui and Lidofsky (1985) 6 MV, 24 bins of 0.25 MeV (``spectrum_mohan6.csv``);
* attenuation: EGSnrc 521icru mu/rho without coherent scattering for water
  (``attenuation_egsnrc_521icru.csv``), log-log interpolated to the bin centres; media scale
  water's with their relative electron density (Compton-dominated approximation), except the
  tabulated ones (:data:`TABULATED_MEDIA`: ICRP cortical bone, ICRU lung), which keep their own
  coefficients (``media_mu_cm2_g``);
* kernel: the EGSnrc EDKnrc polyenergetic point kernel in water, grouped into zenith bins and
  fitted, per bin, with a sum of exponentials (``collapsed_cone_kernel.npz``), the whole kernel
  and its primary part on shared rates. The primary part carries the energy absorbed locally
  (mu_en/mu, 0.518 of the released energy for the spectrum the kernel was made with); the
  engine weights it by each voxel's own mu_en/mu (its hardened spectrum, its medium), the rest
  by the scatter kernel (:meth:`BeamModel.hardening_directions`); and the first-order change of
  both with the tilt of the photon direction (``tilt_amplitudes``: each zenith bin's integral
  of d(kernel)/d(cos theta) sin theta, from the EDKnrc cones), so that a voxel's kernel can
  follow its own diverging ray (:meth:`BeamModel.tilt_directions`);
* geometry: source 1000 mm from the isocentre; optional Gaussian focal-spot blur at the
  isocentre plane (0 for the commissioning beam, which has none); collimator transmission.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import numpy as np

__all__ = ["BeamModel", "load_beam_model", "read_csv_table", "MEV_PER_G_TO_GY", "cone_directions", "TABULATED_MEDIA"]

#: Media with their own attenuation table: name -> column prefix in attenuation_egsnrc_521icru.csv
#: (EGSnrc 521icru media H2O521ICRU, ICRPBONE521ICRU, LUNG521ICRU; compositions in its header).
TABULATED_MEDIA = {"water": "water", "bone": "bone", "lung": "lung"}

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
    media_mu_cm2_g: dict = field(default_factory=dict)  # tabulated medium -> mu/rho (no coherent) per bin
    #: tabulated medium -> mu_en/mu per bin (share of the released energy absorbed locally)
    media_absorbed_fraction: dict = field(default_factory=dict)
    kernel_primary_amplitudes: np.ndarray | None = None  # (n_zenith, K') the kernel's primary part
    kernel_primary_rates_per_cm: np.ndarray | None = None  # (n_zenith, K')
    #: Weight the kernel's primary part by each voxel's own mu_en/mu (spectral hardening with
    #: depth, the medium's absorption) instead of using the fixed polyenergetic kernel.
    kernel_hardening: bool = False
    #: Tilt each voxel's kernel along its own ray from the source (first order in the ray's
    #: angle to the beam axis), instead of aligning every kernel with the axis.
    kernel_tilting: bool = False
    kernel_tilt_amplitudes: np.ndarray | None = None  # (n_zenith, K'') first-order tilt of the whole kernel
    kernel_primary_tilt_amplitudes: np.ndarray | None = None  # (n_zenith, K'') the same for its primary part
    kernel_tilt_rates_per_cm: np.ndarray | None = None  # (K'',) rates shared by every zenith bin

    @property
    def primary_share(self) -> float:
        """mu_en/mu of water averaged with the kernel's TERMA weights (fluence x E x mu of the
        spectrum it was made with): the share of the kernel carried by its primary part."""
        weights = self.photon_fractions * self.energies_mev * self.mu_water_cm2_g
        return float(np.sum(weights * self.media_absorbed_fraction["water"]) / np.sum(weights))

    def hardening_directions(self, axis_zyx, *, n_azimuth: int | None = None):
        """Cone directions, amplitudes per unit released energy and per unit locally absorbed
        energy, and rates: a voxel releasing T (MeV) of which L is absorbed locally (mu_en/mu)
        sends L / p0 through the primary kernel and (T - L) / (1 - p0) through the scatter
        kernel (whole minus primary), p0 = :attr:`primary_share`. Where L = p0 T (the kernel's own
        spectrum in water) this is the whole kernel."""
        p0 = self.primary_share
        whole, primary, rates = _on_shared_rates(self.kernel_amplitudes, self.kernel_rates_per_cm,
                                                 self.kernel_primary_amplitudes, self.kernel_primary_rates_per_cm)
        scatter = (whole - primary) / (1 - p0)
        local = primary / p0 - scatter
        directions, released, cone_rates = cone_directions(axis_zyx, self.zenith_edges_deg, scatter, rates,
                                                           n_azimuth or self.n_azimuth)
        _, absorbed, _ = cone_directions(axis_zyx, self.zenith_edges_deg, local, rates, n_azimuth or self.n_azimuth)
        return directions, released, absorbed, cone_rates

    def tilt_directions(self, axis_zyx, u_zyx, v_zyx, *, n_azimuth: int | None = None, hardening: bool | None = None):
        """First-order kernel tilting: directions, per-source ``(u, v)`` amplitude pairs and rates.

        A voxel's point kernel points along its own ray from the source, at a small angle to
        the beam axis; the ray's lateral part t = t_u u + t_v v (``u``, ``v`` the beam's lateral
        axes, t_u = ray . u) raises the cosine between the photon direction and a direction
        omega by omega . t. Over cone (m, n) (zenith bin m, azimuth sector n of N) the energy
        then changes by J_m sinc(pi/N) (e_n . t) / N, J_m the bin's integral of
        (d rho / d mu) sin(theta) (``tilt_amplitudes``, fitted from the EDKnrc kernel by
        ``kernels.commission``) and e_n the sector's lateral unit vector, e_n . t =
        (d_mn . t) / sin(zenith_m). The sources ``released * t_u`` and ``released * t_v``
        (with hardening also the locally absorbed ones, mixed as in
        :meth:`hardening_directions`) ride the cones with these amplitudes; over the azimuths
        they cancel, so tilting moves energy between cones and creates none.
        Returns ``(directions, [(amplitudes_u, amplitudes_v) per source], rates)``, the sources
        being (released,) or, with hardening, (released, locally absorbed).
        """
        hardening = self.kernel_hardening if hardening is None else hardening
        if self.kernel_tilt_amplitudes is None:
            raise ValueError("this kernel has no tilt amplitudes: rerun python -m kernels.commission")
        whole = self.kernel_tilt_amplitudes
        if hardening:
            p0 = self.primary_share
            scatter = (whole - self.kernel_primary_tilt_amplitudes) / (1 - p0)
            sources = [scatter, self.kernel_primary_tilt_amplitudes / p0 - scatter]
        else:
            sources = [whole]
        n_az = n_azimuth or self.n_azimuth
        edges = np.radians(np.asarray(self.zenith_edges_deg, float))
        sine = np.sqrt(1 - ((np.cos(edges[:-1]) + np.cos(edges[1:])) / 2) ** 2)
        sector = np.sin(np.pi / n_az) / (np.pi / n_az)  # mean of cos(phi - psi) over a sector, relative
        shared = np.broadcast_to(self.kernel_tilt_rates_per_cm, whole.shape)
        out = []
        for amplitudes in sources:
            per_unit_cosine = amplitudes * (sector / sine)[:, None]
            directions, per_cone, cone_rates = cone_directions(axis_zyx, self.zenith_edges_deg, per_unit_cosine, shared,
                                                               n_az)
            out.append((per_cone * (directions @ np.asarray(u_zyx, float))[:, None],
                        per_cone * (directions @ np.asarray(v_zyx, float))[:, None]))
        return directions, out, cone_rates

    def transport_directions(self, axis_zyx, u_zyx=None, v_zyx=None, *, n_azimuth: int | None = None,
                             hardening: bool | None = None, tilting: bool | None = None):
        """Everything one cone pass carries: ``(directions, amplitudes (n_dir, n_sources, K),
        rates (n_dir, K), n_base)``.

        The sources, in this order: the released energy; with hardening the locally absorbed
        energy (:meth:`hardening_directions`); with tilting each of those times the ray's
        lateral component t_u, then each times t_v (:meth:`tilt_directions`, ``u``/``v`` the
        beam's lateral axes). ``n_base`` counts the first two kinds (1 or 2). Each direction's
        rates are the union of those its tables use (the transport is linear in its source, so
        tables on the same rate add): one pass gives the sum of one pass per table. Components
        no table uses are padding (amplitude 0, rate 1)."""
        hardening = self.kernel_hardening if hardening is None else hardening
        tilting = self.kernel_tilting if tilting is None else tilting
        if hardening:
            directions, released, absorbed, rates = self.hardening_directions(axis_zyx, n_azimuth=n_azimuth)
            tables = [(released, rates), (absorbed, rates)]
        else:
            directions, released, rates = self.directions(axis_zyx, n_azimuth=n_azimuth)
            tables = [(released, rates)]
        n_base = len(tables)
        if tilting:
            if u_zyx is None or v_zyx is None:
                raise ValueError("kernel tilting needs the beam's lateral axes u and v")
            tilt_cones, tilted, tilt_rates = self.tilt_directions(axis_zyx, u_zyx, v_zyx, n_azimuth=n_azimuth,
                                                                  hardening=hardening)
            if not np.array_equal(tilt_cones, directions):  # one pass: the same cones, or nothing to fuse
                raise ValueError("the tilt's cone directions differ from the kernel's")
            tables += [(tilted[b][k], tilt_rates) for k in range(2) for b in range(n_base)]
        n_dir = len(directions)
        used = [np.unique(np.concatenate([r[m][a[m] != 0] for a, r in tables])) for m in range(n_dir)]
        width = max(1, max(len(shared) for shared in used))
        amplitudes, out_rates = np.zeros((n_dir, len(tables), width)), np.ones((n_dir, width))
        for m, shared in enumerate(used):
            out_rates[m, :len(shared)] = shared
            for s, (a, r) in enumerate(tables):
                for value, rate in zip(a[m], r[m]):
                    if value != 0:
                        amplitudes[m, s, int(np.searchsorted(shared, rate))] += value
        return directions, amplitudes, out_rates, n_base

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


def _on_shared_rates(amplitudes, rates, other_amplitudes, other_rates):
    """Two exponential fits (n_zenith, K) and (n_zenith, K') on the union of their rates per
    zenith bin (zero amplitude where a fit does not use a rate; padding rate 1)."""
    n_zenith = amplitudes.shape[0]
    union = [np.unique(np.concatenate([rates[m][amplitudes[m] != 0], other_rates[m][other_amplitudes[m] != 0]]))
             for m in range(n_zenith)]
    width = max(len(u) for u in union)
    out_a, out_b, out_rates = np.zeros((n_zenith, width)), np.zeros((n_zenith, width)), np.ones((n_zenith, width))
    for m, shared in enumerate(union):
        out_rates[m, :len(shared)] = shared
        for source_a, source_r, target in ((amplitudes, rates, out_a), (other_amplitudes, other_rates, out_b)):
            for a, r in zip(source_a[m], source_r[m]):
                if a != 0:
                    target[m, int(np.searchsorted(shared, r))] += a
    return out_a, out_b, out_rates


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
        media_mu_cm2_g={name: loglog(f"{prefix}_mu_rho_nocoh") for name, prefix in TABULATED_MEDIA.items()},
        media_absorbed_fraction={name: loglog(f"{prefix}_mu_en_rho") / loglog(f"{prefix}_mu_rho_nocoh")
                                 for name, prefix in TABULATED_MEDIA.items()},
        kernel_primary_amplitudes=kernel["primary_amplitudes"], kernel_primary_rates_per_cm=kernel["primary_rates_per_cm"],
        kernel_hardening=bool(beam["kernel_hardening"]["value"]),
        kernel_tilting=bool(beam.get("kernel_tilting", {"value": False})["value"]),
        kernel_tilt_amplitudes=kernel["tilt_amplitudes"] if "tilt_amplitudes" in kernel else None,
        kernel_primary_tilt_amplitudes=kernel["primary_tilt_amplitudes"] if "primary_tilt_amplitudes" in kernel else None,
        kernel_tilt_rates_per_cm=kernel["tilt_rates_per_cm"] if "tilt_rates_per_cm" in kernel else None,
    )
