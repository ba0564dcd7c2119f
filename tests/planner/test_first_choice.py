"""The scorecard's first choice is one a spine tumour board would sign: under the default
weights it is the NOMS recommendation or a strategy of the same kind, on every shipped case
and on vignettes written for the kinds where it used to go wrong (tests/data/vignettes/:
unstable SINS >= 13, a fracture with ESCC 0, expected survival under 6 months, paraplegia
for more than 48 h, radiosensitive high-grade ESCC, radiosensitive ESCC 0 stable,
re-irradiation, radioresistant high-grade ESCC in a fit patient).
"""

from pathlib import Path

import pytest

from planner.clinical.scorecard import compare_strategies
from planner.clinical.strategies import radiosensitivity_of
from scenes.cases import list_cases, load_case

VIGNETTES = sorted(str(p) for p in (Path(__file__).resolve().parents[1] / "data" / "vignettes").glob("*.toml"))
#: Oligometastatic disease in a histology NOMS treats with cEBRT: ablative SBRT is a board's
#: answer too (SABR-COMET), so either radiotherapy kind may come first; when it is SBRT the
#: scorecard says which estimates outweigh the recommendation.
ABLATIVE = {"t4_breast_oligometastatic_escc0"}


#: The rules are judged on 2.5 mm voxels: the commands' default grid (2.5 x 1.25 x 1.25 mm)
#: takes about twice as long over 21 cases and changes achievable doses, not the rules.
RULES_GRID_MM = (2.5, 2.5, 2.5)


def card_sensitivity(case) -> str:
    return radiosensitivity_of(load_case(case))


def kind(strategy) -> str:
    """What a tumour board would call the strategy: the kinds NOMS's answers come in."""
    names = {p.name for p in strategy.procedures}
    if strategy.decompressed:
        return "decompression"
    if names & {"posterior_instrumentation", "vertebral_augmentation", "corpectomy_with_cage"}:
        return "stabilisation"  # screws or cement, whichever the spine needs
    if strategy.regimen is None:
        return "no radiotherapy"
    return "cEBRT" if strategy.technique == "cebrt" else "SBRT"


@pytest.mark.slow
@pytest.mark.parametrize("case", list_cases() + VIGNETTES)
def test_first_choice_is_of_the_noms_kind(case):
    card = compare_strategies(case, grid_mm=RULES_GRID_MM)
    first = card.result(card.ranking[0]).strategy
    recommended = card.result(card.noms_key).strategy if card.noms_key in card.ranking else None
    assert recommended is not None, f"{case}: the NOMS strategy {card.noms_key} is not on the menu"
    if Path(case).stem in ABLATIVE and kind(first) != kind(recommended):
        assert kind(first) == "SBRT" and kind(recommended) == "cEBRT", (case, kind(first), kind(recommended))
        assert card.comment.startswith("Disagreement") and "mostly on" in card.comment, card.comment
        return
    sbrt = [r for r in card.results if kind(r.strategy) == "SBRT" and not r.strategy.procedures
            and r.estimates["pain"].value is not None]
    for result in sbrt:  # SBRT's gain over cEBRT is credited only where ablation is the aim
        credited = "gain not credited" not in result.estimates["pain"].basis
        assert credited == (Path(case).stem in ABLATIVE or card_sensitivity(case) == "radioresistant"
                            or bool(load_case(case).patient.get("prior_radiotherapy"))
                            or "outside the SBRT trials" in result.estimates["pain"].basis), (case, result.estimates["pain"])
    assert kind(first) == kind(recommended), (f"{case}: first {first.key} ({kind(first)}), NOMS {card.noms_key} "
                                              f"({kind(recommended)}): {card.noms.summary}")
