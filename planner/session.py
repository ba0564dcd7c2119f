"""Interactive planning state: the influence matrix is built once and kept.

A resident moves sliders (prescription, separation gap); the session re-optimises on the
cached matrix with a warm start (:func:`planner.optimise.reoptimise`). The matrix is built
on the pre-operative scene with beamlets covering the pre-operative PTV, which contains any
post-operative one; separation surgery only turns tumour into fluid (1.05 -> 1.0 g/cc), a
density change the session reports and does not rebuild for. Hardware or cement would change
the density and need a new matrix (a new session).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scenes.cases import build_scene, load_case
from scenes.surgery import separation_surgery

from .beams import arrangement_angles, make_beams
from .constraints import constraints_for
from .influence import build_influence
from .metrics import metric, structure_dose
from .optimise import optimise, reoptimise
from .plan import (Regimen, _hard_limits, _make_terms, _optimisation_region, _rows, _term_rows, achievable_from,
                   add_targets, hard_structures)

__all__ = ["Session", "SessionState"]


@dataclass(frozen=True)
class SessionState:
    regimen: Regimen
    gap_mm: float
    achievable_prescription_gy: float
    ptv_d90_gy: float
    iterations: int
    note: str


class Session:
    """Planning state for one case; methods return a :class:`SessionState` after each change."""

    def __init__(self, case, *, regimen: Regimen, protocol: str = "hytec", grid_mm=(2.5, 2.5, 2.5),
                 arrangement: str = "sbrt_fan"):
        self.case = load_case(case) if isinstance(case, str) else case
        self.protocol = protocol
        self.regimen = regimen
        self.constraints = constraints_for(protocol, regimen.fractions, prior_course=self.case.patient.get("prior_radiotherapy"))
        self.hard = hard_structures(self.constraints)
        self.base_scene = build_scene(self.case, spacing_mm=grid_mm)
        self._scenes = {0.0: add_targets(self.base_scene, prv_of=self.hard)}
        self._term_rows = {}  # gap -> objective rows
        self._measure_rows = {}  # gap -> rows of the structures the state reports
        scene = self._scenes[0.0]
        points = scene.grid.index_to_mm(np.argwhere(scene.structure("ptv").full() > 0.5))
        self.beams = make_beams(points, gantry_deg=arrangement_angles(arrangement), beamlet_mm=5.0)
        self.influence = build_influence(scene, self.beams, target="ptv", roi=_optimisation_region(scene),
                                         report=lambda s: None)
        self.gap_mm = 0.0
        result = optimise(self.influence.matrix, self._terms())
        self.weights = result.weights
        self._last_rx = regimen.dose_gy

    def _scene(self, gap_mm: float):
        key = round(float(gap_mm), 3)
        if key not in self._scenes:
            operated = separation_surgery(self.base_scene, key) if key > 0 else self.base_scene
            self._scenes[key] = add_targets(operated, prv_of=self.hard)
        return self._scenes[key]

    def _terms(self):
        key = round(self.gap_mm, 3)
        if key not in self._term_rows:
            self._term_rows[key] = _term_rows(self.influence, self._scene(self.gap_mm), _hard_limits(self.constraints))
        return _make_terms(self._term_rows[key], self.regimen)

    def _state(self, iterations: int, note: str) -> SessionState:
        # Metrics on the matrix's rows only (every target and organ voxel near the PTV is a
        # row): no full-grid dose is formed while a slider moves.
        from kernels.sparse_dose_cpu import dose_from_weights

        key = round(self.gap_mm, 3)
        if key not in self._measure_rows:
            scene = self._scene(self.gap_mm)
            names = {"ptv", "gtv"} | {c.structure for c in self.constraints if scene.has(c.structure)}
            self._measure_rows[key] = {n: _rows(self.influence, scene, n) for n in names}
        rows_of = self._measure_rows[key]
        dose = dose_from_weights(self.influence.matrix, self.weights)
        voxel = self.base_scene.grid.voxel_volume_cc

        def measure(name, metric_name):
            rows, occupancy = rows_of[name]
            return metric(structure_dose(dose[rows], occupancy, voxel), metric_name)

        achievable = achievable_from(measure, self.constraints, set(rows_of))
        return SessionState(self.regimen, self.gap_mm, achievable, measure("ptv", "D90%"), iterations, note)

    def set_prescription(self, dose_gy: float) -> SessionState:
        """New prescription (same fractions): warm-started quick re-optimisation."""
        new = Regimen(float(dose_gy), self.regimen.fractions)
        scale = new.dose_gy / self._last_rx
        self.regimen = new
        result = reoptimise(self.influence.matrix, self._terms(), self.weights, scale=scale)
        self.weights, self._last_rx = result.weights, new.dose_gy
        return self._state(result.iterations, "prescription changed; matrix kept")

    def set_gap(self, gap_mm: float) -> SessionState:
        """New separation gap: targets rebuilt on the operated scene, matrix kept."""
        if not 0 <= gap_mm <= 10:
            raise ValueError(f"gap_mm must be in 0..10 mm, got {gap_mm}")
        self.gap_mm = float(gap_mm)
        result = reoptimise(self.influence.matrix, self._terms(), self.weights)
        self.weights = result.weights
        note = "gap changed; matrix kept (surgery turns tumour into fluid: density change below 5%)" if gap_mm else \
            "no surgery; matrix kept"
        return self._state(result.iterations, note)

