"""Clinical and physical numbers live once, as data with their source (the TOML files), not
as literals in the clinical code. A new float literal in a clinical module fails here unless
it is added to the allow-list below with the reason it is not a clinical figure.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The modules whose numbers are policy: scores, outcomes, strategies, the scorecard and the
#: timeline; constraints, metrics, radiobiology, plans and beams; cases and ESCC measurement.
CLINICAL_MODULES = (
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "planner/clinical").glob("*.py")),
    "planner/radiotherapy/achievable.py", "planner/radiotherapy/beams.py", "planner/radiotherapy/constraints.py",
    "planner/radiotherapy/metrics.py", "planner/radiotherapy/case_objectives.py", "planner/radiotherapy/regimen.py",
    "planner/radiotherapy/plan.py", "planner/radiotherapy/radiobiology.py", "planner/radiotherapy/session.py",
    "scenes/cases.py", "scenes/escc.py",
)
#: Values that are arithmetic, not policy: identities, halves, percent conversion, tolerances.
NEUTRAL = {0.0, 1.0, 2.0, 0.5, 100.0, 1e-12, 1e-9, 1e-6}
#: (module, value) -> why the literal is not a clinical or physical figure.
ALLOWED = {
    ("planner/clinical/radiation_effects.py", 19.0): "odds of 95:5 -- a logistic through a 5% point (mathematics)",
    ("planner/clinical/scorecard.py", 2.5): "measuring/planning grid spacing (a numerical setting)",
    ("planner/clinical/scorecard.py", 1.25): "measuring grid spacing (a numerical setting)",
    ("planner/clinical/timeline.py", 7.0): "days per week (calendar)",
    ("planner/radiotherapy/regimen.py", 80.0): "the simulator's prescription input range",
    ("planner/radiotherapy/case_objectives.py", 10.0): "optimisation region: full resolution within 10 mm of the PTV "
                                                        "(numerical)",
    ("planner/radiotherapy/case_objectives.py", 30.0): "optimisation region: 30 mm around the PTV (numerical)",
    ("planner/radiotherapy/case_objectives.py", 5.0): "optimisation region: the far region sampled every 5 mm "
                                                       "(numerical)",
    ("planner/radiotherapy/plan.py", 5.0): "beamlet size default (a numerical setting)",
    ("planner/radiotherapy/plan.py", 2.5): "planning grid spacing (a numerical setting)",
    ("planner/radiotherapy/beams.py", 180.0): "IEC 61217 geometry: 180 deg is posterior",
    ("planner/radiotherapy/beams.py", 360.0): "angles modulo a full turn",
    ("planner/radiotherapy/beams.py", 160.0): "beam template: the posterior fan's spread (a beam arrangement, not a dose)",
    ("planner/radiotherapy/beams.py", 260.0): "beam template: the arc's span (a beam arrangement, not a dose)",
    ("planner/radiotherapy/beams.py", 10.0): "beam template step / beamlet size choice (numerical)",
    ("planner/radiotherapy/beams.py", 5.0): "beamlet size and aperture margin defaults (numerical)",
    ("planner/radiotherapy/beams.py", 2.5): "beamlet size choice (numerical)",
    ("planner/radiotherapy/beams.py", 400.0): "open_field input bound: the largest square field (mm) a 40 x 40 cm collimator gives",
    ("planner/radiotherapy/session.py", 2.5): "planning grid spacing (a numerical setting)",
    ("planner/radiotherapy/session.py", 5.0): "beamlet size (a numerical setting)",
    ("scenes/cases.py", 0.05): "case-file input range of lesion.body_fraction",
    ("scenes/cases.py", 2.5): "default grid spacing (a numerical setting)",
    ("scenes/cases.py", 1.25): "default grid spacing (a numerical setting)",
    ("scenes/cases.py", 7.0): "days per week (calendar)",
}


def _docstrings(tree) -> set:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def float_literals(path: str) -> list[tuple[int, float]]:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    skip = _docstrings(tree)
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and type(node.value) is float and id(node) not in skip]


def test_no_clinical_number_is_a_literal_in_the_code():
    found = []
    for path in CLINICAL_MODULES:
        for line, value in float_literals(path):
            if value not in NEUTRAL and (path, value) not in ALLOWED:
                found.append(f"{path}:{line}: {value!r}")
    assert not found, ("float literals in clinical modules (move them to the data file where their kind lives, "
                       "with a source, or allow-list them with the reason they are not clinical):\n" + "\n".join(found))


def test_the_allow_list_has_no_stale_entries():
    present = {(path, value) for path in CLINICAL_MODULES for _, value in float_literals(path)}
    stale = sorted(entry for entry in ALLOWED if entry not in present)
    assert not stale, f"allow-list entries no longer in the code: {stale}"


def test_the_check_finds_a_literal(tmp_path):
    # The checker itself: a module with a clinical-looking literal is caught, a docstring is not.
    sample = tmp_path / "sample.py"
    sample.write_text('"""Limit 17.0 Gy in the docstring."""\nLIMIT_GY = 17.0\n', encoding="utf-8")
    tree = ast.parse(sample.read_text())
    skip = _docstrings(tree)
    values = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and type(n.value) is float and id(n) not in skip]
    assert values == [17.0]
