"""Commission the 6 MV beam model: ``python -m kernels.commission [--check]``.

1. Kernel: the EGSnrc polyenergetic point kernel (``kernels/data/edk_water_mohan6.npz``) is
   grouped into zenith bins around the photon direction (finer forward, where the primary
   electrons go) and each bin's cumulative energy fraction C(r) is fitted with
   sum_k A_k (1 - exp(-a_k r)) over a fixed ladder of rates a_k (non-negative least squares,
   weighted to fit the steep part near the origin). The primary part of the kernel (energy
   deposited by the electrons of the first interaction, EDKnrc's ``primary``) is fitted the
   same way: the engine splits each voxel's released energy into the part
   absorbed locally (mu_en/mu of its own spectrum and medium) and the rest, so the kernel
   follows the beam's hardening with depth (:mod:`kernels.engine`). Written to
   ``kernels/data/collapsed_cone_kernel.npz``; the fit residuals are printed.
2. Beam: the 10 x 10 cm, SSD 100 cm water field of the project's Monte Carlo reference is
   computed with the engine, with no free parameter in the physics (point source, no head
   scatter, no electron contamination: the reference beam has none). The residuals against
   the Monte Carlo (depth dose, penumbra, absolute dose per unit fluence) are printed, and
   the calibration (fluence giving 1 Gy at the depth of maximum dose on the axis of that
   field) is written to ``kernels/data/beam_6mv.toml``. This is what "unit beamlet weight"
   means in the planner.

The Monte Carlo reference used for the comparison is the reduced copy kept with the tests
(``tests/data/mc_water_10x10_6mv.npz``).
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

from .beam_model import on_shared_rates

__all__ = ["fit_kernel", "water_field", "penumbra_80_20", "main", "ZENITH_EDGES_DEG", "RATE_LADDER_PER_CM"]

ZENITH_EDGES_DEG = np.array([0, 7.5, 15, 22.5, 30, 45, 60, 75, 90, 112.5, 135, 157.5, 180.0])
RATE_LADDER_PER_CM = np.geomspace(0.03, 60.0, 12)
DATA = Path(str(resources.files("kernels.data")))


def _fit_full_ladder(kernel, edk, zenith_edges_deg, rates):
    """Per zenith bin, NNLS amplitudes on every rate of the ladder (zeros where unused) and the
    worst absolute residual of the cumulative ``kernel`` (cone x shell array) as a fraction of
    the whole kernel's total."""
    r_edges = np.asarray(edk["r_edges_cm"])
    theta = np.asarray(edk["theta_edges_deg"])
    amplitudes, worst = [], 0.0
    for low, high in zip(zenith_edges_deg[:-1], zenith_edges_deg[1:]):
        rows = (theta[:-1] >= low - 1e-9) & (theta[1:] <= high + 1e-9)
        if not rows.any():
            raise ValueError(f"zenith bin {low}-{high} deg contains no kernel cone")
        cumulative = np.concatenate([[0.0], np.cumsum(kernel[rows].sum(axis=0))])
        design = 1 - np.exp(-np.outer(r_edges, rates))
        weight = 1 / np.maximum(cumulative, cumulative[-1] * 0.02)
        amplitude, _ = nnls(design * weight[:, None], cumulative * weight)
        worst = max(worst, float(np.abs(design @ amplitude - cumulative).max() / np.sum(edk["total"])))
        amplitudes.append(amplitude)
    return np.array(amplitudes), worst


def fit_kernel(edk: dict, zenith_edges_deg=ZENITH_EDGES_DEG, rates=RATE_LADDER_PER_CM):
    """Exponential fits of the cumulative kernel per zenith bin.

    Returns amplitudes (n_zenith, K), rates (n_zenith, K) and the worst absolute residual of
    C(r) as a fraction of the whole kernel.
    """
    amplitudes, worst = _fit_full_ladder(np.asarray(edk["total"]), edk, zenith_edges_deg, rates)
    (amplitudes,), fitted_rates = on_shared_rates([(amplitudes, rates)])  # the ladder's rates this fit uses
    return amplitudes, fitted_rates, worst


def fit_tilt(edk: dict, component: str, rates, zenith_edges_deg=ZENITH_EDGES_DEG):
    """Per zenith bin, the first-order change of its cumulative kernel when the photon
    direction tilts: J_m(r) = integral over the bin of (d rho / d mu) sin(theta) dmu, with
    rho(mu, r) the energy within r per unit cosine of the kernel's 3.75 degree cones (each
    jump of rho between two cones, times the sine at their edge; an edge on a bin boundary
    counts half to each side), fitted with sum_c J_c (1 - exp(-a_c r)) on ``rates`` (least
    squares: a derivative may be negative). Returns (n_zenith, len(rates)) and the worst
    residual as a fraction of the bin's J(60 cm)."""
    r_edges = np.asarray(edk["r_edges_cm"])
    theta = np.radians(np.asarray(edk["theta_edges_deg"]))
    mu = np.cos(theta)
    cumulative = np.concatenate([np.zeros((theta.size - 1, 1)), np.cumsum(np.asarray(edk[component]), axis=1)], axis=1)
    density = cumulative / (mu[:-1] - mu[1:])[:, None]
    edges = np.radians(np.asarray(zenith_edges_deg, float))
    derivative = np.zeros((edges.size - 1, r_edges.size))
    for k in range(1, theta.size - 1):
        jump = (density[k - 1] - density[k]) * np.sin(theta[k])
        on_edge = np.flatnonzero(np.isclose(edges, theta[k]))
        if on_edge.size:
            derivative[on_edge[0] - 1] += jump / 2
            derivative[on_edge[0]] += jump / 2
        else:
            derivative[int(np.searchsorted(edges, theta[k])) - 1] += jump
    design = 1 - np.exp(-np.outer(r_edges, rates))
    out, worst = [], 0.0
    for row in derivative:
        weight = 1 / np.maximum(np.abs(row), np.abs(row[-1]) * 0.02 + 1e-30)
        amplitude = np.linalg.lstsq(design * weight[:, None], row * weight, rcond=None)[0]
        worst = max(worst, float(np.abs(design @ amplitude - row).max() / max(abs(row[-1]), 1e-30)))
        out.append(amplitude)
    return np.array(out), worst


def water_field(model, *, field_mm=100.0, ssd_mm=1000.0, spacing_mm=2.5, size_mm=300.0, depth_mm=300.0):
    """Dose per unit on-axis fluence in a water cube, beam along +z entering at z = 0.

    Voxel edges fall on multiples of the spacing (the field's axis on a voxel corner, as in
    the Monte Carlo reference). Returns dose (z, y, x), the centre coordinates, and the
    released and deposited energies.
    """
    from .engine import square_field, superposition_dose

    n_xy = int(round(size_mm / spacing_mm))
    n_z = int(round(depth_mm / spacing_mm))
    spacing = np.array([spacing_mm] * 3)
    origin = np.array([spacing_mm / 2, -size_mm / 2 + spacing_mm / 2, -size_mm / 2 + spacing_mm / 2])
    water = np.ones((n_z, n_xy, n_xy))
    # The fluence map is defined at the isocentre plane; the source-axis distance of the
    # model is the distance to that plane, here the surface (SSD setup).
    source = np.array([-ssd_mm, 0.0, 0.0])
    fluence, fluence_origin, fluence_spacing = square_field(field_mm)
    geometry_model = model
    if abs(model.source_axis_distance_mm - ssd_mm) > 1e-9:
        from dataclasses import replace

        geometry_model = replace(model, source_axis_distance_mm=ssd_mm)
    dose, released, deposited = superposition_dose(
        water, water, origin, spacing, source, (1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.0, 1.0, 0.0), fluence,
        fluence_origin, fluence_spacing, geometry_model)
    z = origin[0] + spacing_mm * np.arange(n_z)
    xy = origin[1] + spacing_mm * np.arange(n_xy)
    return dose, z, xy, released, deposited


def penumbra_80_20(x_mm, profile):
    """80%-20% distance (mm) on the positive side of a profile normalised at its centre."""
    x_mm = np.asarray(x_mm, float)
    profile = np.asarray(profile, float)
    centre = profile[np.argsort(np.abs(x_mm))[:2]].mean()
    half = x_mm >= 0
    x, p = x_mm[half], profile[half] / centre
    order = np.argsort(x)
    x, p = x[order], p[order]
    x80 = np.interp(-0.8, -p, x)
    x20 = np.interp(-0.2, -p, x)
    x50 = np.interp(-0.5, -p, x)
    return x20 - x80, x50


def _compare(model, reference_path):
    mc = np.load(reference_path)
    dose, z, xy, released, deposited = water_field(model)
    mc_dose = mc["dose_sym_gy"].astype(float)
    x_mc = 5 * (mc["x_edges_cm"][:-1] + mc["x_edges_cm"][1:])
    columns = np.searchsorted(xy, x_mc - 1e-6)
    ours = dose[:, columns][:, :, columns]
    # The Monte Carlo 'per history' dose is per unit on-axis fluence of the field: compare
    # shapes normalised at dmax and the absolute scale separately.
    centre = slice(len(x_mc) // 2 - 1, len(x_mc) // 2 + 1)
    cax_ours = ours[:, centre, centre].mean(axis=(1, 2))
    cax_mc = mc_dose[:, centre, centre].mean(axis=(1, 2))
    depth = z / 10
    print(f"dmax: model {depth[np.argmax(cax_ours)]:.3f} cm, Monte Carlo {depth[np.argmax(cax_mc)]:.3f} cm")
    beyond = depth > depth[np.argmax(cax_mc)]
    relative = cax_ours / cax_ours.max() - cax_mc / cax_mc.max()
    print(f"depth dose beyond dmax: max |difference| {100 * np.abs(relative[beyond & (depth < 28)]).max():.2f}% of max")
    for d in (5, 10, 20):
        k = int(np.argmin(np.abs(depth - (d + 0.125))))
        pm, pp = mc_dose[k, centre].mean(axis=0), ours[k, centre].mean(axis=0)
        (pen_mc, x50_mc), (pen_ours, x50_ours) = penumbra_80_20(x_mc, pm), penumbra_80_20(x_mc, pp)
        print(f"{d:2d} cm: 80-20 penumbra model {pen_ours:.2f} mm, Monte Carlo {pen_mc:.2f} mm; "
              f"50% edge {x50_ours:.2f} vs {x50_mc:.2f} mm")
    ratio = cax_ours / cax_mc
    k10 = int(np.argmin(np.abs(depth - 10.125)))
    print(f"absolute dose per unit fluence, model / Monte Carlo at 10 cm: {ratio[k10]:.4f}")
    print(f"energy deposited / released in the 30 cm cube: {deposited.sum() / released.sum():.4f}")
    return cax_ours.max(), float(depth[np.argmax(cax_ours)]), float(ratio[k10])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kernels.commission", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only print the residuals, write nothing")
    parser.add_argument("--reference", default=str(Path(__file__).resolve().parents[1] / "tests" / "data" / "mc_water_10x10_6mv.npz"))
    args = parser.parse_args(argv)
    edk = dict(np.load(DATA / "edk_water_mohan6.npz"))
    amplitudes, rates, worst = fit_kernel(edk)
    primary, primary_rates, worst_primary = fit_kernel(dict(edk, total=edk["primary"]))
    worst_primary *= float(np.sum(edk["primary"]) / np.sum(edk["total"]))  # as a fraction of the whole kernel
    print(f"kernel: {len(ZENITH_EDGES_DEG) - 1} zenith bins, up to {amplitudes.shape[1]} exponentials each; "
          f"worst residual of the cumulative kernel {100 * worst:.2f}% of the total (primary part "
          f"{100 * worst_primary:.2f}%); fitted total {amplitudes.sum():.4f} (kernel {float(np.sum(edk['total'])):.4f}), "
          f"primary {primary.sum():.4f} (kernel {float(np.sum(edk['primary'])):.4f})")
    tilt_rates = np.unique(np.concatenate([rates[amplitudes != 0], primary_rates[primary != 0]]))
    tilt, worst_tilt = fit_tilt(edk, "total", tilt_rates)
    primary_tilt, worst_primary_tilt = fit_tilt(edk, "primary", tilt_rates)
    print(f"kernel tilt: {tilt_rates.size} shared rates; worst residual {100 * worst_tilt:.1f}% (primary "
          f"{100 * worst_primary_tilt:.1f}%) of each bin's derivative")
    if not args.check:
        np.savez(DATA / "collapsed_cone_kernel.npz", zenith_edges_deg=ZENITH_EDGES_DEG, amplitudes=amplitudes,
                 rates_per_cm=rates, primary_amplitudes=primary, primary_rates_per_cm=primary_rates,
                 tilt_amplitudes=tilt, primary_tilt_amplitudes=primary_tilt, tilt_rates_per_cm=tilt_rates,
                 source=np.array("fitted by kernels.commission to edk_water_mohan6.npz (EGSnrc EDKnrc): the whole "
                                 "kernel (amplitudes, rates_per_cm), its primary part (primary_*), and their "
                                 "first-order change with the photon direction's tilt (*tilt_amplitudes, on "
                                 "tilt_rates_per_cm)"))
    from .beam_model import load_beam_model

    load_beam_model.cache_clear()
    model = load_beam_model()
    dose_max, dmax_cm, ratio = _compare(model, args.reference)
    if not args.check:
        path = DATA / "beam_6mv.toml"
        text = path.read_text()
        head, _, rest = text.partition("\n[calibration]")
        tail = rest[rest.index("\n[") :] if "\n[" in rest else ""  # the tables after it ([sources]) stay
        head = head.rstrip() + "\n\n"
        head += ("[calibration]\n# Written by python -m kernels.commission: unit beamlet weight = the fluence (photons/cm2\n"
                 "# at the isocentre plane) that gives 1 Gy at dmax on the axis of a 10 x 10 cm field at SSD 100 cm in water.\n")
        head += f"fluence_per_cm2_for_1gy = {1.0 / dose_max:.6e}\ndmax_cm = {dmax_cm:.3f}\nmodel_over_monte_carlo_10cm = {ratio:.4f}\n"
        path.write_text(head + tail)
        print(f"wrote {DATA / 'collapsed_cone_kernel.npz'} and {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
