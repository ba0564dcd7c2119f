import json

import numpy as np
import pytest

from planner.radiotherapy.constraints import check_constraints, constraints_for, format_table, protocols, results_json
from tests.conftest import case_scene

# TG-101 Table III values as given by the clinical reference (oar_sbrt.tg101).
TG101 = {
    ("spinal_cord", "Dmax"): (14.0, 21.9, 30.0), ("spinal_cord", "D0.35cc"): (10.0, 18.0, 23.0),
    ("spinal_cord", "D1.2cc"): (7.0, 12.3, 14.5), ("cauda_equina", "Dmax"): (16.0, 24.0, 32.0),
    ("cauda_equina", "D5cc"): (14.0, 21.9, 30.0), ("esophagus", "Dmax"): (15.4, 25.2, 35.0),
    ("esophagus", "D5cc"): (11.9, 17.7, 19.5),
}


@pytest.mark.parametrize("index, fractions", [(0, 1), (1, 3), (2, 5)])
def test_tg101_tables_match_the_reference(index, fractions):
    limits = {(c.structure, c.metric): c.limit_gy for c in constraints_for("tg101", fractions)}
    for key, values in TG101.items():
        assert limits[key] == values[index]


def test_hytec_and_quantec():
    for n, value in zip(range(1, 6), (12.4, 17.0, 20.3, 23.0, 25.3)):
        assert [c.limit_gy for c in constraints_for("hytec", n) if c.structure == "spinal_cord"] == [value]
    # QUANTEC: 50 Gy EQD2 (alpha/beta 2) as a physical maximum for 10 fractions.
    quantec = constraints_for("quantec", 10)[0]
    assert quantec.limit_gy == pytest.approx(35.8, abs=0.1)
    assert set(protocols()) >= {"tg101", "hytec", "rtog0631", "quantec"}


def test_reirradiation_replaces_the_cord_limit():
    rows = constraints_for("hytec", 2, prior_course={"dose_gy": 30.0, "fractions": 10, "months_ago": 9})
    reirr = [c for c in rows if c.protocol == "reirradiation"]
    assert {c.structure for c in reirr} == {"spinal_cord", "thecal_sac"}
    assert all(c.limit_gy == pytest.approx(12.3, abs=0.05) for c in reirr)


def test_checker_statuses_and_outputs():
    scene = case_scene("t10_rcc_escc2")
    cord = scene.structure("spinal_cord").full() > 0
    for value, status in ((10.0, "pass"), (16.5, "within 5%"), (18.0, "fail")):
        dose = np.where(cord, value, 1.0)
        results = check_constraints(dose, scene, constraints_for("hytec", 2))
        cord_row = next(r for r in results if r.structure == "spinal_cord")
        assert cord_row.value_gy == pytest.approx(value) and cord_row.status == status
        assert cord_row.margin_gy == pytest.approx(17.0 - value)
    assert "spinal_cord" in format_table(results)
    rows = json.loads(results_json(results))
    assert rows[0]["source"] == "hytec_cord"
    # A structure the scene lacks (the cauda at T10) is reported as not applicable.
    tg = check_constraints(np.zeros(scene.grid.shape), scene, constraints_for("tg101", 1))
    assert any(r.structure == "cauda_equina" and r.status == "not applicable" for r in tg)


def test_unknown_protocol_and_fractions():
    with pytest.raises(ValueError, match="unknown protocol"):
        constraints_for("nope", 1)
    with pytest.raises(ValueError, match="fractions"):
        constraints_for("tg101", 2)


def test_a_value_at_its_limit_up_to_rounding_meets_it():
    from planner.radiotherapy.constraints import constraint_status

    assert constraint_status(17.000000000000004, 17.0) == "within 5%"
    assert constraint_status(17.0 * (1 + 1e-6), 17.0) == "fail"
    assert constraint_status(16.0, 17.0) == "pass"


def test_every_organ_of_the_organ_table_is_limited():
    """HyTEC limits the cord and sac; its plans keep TG-101's limits for every other organ, the
    fraction numbers TG-101 lacks isoeffective (LQ, alpha/beta 2) with the tighter neighbour."""
    from planner.radiotherapy.radiobiology import dose_per_fraction_for_eqd2, eqd2

    rows = {(c.structure, c.metric): c for c in constraints_for("hytec", 2)}
    for organ in ("esophagus", "airway", "great_vessels", "heart", "bowel", "kidneys", "skin", "cauda_equina"):
        assert any(s == organ for s, _ in rows), organ
    assert rows[("spinal_cord", "Dmax")].limit_gy == 17.0  # the protocol's own rows stay
    esophagus = rows[("esophagus", "Dmax")]
    from_one = 2 * dose_per_fraction_for_eqd2(eqd2(15.4, 1, 2.0), 2, 2.0)
    from_three = 2 * dose_per_fraction_for_eqd2(eqd2(25.2, 3, 2.0), 2, 2.0)
    assert esophagus.limit_gy == pytest.approx(min(from_one, from_three)) and "derived for 2 fractions" in esophagus.note
    assert rows[("esophagus", "Dmax")].source == "tg101" and rows[("esophagus", "Dmax")].protocol == "tg101"
    # Tabulated fraction numbers take the table as it is; a derived limit stays within its neighbours.
    tg = {(c.structure, c.metric): c.limit_gy for c in constraints_for("hytec", 3)}
    assert tg[("airway", "Dmax")] == 30.0 and tg[("skin", "D10cc")] == 30.0 and tg[("kidneys", "CV200cc")] == 16.0
    for key, limit in {(c.structure, c.metric): c.limit_gy for c in constraints_for("hytec", 4)}.items():
        if key[0] not in ("spinal_cord", "thecal_sac"):
            assert tg[key] <= limit <= dict(((c.structure, c.metric), c.limit_gy) for c in constraints_for("hytec", 5))[key]
    # The re-irradiation rows still come last; QUANTEC (conventional) has no organ table.
    assert constraints_for("hytec", 2, prior_course={"dose_gy": 30.0, "fractions": 10, "months_ago": 9})[-1].protocol \
        == "reirradiation"
    assert [c.structure for c in constraints_for("quantec", 10)] == ["spinal_cord"]


def test_organs_built_from_the_phantom():
    """The skin is the body outline's outer 5 mm; the kidneys are measured together."""
    from planner.radiotherapy.constraints import organ_structures

    scene = case_scene("l2_rcc_escc1a", spacing=(2.5, 2.5, 2.5))
    built = organ_structures(scene)
    body = scene.structure("body_outline").full()
    skin = built["skin"]
    assert 0 < skin.sum() < body.sum() and np.all(skin <= body + 1e-6)
    assert skin[body.shape[0] // 2, body.shape[1] // 2, body.shape[2] // 2] == 0  # the middle is no skin
    kidneys = built["kidneys"]
    both = np.maximum(scene.structure("kidney_left").full(), scene.structure("kidney_right").full())
    assert kidneys.sum() > 0 and np.array_equal(kidneys, both)
    # A T10 phantom has no kidneys: the row is not applicable, never skipped.
    t10 = case_scene("t10_rcc_escc2", spacing=(2.5, 2.5, 2.5))
    results = check_constraints(np.zeros(t10.grid.shape), t10, constraints_for("hytec", 2))
    assert any(r.structure == "kidneys" and r.status == "not applicable" for r in results)
