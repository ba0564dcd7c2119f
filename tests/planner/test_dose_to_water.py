"""Dose to medium by default, dose to water on request (Bragg-Gray: D_w = D_m * s_w,m)."""

import numpy as np
import pytest

from planner.cli.commands import main
from planner.radiotherapy import plan as plan_module
from planner.radiotherapy import scene_plan as scene_plan_module
from planner.radiotherapy.dose_to_water import (bethe_stopping_power, check_dose_to, stopping_power_ratios,
                                                to_dose_quantity, water_to_medium_ratio)
from planner.radiotherapy.plan import Regimen, plan_case
from planner.radiotherapy.protocols import read_table
from planner.radiotherapy.scene_plan import plan_scene
from scenes.materials import materials
from scenes.scene import scene_from_arrays

SPACING = (5.0, 5.0, 5.0)


def _published(medium: str) -> dict:
    return read_table("dose_to_water")["reference_media"][medium]["ratio"]


def _phantom(slab: str | None = "icrp_cortical_bone", *, density_of_slab: float | None = None):
    # A water box (target and cord in water) with a slab of another medium crossing the beams.
    density = np.ones((12, 16, 16))
    slab_mask = np.zeros(density.shape, bool)
    target = np.zeros(density.shape, bool)
    target[4:8, 5:9, 6:10] = True
    cord = np.zeros(density.shape, bool)
    cord[:, 11, 7:9] = True
    media = {}
    if slab is not None:
        slab_mask[:, 13:15, :] = True
        density[slab_mask] = density_of_slab or materials()[slab].density_g_cc
        media = {slab: slab_mask}
    structures = {"ptv": target, "spinal_cord": cord, "body": np.ones(density.shape, bool)}
    return scene_from_arrays(spacing_mm=SPACING, density_g_cc=density, structures=structures, media=media), slab_mask


def test_water_is_the_identity():
    scene, _ = _phantom(slab=None)
    assert "water 3072" in scene.history[0]
    dose = np.random.default_rng(3).random(scene.grid.shape) * 20
    assert np.array_equal(to_dose_quantity(dose, scene, dose_to="water"), dose)
    assert to_dose_quantity(dose, scene) is dose  # dose to medium: untouched


def test_bone_takes_the_cited_ratio():
    scene, slab = _phantom("icrp_cortical_bone")
    cited = _published("icrp_cortical_bone")
    assert cited["source"] == "siebers2000_dw" and cited["value"] == 1.116
    ratio = water_to_medium_ratio(scene)
    assert np.all(ratio[slab] == cited["value"]) and np.all(ratio[~slab] == 1.0)
    dose = np.full(scene.grid.shape, 10.0)
    water = to_dose_quantity(dose, scene, dose_to="water")
    assert water[slab] == pytest.approx(11.16, abs=1e-9)  # 10 Gy to bone is 11.16 Gy to water, to the cited 3 decimals


def test_every_tissue_ratio_follows_its_source():
    ratios = stopping_power_ratios()["ratios"]
    for name, medium in (("soft_tissue", "icru_soft_tissue"), ("neural_tissue", "icru_soft_tissue"),
                         ("lung", "icru_lung"), ("fat", "icru_adipose"), ("csf", "water")):
        assert ratios[name] == _published(medium)["value"], name
    # Mixtures lie between their parts (Bragg additivity by mass), denser mixes nearer bone.
    assert ratios["soft_tissue"] < ratios["cancellous_bone"] < ratios["blastic_lesion"] < ratios["cortical_bone"]
    assert ratios["lytic_lesion"] < ratios["mixed_lesion"] < ratios["blastic_lesion"]


def test_the_published_ratios_agree_with_the_bethe_formula():
    # First principles as a cross-check: the Bethe collision stopping-power ratio (ICRU 37, no
    # density effect, at the dose-median electron energy of a 6 MV beam) from the media's own
    # <Z/A> (materials.toml) and I-values (dose_to_water.toml [bethe]).
    excitation = {k: v["value"] for k, v in read_table("dose_to_water")["bethe"]["mean_excitation_energy_ev"].items()}

    def per_gram(name):
        return materials()[name].relative_electron_density / materials()[name].density_g_cc

    def bethe_ratio(medium):
        return (bethe_stopping_power(per_gram("water"), excitation["water"])
                / bethe_stopping_power(per_gram(medium), excitation[medium]))

    # ICRP bone by composition: 1.106 against the published 1.116 (Spencer-Attix over a spectrum).
    assert bethe_ratio("icrp_cortical_bone") == pytest.approx(_published("icrp_cortical_bone")["value"], rel=0.015)
    assert bethe_ratio("fat") == pytest.approx(_published("icru_adipose")["value"], abs=0.01)
    # ICRU-44 bone (the phantoms' cortical bone) scaled from ICRP bone: 'nearly 1.14', ~2% higher.
    scaled = stopping_power_ratios()["ratios"]["cortical_bone"]
    assert 1.13 <= scaled <= 1.145
    assert bethe_ratio("cortical_bone") == pytest.approx(scaled, rel=0.015)


def test_a_medium_without_a_ratio_is_refused_by_name():
    scene, _ = _phantom("titanium")
    with pytest.raises(ValueError, match=r"no water-to-medium stopping-power ratio for titanium \(384 voxels"):
        water_to_medium_ratio(scene)
    # Dose to medium needs no ratio.
    assert to_dose_quantity(np.ones(scene.grid.shape), scene).sum() == scene.grid.size


def _no_work(*args, **kwargs):
    raise AssertionError("work started before the arguments were checked")


def test_bad_values_are_refused_before_any_work(monkeypatch):
    monkeypatch.setattr(scene_plan_module, "build_influence", _no_work)
    monkeypatch.setattr(plan_module, "build_scene", _no_work)
    scene, _ = _phantom("icrp_cortical_bone")
    for bad in ("tissue", "Water", None, 1):
        with pytest.raises(ValueError, match=r"dose_to must be 'medium' or 'water', got"):
            plan_scene(scene, target="ptv", prescription=Regimen(20.0, 5), body="body", dose_to=bad)
        with pytest.raises(ValueError, match=r"dose_to must be 'medium' or 'water'"):
            plan_case("l2_rcc_escc1a", regimen=Regimen(24.0, 2), dose_to=bad)
    metal, _ = _phantom("titanium")
    with pytest.raises(ValueError, match="titanium"):
        plan_scene(metal, target="ptv", prescription=Regimen(20.0, 5), body="body", dose_to="water")
    with pytest.raises(ValueError, match="dose_to must"):
        check_dose_to("both")


def test_the_cli_flag_is_checked(capsys):
    status = main(["plan", "l2_rcc_escc1a", "--dose", "24", "--fractions", "2", "--dose-to", "tissue"])
    assert status == 2
    assert "--dose-to" in capsys.readouterr().err


@pytest.mark.parametrize("engine", ["pencil", "superposition"])
def test_dose_to_water_differs_only_in_the_bone_and_by_its_ratio(engine):
    # Target and cord in water, a bone slab in the beams' path: the same plan (same weights, same
    # normalisation, read in water voxels), dose to water = dose to medium x 1.116 in the bone only.
    scene, slab = _phantom("icrp_cortical_bone")
    options = dict(target="ptv", prescription=Regimen(20.0, 5), organs_at_risk={"spinal_cord": 12.0}, body="body",
                   engine=engine, gantry_deg=[160.0, 180.0, 200.0], max_iterations=60)
    medium = plan_scene(scene, **options)
    water = plan_scene(scene, dose_to="water", **options)
    assert (medium.dose_to, water.dose_to) == ("medium", "water")
    assert any(note.startswith("dose to medium") for note in medium.notes)
    assert any(note.startswith("dose to water") and "icrp_cortical_bone x1.116" in note for note in water.notes)
    np.testing.assert_allclose(water.weights, medium.weights, rtol=1e-6)
    assert medium.dose_gy[slab].max() > 1.0  # the slab is in the beams
    np.testing.assert_allclose(water.dose_gy[~slab], medium.dose_gy[~slab], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(water.dose_gy[slab], 1.116 * medium.dose_gy[slab], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(water.optimiser_dose_gy[slab], 1.116 * medium.optimiser_dose_gy[slab], rtol=1e-6,
                               atol=1e-9)


def test_plan_case_reports_dose_to_water():
    # A teaching case (bone, marrow, disc, CSF, fat): the plan says which quantity it is, and its
    # dose is the dose to medium times each voxel's ratio, up to the one normalisation factor.
    options = dict(regimen=Regimen(24.0, 2), engine="pencil", grid_mm=SPACING, max_iterations=60)
    medium = plan_case("l2_rcc_escc1a", **options)
    water = plan_case("l2_rcc_escc1a", dose_to="water", **options)
    assert (medium.settings["dose_to"], water.settings["dose_to"]) == ("medium", "water")
    assert '"dose_to": "water"' in water.to_json()
    assert any(note.startswith("dose to water") and "cortical_bone x1.136" in note for note in water.notes)
    dosed = medium.dose_gy > 1e-3 * medium.dose_gy.max()
    scale = water.dose_gy[dosed] / (medium.dose_gy[dosed] * water_to_medium_ratio(water.scene)[dosed])
    np.testing.assert_allclose(scale, scale[0], rtol=1e-5)
    np.testing.assert_allclose(water.weights, medium.weights * scale[0], rtol=1e-5)
