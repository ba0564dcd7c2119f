"""The collapsed-cone line walk (:func:`kernels.superposition_cpu._one_direction`) against a
walk that tests the grid's bounds at every step and keeps its components in arrays: the same
deposits to the last bit, for eight components (the scalar path) and any other number, grid
views, zero densities and line patterns that turn (the per-step checks)."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from kernels.superposition_cpu import _one_direction, line_offsets


@njit(cache=False)
def walk_every_step(sources, releasing, eta, dominant, sign, others, offsets, step_cm, amplitudes, rates, out):
    """The transport as first written: every line walks every step of the dominant axis."""
    shape = eta.shape
    n_dom, n_p, n_q = shape[dominant], shape[others[0]], shape[others[1]]
    p_low, p_high = -offsets[:, 0].max(), n_p - 1 - offsets[:, 0].min()
    q_low, q_high = -offsets[:, 1].max(), n_q - 1 - offsets[:, 1].min()
    lines_q = q_high - q_low + 1
    n_sources, n_comp = amplitudes.shape
    for line in range((p_high - p_low + 1) * lines_q):
        p0, q0 = p_low + line // lines_q, q_low + line % lines_q
        transit, source = np.zeros(n_comp), np.zeros(n_comp)
        attenuation, escape = np.zeros(n_comp), np.zeros(n_comp)
        last_density, carrying = -1.0, False
        index = np.empty(3, np.int64)
        for step in range(n_dom):
            p, q = p0 + offsets[step, 0], q0 + offsets[step, 1]
            if p < 0 or p >= n_p or q < 0 or q >= n_q:
                transit[:] = 0.0
                carrying = False
                continue
            index[dominant] = step if sign > 0 else n_dom - 1 - step
            index[others[0]], index[others[1]] = p, q
            k, j, i = index[0], index[1], index[2]
            here = releasing[k, j, i]
            if here == 0 and not carrying:
                continue
            density = eta[k, j, i]
            if density != last_density:
                last_density = density
                for c in range(n_comp):
                    tau = rates[c] * density * step_cm
                    if tau > 1e-6:
                        attenuation[c] = np.exp(-tau)
                        escape[c] = (1.0 - attenuation[c]) / tau
                    else:
                        attenuation[c], escape[c] = 1.0 - tau, 1.0 - 0.5 * tau
            source[:] = 0.0
            if here != 0:
                for s in range(n_sources):
                    for c in range(n_comp):
                        source[c] += sources[k, j, i, s] * amplitudes[s, c]
            deposit = 0.0
            for c in range(n_comp):
                if here == 0:
                    deposit += transit[c] * (1.0 - attenuation[c])
                else:
                    deposit += transit[c] * (1.0 - attenuation[c]) + source[c] * (1.0 - escape[c])
            if here == 0:
                for c in range(n_comp):
                    transit[c] = transit[c] * attenuation[c]
            else:
                carrying = False
                for c in range(n_comp):
                    transit[c] = transit[c] * attenuation[c] + source[c] * escape[c]
                    carrying = carrying or transit[c] != 0.0
            out[k, j, i] += deposit


def _problem(rng, n_comp, n_sources):
    shape = tuple(int(n) for n in rng.integers(4, 13, 3))
    eta = rng.uniform(0.0, 2.0, shape)
    eta[rng.random(shape) < 0.2] = 0.0  # zero density: tau 0, the series branch
    eta[rng.random(shape) < 0.3] = 1.0  # runs of one density: the attenuation is kept
    sources = rng.normal(0.0, 1.0, shape + (n_sources,)) * (rng.random(shape + (n_sources,)) < 0.4)
    releasing = np.ascontiguousarray(np.any(sources != 0.0, axis=3), dtype=np.uint8)
    amplitudes = rng.normal(0.0, 1.0, (n_sources, n_comp))
    rates = np.exp(rng.uniform(np.log(1e-7), np.log(60.0), n_comp))
    return sources, releasing, eta, amplitudes, rates


def _view(array):
    """``array`` as a strided view of a larger one (as the irradiated region passes its box)."""
    larger = np.zeros((array.shape[0] + 2, array.shape[1] + 1) + array.shape[2:], array.dtype)
    view = larger[1:-1, 1:]
    view[...] = array
    return view


@pytest.mark.parametrize("n_comp", [8, 3])
@pytest.mark.parametrize("turning", [False, True])
def test_line_walk_equals_the_walk_that_checks_every_step(rng, n_comp, turning):
    for trial in range(12):
        sources, releasing, eta, amplitudes, rates = _problem(rng, n_comp, int(rng.integers(1, 7)))
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        dominant, sign, others, offsets, step_mm = line_offsets(direction, rng.uniform(1.0, 4.0, 3), eta.shape)
        if turning:  # not from line_offsets: lines that leave the grid and come back
            offsets = offsets.copy()
            offsets[len(offsets) // 2:, 0] *= -1
        if trial % 2:
            sources, releasing, eta = _view(sources), _view(releasing), _view(eta)
        deposits = []
        for walk in (walk_every_step, _one_direction):
            out = np.full(eta.shape, 0.25)
            walk(sources, releasing, eta, dominant, sign, others, offsets, step_mm / 10.0, amplitudes, rates, out)
            deposits.append(out)
        assert deposits[0].tobytes() == deposits[1].tobytes()
        assert np.any(deposits[1] != 0.25)  # something was transported
