import tomllib
from pathlib import Path

import numpy as np
import pytest

from scenes._data import load_data, sources
from scenes.materials import density_to_hu, hu_to_density, material, materials

DATA = Path(__file__).resolve().parents[2] / "scenes" / "data"


def test_reference_densities_are_encoded():
    """Mass densities equal the clinical reference's [tissues.mass_density] values."""
    expected = {"cortical_bone": 1.92, "soft_tissue": 1.05, "fat": 0.95, "lung": 0.26, "titanium": 4.5, "pmma_cement": 1.19}
    for name, value in expected.items():
        assert material(name).density_g_cc == value


def test_electron_density_of_water_like_materials():
    assert material("csf").relative_electron_density == pytest.approx(1.0)
    # Bone has fewer electrons per gram than water; titanium far fewer.
    cortical = material("cortical_bone")
    assert cortical.relative_electron_density < cortical.density_g_cc
    titanium = material("titanium")
    assert titanium.relative_electron_density / titanium.density_g_cc == pytest.approx(0.45948 / 0.55508, rel=1e-6)


def test_blastic_lesion_follows_its_ct_number():
    blastic = material("blastic_lesion")
    assert float(density_to_hu(blastic.density_g_cc)) == pytest.approx(654.0)
    assert material("cancellous_bone").density_g_cc < blastic.density_g_cc < material("cortical_bone").density_g_cc
    assert material("lytic_lesion").density_g_cc < material("cancellous_bone").density_g_cc


def test_titanium_and_cf_peek_differ():
    assert material("titanium").density_g_cc > 2.5 * material("cf_peek").density_g_cc


def test_hu_calibration_round_trip(rng):
    hu = rng.uniform(-1000, 3000, 200)
    assert np.allclose(density_to_hu(hu_to_density(hu)), hu, atol=1e-6)
    assert np.all(np.diff(hu_to_density(np.sort(hu))) >= 0)
    assert float(hu_to_density(0.0)) == 1.0 and float(hu_to_density(-1000.0)) == pytest.approx(0.001205)


def test_labels_are_contiguous():
    labels = sorted(m.label for m in materials().values())
    assert labels == list(range(len(labels)))


def _source_keys(node, found):
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("source", "levels_source", "span_source") and isinstance(value, str):
                found.add(value)
            _source_keys(value, found)
    elif isinstance(node, list):
        for value in node:
            _source_keys(value, found)
    return found


@pytest.mark.parametrize("path", sorted(p.name for p in DATA.glob("*.toml") if p.name != "sources.toml"))
def test_every_number_has_a_cited_source(path):
    data = tomllib.loads((DATA / path).read_text())
    keys = _source_keys(data, set())
    assert keys, f"{path} cites nothing"
    missing = keys - set(sources())
    assert not missing, f"{path} cites keys without a citation in sources.toml: {sorted(missing)}"


def test_data_files_load():
    for name in ("materials", "morphometry", "anatomy", "histology", "surgery", "sources"):
        assert load_data(name)
