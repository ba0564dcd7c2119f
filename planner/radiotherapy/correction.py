"""The dose-correction loop: make the optimiser's dose the delivered dose.

The optimiser plans on the pencil-beam matrix ``A`` (fast, approximate in bone and lung and
short of each beamlet's far tails); the delivered dose is the collapsed-cone superposition's.
After an optimisation the final engine's dose ``D(w)`` is computed and the weights are
re-optimised on the corrected matrix dose ``r * (A w) + c``: on rows where ``D(w)`` lies within
``max_ratio`` of ``A w`` the ratio ``r = D(w) / A w`` (so a beamlet turned down takes its
correction with it), elsewhere the difference ``c = D(w) - A w`` (Siebers et al. 2001's
correction-based optimisation; Jeraj and Keall 2000's "optimisation convergence error").
Each pass moves half-way to the re-optimised weights: the correction holds near the weights it
was measured at, and the damped loop's fixed points are the undamped one's. A pass ends when both doses agree within a tolerance on
the metrics that decide a plan (the target's D95 and the organs' maxima).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from scenes.scene import Scene

from .influence import Influence
from .metrics import metric, structure_dose
from .optimise import optimise
from .protocols import read_table

__all__ = ["Corrected", "correct", "engine_agreement", "correction_settings"]


def correction_settings() -> dict:
    """The loop's tolerance and pass limit.

    Returns
    -------
    dict
        objectives.toml [correction]: ``tolerance`` (relative) and ``max_passes``.
    """
    return read_table("objectives")["correction"]


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
    corrected_matrix, offset = matrix, np.zeros(matrix.shape[0])
    max_ratio = float(correction_settings()["max_ratio"])
    passes = 0
    while True:
        seen = np.zeros(int(np.prod(shape)))
        seen[rows] = corrected_matrix @ weights + offset
        seen = seen.reshape(shape)
        final = final_of(weights)
        agreement = agreement_of(seen, final)
        differences = [abs(v["difference"]) for v in agreement.values() if np.isfinite(v["difference"])]
        worst = max(differences, default=0.0)
        if worst <= tolerance or passes >= max_passes:
            return Corrected(weights, final, seen, agreement, passes, worst)
        passes += 1
        say(f"correction pass {passes}: the optimiser's dose and the final dose differ by {100 * worst:.1f}%")
        corrected_matrix, offset = _corrected(matrix, final.ravel()[rows], weights, max_ratio)
        # The offset goes to the optimiser itself, so that it still sees which rows the terms use.
        proposed = optimise(corrected_matrix, terms, dose_offset=offset, initial_weights=weights,
                            max_iterations=max_iterations).weights
        # Half a step: the correction holds near the weights it was measured at; a fixed point of
        # the damped loop is one of the undamped (L3 at 5 mm: 9.8% after 4 passes undamped, 2.9% damped).
        weights = 0.5 * (weights + proposed)


def _corrected(matrix, final_rows, weights, max_ratio: float):
    """The matrix with each row scaled by its ratio where ``final / (A w)`` lies in
    [1 / max_ratio, max_ratio], and the additive correction of the other rows."""
    pencil = matrix @ weights
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = final_rows / pencil
    by_ratio = (pencil > 0) & (ratio >= 1 / max_ratio) & (ratio <= max_ratio)
    row_scale = np.where(by_ratio, ratio, 1.0)
    scaled = matrix.copy()
    scaled.data *= np.repeat(row_scale, np.diff(matrix.indptr)).astype(scaled.data.dtype)
    return scaled, np.where(by_ratio, 0.0, final_rows - pencil)
