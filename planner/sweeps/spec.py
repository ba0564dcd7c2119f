"""Sweep specs: a TOML file read, validated and expanded into scenarios (standard library only).

A spec has a ``[sweep]`` table (``name``, ``cases``: teaching-case ids or case files relative
to the spec, optional ``description`` and ``seed``), and up to three ways of setting the
parameters of :data:`PARAMETERS`: ``[fixed]`` (one value for every scenario), ``[grid]``
(lists whose every combination is a scenario) and ``[sample]`` (``method`` "random" or
"latin_hypercube", ``n`` points, ``[sample.ranges]`` ``name = [low, high]`` for the numeric
parameters), plus ``[outputs]`` (``dose_arrays = true`` keeps each plan's dose in the side
store; every scalar metric is always kept). The scenarios are the base cases times the grid
times the samples.

Every error names the file, the field, the value and what is allowed (:class:`SpecError`),
before anything runs. Combinations that cannot exist (a delay for a histology without a
published doubling time, a gap with no separation surgery, SBRT in more than 5 fractions,
a protocol without limits for the fractions, ...) are removed and reported once each, with
the count removed (:attr:`Sweep.removed`).

Everything here reads TOML with the standard library: the command line validates a spec
before numba, scipy or the planner are imported. The few constants repeated from modules
too heavy to import (levels, ESCC grades, lesion sites, beam arrangements) are held equal to
their source by tests/planner/sweeps/test_spec.py.

Examples
--------
>>> from planner.sweeps.spec import parse_spec
>>> sweep = parse_spec({"sweep": {"name": "demo", "cases": ["t10_rcc_escc2"]},
...                     "fixed": {"strategy": "separation_sbrt_27gy_3fx"},
...                     "grid": {"gap_mm": [1, 2, 3]}}, where="demo.toml")
>>> [s.params["gap_mm"] for s in sweep.scenarios]
[1.0, 2.0, 3.0]
>>> len({s.key for s in sweep.scenarios})
3
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

__all__ = ["Sweep", "Scenario", "SpecError", "load_spec", "parse_spec", "scenario_key", "PARAMETERS",
           "SAMPLED", "LEVELS", "ESCC_GRADES", "SITES", "ARRANGEMENTS", "CORD_SURROGATES"]

# Repeated from modules too heavy to import for a check (tests hold them equal to their source).
LEVELS = ("C3", "C4", "C5", "C6", "C7", "T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9", "T10", "T11", "T12",
          "L1", "L2", "L3", "L4", "L5", "S1")  # scenes.morphometry.PHANTOM_LEVELS
ESCC_GRADES = ("0", "1a", "1b", "1c", "2", "3")  # scenes.lesions.ESCC_GRADES
SITES = ("body", "pedicle_left", "pedicle_right", "posterior")  # scenes.lesions.SITES
ARRANGEMENTS = ("sbrt_fan", "arc", "pa", "ap_pa")  # planner.radiotherapy.beams.ARRANGEMENTS
#: The structures a protocol may limit as the cord's surrogate (its point maximum is reported).
CORD_SURROGATES = ("spinal_cord", "thecal_sac")
#: Input bounds (the planner's own, repeated: scenes.cases, scenes.surgery, Regimen, the grid).
BODY_FRACTION = (0.05, 1.0)
WEEKS_MAX, GAP_MAX_MM, DOSE_MAX_GY, FRACTIONS_MAX, WEIGHT_MAX = 520.0, 10.0, 80.0, 40, 100.0
GRID_MM = (0.5, 5.0)
SBRT_MAX_FRACTIONS = 5  # planner.clinical.strategies.Strategy: SBRT takes 1-5 fractions
SAMPLE_MAX, SCENARIOS_MAX = 100_000, 1_000_000

#: Every parameter a sweep may set, with what it is; None = the base case's or strategy's own.
PARAMETERS = {
    "level": "vertebral level of the lesion, one of C3..S1",
    "histology": "primary histology (scenes/data/histology.toml)",
    "escc_grade": "requested ESCC (Bilsky) grade of the lesion",
    "lesion_sites": "a list of distinct lesion sites",
    "body_fraction": "share of the vertebral body the lesion takes (lesion size), 0.05..1",
    "weeks_delay": "weeks of untreated growth before treatment, 0..520",
    "gap_mm": "separation gap in mm, 0..10 (0: no separation surgery); only for strategies with separation surgery",
    "strategy": "a key of the standard strategy menu (planner/clinical/data/strategies.toml)",
    "regimen": "prescription as 'DOSE/FRACTIONS', e.g. '24/2' (Gy / fractions)",
    "beams": "beam arrangement",
    "grid_mm": "planning grid spacing, one number or [z, y, x], 0.5..5 mm",
    "protocol": "constraint protocol",
    "cord_surrogate": "structure whose limit stands for the cord (the protocol must limit it)",
    "weights": "scorecard ranking weights, a table key = 0..100",
}
#: Parameters [sample.ranges] may draw (numeric ones).
SAMPLED = ("body_fraction", "weeks_delay", "gap_mm")
#: Decimal places sampled values are rounded to (so that the keys of a rerun are the same).
SAMPLE_DECIMALS = 3


class SpecError(ValueError):
    """A spec that cannot be used; the message names file, field, value and what is allowed."""


@dataclass(frozen=True)
class Scenario:
    """One resolved scenario: ``params`` (every parameter, None = the base's own), ``key`` the
    stable hash of them, ``index`` its place in the spec's order."""

    index: int
    key: str
    params: dict


@dataclass(frozen=True)
class Sweep:
    """A validated, expanded spec: its scenarios, what was removed and why, its identity."""

    name: str
    description: str
    source: str
    seed: int
    scenarios: tuple
    removed: tuple  # ((reason, count), ...)
    dose_arrays: bool
    spec_hash: str
    varied: tuple  # parameters that take more than one value

    def removed_text(self) -> list[str]:
        """The impossible combinations removed, one line each with the count.

        Returns
        -------
        list of str
            E.g. ``'removed 12 scenarios: a gap with no separation surgery (strategy sbrt_24gy_2fx)'``.
        """
        return [f"removed {count} scenario{'s' if count != 1 else ''}: {reason}" for reason, count in self.removed]


# --- the data the checks need, read as TOML ------------------------------------------------

def _toml(package: str, name: str) -> dict:
    return tomllib.loads(resources.files(package).joinpath(name).read_text(encoding="utf-8"))


def _histology() -> dict:
    return _toml("scenes.data", "histology.toml")["histology"]


def _menu() -> dict:
    table = _toml("planner.clinical.data", "strategies.toml")
    return {entry["key"]: entry for entry in table["menu"]}, table


def _protocols() -> dict:
    found = {}
    folder = resources.files("planner.radiotherapy.protocols")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            found.update(tomllib.loads(entry.read_text(encoding="utf-8")).get("protocols", {}))
    return found


def _weight_keys() -> tuple:
    weights = _toml("planner.clinical.data", "scorecard.toml")["weights"]
    return tuple(key for key in weights if key != "source")


def _packaged_cases() -> list[str]:
    folder = resources.files("scenes.data").joinpath("cases")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


# --- checking ---------------------------------------------------------------------------

class _Check:
    def __init__(self, where: str):
        self.where = where

    def fail(self, field: str, value, allowed: str):
        # Keys may hold any character: escape the unprintable ones, the message stays one line.
        field = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(field))
        raise SpecError(f"{self.where}: field '{field}' = {value!r} is not valid; allowed: {allowed}")

    def table(self, data, field: str, known: tuple, required: tuple = ()) -> dict:
        if not isinstance(data, dict):
            self.fail(field, data, "a table")
        for key in data:
            if key not in known:
                self.fail(f"{field}.{key}" if field else key, data[key],
                          f"known keys of [{field or 'spec'}]: {', '.join(known)}")
        for key in required:
            if key not in data:
                raise SpecError(f"{self.where}: field '{field}.{key}' is missing; it is required")
        return data

    def number(self, field, value, low, high, *, above_low=False, integer=False):
        ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok_type or not math.isfinite(value) \
                or not (value > low if above_low else value >= low) or value > high:
            span = f"({low:g}, {high:g}]" if above_low else f"{low:g}..{high:g}"
            self.fail(field, value, f"{'an integer' if integer else 'a number'} in {span}")
        return value


def _value(c: _Check, name: str, field: str, value, context: dict):
    """One value of parameter ``name``, checked and normalised (floats for numbers)."""
    if name == "level":
        if not isinstance(value, str) or value not in LEVELS:
            c.fail(field, value, "one of " + ", ".join(LEVELS))
        return value
    if name == "histology":
        if not isinstance(value, str) or value not in context["histology"]:
            c.fail(field, value, "one of " + ", ".join(context["histology"]))
        return value
    if name == "escc_grade":
        if not isinstance(value, str) or value not in ESCC_GRADES:
            c.fail(field, value, "one of " + ", ".join(f'"{g}"' for g in ESCC_GRADES) + " (a string)")
        return value
    if name == "lesion_sites":
        if not isinstance(value, list) or not value or any(s not in SITES for s in value) or len(set(value)) != len(value):
            c.fail(field, value, "a non-empty list of distinct values from " + ", ".join(SITES))
        return [s for s in SITES if s in value]  # one order, so equal sets hash alike
    if name == "body_fraction":
        return float(c.number(field, value, *BODY_FRACTION))
    if name == "weeks_delay":
        return float(c.number(field, value, 0, WEEKS_MAX))
    if name == "gap_mm":
        return float(c.number(field, value, 0, GAP_MAX_MM))
    if name == "strategy":
        if not isinstance(value, str) or value not in context["menu"]:
            c.fail(field, value, "one of " + ", ".join(context["menu"]))
        return value
    if name == "regimen":
        dose, sep, fractions = str(value).partition("/") if isinstance(value, str) else ("", "", "")
        try:
            dose_gy, count = float(dose), int(fractions)
        except ValueError:
            c.fail(field, value, "'DOSE/FRACTIONS' like '24/2' (Gy / fractions)")
        if not (math.isfinite(dose_gy) and 0 < dose_gy <= DOSE_MAX_GY and 1 <= count <= FRACTIONS_MAX):
            c.fail(field, value, f"a dose in (0, {DOSE_MAX_GY:g}] Gy over 1..{FRACTIONS_MAX} fractions, like '24/2'")
        return f"{dose_gy:g}/{count}"
    if name == "beams":
        if not isinstance(value, str) or value not in ARRANGEMENTS:
            c.fail(field, value, "one of " + ", ".join(ARRANGEMENTS))
        return value
    if name == "grid_mm":
        values = value if isinstance(value, list) else [value]
        if len(values) not in (1, 3):
            c.fail(field, value, "one number or a list [z, y, x] of three")
        values = [float(c.number(field, v, *GRID_MM)) for v in values]
        return values * 3 if len(values) == 1 else values
    if name == "protocol":
        if not isinstance(value, str) or value not in context["protocols"]:
            c.fail(field, value, "one of " + ", ".join(sorted(context["protocols"])))
        return value
    if name == "cord_surrogate":
        if not isinstance(value, str) or value not in CORD_SURROGATES:
            c.fail(field, value, "one of " + ", ".join(CORD_SURROGATES))
        return value
    if name == "weights":
        keys = context["weights"]
        if not isinstance(value, dict) or not value:
            c.fail(field, value, f"a table of weights 0..{WEIGHT_MAX:g} with keys from {', '.join(keys)}")
        for key, weight in value.items():
            if key not in keys:
                c.fail(f"{field}.{key}", weight, "a key among " + ", ".join(keys))
            c.number(f"{field}.{key}", weight, 0, WEIGHT_MAX)
        return {key: float(value[key]) for key in sorted(value)}
    raise AssertionError(name)  # pragma: no cover - PARAMETERS is checked before


def _cases(c: _Check, values, spec_folder: Path) -> list[tuple[str, dict, str]]:
    """(label, case data, content hash) of every base case, read and checked as TOML."""
    if not isinstance(values, list) or not values:
        c.fail("sweep.cases", values, "a non-empty list of teaching-case ids or case files (.toml)")
    found, known = [], _packaged_cases()
    for n, text in enumerate(values):
        field = f"sweep.cases[{n}]"
        if not isinstance(text, str) or not text:
            c.fail(field, text, "a teaching-case id or a case file path")
        if not Path(text).suffix:
            if text not in known:
                c.fail(field, text, "one of " + ", ".join(known) + ", or a case .toml file")
            raw = resources.files("scenes.data").joinpath("cases", f"{text}.toml").read_bytes()
            label = text
        else:
            path = Path(text) if Path(text).is_absolute() else spec_folder / text
            if not path.is_file():
                c.fail(field, text, f"an existing case file (looked for {path})")
            raw = path.read_bytes()
            label = str(path.resolve())
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            c.fail(field, text, f"a UTF-8 TOML case file ({error})")
        if not isinstance(data.get("patient"), dict) or not isinstance(data.get("lesion"), dict):
            c.fail(field, text, "a case file with [case], [patient] and [lesion] tables")
        found.append((label, data, hashlib.sha256(raw).hexdigest()[:16]))
    if len({label for label, _, _ in found}) != len(found):
        c.fail("sweep.cases", values, "distinct cases")
    return found


def _samples(c: _Check, sample: dict, seed: int, context: dict) -> list[dict]:
    c.table(sample, "sample", ("method", "n", "ranges"), ("method", "n", "ranges"))
    method = sample["method"]
    if method not in ("random", "latin_hypercube"):
        c.fail("sample.method", method, "random or latin_hypercube")
    n = c.number("sample.n", sample["n"], 1, SAMPLE_MAX, integer=True)
    ranges = c.table(sample["ranges"], "sample.ranges", SAMPLED)
    if not ranges:
        c.fail("sample.ranges", ranges, "at least one of " + ", ".join(SAMPLED))
    bounds = {}
    for name, pair in ranges.items():
        field = f"sample.ranges.{name}"
        if not isinstance(pair, list) or len(pair) != 2:
            c.fail(field, pair, "[low, high]")
        low, high = (_value(c, name, field, v, context) for v in pair)
        if not low < high:
            c.fail(field, pair, "low < high")
        bounds[name] = (low, high)
    rng = random.Random(seed)
    points = [{} for _ in range(n)]
    for name, (low, high) in bounds.items():
        if method == "random":
            unit = [rng.random() for _ in range(n)]
        else:  # one draw in each of n equal strata, strata shuffled per parameter
            strata = list(range(n))
            rng.shuffle(strata)
            unit = [(s + rng.random()) / n for s in strata]
        for point, u in zip(points, unit):
            point[name] = round(low + u * (high - low), SAMPLE_DECIMALS)
    return points


def scenario_key(params: dict) -> str:
    """The stable hash of a scenario's resolved parameters (24 hex digits).

    Parameters
    ----------
    params : dict
        The resolved parameters (JSON-serialisable; key order does not matter).

    Returns
    -------
    str
        The first 24 hex digits of the SHA-256 of their canonical JSON.

    Examples
    --------
    >>> scenario_key({"a": 1.0, "b": "x"}) == scenario_key({"b": "x", "a": 1.0})
    True
    """
    text = json.dumps(params, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def _impossible(params: dict, case: dict, context: dict) -> str | None:
    """Why a scenario cannot exist (None when it can): one reason per kind of clash."""
    menu, protocols = context["menu"], context["protocols"]
    entry = menu[params["strategy"]]
    histology = params["histology"] or case["patient"].get("histology")
    if params["weeks_delay"] and "doubling_time_days" not in context["histology"].get(histology, {}):
        return f"a delay > 0 for histology {histology}, which has no published doubling time (it cannot grow)"
    procedures = [p["name"] for p in entry.get("procedures", [])]
    if params["gap_mm"] is not None and "separation_surgery" not in procedures:
        return f"a gap with no separation surgery (strategy {params['strategy']})"
    technique = entry.get("technique")
    if technique is None:
        for name in ("regimen", "beams", "protocol", "cord_surrogate"):
            if params[name] is not None:
                return f"a {name.replace('_', ' ')} for strategy {params['strategy']}, which has no radiotherapy"
        return None
    fractions = int(params["regimen"].split("/")[1]) if params["regimen"] else int(entry["fractions"])
    if technique == "sbrt" and fractions > SBRT_MAX_FRACTIONS:
        return f"SBRT (strategy {params['strategy']}) in {fractions} fractions (1..{SBRT_MAX_FRACTIONS})"
    protocol = params["protocol"] or context["techniques"][technique]["protocol"]["value"]
    if fractions not in protocols[protocol]["fractions"]:
        return (f"protocol {protocol} in {fractions} fractions (it has limits for "
                f"{', '.join(map(str, protocols[protocol]['fractions']))})")
    surrogate = params["cord_surrogate"]
    if surrogate and surrogate not in {row["structure"] for row in protocols[protocol].get("rows", [])}:
        return f"cord surrogate {surrogate} with protocol {protocol}, which does not limit it"
    return None


def parse_spec(data: dict, *, where: str = "<spec>", folder: str | Path = ".") -> Sweep:
    """Validate a parsed spec (a dict as read from TOML) and expand it into scenarios.

    Parameters
    ----------
    data : dict
        The spec's tables.
    where : str, default "<spec>"
        The file named in error messages (and recorded as the sweep's source).
    folder : str or os.PathLike, default "."
        Where relative case-file paths are looked for (the spec's folder).

    Returns
    -------
    Sweep
        Its scenarios in spec order (base case, then grid, then samples), each with its
        resolved parameters and key; the impossible combinations removed, with counts.

    Raises
    ------
    SpecError
        Naming the file, the field, the value and what is allowed.
    """
    c = _Check(where)
    c.table(data, "", ("sweep", "fixed", "grid", "sample", "outputs"), ("sweep",))
    head = c.table(data["sweep"], "sweep", ("name", "description", "seed", "cases"), ("name", "cases"))
    name = head["name"]
    if not isinstance(name, str) or not name or not name.replace("_", "").replace("-", "").isalnum():
        c.fail("sweep.name", name, "letters, digits, '-' and '_'")
    description = head.get("description", "")
    if not isinstance(description, str):
        c.fail("sweep.description", description, "a string")
    seed = c.number("sweep.seed", head.get("seed", 0), 0, 2**63 - 1, integer=True)
    menu, strategies = _menu()
    context = {"histology": _histology(), "menu": menu, "protocols": _protocols(), "weights": _weight_keys(),
               "techniques": strategies["techniques"]}
    cases = _cases(c, head["cases"], Path(folder))
    fixed = c.table(data.get("fixed", {}), "fixed", tuple(PARAMETERS))
    grid = c.table(data.get("grid", {}), "grid", tuple(PARAMETERS))
    outputs = c.table(data.get("outputs", {}), "outputs", ("dose_arrays",))
    dose_arrays = outputs.get("dose_arrays", False)
    if not isinstance(dose_arrays, bool):
        c.fail("outputs.dose_arrays", dose_arrays, "true or false")
    resolved_fixed = {k: _value(c, k, f"fixed.{k}", v, context) for k, v in fixed.items()}
    axes = {}
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            c.fail(f"grid.{key}", values, "a non-empty list of values")
        if key in fixed:
            c.fail(f"grid.{key}", values, f"a parameter not also in [fixed] ({key} is)")
        checked = [_value(c, key, f"grid.{key}[{n}]", v, context) for n, v in enumerate(values)]
        if len({json.dumps(v, sort_keys=True) for v in checked}) != len(checked):
            c.fail(f"grid.{key}", values, "distinct values")
        axes[key] = checked
    samples = [{}]
    if "sample" in data:
        samples = _samples(c, data["sample"], seed, context)
        for key in samples[0]:
            if key in fixed or key in grid:
                c.fail(f"sample.ranges.{key}", data["sample"]["ranges"][key], "a parameter not also in [fixed] or [grid]")
    count = len(cases) * math.prod(len(v) for v in axes.values()) * len(samples)
    if count > SCENARIOS_MAX:
        c.fail("grid", f"{count} scenarios", f"at most {SCENARIOS_MAX} scenarios")
    default_strategy = strategies["roles"]["sbrt_alone"]
    scenarios, removed, keys = [], {}, set()
    for (label, case, digest), combo, point in itertools.product(cases, itertools.product(*axes.values()), samples):
        params = {key: None for key in PARAMETERS}
        params.update(resolved_fixed)
        params.update(zip(axes, combo))
        params.update(point)
        params["strategy"] = params["strategy"] or default_strategy
        params["grid_mm"] = params["grid_mm"] or [2.5, 2.5, 2.5]
        params["weeks_delay"] = params["weeks_delay"] or 0.0
        why = _impossible(params, case, context)
        if why is not None:
            removed[why] = removed.get(why, 0) + 1
            continue
        params.update(case=label, case_sha256=digest)
        key = scenario_key(params)
        if key in keys:  # e.g. two samples rounded to the same point
            continue
        keys.add(key)
        scenarios.append(Scenario(len(scenarios), key, params))
    if not scenarios:
        raise SpecError(f"{where}: every scenario is an impossible combination: " + "; ".join(
            f"{reason} ({n})" for reason, n in removed.items()))
    varied = tuple(key for key in ("case",) + tuple(PARAMETERS)
                   if len({json.dumps(s.params[key], sort_keys=True) for s in scenarios}) > 1)
    spec_hash = scenario_key({"scenarios": sorted(keys), "dose_arrays": dose_arrays})
    return Sweep(name, description, where, seed, tuple(scenarios), tuple(removed.items()), dose_arrays, spec_hash, varied)


def load_spec(path: str | Path) -> Sweep:
    """Read, validate and expand a sweep spec file (standard library only).

    Parameters
    ----------
    path : str or os.PathLike
        A TOML spec; case files it names are looked for relative to its folder.

    Returns
    -------
    Sweep
        The expanded, validated sweep (:func:`parse_spec`).

    Raises
    ------
    SpecError
        When the file is missing, not TOML, or any field is invalid (the message names the
        file, the field, the value and what is allowed).
    """
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such sweep spec file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))  # a byte-order mark is no error
    except UnicodeDecodeError:
        raise SpecError(f"{path}: not a UTF-8 text file") from None
    except RecursionError:
        raise SpecError(f"{path}: not valid TOML (nested too deeply)") from None
    except tomllib.TOMLDecodeError as error:
        raise SpecError(f"{path}: not valid TOML ({error})") from None
    return parse_spec(data, where=str(path), folder=path.parent)
