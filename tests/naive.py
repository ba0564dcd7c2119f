"""Slow, obvious NumPy references for every kernel, used on small random inputs.

Each function says plainly what its kernel computes; none shares code with the kernels.
"""

from __future__ import annotations

import numpy as np


def path_integral(density, origin_mm, spacing_mm, start, end, samples=100_001):
    """Midpoint-rule integral of density along start -> end, nearest-voxel lookup."""
    start, end = np.asarray(start, float), np.asarray(end, float)
    t = (np.arange(samples) + 0.5) / samples
    points = start[None] + t[:, None] * (end - start)[None]
    index = np.floor((points - (np.asarray(origin_mm) - np.asarray(spacing_mm) / 2)) / np.asarray(spacing_mm)).astype(int)
    inside = np.all((index >= 0) & (index < np.array(density.shape)), axis=1)
    values = np.zeros(samples)
    values[inside] = density[index[inside, 0], index[inside, 1], index[inside, 2]]
    return values.mean() * np.linalg.norm(end - start)


def terma(electron_density, origin_mm, spacing_mm, source, axis, u, v, sad_mm, fluence, fluence_origin, fluence_spacing,
          energies, fractions, mu, subsamples):
    """Energy released per voxel, looping over voxels and sub-points in Python. A media stack
    (``electron_density`` (n, nz, ny, nx) with ``mu`` (n, n_energy)) attenuates each medium
    with its own coefficients along its own path integral."""
    scale = np.asarray(electron_density, float)
    mu = np.asarray(mu, float)
    if scale.ndim == 3:
        scale, mu = scale[None], mu[None]
    shape = scale.shape[1:]
    out = np.zeros(shape)
    spacing = np.asarray(spacing_mm, float)
    for k, j, i in np.ndindex(shape):
        present = np.flatnonzero(scale[:, k, j, i] > 0)
        if present.size == 0:
            continue
        here = present[-1]
        rho = scale[here, k, j, i]
        centre = np.asarray(origin_mm) + spacing * (k, j, i)
        total = 0.0
        offsets = (np.arange(subsamples) + 0.5) / subsamples - 0.5
        for a in offsets:
            for b in offsets:
                for c in offsets:
                    p = centre + spacing * (a, b, c) - source
                    depth = p @ axis
                    if depth <= 0:
                        continue
                    lateral_u = (p @ u) * sad_mm / depth
                    lateral_v = (p @ v) * sad_mm / depth
                    col = int(np.floor((lateral_u - fluence_origin[1]) / fluence_spacing[1] + 0.5))
                    row = int(np.floor((lateral_v - fluence_origin[0]) / fluence_spacing[0] + 0.5))
                    if 0 <= row < fluence.shape[0] and 0 <= col < fluence.shape[1]:
                        total += fluence[row, col] * (sad_mm / depth) ** 2
        if total == 0:
            continue
        total /= subsamples**3
        depth_g = np.array([0.1 * path_integral(scale[m], origin_mm, spacing_mm, source, centre, samples=20_001)
                            for m in range(scale.shape[0])])
        released = np.sum(fractions * energies * mu[here] * np.exp(-(mu * depth_g[:, None]).sum(axis=0)))
        out[k, j, i] = total * released * rho * np.prod(spacing) / 1000
    return out


def collapsed_cone(released, eta, spacing_mm, directions, amplitudes, rates, line_voxels, release_samples=400):
    """Direct summation along each collapsed line: energy released uniformly along a voxel's
    segment reaches each downstream point with the kernel's cumulative fraction in
    density-scaled distance; voxel deposit = fraction entering minus fraction leaving.

    ``line_voxels(direction)`` returns the ordered voxel lists of the lines (the kernel's
    own lattice), so this checks the transport arithmetic, not the lattice."""
    out = np.zeros(released.shape)
    for m, direction in enumerate(directions):
        lines, step_mm = line_voxels(direction)
        for line in lines:
            tau_lengths = np.array([eta[v] * step_mm / 10 for v in line])  # cm of water per voxel
            edges = np.concatenate([[0.0], np.cumsum(tau_lengths)])
            for s, source in enumerate(line):
                energy = released[source]
                if energy == 0:
                    continue
                # Release points spread uniformly over the source segment.
                starts = edges[s] + (np.arange(release_samples) + 0.5) / release_samples * tau_lengths[s]
                for t in range(s, len(line)):
                    enter = np.maximum(edges[t] - starts, 0.0)
                    leave = np.maximum(edges[t + 1] - starts, 0.0)
                    fraction = 0.0
                    for a, rate in zip(amplitudes[m], rates[m]):
                        fraction += a * np.mean(np.exp(-rate * enter) - np.exp(-rate * leave))
                    out[line[t]] += energy * fraction
    return out


def three_pass_transport(released, absorbed, eta, spacing_mm, model, axis, u, v, tilt, *, n_azimuth=None):
    """The engine's former formulation of kernel tilting: one cone pass for the released energy
    (with ``absorbed``, the hardening kernel's second source), then one more pass per lateral
    ray component ``t`` in ``tilt`` with sources ``released * t`` (and ``absorbed * t``) on the
    tilt amplitudes and rates. The fused single pass must give the same deposit to rounding."""
    from kernels.superposition_cpu import collapsed_cone as cone

    hardening = absorbed is not None
    if hardening:
        directions, amplitudes, local_amplitudes, rates = model.hardening_directions(axis, n_azimuth=n_azimuth)
        deposited = cone(released, eta, spacing_mm, directions, amplitudes, rates, local_mev=absorbed,
                         local_amplitudes=local_amplitudes)
    else:
        directions, amplitudes, rates = model.directions(axis, n_azimuth=n_azimuth)
        deposited = cone(released, eta, spacing_mm, directions, amplitudes, rates)
    if len(tilt):
        directions, sources, rates = model.tilt_directions(axis, u, v, n_azimuth=n_azimuth, hardening=hardening)
        for k, t in enumerate(tilt):
            local = dict(local_mev=absorbed * t, local_amplitudes=sources[1][k]) if hardening else {}
            deposited = cone(released * t, eta, spacing_mm, directions, sources[0][k], rates, out=deposited, **local)
    return deposited


def csr_matvec(matrix, weights):
    return matrix.toarray().astype(np.float64) @ np.asarray(weights, np.float64)


def csr_rmatvec(matrix, gradient):
    return matrix.toarray().astype(np.float64).T @ np.asarray(gradient, np.float64)


def gamma_index(reference, evaluated, spacing_mm, dose_percent, distance_mm, cutoff_percent):
    """Global 3-D gamma by brute force over every evaluated voxel (small grids only)."""
    reference = np.asarray(reference, float)
    evaluated = np.asarray(evaluated, float)
    norm = reference.max() * dose_percent / 100
    coords = np.stack(np.meshgrid(*[np.arange(n) * s for n, s in zip(reference.shape, spacing_mm)], indexing="ij"), -1)
    points = coords.reshape(-1, 3)
    values = evaluated.ravel()
    gamma = np.full(reference.shape, np.nan)
    for index in np.ndindex(reference.shape):
        if reference[index] < reference.max() * cutoff_percent / 100:
            continue
        distance2 = np.sum((points - coords[index]) ** 2, axis=1) / distance_mm**2
        dose2 = (values - reference[index]) ** 2 / norm**2
        gamma[index] = np.sqrt(np.min(distance2 + dose2))
    return gamma


def pencil_influence(a, b, depth, scale, beamlets_uv, table, depth_step, lateral_step, cutoff, *, eta=None,
                     narrow=None, beamlet_mm=None):
    """Dense influence matrix: for every voxel and beamlet, the table interpolated (linear in
    depth, bilinear laterally, zero outside) at the voxel's offset, times the voxel's scale.

    Where ``eta`` < 1: the narrow-beamlet table summed over the beamlet's square stretched by
    eta (each narrow sample spread evenly over its cell, weighted by the cell's overlap with
    eta (offset +- beamlet_mm / 2) on each axis), kept when >= cutoff * eta^2."""
    n_depth, n_v, n_u = table.shape
    dense = np.zeros((len(a), len(beamlets_uv)))
    depth_axis = (np.arange(n_depth) + 0.5) * depth_step
    lateral_v = (np.arange(n_v) - (n_v - 1) / 2) * lateral_step
    lateral_u = (np.arange(n_u) - (n_u - 1) / 2) * lateral_step
    eta = np.ones(len(a)) if eta is None else np.asarray(eta, float)

    def overlap(centres, low, high):
        return np.clip(np.minimum(centres + lateral_step / 2, high) - np.maximum(centres - lateral_step / 2, low), 0,
                       None) / lateral_step

    for row in range(len(a)):
        d = np.clip(depth[row], depth_axis[0], depth_axis[-1])
        if eta[row] < 1:
            n_lat = narrow.shape[1]
            centres = (np.arange(n_lat) - (n_lat - 1) / 2) * lateral_step
            plane = np.array([np.interp(d, depth_axis, narrow[:, i, j]) for i in range(n_lat)
                              for j in range(n_lat)]).reshape(n_lat, n_lat)
            for col, (u, v) in enumerate(beamlets_uv):
                dv, du = b[row] - v, a[row] - u
                half = beamlet_mm / 2
                fv = overlap(centres, eta[row] * (dv - half), eta[row] * (dv + half))
                fu = overlap(centres, eta[row] * (du - half), eta[row] * (du + half))
                value = fv @ plane @ fu * scale[row]
                if value >= cutoff * eta[row] ** 2:
                    dense[row, col] = value
            continue
        plane = np.array([np.interp(d, depth_axis, table[:, i, j]) for i in range(n_v) for j in range(n_u)]).reshape(n_v, n_u)
        for col, (u, v) in enumerate(beamlets_uv):
            dv, du = b[row] - v, a[row] - u
            if not (lateral_v[0] <= dv <= lateral_v[-1] and lateral_u[0] <= du <= lateral_u[-1]):
                continue
            iv = min(int((dv - lateral_v[0]) / lateral_step), n_v - 2)
            iu = min(int((du - lateral_u[0]) / lateral_step), n_u - 2)
            fv = (dv - lateral_v[iv]) / lateral_step
            fu = (du - lateral_u[iu]) / lateral_step
            value = ((1 - fv) * (1 - fu) * plane[iv, iu] + (1 - fv) * fu * plane[iv, iu + 1]
                     + fv * (1 - fu) * plane[iv + 1, iu] + fv * fu * plane[iv + 1, iu + 1]) * scale[row]
            if value >= cutoff:
                dense[row, col] = value
    return dense
