"""The beam model's reader and the rate union its cone passes and the commissioning share."""

import re

import numpy as np
import pytest

from kernels import beam_model
from kernels.beam_model import load_beam_model, on_shared_rates


@pytest.mark.parametrize("key", ["kernel_hardening", "kernel_tilting", "n_azimuth"])
def test_every_beam_setting_is_required(monkeypatch, key):
    """A [beam] setting missing from beam_6mv.toml is an error naming it, never a default."""
    text = beam_model._beam_config_text()
    line = re.compile(rf"^{key} = .*\n", re.MULTILINE)
    assert len(line.findall(text)) == 1
    monkeypatch.setattr(beam_model, "_beam_config_text", lambda: line.sub("", text))
    with pytest.raises(ValueError, match=rf"beam_6mv.toml: \[beam\] {key} is missing"):
        load_beam_model.__wrapped__()  # the uncached reader: the cached model stays as it is


def test_the_shipped_settings_are_read():
    import tomllib

    beam = tomllib.loads(beam_model._beam_config_text())["beam"]
    model = load_beam_model.__wrapped__()
    assert model.kernel_hardening is bool(beam["kernel_hardening"]["value"])
    assert model.kernel_tilting is bool(beam["kernel_tilting"]["value"])
    assert model.n_azimuth == beam["n_azimuth"]["value"]


def _sum_of_exponentials(amplitudes, rates, r_cm):
    return np.sum(amplitudes[:, :, None] * np.exp(-rates[:, :, None] * r_cm), axis=1)


def test_shared_rates_keep_every_table_and_take_the_union(rng):
    """Each table on the union is the same function of distance; the union holds exactly the
    rates with a non-zero amplitude (per row), sorted, padded with rate 1 and amplitude 0."""
    ladder = np.geomspace(0.05, 40.0, 9)
    n_rows = 5
    tables = []
    for _ in range(3):
        rates = np.stack([rng.permutation(ladder)[:4] for _ in range(n_rows)])
        amplitudes = rng.uniform(-1, 1, rates.shape) * (rng.random(rates.shape) < 0.7)
        tables.append((amplitudes, rates))
    tables.append((rng.uniform(0, 1, (n_rows, ladder.size)) * (rng.random((n_rows, ladder.size)) < 0.3), ladder))
    shared_amplitudes, shared_rates = on_shared_rates(tables)
    r_cm = np.linspace(0.0, 30.0, 61)
    for (amplitudes, rates), on_union in zip(tables, shared_amplitudes):
        rates = np.broadcast_to(rates, amplitudes.shape)
        assert np.allclose(_sum_of_exponentials(on_union, shared_rates, r_cm),
                           _sum_of_exponentials(amplitudes, rates, r_cm), rtol=1e-12, atol=1e-14)
    for m in range(n_rows):
        used = set()
        for amplitudes, rates in tables:
            rates = np.broadcast_to(rates, amplitudes.shape)
            used |= set(rates[m][amplitudes[m] != 0])
        n_used = len(used)
        assert list(shared_rates[m, :n_used]) == sorted(used)
        assert np.all(shared_rates[m, n_used:] == 1.0)
        assert all(np.all(a[m, n_used:] == 0) for a in shared_amplitudes)


def test_one_cone_pass_carries_each_source_on_its_rates():
    """transport_directions puts every source's table on one set of rates per direction: summed
    over the components each source keeps the energy of its own table."""
    model = load_beam_model()
    axis, u, v = (1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.0, 1.0, 0.0)
    directions, amplitudes, rates, n_base = model.transport_directions(axis, u, v, hardening=True, tilting=True)
    _, released, absorbed, _ = model.hardening_directions(axis)
    tilt_cones, tilted, _ = model.tilt_directions(axis, u, v, hardening=True)
    assert n_base == 2 and amplitudes.shape[:2] == (len(directions), 6) and np.array_equal(tilt_cones, directions)
    expected = [released, absorbed, tilted[0][0], tilted[1][0], tilted[0][1], tilted[1][1]]
    for s, table in enumerate(expected):
        assert np.allclose(amplitudes[:, s].sum(axis=1), table.sum(axis=1), rtol=1e-12, atol=1e-15)
    assert np.all(rates > 0)


def test_the_commissioning_fit_on_shared_rates_is_the_stored_kernel():
    """kernels.commission fits each zenith bin on the whole rate ladder and keeps the rates it
    uses (on_shared_rates): that reproduces the kernel the beam model reads, component for
    component (the same cumulative fraction at every radius)."""
    from kernels.commission import DATA, fit_kernel

    edk = dict(np.load(DATA / "edk_water_mohan6.npz"))
    stored = np.load(DATA / "collapsed_cone_kernel.npz")
    r_cm = np.linspace(0.0, 60.0, 121)[None, None, :]
    for total, prefix in (("total", ""), ("primary", "primary_")):
        amplitudes, rates, _ = fit_kernel(dict(edk, total=edk[total]))
        ours = _cumulative(amplitudes, rates, r_cm)
        theirs = _cumulative(stored[f"{prefix}amplitudes"], stored[f"{prefix}rates_per_cm"], r_cm)
        assert np.allclose(ours, theirs, rtol=0, atol=1e-9)


def _cumulative(amplitudes, rates, r_cm):
    """Each zenith bin's fitted energy fraction within r: sum_k A_k (1 - exp(-a_k r))."""
    return np.sum(amplitudes[:, :, None] * (1 - np.exp(-rates[:, :, None] * r_cm)), axis=1)
