"""The strategy menu as data, and the indications that gate it.

``planner/clinical/data/strategies.toml`` lists the strategies (procedures, regimen, the
indication each needs) and the roles entries play in NOMS's answers and the timeline;
``indications.toml`` says, with sources, when each indication holds. :func:`strategy_menu_for`
splits the menu for a case into what is offered and what is not indicated (with the reasons),
judged on the case's measured findings (:func:`menu_findings`). Teaching and research only,
not for clinical use.
"""

from __future__ import annotations

from scenes.cases import Case, load_case

from planner.radiotherapy.plan import Regimen

from .data import read_table
from .prognosis import score_tables
from .strategies import MenuFindings, Procedure, Strategy, radiosensitivity_of

__all__ = ["strategy_menu", "strategy_key", "menu_findings", "indication_failures", "strategy_menu_for",
           "standard_strategies"]


def strategy_menu() -> dict:
    """The strategy menu as data (``planner/clinical/data/strategies.toml``): its entries,
    the roles entries play in NOMS's answers and the timeline, and the separation options.

    Returns
    -------
    dict
        The parsed table (``menu``, ``roles``, ``techniques``, ``separation``, ...); cached,
        treat as read-only.
    """
    return read_table("strategies")


def strategy_key(role: str) -> str:
    """The menu key that plays ``role`` (e.g. ``"sbrt_alone"``) in NOMS's answers and the timeline.

    Parameters
    ----------
    role : str
        A role of strategies.toml [roles] (ValueError naming them otherwise).

    Returns
    -------
    str
        The menu key of that role.

    Examples
    --------
    >>> strategy_key("sbrt_alone")
    'sbrt_24gy_2fx'
    """
    roles = strategy_menu()["roles"]
    if role not in roles:
        raise ValueError(f"strategy role must be one of {', '.join(roles)}, got {role!r}")
    return roles[role]


def _option(value, menu: dict):
    # "separation.gap_mm" names a value of the menu's [separation] table (one copy of it).
    if isinstance(value, str) and "." in value:
        table, name = value.split(".", 1)
        entry = menu[table][name]
        return entry["value"] if isinstance(entry, dict) else entry
    return value


def menu_findings(case: Case, assessment) -> MenuFindings:
    """The findings of ``case`` that gate the menu, from its NOMS assessment.

    Parameters
    ----------
    case : Case
        The case (pain, lesion sites, prior radiotherapy).
    assessment : planner.clinical.scores.NomsAssessment
        NOMS on the measured scene (ESCC group, deficit, radiosensitivity, fitness, SINS).

    Returns
    -------
    MenuFindings
        The facts :func:`standard_strategies` gates on.
    """
    rules = score_tables()["noms"]["neurologic"]
    deficit = case.patient.get("neurology") in rules["cord_deficits"]
    compression = assessment.escc_group == "high" or (
        assessment.escc_group == "intermediate" and deficit and rules["intermediate_with_deficit_as_high_grade"]["value"])
    return MenuFindings(escc_grade=assessment.escc.grade, cord_compression=bool(compression),
                        # NOMS groups the moderately sensitive (breast, prostate) with the radiosensitive.
                        radiosensitive=bool(assessment.treated_as_radiosensitive),
                        fit_for_surgery=bool(assessment.fit_for_surgery),
                        established_paraplegia=bool(assessment.established_deficit),
                        sins_total=int(assessment.sins_score.total),
                        mechanical_pain=case.patient.get("pain") == "mechanical",
                        body_disease="body" in case.lesion.sites,
                        prior_radiotherapy=bool(case.patient.get("prior_radiotherapy")))


def _condition(name: str, findings: MenuFindings) -> tuple[bool, str]:
    """(holds, what it says when it does not) for one condition of indications.toml."""
    consult = int(score_tables()["sins"]["surgical_consult_threshold"])
    high = score_tables()["noms"]["neurologic"]["high_grade"]
    checks = {
        "cord_compression": (findings.cord_compression, f"no cord compression (ESCC {findings.escc_grade})"),
        "not_radiosensitive": (not findings.radiosensitive, "radiosensitive histology (radiotherapy treats the compression)"),
        "fit_for_surgery": (findings.fit_for_surgery, "not fit for surgery (NOMS systemic)"),
        "no_established_paraplegia": (not findings.established_paraplegia, "paraplegic for more than 48 h"),
        "sins_surgical_consult": (findings.sins_total >= consult, f"SINS {findings.sins_total} < {consult}"),
        "mechanical_pain": (findings.mechanical_pain, "no mechanical pain"),
        "body_disease": (findings.body_disease, "no disease in the vertebral body"),
        "no_high_grade_compression": (findings.escc_grade not in high, f"ESCC {findings.escc_grade} compresses the cord"),
        "prior_radiotherapy": (findings.prior_radiotherapy, "no prior radiotherapy here"),
    }
    if name not in checks:
        raise ValueError(f"indications.toml: unknown condition {name!r}; known: {', '.join(checks)}")
    return checks[name]


def indication_failures(indication: str, findings: MenuFindings) -> list[str]:
    """Why ``indication`` (an entry of ``indications.toml``) does not hold: [] when it does.

    Parameters
    ----------
    indication : str
        An entry of ``planner/clinical/data/indications.toml``.
    findings : MenuFindings
        The case's findings (:func:`menu_findings`).

    Returns
    -------
    list of str
        One phrase per failed condition.
    """
    table = read_table("indications")["indications"]
    if indication not in table:
        raise ValueError(f"strategies.toml: indication must be one of {', '.join(table)}, got {indication!r}")
    failures = []
    for name in table[indication]["conditions"]:
        holds, why = _condition(name, findings)
        if not holds:
            failures.append(why)
    return failures


def _strategy(entry: dict, menu: dict, systemic: str | None) -> Strategy:
    procedures = tuple(Procedure(p["name"], _option(p.get("option"), menu)) for p in entry.get("procedures", ()))
    regimen = Regimen(float(entry["dose_gy"]), int(entry["fractions"])) if "technique" in entry else None
    return Strategy(entry["key"], entry["label"], procedures, regimen, entry.get("technique"),
                    systemic if entry["systemic_if_radiosensitive"] else None)


def strategy_menu_for(case: Case | str, findings: MenuFindings | None = None) -> tuple[list[Strategy], dict]:
    """The menu split by indication: the strategies offered and those not indicated.

    Parameters
    ----------
    case : Case or str
        The case, or a teaching-case id or case-file path.
    findings : MenuFindings, optional
        The measured findings (:func:`menu_findings`); without them every strategy of the
        menu is offered (no indication is judged).

    Returns
    -------
    offered : list of Strategy
        In the menu's order.
    not_indicated : dict
        Strategy key -> ``{"label": ..., "reasons": [...], "sources": [...]}``.
    """
    case = load_case(case) if isinstance(case, str) else case
    menu = strategy_menu()
    systemic = "systemic therapy per histology" if radiosensitivity_of(case) == "radiosensitive" else None
    indications = read_table("indications")["indications"]
    offered, not_indicated = [], {}
    for entry in menu["menu"]:
        failures = [] if findings is None else indication_failures(entry["indication"], findings)
        if failures:
            not_indicated[entry["key"]] = {"label": entry["label"], "reasons": failures,
                                           "sources": list(indications[entry["indication"]].get("sources", []))}
        else:
            offered.append(_strategy(entry, menu, systemic))
    return offered, not_indicated


def standard_strategies(case: Case | str, *, findings: MenuFindings | None = None) -> list[Strategy]:
    """The standard menu for a case (``planner/clinical/data/strategies.toml``), gated by the
    indications of ``indications.toml`` when the case's findings are given.

    cEBRT alone (8 Gy x1, 20 Gy/5), SBRT alone (24 Gy/2, SC.24), separation surgery (2 mm gap,
    CF-PEEK screws, the reference's preferred material for planning) + SBRT 27 Gy/3 (Laufer's
    high-dose hypofractionated band) and decompression + cEBRT 30 Gy/10 (Patchell) for cord
    compression in a fit patient with a radioresistant tumour, surgery alone and best
    supportive care; stabilisation + SBRT when SINS reaches the surgical-consult threshold in
    a fit patient; cement + SBRT or cEBRT for mechanical pain from the vertebral body (NOMS
    mechanical rules); a re-irradiation SBRT course when the case had prior radiotherapy;
    systemic therapy named where the histology is radiosensitive.

    Parameters
    ----------
    case : Case or str
        The case, or a teaching-case id or case-file path.
    findings : MenuFindings, optional
        The measured findings (:func:`menu_findings`); without them every strategy is offered.

    Returns
    -------
    list of Strategy
        In the menu's order.
    """
    return strategy_menu_for(case, findings)[0]
