"""Interactive planning state: the influence matrix is built once and kept.

A resident moves sliders (prescription, separation gap); the session re-optimises on the
cached matrix with a warm start (:func:`planner.optimise.reoptimise`): a few iterations, so
the state it returns is provisional (``converged`` False) and depends on the path the sliders
took; :meth:`Session.converge` then runs a full optimisation from a start that depends on the
settings only (the app does once the slider rests), whose figures no longer depend on the
path. The matrix is built on the pre-operative scene with beamlets covering the pre-operative
PTV, which contains any post-operative one; separation surgery only turns tumour into fluid
(1.05 -> 1.0 g/cc), a density change the session reports and does not rebuild for. Hardware
or cement would change the density and need a new matrix (a new session).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scenes.cases import build_scene, load_case
from scenes.surgery import separation_surgery

from .beams import arrangement_angles, make_beams
from .constraints import constraints_for
from .influence import build_influence, planning_kept_energy
from .optimise import optimise, reoptimise
from .achievable import achievable_limits
from .case_objectives import (_make_terms, _optimisation_region, _point_limits, _rows, _term_rows, escalate,
                              hard_structures, optimisation_stride)
from .plan import ACHIEVABLE_STRUCTURE, Regimen, achievable_from, add_targets, row_measure

__all__ = ["Session", "SessionState"]


@dataclass(frozen=True)
class SessionState:
    """What a slider change gives back: the regimen and gap now set, the achievable
    prescription and PTV D90 (Gy) of the current plan (measured on the matrix rows), the
    optimiser's iterations, a note, and whether the plan is converged.

    ``converged`` False marks a provisional state: the few warm-started iterations of a
    slider update, whose figures depend on the slider's history (on T10 at 27 Gy/3 and a
    2 mm gap, 27.2-29.2 Gy by path against 29.7 Gy converged); :meth:`Session.converge`
    gives the settled one.
    """
    regimen: Regimen
    gap_mm: float
    achievable_prescription_gy: float
    ptv_d90_gy: float
    iterations: int
    note: str
    converged: bool = False


class Session:
    """Planning state for one case; methods return a :class:`SessionState` after each change.

    The slider methods return provisional states (``converged`` False); :meth:`converge`
    finishes the optimisation at the current settings and returns the settled state.

    Building a session builds the scene, the targets, the beams and the influence matrix
    and optimises once (seconds); the slider methods then re-optimise on that matrix.

    Parameters
    ----------
    case : str or Case
        Teaching-case id, case-file path or :class:`scenes.cases.Case`.
    regimen : Regimen
        The starting prescription; its fractions stay fixed for the session.
    protocol : str, default "hytec"
        Constraint protocol with limits for the regimen's fractions.
    grid_mm : tuple of float, default (2.5, 2.5, 2.5)
        Voxel spacing (z, y, x) in mm of the scene.
    arrangement : str, default "sbrt_fan"
        Beam arrangement (:data:`~planner.radiotherapy.beams.ARRANGEMENTS`), 5 mm beamlets.
    backend : str, default "cpu"
        Kernel backend of the matrix build and every (re-)optimisation: 'cpu', 'cuda' or
        'auto' (:func:`planner.radiotherapy.optimise.optimise`).
    """

    def __init__(self, case, *, regimen: Regimen, protocol: str = "hytec", grid_mm=(2.5, 2.5, 2.5),
                 arrangement: str = "sbrt_fan", backend: str = "cpu"):
        self.backend = backend
        self.case = load_case(case) if isinstance(case, str) else case
        self.protocol = protocol
        self.regimen = regimen
        self.constraints = constraints_for(protocol, regimen.fractions, prior_course=self.case.patient.get("prior_radiotherapy"))
        self.hard = hard_structures(self.constraints)
        self.base_scene = build_scene(self.case, spacing_mm=grid_mm)
        self._scenes = {0.0: add_targets(self.base_scene, prv_of=self.hard)}
        self._term_rows = {}  # gap -> objective rows
        self._measure_rows = {}  # gap -> rows of the structures the state reports
        self._sliders = {}  # gap -> (matrix of the used rows only, its term rows, its measure rows)
        scene = self._scenes[0.0]
        points = scene.grid.index_to_mm(np.argwhere(scene.structure("ptv").full() > 0.5))
        self.beams = make_beams(points, gantry_deg=arrangement_angles(arrangement), beamlet_mm=5.0)
        organs = tuple(sorted({c.structure for c in self.constraints if scene.has(c.structure)}))
        self.influence = build_influence(scene, self.beams, target="ptv", roi=_optimisation_region(scene, organs=organs),
                                         report=lambda s: None, backend=backend, kept_energy=planning_kept_energy(),
                                         sampling_stride=optimisation_stride(scene))
        self.gap_mm = 0.0
        result = optimise(self.influence.matrix, self._terms(), backend=backend)
        self.weights = result.weights
        self._last_rx = regimen.dose_gy
        # Whether the weights are a full optimisation's at the current settings (a slider update
        # sets it False, converge() True); LiveSession's constructor sets it too.
        self.converged = True
        self._settled = {}  # settings -> (weights, iterations) of converge(); shared by copies

    def _scene(self, gap_mm: float):
        key = round(float(gap_mm), 3)
        if key not in self._scenes:
            operated = separation_surgery(self.base_scene, key) if key > 0 else self.base_scene
            self._scenes[key] = add_targets(operated, prv_of=self.hard)
        return self._scenes[key]

    def _rows_for_gap(self) -> dict:
        key = round(self.gap_mm, 3)
        if key not in self._term_rows:
            self._term_rows[key] = _term_rows(self.influence, self._scene(self.gap_mm), _point_limits(self.constraints))
        return self._term_rows[key]

    def _terms(self):
        return _make_terms(self._rows_for_gap(), self.regimen)

    def _measured(self):
        key = round(self.gap_mm, 3)
        if key not in self._measure_rows:
            scene = self._scene(self.gap_mm)
            names = {"ptv", "gtv"} | {c.structure for c in self.constraints if scene.has(c.structure)}
            self._measure_rows[key] = {n: _rows(self.influence, scene, n) for n in names}
        return self._measure_rows[key]

    def _slider(self):
        """The matrix restricted to the rows some objective term or reported metric uses, with
        those rows renumbered: the same objective and gradient with ~45% fewer entries on the
        reference case (rows within 10 mm of the PTV outside every structure carry no term)."""
        key = round(self.gap_mm, 3)
        if key not in self._sliders:
            term_rows, measure_rows = self._rows_for_gap(), self._measured()
            used = np.unique(np.concatenate([entry[0] for entry in term_rows.values()]
                                            + [entry[0] for entry in measure_rows.values()]))

            def renumber(table):
                return {name: (np.searchsorted(used, entry[0]),) + tuple(entry[1:]) for name, entry in table.items()}

            self._sliders[key] = (self.influence.matrix[used], renumber(term_rows), renumber(measure_rows))
        return self._sliders[key]

    def _state(self, iterations: int, note: str, converged: bool = False) -> SessionState:
        # Metrics on the used matrix rows only (every target and organ voxel near the PTV is a
        # row): no full-grid dose is formed while a slider moves.
        matrix, _, rows_of = self._slider()
        measure = row_measure(matrix, self.weights, rows_of, self.base_scene.grid.voxel_volume_cc)
        achievable = achievable_from(measure, self.constraints, set(rows_of), fractions=self.regimen.fractions)
        return SessionState(self.regimen, self.gap_mm, achievable, measure("ptv", "D90%"), iterations, note,
                            converged)

    def _reoptimise(self, scale: float = 1.0):
        matrix, term_rows, _ = self._slider()
        self.converged = False
        return reoptimise(matrix, _make_terms(term_rows, self.regimen), self.weights, scale=scale, backend=self.backend)

    def _settings_key(self) -> tuple:
        """What a settled plan depends on: the rules (protocol, cord surrogate), the regimen
        and the gap."""
        return (self.protocol, getattr(self, "surrogate", None), self.regimen.dose_gy, self.regimen.fractions,
                round(self.gap_mm, 3))

    def converge(self, *, cancelled=None) -> SessionState | None:
        """Finish the optimisation at the current settings: the settled state.

        A full :func:`~planner.radiotherapy.optimise.optimise` (its stopping rules, up to 500
        iterations) on the session's matrix from the same start the constructor and
        :func:`~planner.radiotherapy.plan.plan_case` use (all weights one), not from the
        slider's weights: from those, the full optimisation stops at different points of a
        flat valley, and its achievable prescription still depends on the slider's history
        (T10, 27 Gy/3, 2 mm gap: 31.95-33.29 Gy over four paths on the 5 mm grid, 29.67-29.72
        on the 2.5 mm one). From one start the settled plan depends on the settings only, so
        a state reached by any slider path settles to the same figure. Settled plans are kept
        per setting (protocol, surrogate, regimen, gap): a setting visited again settles at
        once.

        Parameters
        ----------
        cancelled : callable, optional
            Checked before every objective evaluation (a newer slider move waited 5 ms median,
            11 ms worst, on the 2.5 mm grid under load); when it returns True the optimisation
            stops, the weights stay those of the provisional plan, and None is returned (the
            app cancels when the resident moves a slider again).

        Returns
        -------
        SessionState or None
            The state with ``converged`` True, or None when cancelled.
        """
        note = "converged at these settings; matrix kept"
        if self.converged:
            return self._state(0, note, converged=True)
        key = self._settings_key()
        if key not in self._settled:
            matrix, term_rows, _ = self._slider()
            stopped = []

            def stop():
                if cancelled is not None and cancelled():
                    stopped.append(True)
                return bool(stopped)

            result = optimise(matrix, _make_terms(term_rows, self.regimen), backend=self.backend, stop=stop)
            if stopped:
                return None
            self._settled[key] = (result.weights, result.iterations)
        weights, iterations = self._settled[key]
        self.weights, self.converged = weights.copy(), True
        return self._state(iterations, note, converged=True)

    def maximum_prescription(self) -> tuple:
        """The maximum achievable prescription at the current gap, by the plan's escalation search.

        The escalation search of :func:`planner.radiotherapy.plan.plan_case` on the session's
        matrix at the current gap (GTV Dmin at the binding limit: every organ limit, the
        escalation bound, the hot spot; seconds, not a slider update). The session's own state
        reports only the scaled current plan, a lower bound.

        Returns
        -------
        gy : float
            The maximum achievable prescription (Gy).
        probes : tuple of (float, float)
            (prescription asked, figure reached) of every probe, Gy.
        binding : dict or None
            The limit that binds it (:func:`~planner.radiotherapy.achievable.achievable_limits`).
        """
        matrix, term_rows, measure_rows = self._slider()
        rows_of = {n: measure_rows[n] for n in {ACHIEVABLE_STRUCTURE} | {c.structure for c in self.constraints}
                   if n in measure_rows}
        voxel = self.base_scene.grid.voxel_volume_cc
        gy, weights, probes = escalate(matrix, term_rows, self.regimen, rows_of, self.constraints, self.weights,
                                       voxel_cc=voxel)
        found = achievable_limits(row_measure(matrix, weights, rows_of, voxel), self.constraints, set(rows_of),
                                  fractions=self.regimen.fractions)
        return gy, probes, found["binding"]

    def set_prescription(self, dose_gy: float) -> SessionState:
        """New prescription (same fractions): warm-started quick re-optimisation.

        Parameters
        ----------
        dose_gy : float
            New total dose (Gy), in (0, 80] (:class:`~planner.radiotherapy.plan.Regimen` raises
            ValueError otherwise); the previous weights are scaled by the dose ratio first.

        Returns
        -------
        SessionState
            The state after the update.
        """
        new = Regimen(float(dose_gy), self.regimen.fractions)
        scale = new.dose_gy / self._last_rx
        self.regimen = new
        result = self._reoptimise(scale)
        self.weights, self._last_rx = result.weights, new.dose_gy
        return self._state(result.iterations, "prescription changed; matrix kept")

    def forget_gap(self, gap_mm: float) -> None:
        """Drop what the session keeps for one gap other than the current one and 0 (its operated
        scene, its rows, its slider matrix): a scripted study that visits each gap once holds one
        operated scene at a time instead of all (the demo's gap study on its fine grid: about
        200 MiB a gap). A later visit rebuilds them; the app's sessions keep theirs (the slider
        returns to gaps it has shown).

        Parameters
        ----------
        gap_mm : float
            A gap (mm) the session has visited; the current gap and 0 are kept (ValueError for
            the current one).
        """
        key = round(float(gap_mm), 3)
        if key == round(self.gap_mm, 3):
            raise ValueError(f"gap_mm {gap_mm} is the session's current gap: set another one first")
        if key == 0.0:
            return
        for cache in (self._scenes, self._term_rows, self._measure_rows, self._sliders):
            cache.pop(key, None)

    def set_gap(self, gap_mm: float) -> SessionState:
        """New separation gap: targets rebuilt on the operated scene, matrix kept.

        Parameters
        ----------
        gap_mm : float
            Gap (mm) separation surgery leaves between tumour and thecal sac, 0..10 (ValueError
            otherwise); 0 is no surgery.

        Returns
        -------
        SessionState
            The state after the update.
        """
        if not 0 <= gap_mm <= 10:
            raise ValueError(f"gap_mm must be in 0..10 mm, got {gap_mm}")
        self.gap_mm = float(gap_mm)
        result = self._reoptimise()
        self.weights = result.weights
        note = "gap changed; matrix kept (surgery turns tumour into fluid: density change below 5%)" if gap_mm else \
            "no surgery; matrix kept"
        return self._state(result.iterations, note)

