"""The dose-correction loop: make the optimiser's dose the delivered dose.

The optimiser plans on the pencil-beam matrix ``A`` (fast, approximate in bone and lung and
short of each beamlet's far tails); the delivered dose is the collapsed-cone superposition's.
After an optimisation the final engine's dose ``D(w)`` is computed and the weights are
re-optimised on the corrected matrix dose ``r * (A w) + c``: on rows where ``D(w)`` lies within
``max_ratio`` of ``A w`` the ratio ``r = D(w) / A w`` (so a beamlet turned down takes its
correction with it), elsewhere the difference ``c = D(w) - A w`` (Siebers et al. 2001's
correction-based optimisation; Jeraj and Keall 2000's "optimisation convergence error").
Each pass re-optimises inside a trust region around the weights the correction was measured
at (each weight within ``trust_radius`` of itself, relative; a beamlet at zero may rise to that
fraction of the others' mean) and moves a ``step`` of the way to the result; when a pass's
prediction misses the final dose by more than the tolerance, the region shrinks by
``trust_shrink`` (objectives.toml [correction]). Why: the ratio correction is exact only at
the weights it was measured at (the engines differ beamlet by beamlet, not row by row), and
where the plan is degenerate (L3 ESCC 3, the cauda wrapped by tumour) the unbounded
re-optimisation moved the weights 20-48% a pass and the engines stayed 3-6% apart for 6 passes.
The fixed points are the unbounded loop's. A pass ends when both doses agree within a tolerance
on the metrics that decide a plan (the target's D95 and the organs' maxima).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kernels._dispatch import twin
from kernels.sparse_dose_cpu import dose_from_weights
from scenes.scene import Scene

from .beams import BeamSet
from .delivered_dose import final_dose
from .influence import Influence
from .metrics import metric, structure_dose
from .optimise import _rows_read, optimise
from .protocols import read_table

__all__ = ["Corrected", "correct", "deliver", "engine_agreement", "correction_settings"]


def correction_settings() -> dict:
    """The loop's tolerance, pass limit, row correction and trust region.

    Returns
    -------
    dict
        objectives.toml [correction]: ``tolerance`` (relative), ``max_passes``, ``max_ratio``,
        ``trust_radius`` (> 0, ``inf`` for none), ``trust_shrink`` and ``step`` (both in (0, 1]);
        a value out of range is a ValueError naming it.
    """
    table = read_table("objectives")["correction"]
    ranges = {"trust_radius": (0.0, np.inf), "trust_shrink": (0.0, 1.0), "step": (0.0, 1.0)}
    for key, (low, high) in ranges.items():
        value = table.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not low < value <= high:
            raise ValueError(f"objectives.toml [correction] {key} must be in ({low:g}, {high:g}], got {value!r}")
    return table


def engine_agreement(optimiser_dose: np.ndarray, final: np.ndarray, scene: Scene, *, target: str, organs) -> dict:
    """Both engines' target D95 and organ maxima, and their relative difference.

    Parameters
    ----------
    optimiser_dose, final : numpy.ndarray
        The optimiser's dose and the final engine's, on the scene's grid (Gy).
    scene : Scene
        The planned scene.
    target : str
        The target structure (its D95%).
    organs : iterable of str
        Structures whose Dmax is compared.

    Returns
    -------
    dict
        ``{"<structure> <metric>": {"optimiser_gy", "final_gy", "difference"}}``, the
        difference relative to the final dose (NaN when that is 0).
    """
    voxel = scene.grid.voxel_volume_cc
    out = {}
    for name, name_metric in [(target, "D95%")] + [(organ, "Dmax") for organ in organs]:
        occupancy = scene.structure(name).full()
        a = metric(structure_dose(optimiser_dose, occupancy, voxel), name_metric)
        b = metric(structure_dose(final, occupancy, voxel), name_metric)
        out[f"{name} {name_metric}"] = {"optimiser_gy": float(a), "final_gy": float(b),
                                        "difference": float((a - b) / b) if b > 0 else float("nan")}
    return out




@dataclass(frozen=True, eq=False)
class Corrected:
    """What the loop ended with: ``weights``, the final engine's dose, the optimiser's (the
    matrix's dose plus the correction, zero off the rows), their ``agreement`` (per metric:
    ``optimiser_gy``, ``final_gy``, relative ``difference``), the ``passes`` run and the
    largest remaining difference ``worst``."""
    weights: np.ndarray = field(repr=False)
    final_dose_gy: np.ndarray = field(repr=False)
    optimiser_dose_gy: np.ndarray = field(repr=False)
    agreement: dict
    passes: int
    worst: float


def correct(influence: Influence, terms, weights, *, final_of, agreement_of, tolerance: float, max_passes: int,
            max_iterations: int = 300, progress=None) -> Corrected:
    """Re-optimise against the final engine's difference until both doses agree.

    Parameters
    ----------
    influence : Influence
        The matrix the terms are on.
    terms : list of Term
        The plan's objective terms (on the matrix's rows).
    weights : numpy.ndarray
        The optimised weights (the first pass's warm start).
    final_of : callable
        ``final_of(weights)`` -> the final engine's dose on the full grid (Gy).
    agreement_of : callable
        ``agreement_of(optimiser_dose, final_dose)`` -> ``{metric: {"optimiser_gy",
        "final_gy", "difference"}}`` on full grids.
    tolerance : float
        Largest relative difference accepted, in (0, 1).
    max_passes : int
        Re-optimisations at most, >= 0 (0: measure the agreement only).
    max_iterations : int, default 300
        L-BFGS-B iterations of each re-optimisation.
    progress : callable, optional
        ``progress(message)`` receives a line per pass.

    Returns
    -------
    Corrected
    """
    if not 0 < tolerance < 1:
        raise ValueError(f"tolerance must be in (0, 1), got {tolerance}")
    if max_passes < 0:
        raise ValueError(f"max_passes must be >= 0, got {max_passes}")
    say = progress or (lambda message: None)
    shape = tuple(influence.grid_shape)
    matrix, rows = influence.matrix, influence.voxel_indices
    row_scale, offset = None, np.zeros(matrix.shape[0])
    if terms:  # the optimiser's own rule: a term's rows out of range are refused here, before any work
        _rows_read(terms, matrix.shape[0])
    settings = correction_settings()
    max_ratio = float(settings["max_ratio"])
    radius, shrink, damping = float(settings["trust_radius"]), float(settings["trust_shrink"]), float(settings["step"])
    passes = 0
    while True:
        # A w once a pass (the prediction and the next correction share it), by the project's CSR
        # kernel: no float64/int64 copy of the matrix as SciPy's product of a float32 CSR makes.
        pencil = dose_from_weights(matrix, weights)
        seen = np.zeros(int(np.prod(shape)))
        seen[rows] = pencil * (1.0 if row_scale is None else row_scale) + offset
        seen = seen.reshape(shape)
        final = final_of(weights)
        agreement = agreement_of(seen, final)
        differences = [abs(v["difference"]) for v in agreement.values() if np.isfinite(v["difference"])]
        worst = max(differences, default=0.0)
        if worst <= tolerance or passes >= max_passes:
            return Corrected(weights, final, seen, agreement, passes, worst)
        if passes > 0:  # the last step's prediction missed: the correction holds over a smaller step
            radius *= shrink
        passes += 1
        say(f"correction pass {passes}: the optimiser's dose and the final dose differ by {100 * worst:.1f}%")
        row_scale, offset = _corrected(pencil, final.ravel()[rows], max_ratio)
        # The row scales and the offset go to the optimiser itself (no scaled copy of the matrix:
        # with a term on the body every row is read, and a copy doubled the plan's memory).
        proposed = optimise(matrix, terms, dose_offset=offset, row_scale=row_scale, initial_weights=weights,
                            max_iterations=max_iterations, bounds=_trust_region(weights, radius)).weights
        weights = weights + damping * (proposed - weights)


def deliver(scene: Scene, beams: BeamSet, influence: Influence, terms, weights, *, target: str, organs,
            engine: str = "superposition", backend: str = "cpu", tolerance: float | None = None,
            max_passes: int | None = None, max_iterations: int = 300, progress=None) -> Corrected:
    """The optimised weights' delivered dose: the planning chain's last verb, shared by
    :func:`~planner.radiotherapy.scene_plan.plan_scene` and :func:`~planner.radiotherapy.plan.plan_case`.

    With ``engine='superposition'`` the final dose is the collapsed-cone superposition's and
    the weights are re-optimised by :func:`correct` until both doses agree; with 'pencil'
    the matrix's dose is the delivered dose (both engines' figures reported, equal).

    Parameters
    ----------
    scene : Scene
        The planned scene.
    beams : BeamSet
        The beams the weights belong to.
    influence : Influence
        The pencil-beam matrix the terms are on.
    terms : list of Term
        The objective terms (on the matrix's rows).
    weights : numpy.ndarray
        The optimised weights (one per beamlet).
    target : str
        The structure whose D95% both engines must agree on.
    organs : iterable of str
        Structures whose maxima both engines must agree on.
    engine : str, default "superposition"
        'superposition' or 'pencil' (ValueError otherwise, before any work).
    backend : str, default "cpu"
        Kernel twins for the final dose: 'cpu', 'cuda' or 'auto'.
    tolerance : float, optional
        Relative agreement that ends the loop, in (0, 1) (default objectives.toml [correction]).
    max_passes : int, optional
        Correction passes at most, >= 0 (default objectives.toml [correction]).
    max_iterations : int, default 300
        L-BFGS-B iterations of each re-optimisation.
    progress : callable, optional
        ``progress(message)`` receives a line per step.

    Returns
    -------
    Corrected
        The final weights, both doses (unnormalised, Gy per unit weight as the matrix's), their
        agreement, the passes run and the largest remaining difference.
    """
    if engine not in ("superposition", "pencil"):
        raise ValueError(f"engine must be 'superposition' or 'pencil', got {engine!r}")
    settings = correction_settings()
    tolerance = float(settings["tolerance"] if tolerance is None else tolerance)
    max_passes = int(settings["max_passes"] if max_passes is None else max_passes)
    if not 0 < tolerance < 1:  # refused with either engine, before any work
        raise ValueError(f"tolerance must be in (0, 1), got {tolerance}")
    if max_passes < 0:
        raise ValueError(f"max_passes must be >= 0, got {max_passes}")
    if engine == "superposition":
        twin("superposition", backend)  # a refused backend fails before any work too
    organs = list(organs)
    say = progress or (lambda message: None)

    def agreement_of(optimiser_dose, final):
        return engine_agreement(optimiser_dose, final, scene, target=target, organs=organs)

    if engine == "pencil":
        dose = influence.dose_volume(weights)
        return Corrected(weights, dose, dose, agreement_of(dose, dose), 0, 0.0)

    def superposition(w):
        say("final dose (collapsed-cone superposition)")
        return final_dose(scene, beams, w, backend=backend)

    return correct(influence, terms, weights, final_of=superposition, agreement_of=agreement_of, tolerance=tolerance,
                   max_passes=max_passes, max_iterations=max_iterations, progress=say)


def _trust_region(weights, radius: float):
    """Bounds within ``radius`` (relative) of each weight; a beamlet at 0 may rise to ``radius``
    times the mean of the others (so beamlets switched off can come back gradually)."""
    if not np.isfinite(radius):
        return None
    positive = weights[weights > 0]
    floor = radius * (positive.mean() if positive.size else 1.0)
    return np.maximum(weights * (1 - radius), 0.0), weights * (1 + radius) + np.where(weights > 0, 0.0, floor)


def _corrected(pencil, final_rows, max_ratio: float):
    """Each row's scale (its ratio where ``final / (A w)`` lies in [1 / max_ratio, max_ratio],
    else 1) and the additive correction of the other rows; ``pencil`` is ``A w`` on the rows."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = final_rows / pencil
    by_ratio = (pencil > 0) & (ratio >= 1 / max_ratio) & (ratio <= max_ratio)
    return np.where(by_ratio, ratio, 1.0), np.where(by_ratio, 0.0, final_rows - pencil)
