import pytest

from scenes.morphometry import MEASURES, PHANTOM_LEVELS, anchors_of, level_dimensions, region_of


@pytest.mark.parametrize("level", PHANTOM_LEVELS)
def test_every_level_resolves_with_provenance(level):
    dims = level_dimensions(level)
    for measure in MEASURES:
        value = getattr(dims, measure)
        assert value >= 0, (level, measure)
        assert dims.provenance[measure], (level, measure)
    assert dims.cord_ap_mm < dims.sac_ap_mm <= dims.canal_depth_mm
    assert dims.cord_rl_mm < dims.sac_rl_mm <= dims.canal_width_mm


@pytest.mark.parametrize("measure", MEASURES)
def test_sourced_anchors_are_reproduced_exactly(measure):
    """A level with its own published value gets exactly that value (unless the documented
    canal-widening rule applies, which the provenance then states)."""
    for anchor in anchors_of(measure):
        for level in anchor["levels"]:
            if level not in PHANTOM_LEVELS:
                continue
            dims = level_dimensions(level)
            value = getattr(dims, measure)
            if "widened" in dims.provenance[measure]:
                assert value > anchor["value"]
            else:
                assert value == pytest.approx(anchor["value"]), (measure, level)


def test_reference_table_values():
    """Spot checks against the project clinical reference tables."""
    assert level_dimensions("L3").body_width_mm == 44.1  # Panjabi 1992 EPWu
    assert level_dimensions("L5").pedicle_width_mm == 18.6
    assert level_dimensions("T10").cord_ap_mm == 6.5  # Valosek 2024 whole-spine
    assert level_dimensions("C5").cord_rl_mm == 12.6
    assert level_dimensions("L4").disc_below_mm == 9.31  # Shin 2024 L4-L5


def test_regions():
    assert [region_of(level) for level in ("C5", "T1", "L5", "S1")] == ["cervical", "thoracic", "lumbar", "sacral"]
    with pytest.raises(ValueError, match="level must be one of"):
        region_of("X9")
