"""Each procedure changes exactly what it should, and separation keeps its promised gap."""

import numpy as np
import pytest

from scenes.materials import material
from scenes.surgery import (corpectomy_with_cage, laminectomy, min_gap_mm, posterior_instrumentation,
                            separation_surgery, vertebral_augmentation)
from tests.conftest import case_scene


def changed(before, after):
    return (before.density_g_cc != after.density_g_cc) | (before.labels != after.labels)


@pytest.mark.parametrize("case", ["t10_rcc_escc2", "l3_melanoma_escc3", "c6_nsclc_escc1c"])
@pytest.mark.parametrize("gap_mm", [1.0, 2.0, 3.0])
def test_separation_gap_guarantee(case, gap_mm):
    scene = case_scene(case)
    assert min_gap_mm(scene.structure("gtv"), scene.structure("thecal_sac")) < gap_mm
    after = separation_surgery(scene, gap_mm)
    assert min_gap_mm(after.structure("gtv"), after.structure("thecal_sac")) >= gap_mm
    # Only tumour was removed: every changed voxel held tumour before.
    lost = scene.structure("gtv").full() - after.structure("gtv").full()
    assert np.all(lost[changed(scene, after)] > 0)
    assert after.structure("gtv").volume_cc > 0.3 * scene.structure("gtv").volume_cc  # tumour away from the sac stays
    assert after.structure("postoperative_cavity").volume_cc == pytest.approx(
        scene.structure("gtv").volume_cc - after.structure("gtv").volume_cc, rel=0.02)
    assert "separation surgery" in after.history[-1]
    # The original is untouched.
    assert scene.fingerprint() == case_scene(case).fingerprint()


def test_more_gap_removes_more():
    scene = case_scene("t10_rcc_escc2")
    volumes = [separation_surgery(scene, g).structure("gtv").volume_cc for g in (1.0, 2.0, 3.0, 5.0)]
    assert volumes == sorted(volumes, reverse=True)


def test_laminectomy_changes_only_the_lamina():
    scene = case_scene("t10_rcc_escc2")
    after = laminectomy(scene)
    lamina = scene.structure("lamina_T10").full() > 0
    diff = changed(scene, after)
    assert diff.any() and not np.any(diff & ~lamina)
    assert "lamina_T10" not in after.structures
    assert after.structure("vertebra_T10").volume_cc < scene.structure("vertebra_T10").volume_cc
    assert np.all(after.density_g_cc[scene.structure("lamina_T10").full() > 0.99] == pytest.approx(material("soft_tissue").density_g_cc))


@pytest.mark.parametrize("implant", ["titanium", "cf_peek"])
def test_instrumentation_places_screws_and_rods(implant):
    scene = case_scene("t10_rcc_escc2")
    after = posterior_instrumentation(scene, implant)
    hardware = (after.structure("screws").full() > 0) | (after.structure("rods").full() > 0)
    diff = changed(scene, after)
    assert diff.any() and not np.any(diff & ~hardware)
    # Screws sit in the neighbouring levels' bone, never in the canal.
    screws = after.structure("screws").full()
    assert (screws * scene.structure("spinal_canal").full()).sum() < 0.01 * screws.sum()
    in_bone = sum((screws * scene.structure(f"vertebra_{lv}").full()).sum() for lv in ("T9", "T11"))
    assert in_bone > 0.5 * screws.sum()
    core = screws > 0.99
    assert np.allclose(after.density_g_cc[core], material(implant).density_g_cc, rtol=1e-5)


def test_titanium_is_denser_than_cf_peek_in_the_same_place():
    scene = case_scene("t10_rcc_escc2")
    titanium = posterior_instrumentation(scene, "titanium")
    peek = posterior_instrumentation(scene, "cf_peek")
    hardware = titanium.structure("screws").full() > 0.5
    assert titanium.density_g_cc[hardware].mean() > 2 * peek.density_g_cc[hardware].mean()


def test_augmentation_fills_the_body_with_cement():
    scene = case_scene("t10_rcc_escc2")
    after = vertebral_augmentation(scene)
    body = scene.structure("vertebral_body_T10")
    diff = changed(scene, after)
    assert diff.any() and not np.any(diff & ~(body.full() > 0))
    assert after.structure("cement").volume_cc == pytest.approx(0.30 * body.volume_cc, rel=0.1)


def test_corpectomy_replaces_the_body_with_a_cage():
    scene = case_scene("t10_rcc_escc2")
    after = corpectomy_with_cage(scene, "titanium")
    body = scene.structure("vertebral_body_T10").full() > 0
    diff = changed(scene, after)
    assert diff.any() and not np.any(diff & ~body)
    assert "vertebral_body_T10" not in after.structures
    assert after.structure("gtv").volume_cc < scene.structure("gtv").volume_cc
    cage = after.structure("cage").full() > 0.99
    expected = 0.6 * material("cancellous_bone").density_g_cc + 0.4 * material("titanium").density_g_cc
    assert np.allclose(after.density_g_cc[cage], expected, rtol=1e-4)


def test_procedures_compose_and_record_history():
    scene = case_scene("t10_rcc_escc2")
    after = posterior_instrumentation(separation_surgery(laminectomy(scene), 2.0), "cf_peek")
    assert [h.split()[0] for h in after.history[1:]] == ["laminectomy", "separation", "posterior"]


@pytest.mark.parametrize("call, message", [
    (lambda s: separation_surgery(s, 0.0), "gap_mm"),
    (lambda s: separation_surgery(s, float("nan")), "gap_mm"),
    (lambda s: posterior_instrumentation(s, "steel"), "material"),
    (lambda s: corpectomy_with_cage(s, "wood"), "material"),
])
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call(case_scene("t10_rcc_escc2"))
