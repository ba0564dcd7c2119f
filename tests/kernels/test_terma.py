import re

import numpy as np

from kernels.beam_model import load_beam_model
from kernels.terma_cpu import terma
from tests import naive


def run(eta, origin, spacing, source, fluence, subsamples=2):
    model = load_beam_model()
    out = np.zeros(eta.shape)
    axis, u, v = np.array([1.0, 0, 0]), np.array([0, 0, 1.0]), np.array([0, 1.0, 0])
    args = (eta, origin, spacing, source, axis, u, v, 100.0, fluence, np.array([-6.0, -6.0]), np.array([1.0, 1.0]),
            model.energies_mev, model.photon_fractions, model.mu_water_cm2_g, subsamples)
    terma(*args, out)
    return out, args


def test_matches_naive_reference(rng):
    eta = rng.uniform(0.2, 2.0, (4, 5, 5))
    fluence = rng.uniform(0.0, 1.0, (13, 13))
    origin, spacing = np.array([0.0, -4.0, -4.0]), np.array([2.0, 2.0, 2.0])
    out, args = run(eta, origin, spacing, np.array([-100.0, 0.3, -0.2]), fluence)
    expected = naive.terma(*args)
    assert np.allclose(out, expected, rtol=2e-3, atol=1e-12)


def test_linear_in_fluence(rng):
    eta = rng.uniform(0.5, 1.5, (3, 4, 4))
    fluence = rng.uniform(0.0, 1.0, (13, 13))
    origin, spacing = np.array([0.0, -3.0, -3.0]), np.array([2.0, 2.0, 2.0])
    scale = rng.uniform(0.5, 3.0)
    a, _ = run(eta, origin, spacing, np.array([-100.0, 0, 0]), fluence)
    b, _ = run(eta, origin, spacing, np.array([-100.0, 0, 0]), scale * fluence)
    assert np.allclose(b, scale * a)


def test_inverse_square_in_near_vacuum():
    """With a vanishing density, released energy per unit density falls as 1/r^2."""
    eta = np.full((10, 3, 3), 1e-6)
    origin, spacing = np.array([0.0, -2.0, -2.0]), np.array([10.0, 2.0, 2.0])
    out, _ = run(eta, origin, spacing, np.array([-100.0, 0, 0]), np.ones((13, 13)), subsamples=1)
    distance = 100.0 + origin[0] + spacing[0] * np.arange(10)
    centre = out[:, 1, 1]
    assert np.allclose(centre * distance**2, centre[0] * distance[0] ** 2, rtol=1e-6)


def test_no_fluence_outside_the_aperture():
    eta = np.ones((3, 9, 9))
    fluence = np.zeros((13, 13))
    fluence[5:8, 5:8] = 1.0  # a 3 mm square at the isocentre plane
    out, _ = run(eta, np.array([0.0, -8.0, -8.0]), np.array([2.0, 2.0, 2.0]), np.array([-100.0, 0, 0]), fluence)
    assert out[:, 4, 4].min() > 0 and out[:, 0, 0].max() == 0 and np.all(out >= 0)


def _two_media(rng, shape=(4, 5, 5)):
    """A media stack: water scaled by electron density, and a second medium at its mass density."""
    model = load_beam_model()
    eta = rng.uniform(0.2, 2.0, shape)
    second = rng.random(shape) < 0.4
    density = rng.uniform(1.0, 2.0, shape)
    scale = np.stack([np.where(second, 0.0, eta), np.where(second, density, 0.0)])
    mu = np.stack([model.mu_water_cm2_g, model.mu_water_cm2_g * rng.uniform(0.9, 1.1, model.mu_water_cm2_g.shape)])
    return scale, mu, eta, density, second


def test_media_stack_matches_naive_reference(rng):
    scale, mu, *_ = _two_media(rng)
    model = load_beam_model()
    fluence = rng.uniform(0.0, 1.0, (13, 13))
    axis, u, v = np.array([1.0, 0, 0]), np.array([0, 0, 1.0]), np.array([0, 1.0, 0])
    args = (scale, np.array([0.0, -4.0, -4.0]), np.array([2.0, 2.0, 2.0]), np.array([-100.0, 0.3, -0.2]), axis, u, v,
            100.0, fluence, np.array([-6.0, -6.0]), np.array([1.0, 1.0]), model.energies_mev, model.photon_fractions, mu, 2)
    out = terma(*args, np.zeros(scale.shape[1:]))
    assert np.count_nonzero(out) > 20
    assert np.allclose(out, naive.terma(*args), rtol=2e-3, atol=1e-12)


def test_a_medium_tabulated_as_scaled_water_changes_nothing(rng):
    """A second medium whose mass coefficients are water's scaled by its electrons per gram gives
    exactly the single electron-density medium: the stack generalises, it does not perturb."""
    scale, _, eta, density, second = _two_media(rng)
    model = load_beam_model()
    electrons_per_gram = 0.94  # any value: the stack must reproduce rho_e = density * this
    eta = np.where(second, density * electrons_per_gram, eta)
    mu = np.stack([model.mu_water_cm2_g, model.mu_water_cm2_g * electrons_per_gram])
    fluence = rng.uniform(0.0, 1.0, (13, 13))
    origin, spacing = np.array([0.0, -4.0, -4.0]), np.array([2.0, 2.0, 2.0])
    single, _ = run(eta, origin, spacing, np.array([-100.0, 0.3, -0.2]), fluence)
    axis, u, v = np.array([1.0, 0, 0]), np.array([0, 0, 1.0]), np.array([0, 1.0, 0])
    stacked = terma(scale, origin, spacing, np.array([-100.0, 0.3, -0.2]), axis, u, v, 100.0, fluence,
                    np.array([-6.0, -6.0]), np.array([1.0, 1.0]), model.energies_mev, model.photon_fractions, mu, 2,
                    np.zeros(eta.shape))
    assert np.allclose(stacked, single, rtol=1e-10, atol=1e-15)


def test_media_stack_shapes_are_checked():
    import pytest

    from kernels.engine import attenuation_media

    model = load_beam_model()
    with pytest.raises(ValueError, match="n_media"):
        terma(np.ones((2, 2, 2, 2)), *([np.zeros(3)] * 6), 100.0, np.ones((2, 2)), np.zeros(2), np.ones(2),
              model.energies_mev, model.photon_fractions, model.mu_water_cm2_g[None], 1, np.zeros((2, 2, 2)))
    eta = np.ones((2, 2, 2))
    with pytest.raises(ValueError, match="no attenuation table"):
        attenuation_media(eta, model, density=eta, medium=np.ones((2, 2, 2), int), media=("unobtainium",))
    with pytest.raises(ValueError, match="medium values must be 0..1"):
        attenuation_media(eta, model, density=eta, medium=np.full((2, 2, 2), 2), media=("bone",))
    with pytest.raises(ValueError, match="density"):
        attenuation_media(eta, model, medium=np.ones((2, 2, 2), int), media=("bone",))


def test_overlapping_media_are_refused_before_any_work(rng):
    """A hand-made stack with voxels in two media (the kernels would take the last one) is
    refused, naming the media and counting the voxels; the output is left untouched."""
    import pytest

    from kernels.terma_cpu import media_stack

    two, mu, _, _, second = _two_media(rng)
    scale = np.concatenate([two, np.zeros((1,) + two.shape[1:])])
    mu = np.concatenate([mu, mu[:1]])
    in_1, in_0 = np.flatnonzero(second)[:3], np.flatnonzero(~second)[:2]
    media_stack(scale, mu)  # disjoint: accepted
    scale[0].flat[in_1] = 1.0  # three voxels of medium 1 also in medium 0
    scale[2].flat[in_0] = 1.5  # two voxels of medium 0 also in medium 2
    model = load_beam_model()
    out = np.full(scale.shape[1:], -7.0)
    expected = "5 voxels are non-zero in more than one medium (media 0 and 1: 3 voxels; media 0 and 2: 2 voxels)"
    with pytest.raises(ValueError, match=re.escape(expected)):
        terma(scale, np.zeros(3), np.ones(3), np.array([-100.0, 0, 0]), np.array([1.0, 0, 0]), np.array([0, 0, 1.0]),
              np.array([0, 1.0, 0]), 100.0, np.ones((13, 13)), np.array([-6.0, -6.0]), np.ones(2),
              model.energies_mev, model.photon_fractions, mu, 1, out)
    assert np.all(out == -7.0)


def test_absorbed_part_is_the_spectrum_weighted_share(rng):
    """The locally absorbed output equals TERMA computed with the photon fractions weighted by
    the absorbed fraction of each bin (same attenuation), and never exceeds the released."""
    eta = rng.uniform(0.5, 1.5, (3, 4, 4))
    fluence = rng.uniform(0.0, 1.0, (13, 13))
    origin, spacing = np.array([0.0, -3.0, -3.0]), np.array([2.0, 2.0, 2.0])
    model = load_beam_model()
    fraction = model.media_absorbed_fraction["water"]
    released, args = run(eta, origin, spacing, np.array([-100.0, 0, 0]), fluence)
    absorbed = np.zeros(eta.shape)
    terma(*args, np.zeros(eta.shape), absorbed_fraction=fraction, out_absorbed=absorbed)
    weighted = list(args)
    weighted[12] = model.photon_fractions * fraction
    expected = terma(*weighted, np.zeros(eta.shape))
    assert np.allclose(absorbed, expected, rtol=1e-12)
    assert np.all(absorbed <= released) and absorbed.max() > 0
