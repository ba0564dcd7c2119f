"""The pencil-beam dose between the rows' sampling lattice (Influence.dose_volume).

Far from the target the planners keep one voxel in ``stride`` along each axis; a picture of the
matrix's dose had zeros between them (rows of dots in the lungs, a beam's entry drawn as
dots; found in the app's screenshots). Between lattice points the dose is now interpolated.
"""

import numpy as np
import pytest

from planner.radiotherapy.sampled_dose import interpolate_between_samples


def _fresh_rng():
    seed = int(np.random.SeedSequence().entropy % 2**32)
    return np.random.default_rng(seed), seed


@pytest.mark.parametrize("run", range(3))
def test_trilinear_fields_are_interpolated_exactly(run):
    rng, seed = _fresh_rng()
    stride = tuple(int(s) for s in rng.integers(1, 5, 3))
    shape = tuple(int(s) * int(n) + 1 for s, n in zip(stride, rng.integers(2, 6, 3)))
    z, y, x = np.meshgrid(*[np.arange(n, dtype=float) for n in shape], indexing="ij")
    a = rng.normal(size=8)
    field = a[0] + a[1] * z + a[2] * y + a[3] * x + a[4] * z * y + a[5] * y * x + a[6] * z * x + a[7] * z * y * x
    known = np.zeros(shape, bool)
    known[::stride[0], ::stride[1], ::stride[2]] = True
    dense = rng.random(shape) < 0.2  # some rows off the lattice too (the near region)
    known |= dense
    values = np.where(known, field, rng.normal(size=shape))  # the unknown voxels' contents are ignored
    filled = interpolate_between_samples(values, known, stride)
    assert np.array_equal(filled[known], field[known]), seed
    np.testing.assert_allclose(filled, field, rtol=1e-10, atol=1e-9 * np.abs(field).max(), err_msg=str(seed))


def test_voxels_without_all_their_corners_stay_zero():
    values = np.zeros((1, 1, 6))
    known = np.zeros((1, 1, 6), bool)
    known[0, 0, [0, 2]] = True  # lattice point 4 missing
    values[0, 0, [0, 2]] = [2.0, 4.0]
    filled = interpolate_between_samples(values, known, (1, 1, 2))
    np.testing.assert_allclose(filled[0, 0], [2.0, 3.0, 4.0, 0.0, 0.0, 0.0])


@pytest.mark.parametrize("stride", [(0, 1, 1), (1, 2), (1.5, 1, 1)])
def test_bad_strides_are_refused(stride):
    with pytest.raises(ValueError, match="stride"):
        interpolate_between_samples(np.zeros((2, 2, 2)), np.ones((2, 2, 2), bool), stride)


@pytest.mark.slow
def test_the_planned_dose_has_no_holes_between_samples():
    from planner.radiotherapy.plan import Regimen, optimisation_stride, plan_case

    plan = plan_case("t10_rcc_escc2", regimen=Regimen(24.0, 2), grid_mm=(2.5, 2.5, 2.5), engine="pencil",
                     max_iterations=60)
    assert optimisation_stride(plan.scene) == (2, 2, 2)
    dose, body = plan.dose_gy, plan.scene.structure("body_outline").full() > 0.5
    # Inside the body, between two dosed voxels two apart along any axis, the voxel between is dosed
    # (before: the far region's every other voxel was 0).
    dosed = dose > 0.05 * dose.max()
    for axis in range(3):
        take = [slice(None)] * 3
        def part(start, stop):
            take[axis] = slice(start, stop)
            return tuple(take)
        holes = body[part(1, -1)] & dosed[part(0, -2)] & dosed[part(2, None)] & (dose[part(1, -1)] == 0)
        assert int(holes.sum()) == 0, axis
