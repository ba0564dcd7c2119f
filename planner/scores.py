"""Clinical scores measured from the scene: SINS now (NOMS, Tokuhashi and Tomita to follow).

The Spinal Instability Neoplastic Score (Fisher 2010) is computed from the scene itself:
location from the level, lesion quality from the lesion's kind, collapse and body
involvement measured on the vertebral-body and tumour masks, posterolateral involvement
measured on the pedicles; pain and alignment are the case's clinical inputs. Points come
from ``planner/protocols/scores.toml``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from scenes.morphometry import level_dimensions
from scenes.scene import Scene

__all__ = ["SinsScore", "sins", "score_tables"]


@lru_cache(maxsize=1)
def score_tables() -> dict:
    return tomllib.loads(resources.files("planner.protocols").joinpath("scores.toml").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class SinsScore:
    total: int
    components: dict  # name -> (category, points)
    category: str
    measured: dict  # the geometric measurements behind the components
    source: str

    def explain(self) -> str:
        parts = " + ".join(f"{name.replace('_', ' ')} {category} {points}" for name, (category, points) in self.components.items())
        return f"SINS {self.total} ({self.category}): {parts}"


def _fraction(scene: Scene, part: str, whole: str) -> float:
    if part not in scene.structures or whole not in scene.structures:
        return 0.0
    w = scene.structure(whole).full()
    return float(np.minimum(scene.structure(part).full(), w).sum() / max(w.sum(), 1e-9))


def _body_height_mm(scene: Scene) -> float:
    """Height of the index vertebral body along z through its centre column (occupancy sum)."""
    body = scene.structure(f"vertebral_body_{scene.level}").full()
    columns = body.sum(axis=0)
    j, i = np.unravel_index(np.argmax(columns), columns.shape)
    return float(body[:, j, i].sum()) * scene.grid.spacing_mm[0]


def sins(scene: Scene) -> SinsScore:
    """SINS of the scene's index level.

    Examples
    --------
    >>> from scenes.cases import build_scene
    >>> sins(build_scene("l2_rcc_escc1a", spacing_mm=(2.5, 2.5, 2.5), supersample=2)).total
    5
    """
    table = score_tables()["sins"]
    tolerance = score_tables()["measurement"]
    level = scene.level
    if level is None or scene.lesion is None:
        raise ValueError("SINS needs a phantom scene with a level and a lesion")
    location = next(name for name, levels in table["location_levels"].items() if level in levels)
    pain = scene.clinical.get("pain", "none")
    alignment = scene.clinical.get("alignment", "normal")
    alignment_key = {"normal": "normal", "de_novo_deformity": "de_novo_deformity", "subluxation": "subluxation"}[alignment]
    expected = level_dimensions(level).body_height_mm
    height = _body_height_mm(scene)
    loss = max(0.0, 1 - height / expected)
    involved = _fraction(scene, "lesion_bone", f"vertebral_body_{level}")
    if loss > 0.5:
        collapse = "over_50"
    elif loss > tolerance["collapse_tolerance"]:
        collapse = "under_50"
    elif involved > 0.5:
        collapse = "none_over_50_involved"
    else:
        collapse = "none"
    left = _fraction(scene, "lesion_bone", f"pedicle_left_{level}") > tolerance["element_tolerance"]
    right = _fraction(scene, "lesion_bone", f"pedicle_right_{level}") > tolerance["element_tolerance"]
    posterior = _fraction(scene, "lesion_bone", f"lamina_{level}") > tolerance["element_tolerance"]
    sides = int(left) + int(right)
    posterolateral = "bilateral" if sides == 2 or (posterior and sides == 1) else ("unilateral" if sides == 1 else "none")
    components = {
        "location": (location, table["location"][location]),
        "pain": (pain, table["pain"][pain]),
        "bone_lesion": (scene.lesion.kind, table["bone_lesion"][scene.lesion.kind]),
        "alignment": (alignment_key, table["alignment"][alignment_key]),
        "collapse": (collapse, table["collapse"][collapse]),
        "posterolateral": (posterolateral, table["posterolateral"][posterolateral]),
    }
    total = int(sum(points for _, points in components.values()))
    category = next(name for name in ("stable", "potentially_unstable", "unstable")
                    if table[name][0] <= total <= table[name][1])
    measured = {"body_height_mm": height, "table_height_mm": expected, "height_loss": loss, "body_involved": involved,
                "pedicle_left": left, "pedicle_right": right, "posterior_elements": posterior}
    return SinsScore(total, components, category, measured, table["source"])
