"""Teaching cases: TOML files validated field by field, and turned into scenes.

A case file has three tables, ``[case]``, ``[patient]`` and ``[lesion]`` (see
``scenes/data/cases/*.toml``). :func:`load_case` checks every field (unknown keys, types,
ranges, and combinations that cannot exist) and raises :class:`CaseError` naming the file,
the field, the value and what is allowed; it never returns a half-built case.

Optional ``[patient]`` inputs of the prognostic scores (revised Tokuhashi, Tomita) and their
defaults when a file leaves them out:

* ``kps`` Karnofsky performance status, 10..100 in steps of 10. Default: from ``ecog`` by the
  reference's approximate KPS<->ECOG mapping (karnofsky1948; no formal published mapping),
  taking the upper KPS of the pair the mapping gives that grade: ECOG 0 -> 100, 1 -> 80,
  2 -> 60, 3 -> 40, 4 -> 20 (``KPS_FROM_ECOG``). A given KPS must map to within one grade of
  ``ecog``.
* ``extraspinal_bone_metastases`` count of bone metastases outside the spine, 0..1000,
  default 0.
* ``vertebral_metastases`` count of vertebrae with metastases, the index one included,
  1..25, default 1.
* ``visceral_metastases_status`` none, removable or unremovable (major internal organs, the
  Tokuhashi wording). Default: "unremovable" when the boolean ``visceral_metastases`` is true
  (the cautious reading of a bare "yes"), else "none"; the boolean, when also given, must
  agree (false exactly when the status is "none").

``patient["prognosis_defaults"]`` names those of the four that the file left to the default.

Optional ``[lesion]`` geometry: ``collapse_pct`` (0..90, default 0) is the loss of the index
body's height at its anterior wall, where a wedge collapse loses most; ``kyphosis_deg``
(degrees, default 0, at most ``max_kyphosis_deg`` of anatomy.toml [collapse]) is a kyphosis
added at the level beyond the collapsed body's own wedge, and needs ``patient.alignment``
other than "normal" (it is a de novo deformity). See :func:`scenes.anatomy.build_anatomy`.
"""

from __future__ import annotations

import math
import threading
import tomllib
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from ._data import load_data, value_of
from .memory import check_scene_memory
from .anatomy import build_anatomy, collapse_limits
from .escc import GradeNotReachable, fit_reach
from .lesions import ESCC_GRADES, KINDS, SIDES, SITES, Lesion, grown, posterolateral_of
from .morphometry import PHANTOM_LEVELS, level_index
from .phantom import default_grid, render_phantom
from .scene import Scene

__all__ = ["Case", "CaseError", "load_case", "parse_case", "list_cases", "case_path", "build_scene", "grow",
           "growth_factor", "HISTOLOGIES", "DEFAULT_CASE", "FRANKEL", "AMBULATORY_FRANKEL", "KPS_FROM_ECOG",
           "VISCERAL_STATUS", "prognostic_defaults"]

DEFAULT_CASE = "t10_rcc_escc2"
HISTOLOGIES = tuple(load_data("histology")["histology"])
NEUROLOGY = ("intact", "radiculopathy", "myelopathy", "cauda_equina_syndrome", "paraplegia")
FRANKEL = tuple(load_data("performance_status")["frankel"]["grades"])
#: Frankel grades that walk (D useful motor function, E normal; performance_status.toml).
AMBULATORY_FRANKEL = tuple(load_data("performance_status")["frankel"]["ambulatory"]["value"])
PAIN = ("mechanical", "occasional", "none")
ALIGNMENT = ("normal", "de_novo_deformity", "subluxation")
SYSTEMIC = ("none", "limited", "extensive")
VISCERAL_STATUS = ("none", "removable", "unremovable")
KPS_LEVELS = (10, 20, 30, 40, 50, 60, 70, 80, 90, 100)
#: Default KPS per ECOG grade: the upper KPS of the reference's approximate mapping pair
#: (kps 100-90 -> ECOG 0, 80-70 -> 1, 60-50 -> 2, 40-30 -> 3, 20-10 -> 4; karnofsky1948,
#: "no formal published mapping"), from scenes/data/performance_status.toml.
KPS_FROM_ECOG = {int(ecog): int(kps) for ecog, kps in load_data("performance_status")["kps"]["default_from_ecog"].items()
                 if ecog.isdigit()}
PROGNOSIS_INPUTS = ("kps", "extraspinal_bone_metastases", "vertebral_metastases", "visceral_metastases_status")
POSTEROLATERAL = ("none", "unilateral", "bilateral")
#: Highest level whose canal holds only cauda equina (anatomy.toml [conus], saifuddin1998_conus).
FIRST_CAUDA_LEVEL = str(load_data("anatomy")["conus"]["first_cauda_level"]["value"])


class CaseError(ValueError):
    """A case file that cannot be used; the message names file, field, value and what is allowed."""


@dataclass(frozen=True)
class Case:
    """A validated teaching case."""

    id: str
    title: str
    level: str
    description: str
    patient: dict
    lesion: Lesion
    teaching_scenario: int | None = None
    expected_sins: int | None = None
    source_file: str = ""
    extra: dict = field(default_factory=dict)
    kyphosis_deg: float = 0.0

    @property
    def histology(self) -> str:
        return self.patient["histology"]


# -- field checkers ---------------------------------------------------------------------
class _Checker:
    def __init__(self, where: str):
        self.where = where

    def fail(self, path: str, value: Any, allowed: str):
        # A key may hold any character (TOML quoted keys): escape the unprintable ones so that
        # the message stays one line.
        path = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(path))
        raise CaseError(f"{self.where}: field '{path}' = {value!r} is not valid; allowed: {allowed}")

    def table(self, data: dict, path: str, required: set, optional: set) -> dict:
        if not isinstance(data, dict):
            self.fail(path, data, "a table")
        unknown = sorted(set(data) - required - optional)
        if unknown:
            self.fail(f"{path}.{unknown[0]}", data[unknown[0]], f"known keys of [{path}]: {', '.join(sorted(required | optional))}")
        missing = sorted(required - set(data))
        if missing:
            raise CaseError(f"{self.where}: field '{path}.{missing[0]}' is missing; it is required")
        return data

    def choice(self, data, path, key, options, default=None):
        value = data.get(key, default)
        if not isinstance(value, str) or value not in options:
            self.fail(f"{path}.{key}", value, "one of " + ", ".join(options))
        return value

    def number(self, data, path, key, low, high, default=None, integer=False):
        value = data.get(key, default)
        kind_ok = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not kind_ok or not math.isfinite(value) or not low <= value <= high:
            kind = "an integer" if integer else "a number"
            self.fail(f"{path}.{key}", value, f"{kind} in {low}..{high}")
        return value

    def flag(self, data, path, key, default=None):
        value = data.get(key, default)
        if not isinstance(value, bool):
            self.fail(f"{path}.{key}", value, "true or false")
        return value

    def text(self, data, path, key, default=None):
        value = data.get(key, default)
        if not isinstance(value, str) or not value.strip():
            self.fail(f"{path}.{key}", value, "a non-empty string")
        return value


def _ecog_of_kps(kps: int) -> int:
    """ECOG grade of a KPS by the approximate mapping (100-90 -> 0, 80-70 -> 1, ..., 20-10 -> 4)."""
    return min(4, (100 - kps) // 20)


def prognostic_defaults(ecog: int, visceral_metastases: bool | None) -> dict:
    """The values of the prognostic-score inputs a case leaves out (see the module docstring)."""
    return {"kps": KPS_FROM_ECOG[ecog], "extraspinal_bone_metastases": 0, "vertebral_metastases": 1,
            "visceral_metastases_status": "unremovable" if visceral_metastases is True else "none"}


def _prognostic_inputs(c: _Checker, patient: dict, ecog: int) -> dict:
    """The optional inputs of the prognostic scores, validated, with their defaults."""
    defaults = prognostic_defaults(ecog, patient.get("visceral_metastases"))
    out = {"prognosis_defaults": tuple(key for key in PROGNOSIS_INPUTS if key not in patient)}
    if "kps" in patient:
        kps = c.number(patient, "patient", "kps", 10, 100, integer=True)
        if kps not in KPS_LEVELS:
            c.fail("patient.kps", kps, "one of " + ", ".join(map(str, KPS_LEVELS)))
        if abs(_ecog_of_kps(kps) - ecog) > 1:
            c.fail("patient.kps", kps, f"a KPS within one grade of ECOG {ecog} by the approximate KPS<->ECOG mapping "
                   f"(default {KPS_FROM_ECOG[ecog]})")
        out["kps"] = kps
    else:
        out["kps"] = defaults["kps"]
    out["extraspinal_bone_metastases"] = c.number(patient, "patient", "extraspinal_bone_metastases", 0, 1000,
                                                  default=defaults["extraspinal_bone_metastases"], integer=True)
    out["vertebral_metastases"] = c.number(patient, "patient", "vertebral_metastases", 1, 25,
                                           default=defaults["vertebral_metastases"], integer=True)
    flag = patient.get("visceral_metastases")
    if "visceral_metastases_status" in patient:
        status = c.choice(patient, "patient", "visceral_metastases_status", VISCERAL_STATUS)
        if isinstance(flag, bool) and flag != (status != "none"):
            c.fail("patient.visceral_metastases_status", status,
                   f"{'removable or unremovable' if flag else 'none'} with visceral_metastases = {str(flag).lower()}")
        out["visceral_metastases"] = status != "none"
    else:
        status = defaults["visceral_metastases_status"]
    out["visceral_metastases_status"] = status
    return out


def parse_case(data: dict, *, where: str = "<case>") -> Case:
    """Validate a parsed case (a dict as read from TOML) and return the Case."""
    c = _Checker(where)
    c.table(data, "", {"case", "patient", "lesion"}, set())
    case = c.table(data["case"], "case", {"id", "title", "level"}, {"description", "teaching_scenario", "expected_sins"})
    patient = c.table(data["patient"], "patient", {"histology", "ecog", "neurology", "frankel", "ambulatory"},
                      {"deficit_duration_hours", "systemic_disease", "visceral_metastases", "pain", "alignment",
                       "prior_radiotherapy", "age_years", "kps", "extraspinal_bone_metastases", "vertebral_metastases",
                       "visceral_metastases_status", "expected_survival_months", "oligometastatic"})
    lesion = c.table(data["lesion"], "lesion", {"sites", "kind", "escc_grade"},
                     {"body_fraction", "epidural_side", "paraspinal_mm", "collapse_pct", "posterolateral", "kyphosis_deg"})
    case_id = c.text(case, "case", "id")
    if not case_id.replace("_", "").isalnum() or case_id.lower() != case_id:
        c.fail("case.id", case_id, "lower-case letters, digits and underscores")
    level = c.choice(case, "case", "level", PHANTOM_LEVELS)
    scenario = case.get("teaching_scenario")
    if scenario is not None:
        c.number(case, "case", "teaching_scenario", 1, 99, integer=True)
    expected_sins = case.get("expected_sins")
    if expected_sins is not None:
        c.number(case, "case", "expected_sins", 0, 18, integer=True)

    clean = {
        "histology": c.choice(patient, "patient", "histology", HISTOLOGIES),
        "ecog": c.number(patient, "patient", "ecog", 0, 4, integer=True),
        "neurology": c.choice(patient, "patient", "neurology", NEUROLOGY),
        "frankel": c.choice(patient, "patient", "frankel", FRANKEL),
        "ambulatory": c.flag(patient, "patient", "ambulatory"),
        "deficit_duration_hours": c.number(patient, "patient", "deficit_duration_hours", 0, 24 * 365, default=0),
        "systemic_disease": c.choice(patient, "patient", "systemic_disease", SYSTEMIC, default="limited"),
        "visceral_metastases": c.flag(patient, "patient", "visceral_metastases", default=False),
        "pain": c.choice(patient, "patient", "pain", PAIN, default="none"),
        "alignment": c.choice(patient, "patient", "alignment", ALIGNMENT, default="normal"),
        "age_years": c.number(patient, "patient", "age_years", 18, 110, default=60),
        "prior_radiotherapy": None,
        # Optional: an expected survival the revised Tokuhashi band does not see (e.g. an
        # effective targeted therapy); default None = the band's median survival.
        "expected_survival_months": (c.number(patient, "patient", "expected_survival_months", 0.5, 240)
                                     if "expected_survival_months" in patient else None),
        # Optional: oligometastatic disease (SABR-COMET's population: few metastases, controlled
        # primary), where ablative SBRT is the aim even in radiosensitive histologies.
        "oligometastatic": c.flag(patient, "patient", "oligometastatic", default=False),
    }
    clean.update(_prognostic_inputs(c, patient, clean["ecog"]))
    prior = patient.get("prior_radiotherapy")
    if prior is not None:
        c.table(prior, "patient.prior_radiotherapy", {"dose_gy", "fractions", "months_ago"}, set())
        clean["prior_radiotherapy"] = {
            "dose_gy": c.number(prior, "patient.prior_radiotherapy", "dose_gy", 1, 80),
            "fractions": c.number(prior, "patient.prior_radiotherapy", "fractions", 1, 40, integer=True),
            "months_ago": c.number(prior, "patient.prior_radiotherapy", "months_ago", 0.5, 240),
        }

    sites = lesion["sites"]
    if not isinstance(sites, list) or not sites or any(s not in SITES for s in sites) or len(set(sites)) != len(sites):
        c.fail("lesion.sites", sites, "a non-empty list of distinct values from " + ", ".join(SITES))
    kind = c.choice(lesion, "lesion", "kind", KINDS)
    grade = lesion["escc_grade"]
    if not isinstance(grade, str) or grade not in ESCC_GRADES:
        c.fail("lesion.escc_grade", grade, "one of " + ", ".join(f'"{g}"' for g in ESCC_GRADES) + " (a string)")
    body_fraction = c.number(lesion, "lesion", "body_fraction", 0.05, 1.0, default=0.5)
    side = c.choice(lesion, "lesion", "epidural_side", SIDES, default="midline")
    paraspinal = c.number(lesion, "lesion", "paraspinal_mm", 0, 40, default=0)
    collapse = c.number(lesion, "lesion", "collapse_pct", 0, 90, default=0)
    kyphosis = c.number(lesion, "lesion", "kyphosis_deg", 0, collapse_limits()["max_kyphosis_deg"], default=0)
    posterolateral = c.choice(lesion, "lesion", "posterolateral", POSTEROLATERAL, default=posterolateral_of(sites))

    # Combinations that cannot exist.
    if posterolateral != posterolateral_of(sites):
        c.fail("lesion.posterolateral", posterolateral,
               f"'{posterolateral_of(sites)}' for sites {sites} (pedicles/posterior elements decide it)")
    if collapse > 0 and "body" not in sites:
        c.fail("lesion.collapse_pct", collapse, "0 unless 'body' is among lesion.sites (only a diseased body collapses)")
    if kyphosis > 0 and clean["alignment"] == "normal":
        c.fail("lesion.kyphosis_deg", kyphosis, "0 unless patient.alignment is 'de_novo_deformity' or 'subluxation' "
               "(a kyphosis beyond the collapsed body's wedge is a deformity of the alignment)")
    if paraspinal > 0 and "body" not in sites:
        c.fail("lesion.paraspinal_mm", paraspinal, "0 unless 'body' is among lesion.sites")
    cauda_level = level_index(level) >= level_index(FIRST_CAUDA_LEVEL)
    if clean["neurology"] == "myelopathy" and cauda_level:
        c.fail("patient.neurology", "myelopathy",
               f"not myelopathy at {level}: the cord ends at the conus (L1); below it the canal holds the cauda equina "
               "(use cauda_equina_syndrome or radiculopathy)")
    if clean["neurology"] == "cauda_equina_syndrome" and not cauda_level:
        c.fail("patient.neurology", "cauda_equina_syndrome", f"a cord level ({level}) cannot give a cauda equina syndrome")
    if clean["frankel"] not in AMBULATORY_FRANKEL and clean["ambulatory"]:
        c.fail("patient.ambulatory", True, f"false for Frankel {clean['frankel']} (no useful motor function in the legs)")
    if clean["frankel"] == "E" and clean["neurology"] in ("myelopathy", "paraplegia", "cauda_equina_syndrome"):
        c.fail("patient.frankel", "E", f"A-D with neurology '{clean['neurology']}' (Frankel E means no deficit)")
    if clean["neurology"] == "intact" and clean["deficit_duration_hours"] > 0:
        c.fail("patient.deficit_duration_hours", clean["deficit_duration_hours"], "0 when neurology is 'intact'")

    model = Lesion(sites=tuple(sites), kind=kind, body_fraction=float(body_fraction), epidural_side=side,
                   paraspinal_mm=float(paraspinal), collapse_pct=float(collapse), requested_grade=grade)
    return Case(id=case_id, title=c.text(case, "case", "title"), level=level,
                description=str(case.get("description", "")), patient=clean, lesion=model,
                teaching_scenario=scenario, expected_sins=expected_sins, source_file=where,
                kyphosis_deg=float(kyphosis))


def case_path(name: str) -> Path | None:
    """Path of a packaged case by id, or None."""
    files = resources.files("scenes.data").joinpath("cases")
    candidate = files.joinpath(f"{name}.toml")
    return Path(str(candidate)) if candidate.is_file() else None


def list_cases() -> list[str]:
    """Ids of the packaged teaching cases."""
    files = resources.files("scenes.data").joinpath("cases")
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".toml"))


def load_case(name_or_path: str | Path) -> Case:
    """Load and validate a case by packaged id or by file path.

    Examples
    --------
    >>> load_case("t10_rcc_escc2").level
    'T10'
    """
    path = Path(name_or_path)
    if not path.suffix:
        found = case_path(str(name_or_path))
        if found is None:
            raise CaseError(f"no teaching case named {str(name_or_path)!r}; known cases: {', '.join(list_cases())}")
        path = found
    if path.is_dir():
        raise CaseError(f"{path}: is a folder, not a case file")
    if not path.is_file():
        raise CaseError(f"{path}: no such case file")
    try:
        # utf-8-sig: a byte-order mark (some Windows editors write one) is not an error.
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except tomllib.TOMLDecodeError as error:
        raise CaseError(f"{path}: not valid TOML ({error})") from None
    except RecursionError:
        raise CaseError(f"{path}: not valid TOML (arrays or tables nested too deeply)") from None
    except UnicodeDecodeError:
        raise CaseError(f"{path}: not a UTF-8 text file") from None
    except OSError as error:
        raise CaseError(f"{path}: cannot read the case file ({error.strerror})") from None
    return parse_case(data, where=str(path))


class _Memo:
    """A small least-recently-used store of immutable results, safe across threads."""

    def __init__(self, maxsize: int):
        self.maxsize = maxsize
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key, value) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


# One planning run builds the same scene several times (scorecard, gap study, timeline) and
# grows it by the same delays; a scene is immutable, so each is rendered once per process.
# The bounds keep a few fine scenes (~30 MB each at 2.5 x 1.25 x 1.25 mm).
_SCENES = _Memo(maxsize=4)
_GROWN = _Memo(maxsize=6)
#: What each memoised scene was made from (a key of _SCENES or _GROWN), so that grow can
#: look up by derivation rather than by an object id that may be reused.
_DERIVATION: "weakref.WeakKeyDictionary[Scene, tuple]" = weakref.WeakKeyDictionary()
_DERIVATION_LOCK = threading.Lock()


def _typed(value) -> tuple:
    # 2 and 2.0 hash alike but need not render alike (a float supersample is an error).
    return type(value).__name__, value


def _scene_key(case: Case, spacing_mm, supersample, neighbours) -> tuple | None:
    """The memo key of a build (None when the inputs are not plain values: no memo)."""
    try:
        spacing = tuple(float(v) for v in spacing_mm)
        # repr, not hash: a Case holds dicts; repr shows every field, floats exactly.
        key = ("built", repr(case), spacing, _typed(supersample), _typed(neighbours))
        hash(key)
    except (TypeError, ValueError):
        return None
    return key


def _remember(memo: _Memo, key: tuple, scene: Scene) -> None:
    memo.put(key, scene)
    with _DERIVATION_LOCK:
        _DERIVATION[scene] = key


def build_scene(case: Case | str, *, spacing_mm=(2.5, 1.25, 1.25), supersample: int = 4, neighbours: int = 1) -> Scene:
    """The scene of a case: its level's phantom with the lesion built to the case's ESCC grade.

    The epidural part's reach is the one at which the lesion *measures* the requested grade
    on the default planning grid (:func:`scenes.escc.fit_reach`: the construction's first
    try, then a search of the grade's band), so the scene shows the grade it was asked for.
    Scenes are immutable, so a repeated call with an equal case and equal arguments returns
    the scene built before (a few recent ones are kept per process).

    Parameters
    ----------
    case : Case or str
        The case, or a packaged case id or case file path (:func:`load_case`).
    spacing_mm : tuple of float
        Voxel size (z, y, x) of the scene's grid.
    supersample : int
        Sub-points per axis of the partial-volume rasterisation at surfaces.
    neighbours : int
        Vertebrae modelled above and below the index level.

    Returns
    -------
    Scene
        The rendered phantom with the case's clinical attributes.

    Raises
    ------
    CaseError
        When the requested grade cannot be built at the case's level for its sites and side;
        the message names the grades that can.

    Examples
    --------
    >>> scene = build_scene("t10_rcc_escc2", spacing_mm=(5.0, 2.5, 2.5), supersample=2)
    >>> scene.level, scene.clinical["histology"]
    ('T10', 'renal_cell')
    >>> build_scene("t10_rcc_escc2", spacing_mm=(5.0, 2.5, 2.5), supersample=2) is scene
    True
    """
    if isinstance(case, str):
        case = load_case(case)
    key = _scene_key(case, spacing_mm, supersample, neighbours)
    scene = _SCENES.get(key) if key is not None else None
    if scene is not None:
        return scene
    anatomy = build_anatomy(case.level, neighbours=neighbours, collapse_pct=case.lesion.collapse_pct,
                            kyphosis_deg=case.kyphosis_deg)
    try:
        reach = fit_reach(anatomy, case.lesion, case.lesion.requested_grade)
    except GradeNotReachable as error:
        raise CaseError(f"{case.source_file or case.id}: field 'lesion.escc_grade' = "
                        f"{case.lesion.requested_grade!r} cannot be built: {error}") from None
    lesion = replace(case.lesion, epidural_reach_mm=reach)
    grid = default_grid(anatomy, spacing_mm)
    check_scene_memory(grid.shape, grid.spacing_mm)  # a clear refusal, not numpy's MemoryError minutes in
    clinical = dict(case.patient, case_id=case.id, title=case.title, requested_escc_grade=case.lesion.requested_grade)
    scene = render_phantom(anatomy, grid, lesion, supersample=supersample, clinical=clinical,
                           history=(f"built from case {case.id}",))
    if key is not None:
        _remember(_SCENES, key, scene)
    return scene


def doubling_time_days(histology: str) -> float:
    entry = load_data("histology")["histology"].get(histology)
    if entry is None:
        raise ValueError(f"unknown histology {histology!r}; known: {', '.join(HISTOLOGIES)}")
    if "doubling_time_days" not in entry:
        raise ValueError(f"no published doubling time for {entry['name']} in histology.toml (a recorded gap): "
                         "growth over time cannot be simulated for it")
    return value_of(entry["doubling_time_days"])


def growth_factor(histology: str, weeks: float) -> float:
    """How many times a lesion's volume multiplies in ``weeks`` at the histology's doubling time.

    Parameters
    ----------
    histology : str
        A histology with a published doubling time (histology.toml).
    weeks : float
        Time without treatment, 0..520 weeks.

    Returns
    -------
    float
        The volume factor (1 at 0 weeks).

    Examples
    --------
    >>> round(growth_factor("renal_cell", 0), 3), growth_factor("renal_cell", 26) > 2
    (1.0, True)
    """
    if not (isinstance(weeks, (int, float)) and math.isfinite(weeks) and 0 <= weeks <= 520):
        raise ValueError(f"weeks must be in 0..520, got {weeks!r}")
    return 2.0 ** (7.0 * weeks / doubling_time_days(histology))


def grow(scene: Scene, weeks: float, *, supersample: int = 4) -> Scene:
    """The scene after ``weeks`` of untreated growth at the histology's doubling time.

    The lesion's volume doubles every doubling time; the scene is rebuilt on the same grid
    (so it can be compared voxel by voxel) and its ESCC grade may rise. The epidural part
    grows by mass effect (:mod:`scenes.mass_effect`): it pushes, indents and flattens the
    sac and the cord, which keep a positive area everywhere, so the measured grade never
    falls as the weeks pass. Only untreated
    phantom scenes can grow (procedures would have to be replayed on the grown tumour).
    Growing a scene of :func:`build_scene` (or of ``grow``) again by the same weeks returns
    the scene grown before.

    Parameters
    ----------
    scene : Scene
        An untreated phantom scene with a lesion.
    weeks : float
        Time without treatment, 0..520 weeks.
    supersample : int
        Sub-points per axis of the partial-volume rasterisation at surfaces.

    Returns
    -------
    Scene
        The scene with the grown lesion, on the same grid.
    """
    if not (isinstance(weeks, (int, float)) and math.isfinite(weeks) and 0 <= weeks <= 520):
        raise ValueError(f"weeks must be in 0..520, got {weeks!r}")
    if scene.anatomy is None or scene.lesion is None:
        raise ValueError("grow needs a phantom scene with a lesion (built by build_scene)")
    if any(not h.startswith("built from") and not h.startswith("grown") for h in scene.history):
        raise ValueError("grow applies to untreated scenes; apply procedures after growing")
    factor = growth_factor(scene.clinical.get("histology"), weeks)
    with _DERIVATION_LOCK:
        parent = _DERIVATION.get(scene)
    key = None
    if parent is not None:
        key = ("grown", parent, _typed(weeks), _typed(supersample))
        try:
            hash(key)
        except TypeError:
            key = None
    result = _GROWN.get(key) if key is not None else None
    if result is not None:
        return result
    lesion = grown(scene.lesion, volume_factor=factor, anatomy=scene.anatomy)
    result = render_phantom(scene.anatomy, scene.grid, lesion, supersample=supersample, clinical=dict(scene.clinical),
                            history=scene.history + (f"grown {weeks:g} weeks (volume x{factor:.2f})",))
    if key is not None:
        _remember(_GROWN, key, result)
    return result
