"""One resident's live plan: a warm influence matrix, re-optimised on every slider change,
and the checks on every value the page sends.

:class:`LiveSession` extends :class:`planner.radiotherapy.session.Session` with what the app's
controls change without a new matrix (protocol, fractions, the cord surrogate: each set of
rules keeps its own per-gap caches) and with what needs one (beam count, density-changing
procedures such as hardware or cement, weeks of delay: a new session, built in the
background). :func:`check_control` validates a raw value from the page before any work.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from scenes.cases import build_scene, grow, load_case

from planner.clinical.strategies import TECHNIQUES
from planner.radiotherapy.achievable import achievable_from
from planner.radiotherapy.beams import arrangement_angles, make_beams, posterior_fan_angles
from planner.radiotherapy.constraints import constraint_status, constraints_for, protocols
from planner.radiotherapy.influence import build_influence, planning_kept_energy
from planner.radiotherapy.metrics import metric, structure_dose
from planner.radiotherapy.optimise import optimise
from planner.radiotherapy.case_objectives import _optimisation_region, hard_structures, optimisation_stride
from planner.radiotherapy.regimen import MAX_FRACTIONS, MAX_PRESCRIPTION_GY, Regimen
from planner.radiotherapy.session import Session, SessionState

__all__ = ["LiveSession", "Snapshot", "Controls", "check_control", "SURROGATES", "GAP_MAX_MM", "GAP_STEP_MM",
           "FAST_CONTROLS", "HEAVY_CONTROLS", "regimen_menu"]

#: The app's separation-gap slider (mm): the issue's 0-5 mm, in half-millimetre steps.
GAP_MAX_MM, GAP_STEP_MM = 5.0, 0.5
#: Cord surrogate choices: what the cord's limits are checked on (label -> structure).
SURROGATES = {"cord": "spinal_cord", "PRV": "cord_prv", "thecal sac": "thecal_sac"}
#: Beams of the posterior SBRT fan (planner.radiotherapy.beams.posterior_fan_angles takes 1..36).
BEAMS_RANGE = (3, 15)
#: Weeks of delayed diagnosis the app offers (scenes.cases.grow takes up to 520).
WEEKS_MAX = 52.0
#: Structure metrics the surrogate takes over from the cord (point and small-volume maxima);
#: the partial-cord metric stays on the cord.
_SURROGATE_METRICS = ("Dmax", "D0.035cc", "D0.1cc", "D0.35cc", "D1.2cc")
BEAMLET_MM = 5.0  # the session's beamlet size (numerical setting, as Session uses)

#: Controls whose change only re-optimises (fast path) and those needing a new matrix.
FAST_CONTROLS = ("gap_mm", "dose_gy", "fractions", "surrogate", "protocol", "weights")
HEAVY_CONTROLS = ("strategy", "n_beams", "weeks")


@dataclass(frozen=True)
class Controls:
    """What the resident has set: strategy key, gap (mm), prescription (Gy) in fractions,
    cord surrogate label, protocol, number of beams, weeks of delay and scorecard weights."""

    strategy: str | None = None
    gap_mm: float = 0.0
    dose_gy: float = 24.0
    fractions: int = 2
    surrogate: str = "cord"
    protocol: str = "hytec"
    n_beams: int = 9
    weeks: float = 0.0
    weights: dict = field(default_factory=dict)


def _number(name: str, raw, low: float, high: float, *, above_low: bool = False, unit: str = "") -> float:
    span = f"({low:g}, {high:g}]" if above_low else f"{low:g}..{high:g}"
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in {span}{unit}, got {str(raw)[:40]!r}") from None
    inside = math.isfinite(value) and (value > low if above_low else value >= low) and value <= high
    if not inside:
        raise ValueError(f"{name} must be in {span}{unit}, got {str(raw)[:40]}")
    return value


def _integer(name: str, raw, low: int, high: int) -> int:
    value = _number(name, raw, low, high)
    if value != int(value):
        raise ValueError(f"{name} must be a whole number in {low}..{high}, got {str(raw)[:40]}")
    return int(value)


def check_control(name: str, raw, *, controls: Controls, strategies=(), weight_keys=()) -> object:
    """The checked value of one control sent by the page (ValueError naming the field and the
    allowed values otherwise). Every value from the browser passes here before any work.

    Parameters
    ----------
    name : str
        A field of :class:`Controls`.
    raw : object
        What the page sent (a number, text, a dict for weights, ...).
    controls : Controls
        The current controls (fractions are checked against the protocol, and back).
    strategies : sequence of str
        The strategy keys offered.
    weight_keys : sequence of str
        The scorecard's weight keys.

    Examples
    --------
    >>> check_control("gap_mm", "2.5", controls=Controls())
    2.5
    >>> check_control("gap_mm", "abc", controls=Controls())
    Traceback (most recent call last):
    ...
    ValueError: separation gap must be a number in 0..5 mm, got 'abc'
    """
    if name == "gap_mm":
        return _number("separation gap", raw, 0.0, GAP_MAX_MM, unit=" mm")
    if name == "dose_gy":
        return _number("prescription dose", raw, 0.0, MAX_PRESCRIPTION_GY, above_low=True, unit=" Gy")
    if name == "fractions":
        value = _integer("fractions", raw, 1, MAX_FRACTIONS)
        allowed = protocols()[controls.protocol]["fractions"]
        if value not in allowed:
            raise ValueError(f"fractions: protocol {controls.protocol} has limits for {', '.join(map(str, allowed))} "
                             f"fractions only, got {value}")
        return value
    if name == "protocol":
        table = protocols()
        if not isinstance(raw, str) or raw not in table:
            raise ValueError(f"protocol must be one of {', '.join(sorted(table))}, got {str(raw)[:40]!r}")
        if controls.fractions not in table[raw]["fractions"]:
            raise ValueError(f"protocol {raw} has limits for {', '.join(map(str, table[raw]['fractions']))} fractions "
                             f"only; change the fractions first ({controls.fractions} now)")
        return raw
    if name == "surrogate":
        if not isinstance(raw, str) or raw not in SURROGATES:
            raise ValueError(f"cord surrogate must be one of {', '.join(SURROGATES)}, got {str(raw)[:40]!r}")
        return raw
    if name == "n_beams":
        return _integer("number of beams", raw, *BEAMS_RANGE)
    if name == "weeks":
        return _number("delay of diagnosis", raw, 0.0, WEEKS_MAX, unit=" weeks")
    if name == "strategy":
        if not isinstance(raw, str) or raw not in strategies:
            raise ValueError(f"strategy must be one of {', '.join(strategies)}, got {str(raw)[:40]!r}")
        return raw
    if name == "weights":
        if not isinstance(raw, dict):
            raise ValueError("weights must be a mapping of outcome to a number 0..100")
        checked = {}
        for key, value in raw.items():
            if not isinstance(key, str) or key not in weight_keys:
                raise ValueError(f"weights: unknown outcome {str(key)[:40]!r}; allowed: {', '.join(weight_keys)}")
            checked[key] = _number(f"weight of {key}", value, 0.0, 100.0)
        if checked and not any(checked.values()):
            raise ValueError("weights: at least one weight must be above 0, or nothing can be ranked")
        return checked
    raise ValueError(f"unknown control {str(name)[:40]!r}")


def regimen_menu() -> list[tuple[float, int]]:
    """(dose Gy, fractions) of the strategy menu's regimens, for the regimen picker."""
    from planner.clinical.data import read_table

    found = {(float(e["dose_gy"]), int(e["fractions"])) for e in read_table("strategies")["menu"] if "dose_gy" in e}
    return sorted(found, key=lambda r: (r[1], r[0]))


def surrogate_constraints(constraints, surrogate: str) -> list:
    """The constraints with the cord's point and small-volume limits moved to the surrogate
    structure (the lower limit kept where the surrogate already has one for that metric)."""
    structure = SURROGATES[surrogate]
    if structure == "spinal_cord":
        return list(constraints)
    moved = [replace(c, structure=structure, note=(c.note + "; " if c.note else "") + f"cord limit applied to {surrogate}")
             if c.structure == "spinal_cord" and c.metric in _SURROGATE_METRICS else c for c in constraints]
    best = {}
    for c in moved:
        key = (c.structure, c.metric)
        if key not in best or c.limit_gy < best[key].limit_gy:
            best[key] = c
    return [c for c in moved if best[(c.structure, c.metric)] is c]


@dataclass(frozen=True)
class Snapshot:
    """Everything the fast views show after a change: the session state, the constraint rows
    (structure, metric, limit, value, status, source), each structure's voxel doses for the
    DVH, the full-grid dose (Gy) for the slices and the server time (ms)."""

    state: SessionState
    protocol: str
    surrogate: str
    rows: tuple
    doses: dict
    dose_gy: np.ndarray
    scene: object
    server_ms: float

    @property
    def achievable_gy(self) -> float:
        return self.state.achievable_prescription_gy

    @property
    def failed(self) -> int:
        return sum(r["status"] == "fail" for r in self.rows)


class LiveSession(Session):
    """A :class:`~planner.radiotherapy.session.Session` whose protocol, fractions and cord
    surrogate change on the warm matrix too, built on a scene that may carry hardware or
    cement and weeks of growth.

    Parameters
    ----------
    case : str, Path or Case
        Teaching-case id, case-file path or Case.
    regimen : Regimen
        The starting prescription.
    protocol : str, default "hytec"
        Constraint protocol with limits for the regimen's fractions.
    surrogate : str, default "cord"
        Cord surrogate label, a key of :data:`SURROGATES`.
    grid_mm : tuple of float, default (2.5, 2.5, 2.5)
        Voxel spacing (z, y, x) in mm.
    technique : str, default "sbrt"
        'sbrt' (posterior fan of ``n_beams``) or 'cebrt' (its arrangement, e.g. AP-PA).
    n_beams : int, default 9
        Beams of the SBRT fan.
    procedures : sequence of Procedure
        Density-changing procedures (instrumentation, cement, ...) applied before planning;
        separation surgery is the gap slider, not a procedure here.
    weeks : float, default 0.0
        Weeks of untreated growth before planning.
    backend : str, default "cpu"
        Kernel backend of the matrix build and the optimisations (as Session's).
    """

    def __init__(self, case, *, regimen: Regimen, protocol: str = "hytec", surrogate: str = "cord",
                 grid_mm=(2.5, 2.5, 2.5), technique: str = "sbrt", n_beams: int = 9, procedures=(), weeks: float = 0.0,
                 backend: str = "cpu"):
        self.backend = backend
        self.case = load_case(case) if isinstance(case, (str, Path)) else case
        scene = build_scene(self.case, spacing_mm=grid_mm)
        if weeks:
            scene = grow(scene, weeks)
        for procedure in procedures:
            scene = procedure.apply(scene)
        self.base_scene = scene
        self.technique, self.n_beams, self.weeks, self.procedures = technique, n_beams, weeks, tuple(procedures)
        self._rule_caches, self._scene_caches, self._points = {}, {}, {}
        self.regimen, self.protocol, self.surrogate = regimen, protocol, surrogate
        self._use_rules()
        targets = self._scene(0.0)
        points = targets.grid.index_to_mm(np.argwhere(targets.structure("ptv").full() > 0.5))
        arrangement = TECHNIQUES[technique][0]
        angles = posterior_fan_angles(n_beams) if arrangement == "sbrt_fan" else arrangement_angles(arrangement)
        self.gantry_deg = list(angles)
        self.beams = make_beams(points, gantry_deg=angles, beamlet_mm=BEAMLET_MM)
        # The region keeps the rows of every structure any protocol limits, so that a change
        # of protocol or surrogate later finds its organs' rows in the warm matrix.
        limited = {row["structure"] for table in protocols().values() for row in table["rows"]}
        limited |= {c.structure for c in self.constraints} | set(SURROGATES.values())
        organs = tuple(sorted(n for n in limited if targets.has(n)))
        self.influence = build_influence(targets, self.beams, target="ptv",
                                         roi=_optimisation_region(targets, organs=organs), report=lambda s: None,
                                         backend=backend, kept_energy=planning_kept_energy(),
                                         sampling_stride=optimisation_stride(targets))
        self.gap_mm = 0.0
        self.weights = optimise(self.influence.matrix, self._terms(), backend=backend).weights
        self._last_rx = regimen.dose_gy
        self.converged = True
        self._settled = {}  # settings -> settled weights (Session.converge)

    def _use_rules(self) -> None:
        base = constraints_for(self.protocol, self.regimen.fractions,
                               prior_course=self.case.patient.get("prior_radiotherapy"))
        self.hard = hard_structures(base)
        self.constraints = surrogate_constraints(base, self.surrogate)
        # Per-gap caches belong to one set of rules; scenes (targets) to one set of hard structures.
        key = (self.protocol, self.regimen.fractions, self.surrogate)
        self._term_rows, self._measure_rows, self._sliders = self._rule_caches.setdefault(key, ({}, {}, {}))
        self._scenes = self._scene_caches.setdefault(self.hard, {})

    def set_rules(self, *, protocol: str | None = None, fractions: int | None = None, surrogate: str | None = None,
                  dose_gy: float | None = None) -> SessionState:
        """New protocol, fractions, cord surrogate and/or prescription on the warm matrix.

        Parameters
        ----------
        protocol, fractions, surrogate, dose_gy : optional
            The new values (None keeps the current one); checked by
            :func:`check_control` first, and again by :class:`Regimen` and
            :func:`~planner.radiotherapy.constraints.constraints_for` (ValueError).

        Returns
        -------
        SessionState
            The state after the re-optimisation.
        """
        new_regimen = Regimen(float(dose_gy if dose_gy is not None else self.regimen.dose_gy),
                              int(fractions if fractions is not None else self.regimen.fractions))
        old = (self.protocol, self.regimen, self.surrogate)
        self.protocol = protocol or self.protocol
        self.surrogate = surrogate or self.surrogate
        self.regimen = new_regimen
        try:
            self._use_rules()
        except ValueError:
            self.protocol, self.regimen, self.surrogate = old
            self._use_rules()
            raise
        scale = new_regimen.dose_gy / self._last_rx
        result = self._reoptimise(scale)
        self.weights, self._last_rx = result.weights, new_regimen.dose_gy
        return self._state(result.iterations, "rules changed; matrix kept")

    def interface_mm(self) -> np.ndarray:
        """Where the slices cut: the tumour-sac interface of the current scene (cached per gap)."""
        from planner.pictures.dose_figures import interface_point_mm

        key = (round(self.gap_mm, 3), self.hard)
        if key not in self._points:
            self._points[key] = interface_point_mm(self._scene(self.gap_mm))
        return self._points[key]

    def snapshot(self, state: SessionState | None = None, *, started: float | None = None) -> Snapshot:
        """The fast views' data for the current weights (a few ms: one product on the used rows
        and one on the full matrix for the slices).

        Parameters
        ----------
        state : SessionState, optional
            The state a slider method returned (measured again when omitted).
        started : float, optional
            ``time.perf_counter()`` when the change arrived, for the server time.

        Returns
        -------
        Snapshot
        """
        from kernels.sparse_dose_cpu import dose_from_weights

        started = time.perf_counter() if started is None else started
        matrix, _, rows_of = self._slider()
        dose_rows = dose_from_weights(matrix, self.weights)
        voxel = self.base_scene.grid.voxel_volume_cc
        doses = {name: structure_dose(dose_rows[rows], occupancy, voxel) for name, (rows, occupancy, *_) in rows_of.items()}

        def measure(name, metric_name):
            return metric(doses[name], metric_name)

        if state is None:
            achievable = achievable_from(measure, self.constraints, set(rows_of), fractions=self.regimen.fractions)
            state = SessionState(self.regimen, self.gap_mm, achievable, measure("ptv", "D90%"), 0, "", self.converged)
        rows = []
        for c in self.constraints:
            if c.structure not in doses:
                continue
            try:
                value = float(measure(c.structure, c.metric))
            except ValueError:  # a metric the row measure cannot take (partial cord): the report has it
                value = float("nan")
            # No value: the structure lies outside the matrix's rows (far from the target), not a failure.
            status = constraint_status(value, c.limit_gy) if math.isfinite(value) else "n/a"
            rows.append({"structure": c.structure, "metric": c.metric, "limit_gy": float(c.limit_gy), "value_gy": value,
                         "status": status, "source": c.source, "protocol": c.protocol})
        dose_gy = self.influence.dose_volume(self.weights)
        return Snapshot(state, self.protocol, self.surrogate, tuple(rows), doses, dose_gy, self._scene(self.gap_mm),
                        1000.0 * (time.perf_counter() - started))

    def prepare_gaps(self, gaps_mm, *, cancelled=lambda: False) -> None:
        """Build the operated scenes and their rows for these gaps ahead of the slider (the first
        visit of a gap costs a surgery and a target rebuild; later ones only re-optimise)."""
        current = self.gap_mm
        try:
            for gap in gaps_mm:
                if cancelled():
                    return
                self.gap_mm = float(gap)
                self._slider()
                self.interface_mm()
        finally:
            self.gap_mm = current
