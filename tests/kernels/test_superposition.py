import numpy as np
import pytest

from kernels.superposition_cpu import collapsed_cone, line_offsets
from tests import naive


def lattice(shape, spacing):
    """The kernel's own line lattice, rebuilt for the naive reference."""
    def lines_for(direction):
        dominant, sign, others, offsets, step_mm = line_offsets(direction, spacing, shape)
        n = shape[dominant]
        lines = {}
        for p0 in range(-offsets[:, 0].max(), shape[others[0]] - offsets[:, 0].min()):
            for q0 in range(-offsets[:, 1].max(), shape[others[1]] - offsets[:, 1].min()):
                voxels = []
                for step in range(n):
                    p, q = p0 + offsets[step, 0], q0 + offsets[step, 1]
                    if 0 <= p < shape[others[0]] and 0 <= q < shape[others[1]]:
                        index = [0, 0, 0]
                        index[dominant] = step if sign > 0 else n - 1 - step
                        index[others[0]], index[others[1]] = p, q
                        voxels.append(tuple(index))
                    elif voxels:
                        lines.setdefault((p0, q0), []).append(voxels)
                        voxels = []
                if voxels:
                    lines.setdefault((p0, q0), []).append(voxels)
        return [segment for group in lines.values() for segment in group], step_mm
    return lines_for


def test_matches_direct_summation(rng):
    shape, spacing = (5, 4, 6), np.array([2.5, 2.0, 1.5])
    released = rng.uniform(0, 1, shape)
    eta = rng.uniform(0.2, 2.0, shape)
    directions = rng.normal(size=(3, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    amplitudes = rng.uniform(0.05, 0.3, (3, 2))
    rates = rng.uniform(0.5, 8.0, (3, 2))
    fast = collapsed_cone(released, eta, spacing, directions, amplitudes, rates)
    slow = naive.collapsed_cone(released, eta, spacing, directions, amplitudes, rates, lattice(shape, spacing))
    assert np.allclose(fast, slow, rtol=2e-3, atol=1e-9)


def test_every_voxel_is_on_one_line_per_direction(rng):
    shape, spacing = (7, 5, 6), np.array([2.5, 1.25, 1.25])
    for _ in range(5):
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        lines, _ = lattice(shape, spacing)(direction)
        visited = [v for line in lines for v in line]
        assert len(visited) == len(set(visited)) == int(np.prod(shape))


def test_energy_is_conserved_when_nothing_escapes():
    """Short-range kernel, energy released in the middle of a big block: all of it is deposited."""
    shape = (21, 21, 21)
    released = np.zeros(shape)
    released[10, 10, 10] = 5.0
    directions = np.array([[1.0, 0, 0], [-1.0, 0, 0], [0, 0.6, 0.8]])
    amplitudes = np.array([[0.3, 0.1], [0.2, 0.1], [0.25, 0.05]])
    rates = np.full((3, 2), 40.0)  # 1/cm: range well inside 10 voxels of 2 mm
    deposited = collapsed_cone(released, np.ones(shape), np.array([2.0, 2.0, 2.0]), directions, amplitudes, rates)
    assert deposited.sum() == pytest.approx(5.0 * amplitudes.sum(), rel=1e-9)
    assert np.all(deposited >= 0) and np.all(np.isfinite(deposited))


def test_density_scales_the_range():
    """Doubling the density halves the distance energy travels (O'Connor scaling)."""
    shape = (300, 1, 1)
    released = np.zeros(shape)
    released[0, 0, 0] = 1.0
    direction = np.array([[1.0, 0.0, 0.0]])
    amplitude, rate = np.array([[1.0]]), np.array([[0.5]])  # mean range 20 mm in water
    low = collapsed_cone(released, np.full(shape, 1.0), np.array([1.0, 1.0, 1.0]), direction, amplitude, rate)[:, 0, 0]
    high = collapsed_cone(released, np.full(shape, 2.0), np.array([1.0, 1.0, 1.0]), direction, amplitude, rate)[:, 0, 0]
    depth = np.arange(300) + 0.5
    mean_low = (low * depth).sum() / low.sum()
    mean_high = (high * depth).sum() / high.sum()
    assert mean_high == pytest.approx(mean_low / 2, rel=0.05)


def test_a_second_source_is_its_own_transport(rng):
    """released * A + local * B on the same rates is the sum of the two transports (linear)."""
    shape, spacing = (6, 5, 4), np.array([2.5, 2.0, 2.5])
    released, local = rng.uniform(0, 1, shape), rng.uniform(0, 0.6, shape)
    eta = rng.uniform(0.2, 2.0, shape)
    directions = rng.normal(size=(4, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    amplitudes = rng.uniform(0.05, 0.3, (4, 3))
    local_amplitudes = rng.uniform(-0.1, 0.3, (4, 3))
    amplitudes[0, 2] = local_amplitudes[0, 2] = 0.0  # a padding component
    rates = rng.uniform(0.5, 8.0, (4, 3))
    both = collapsed_cone(released, eta, spacing, directions, amplitudes, rates, local_mev=local,
                          local_amplitudes=local_amplitudes)
    apart = (collapsed_cone(released, eta, spacing, directions, amplitudes, rates)
             + collapsed_cone(local, eta, spacing, directions, local_amplitudes, rates))
    assert np.allclose(both, apart, rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="go together"):
        collapsed_cone(released, eta, spacing, directions, amplitudes, rates, local_mev=local)


def test_hardening_kernel_is_the_whole_kernel_for_its_own_spectrum():
    """A voxel absorbing locally exactly the kernel's primary share p0 of what it releases gets
    the commissioned kernel back: A + p0 B equals the whole kernel, component by component."""
    from kernels.beam_model import load_beam_model

    model = load_beam_model()
    axis = np.array([1.0, 0.0, 0.0])
    directions, released, local, rates = model.hardening_directions(axis)
    whole_directions, whole, whole_rates = model.directions(axis)
    assert np.allclose(directions, whole_directions)
    combined = released + model.primary_share * local
    for m in range(len(directions)):
        for a, r in zip(whole[m], whole_rates[m]):
            if a != 0:
                assert combined[m][np.isclose(rates[m], r)].sum() == pytest.approx(a, rel=1e-12)
    assert combined.sum() == pytest.approx(whole.sum(), rel=1e-12)
    # The primary share from the tables (mu_en/mu) is the EDKnrc kernel's own primary part.
    from importlib import resources

    edk = np.load(str(resources.files("kernels.data").joinpath("edk_water_mohan6.npz")))
    assert model.primary_share == pytest.approx(float(edk["primary"].sum()), abs=3e-4)


@pytest.mark.parametrize("hardening", [False, True])
def test_kernel_tilt_moves_energy_between_cones_and_creates_none(hardening):
    """The first-order tilt amplitudes cancel over each zenith bin's azimuths (energy is only
    redistributed), and a ray tilted towards +u sends more of its energy to +u."""
    from kernels.beam_model import load_beam_model

    model = load_beam_model()
    axis, u, v = np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0])
    directions, sources, rates = model.tilt_directions(axis, u, v, hardening=hardening)
    assert len(sources) == (2 if hardening else 1)
    for along_u, along_v in sources:
        assert directions.shape[0] == along_u.shape[0] == rates.shape[0]
        assert abs(along_u.sum()) < 1e-12 and abs(along_v.sum()) < 1e-12
    toward_u = (directions @ u) > 0
    assert sources[0][0][toward_u].sum() > 0 > sources[0][0][~toward_u].sum()


def test_kernel_tilt_lowers_the_dose_on_the_axis_of_a_divergent_field():
    """Kernels tilted along their diverging rays send their forward scatter away from the
    axis: the axis dose at depth drops (about 1.5% at 10 cm for 10 x 10 cm at SSD 100), the
    field stays mirror-symmetric."""
    from dataclasses import replace

    from kernels.beam_model import load_beam_model
    from kernels.commission import water_field

    model = replace(load_beam_model(), kernel_hardening=True)
    axis_doses = []
    for tilting in (False, True):
        dose, z, xy, _, _ = water_field(replace(model, kernel_tilting=tilting), field_mm=60.0, size_mm=120.0,
                                        depth_mm=120.0, spacing_mm=5.0)
        n = dose.shape[1] // 2
        assert np.allclose(dose, dose[:, ::-1, :], rtol=1e-6, atol=dose.max() * 1e-9)
        axis_doses.append(dose[:, n - 1:n + 1, n - 1:n + 1].mean(axis=(1, 2)))
    k = int(np.argmin(np.abs(z - 100.0)))
    assert 0.97 < axis_doses[1][k] / axis_doses[0][k] < 0.999


def _tilt_inputs(rng, shape=(6, 7, 5)):
    released = rng.uniform(0, 1, shape)
    released[rng.uniform(size=shape) < 0.3] = 0.0  # lines that start carrying late
    absorbed = released * rng.uniform(0.4, 0.7, shape)
    eta = rng.uniform(0.2, 2.0, shape)
    eta[:, :2] = 1.0  # a uniform block: attenuation reused along the lines there
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    u = np.cross(axis, rng.normal(size=3))
    u /= np.linalg.norm(u)
    tilt = (rng.uniform(-0.2, 0.2, shape), rng.uniform(-0.2, 0.2, shape))
    return released, absorbed, eta, rng.uniform(1.0, 3.0, 3), axis, u, np.cross(axis, u), tilt


@pytest.mark.parametrize("hardening", [False, True])
def test_tilt_in_one_pass_equals_the_former_three_passes(rng, hardening):
    """The fused transport (released, absorbed and their tilts as one stack of sources on the
    union of the rates) deposits what one pass for the kernel plus one per tilt component did."""
    from kernels.beam_model import load_beam_model
    from kernels.engine import cone_sources

    model = load_beam_model()
    released, absorbed, eta, spacing, axis, u, v, tilt = _tilt_inputs(rng)
    absorbed = absorbed if hardening else None
    directions, amplitudes, rates, n_base = model.transport_directions(axis, u, v, n_azimuth=3, hardening=hardening,
                                                                       tilting=True)
    assert n_base == (2 if hardening else 1) and amplitudes.shape[1] == 3 * n_base
    fused = collapsed_cone(cone_sources(released, absorbed, tilt), eta, spacing, directions, amplitudes, rates)
    former = naive.three_pass_transport(released, absorbed, eta, spacing, model, axis, u, v, tilt, n_azimuth=3)
    np.testing.assert_allclose(fused, former, rtol=1e-12, atol=1e-14 * np.abs(former).max())
    # Without tilting the single pass is the former one bit for bit (same sums, same order).
    directions, amplitudes, rates, _ = model.transport_directions(axis, u, v, n_azimuth=3, hardening=hardening,
                                                                  tilting=False)
    sources = cone_sources(released, absorbed) if hardening else released
    table = amplitudes if hardening else amplitudes[:, 0]
    np.testing.assert_array_equal(collapsed_cone(sources, eta, spacing, directions, table, rates),
                                  naive.three_pass_transport(released, absorbed, eta, spacing, model, axis, u, v, (),
                                                             n_azimuth=3))


def test_a_stack_of_sources_is_the_sum_of_their_transports(rng):
    shape, spacing = (5, 6, 4), np.array([2.0, 2.5, 1.5])
    stack = rng.uniform(-0.5, 1.0, shape + (4,))
    stack[rng.uniform(size=shape) < 0.3] = 0.0
    eta = rng.uniform(0.2, 2.0, shape)
    directions = rng.normal(size=(5, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    amplitudes = rng.uniform(-0.1, 0.3, (5, 4, 3))
    amplitudes[2, :, 1] = 0.0  # a padding component
    rates = rng.uniform(0.03, 8.0, (5, 3))
    both = collapsed_cone(stack, eta, spacing, directions, amplitudes, rates)
    apart = sum(collapsed_cone(stack[..., s], eta, spacing, directions, amplitudes[:, s], rates) for s in range(4))
    np.testing.assert_allclose(both, apart, rtol=1e-12, atol=1e-14 * np.abs(apart).max())
    with pytest.raises(ValueError, match="n_sources"):
        collapsed_cone(stack, eta, spacing, directions, amplitudes[:, :3], rates)


def test_engine_with_tilting_equals_the_former_three_passes(rng):
    """End to end: the engine's dose with hardening and tilting against its released energy
    sent through the former three passes."""
    from dataclasses import replace

    from kernels.beam_model import MEV_PER_G_TO_GY, load_beam_model
    from kernels.engine import ray_tilt, released_energy, square_field, superposition_dose

    model = replace(load_beam_model(), kernel_hardening=True, kernel_tilting=True)
    shape, spacing = (8, 9, 9), np.array([5.0, 5.0, 5.0])
    density = rng.uniform(0.3, 1.9, shape)
    origin = np.array([2.5, -20.0, -20.0])
    source, axis = np.array([-1000.0, 0.0, 0.0]), np.array([1.0, 0.0, 0.0])
    u, v = np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0])
    fluence, fluence_origin, fluence_spacing = square_field(30.0)
    dose, released, deposited = superposition_dose(density, density, origin, spacing, source, axis, u, v, fluence,
                                                   fluence_origin, fluence_spacing, model, n_azimuth=3)
    released, absorbed = released_energy(density, origin, spacing, source, axis, u, v, fluence, fluence_origin,
                                         fluence_spacing, model, with_absorbed=True)
    former = naive.three_pass_transport(released, absorbed, density, spacing, model, axis, u, v,
                                        ray_tilt(shape, origin, spacing, source, u, v), n_azimuth=3)
    np.testing.assert_allclose(deposited, former, rtol=1e-12, atol=1e-14 * former.max())
    np.testing.assert_allclose(dose, former / (density * np.prod(spacing) / 1000) * MEV_PER_G_TO_GY, rtol=1e-12)
