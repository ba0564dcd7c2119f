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

__all__ = ["BeamModel", "load_beam_model", "read_csv_table", "MEV_PER_G_TO_GY", "cone_directions", "TABULATED_MEDIA",
           "on_shared_rates"]

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
        spectrum in water) this is the whole kernel.

        Parameters
        ----------
        axis_zyx : array_like of float, shape (3,)
            The photons' direction (z, y, x), any length (normalised here).
        n_azimuth : int, optional
            Azimuths per zenith bin, >= 3 (ValueError otherwise); default :attr:`n_azimuth`.

        Returns
        -------
        directions : numpy.ndarray of float64, shape (n_dir, 3)
            Unit cone axes, ``n_dir = n_zenith * n_azimuth`` (:func:`cone_directions`).
        released : numpy.ndarray of float64, shape (n_dir, K)
            Energy fraction per cone and component per MeV released (the scatter kernel over
            1 - p0, on the rates shared with the primary part).
        absorbed : numpy.ndarray of float64, shape (n_dir, K)
            The same per MeV absorbed locally (primary / p0 minus the released table).
        rates : numpy.ndarray of float64, shape (n_dir, K)
            Attenuation rate of each component in water (1/cm); padding components have
            amplitude 0 and rate 1 (:func:`on_shared_rates`).
        """
        p0 = self.primary_share
        (whole, primary), rates = on_shared_rates([(self.kernel_amplitudes, self.kernel_rates_per_cm),
                                                   (self.kernel_primary_amplitudes, self.kernel_primary_rates_per_cm)])
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

        Parameters
        ----------
        axis_zyx : array_like of float, shape (3,)
            The beam's axis (z, y, x), any length (normalised here).
        u_zyx, v_zyx : array_like of float, shape (3,)
            The beam's lateral unit axes (z, y, x).
        n_azimuth : int, optional
            Azimuths per zenith bin, >= 3 (ValueError otherwise); default :attr:`n_azimuth`.
        hardening : bool, optional
            Whether the sources are (released, locally absorbed) rather than (released,);
            default :attr:`kernel_hardening`.

        Returns
        -------
        directions : numpy.ndarray of float64, shape (n_dir, 3)
            Unit cone axes, the same as :meth:`directions` gives.
        amplitudes : list of (numpy.ndarray, numpy.ndarray)
            Per source (released, and with hardening locally absorbed), the pair of (n_dir,
            K'') energy fractions per cone and component for the sources times t_u and times
            t_v (per MeV times the dimensionless ray component); each sums to zero over the
            azimuths of a zenith bin.
        rates : numpy.ndarray of float64, shape (n_dir, K'')
            :attr:`kernel_tilt_rates_per_cm` for every cone (1/cm).

        Raises
        ------
        ValueError
            If the kernel has no tilt amplitudes (commissioned before tilting).
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
        tables on the same rate add, :func:`on_shared_rates`): one pass gives the sum of one pass
        per table. Components no table uses are padding (amplitude 0, rate 1).

        Parameters
        ----------
        axis_zyx : array_like of float, shape (3,)
            The beam's axis (z, y, x), any length (normalised here).
        u_zyx, v_zyx : array_like of float, shape (3,), optional
            The beam's lateral unit axes (z, y, x); required with tilting (ValueError).
        n_azimuth : int, optional
            Azimuths per zenith bin, >= 3 (ValueError otherwise); default :attr:`n_azimuth`.
        hardening, tilting : bool, optional
            Override :attr:`kernel_hardening` and :attr:`kernel_tilting`.

        Returns
        -------
        directions : numpy.ndarray of float64, shape (n_dir, 3)
            Unit cone axes, ``n_dir = n_zenith * n_azimuth``.
        amplitudes : numpy.ndarray of float64, shape (n_dir, n_sources, K)
            Energy fraction per cone, source and component (per MeV of the source;
            ``n_sources = n_base`` without tilting, ``3 * n_base`` with it), in the order of
            :func:`kernels.engine.cone_sources`.
        rates : numpy.ndarray of float64, shape (n_dir, K)
            Attenuation rate of each component in water (1/cm), shared by every source.
        n_base : int
            1, or 2 with hardening.
        """
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
        per_table, out_rates = on_shared_rates(tables)
        amplitudes = np.stack(per_table, axis=1)
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


def on_shared_rates(tables):
    """Several sums of exponentials, row by row, on the union of the rates they use.

    The collapsed-cone transport is linear in its source and each exponential component is
    transported on its own, so tables on the same rate add: one table on the union of the
    rates carries them all. Used for the kernel and its primary part
    (:meth:`BeamModel.hardening_directions`), for every source of one cone pass
    (:meth:`BeamModel.transport_directions`) and for the commissioning fits on the rate
    ladder (:mod:`kernels.commission`).

    Parameters
    ----------
    tables : sequence of (amplitudes, rates)
        Each ``amplitudes`` (n_rows, K_i) (energy fraction per component; a row is a zenith
        bin or a cone direction) with its ``rates`` (n_rows, K_i) in 1/cm, or (K_i,) when
        every row uses the same rates. Components of zero amplitude are ignored, whatever
        their rate.

    Returns
    -------
    amplitudes : list of numpy.ndarray of float64, each (n_rows, width)
        Each table on the shared rates of its row, in the order given (zero where a table
        does not use a rate; amplitudes of one table on the same rate add).
    rates : numpy.ndarray of float64, shape (n_rows, width)
        Per row, the sorted union of the rates with a non-zero amplitude in any table, padded
        with rate 1 (amplitude 0 in every table) to ``width``, the longest union (at least 1).

    Examples
    --------
    >>> import numpy as np
    >>> (a, b), rates = on_shared_rates([(np.array([[0.2, 0.3]]), np.array([[1.5, 4.0]])),
    ...                                  (np.array([[0.1, 0.0]]), np.array([[0.5, 9.0]]))])
    >>> rates.tolist(), a.tolist(), b.tolist()
    ([[0.5, 1.5, 4.0]], [[0.0, 0.2, 0.3]], [[0.1, 0.0, 0.0]])
    """
    tables = [(np.asarray(a, dtype=np.float64), np.broadcast_to(np.asarray(r, dtype=np.float64), np.shape(a)))
              for a, r in tables]
    n_rows = tables[0][0].shape[0]
    union = [np.unique(np.concatenate([r[m][a[m] != 0] for a, r in tables])) for m in range(n_rows)]
    width = max(1, max(len(shared) for shared in union))
    out = [np.zeros((n_rows, width)) for _ in tables]
    out_rates = np.ones((n_rows, width))
    for m, shared in enumerate(union):
        out_rates[m, :len(shared)] = shared
        for (a, r), target in zip(tables, out):
            for value, rate in zip(a[m], r[m]):
                if value != 0:
                    target[m, int(np.searchsorted(shared, rate))] += value
    return out, out_rates


def _beam_config_text() -> str:
    """The text of ``kernels/data/beam_6mv.toml`` (one place, so that tests can replace it)."""
    return resources.files("kernels.data").joinpath("beam_6mv.toml").read_text(encoding="utf-8")


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
    config = tomllib.loads(_beam_config_text())
    beam = config.get("beam", {})

    def setting(key):  # every [beam] setting is required: a missing one is an error, not a silent default
        if not isinstance(beam.get(key), dict) or "value" not in beam[key]:
            raise ValueError(f"kernels/data/beam_6mv.toml: [beam] {key} is missing (every [beam] setting is required, "
                             f"as {key} = {{ value = ..., source = ..., note = ... }})")
        return beam[key]["value"]

    return BeamModel(
        energies_mev=energies, photon_fractions=fractions,
        mu_water_cm2_g=loglog("water_mu_rho_nocoh"), mu_en_water_cm2_g=loglog("water_mu_en_rho"),
        zenith_edges_deg=kernel["zenith_edges_deg"], kernel_amplitudes=kernel["amplitudes"],
        kernel_rates_per_cm=kernel["rates_per_cm"],
        source_axis_distance_mm=float(setting("source_axis_distance_mm")),
        focal_spot_sigma_mm=float(setting("focal_spot_sigma_mm")),
        collimator_transmission=float(setting("collimator_transmission")),
        n_azimuth=int(setting("n_azimuth")),
        calibration=dict(config.get("calibration", {})),
        media_mu_cm2_g={name: loglog(f"{prefix}_mu_rho_nocoh") for name, prefix in TABULATED_MEDIA.items()},
        media_absorbed_fraction={name: loglog(f"{prefix}_mu_en_rho") / loglog(f"{prefix}_mu_rho_nocoh")
                                 for name, prefix in TABULATED_MEDIA.items()},
        kernel_primary_amplitudes=kernel["primary_amplitudes"], kernel_primary_rates_per_cm=kernel["primary_rates_per_cm"],
        kernel_hardening=bool(setting("kernel_hardening")),
        kernel_tilting=bool(setting("kernel_tilting")),
        kernel_tilt_amplitudes=kernel["tilt_amplitudes"] if "tilt_amplitudes" in kernel else None,
        kernel_primary_tilt_amplitudes=kernel["primary_tilt_amplitudes"] if "primary_tilt_amplitudes" in kernel else None,
        kernel_tilt_rates_per_cm=kernel["tilt_rates_per_cm"] if "tilt_rates_per_cm" in kernel else None,
    )
