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
