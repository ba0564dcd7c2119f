"""Per-level dimensions of the vertebral phantoms, resolved from sourced anchors.

``scenes/data/morphometry.toml`` lists, per measure, *anchors*: a value with its source
for one level or for a group of levels (a pooled regional mean). A level without an anchor
takes the linear interpolation between the nearest anchored levels above and below (by
position in the column), or the nearest anchor at the ends. Every resolved value keeps a
provenance string saying which of these happened, so a reader can tell a measured number
from an interpolated one. Two consistency rules follow (see ``resolve_level``): the thecal
sac must fit in the bony canal with the posterior epidural fat behind it, and the cord in
the sac.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from functools import lru_cache

from ._data import load_data

__all__ = ["LEVELS", "PHANTOM_LEVELS", "LevelDimensions", "level_dimensions", "level_index", "region_of",
           "anchors_of", "MEASURES"]

#: The column from C2 to S2: phantoms exist for C3..S1; C2 and S2 are their neighbours.
LEVELS = ("C2", "C3", "C4", "C5", "C6", "C7",
          "T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9", "T10", "T11", "T12",
          "L1", "L2", "L3", "L4", "L5", "S1", "S2")
PHANTOM_LEVELS = LEVELS[1:-1]


def level_index(level: str) -> int:
    try:
        return LEVELS.index(level)
    except ValueError:
        raise ValueError(f"level must be one of {', '.join(PHANTOM_LEVELS)} (C2/S2 as neighbours), got {level!r}") from None


def region_of(level: str) -> str:
    """'cervical', 'thoracic', 'lumbar' or 'sacral'."""
    level_index(level)
    return {"C": "cervical", "T": "thoracic", "L": "lumbar", "S": "sacral"}[level[0]]


@dataclass(frozen=True)
class LevelDimensions:
    """Resolved dimensions of one vertebral level, in mm. ``provenance`` says where each came from."""

    level: str
    body_width_mm: float
    body_depth_mm: float
    body_height_mm: float
    canal_width_mm: float
    canal_depth_mm: float
    pedicle_width_mm: float
    pedicle_height_mm: float
    lamina_thickness_mm: float
    spinous_length_mm: float
    transverse_span_mm: float
    disc_below_mm: float
    cord_ap_mm: float
    cord_rl_mm: float
    sac_ap_mm: float
    sac_rl_mm: float
    posterior_epidural_mm: float
    skin_to_canal_mm: float
    provenance: dict = field(default_factory=dict, compare=False, repr=False)


MEASURES = tuple(f.name for f in fields(LevelDimensions) if f.name.endswith("_mm"))


def anchors_of(measure: str) -> list[dict]:
    table = load_data("morphometry")["measures"]
    if measure not in table:
        raise KeyError(f"morphometry.toml has no measure {measure!r}")
    return table[measure]["anchors"]


def _resolve_measure(measure: str, level: str) -> tuple[float, str]:
    position = level_index(level)
    anchored: dict[int, tuple[float, str]] = {}
    for anchor in anchors_of(measure):
        for name in anchor["levels"]:
            anchored[level_index(name)] = (float(anchor["value"]), anchor["source"])
    if not anchored:
        raise ValueError(f"measure {measure!r} has no anchors")
    if position in anchored:
        value, source = anchored[position]
        return value, f"{source}"
    below = [p for p in anchored if p < position]
    above = [p for p in anchored if p > position]
    if below and above:
        p0, p1 = max(below), min(above)
        (v0, s0), (v1, s1) = anchored[p0], anchored[p1]
        t = (position - p0) / (p1 - p0)
        return v0 + t * (v1 - v0), f"interpolated between {LEVELS[p0]} ({s0}) and {LEVELS[p1]} ({s1})"
    nearest = max(below) if below else min(above)
    value, source = anchored[nearest]
    return value, f"nearest anchor {LEVELS[nearest]} ({source})"


@lru_cache(maxsize=None)
def level_dimensions(level: str) -> LevelDimensions:
    """Resolved dimensions for one level.

    Examples
    --------
    >>> dims = level_dimensions("L3")
    >>> dims.canal_width_mm
    24.3
    """
    values, provenance = {}, {}
    for measure in MEASURES:
        values[measure], provenance[measure] = _resolve_measure(measure, level)
    # The thecal sac (in-vivo MRI/myelography) must fit in the canal with the posterior
    # epidural fat behind it; where a dry-bone canal is too small for that, the canal is
    # widened (the sac is the organ at risk that matters for dose), and the provenance says so.
    for canal_key, sac_key in (("canal_depth_mm", "sac_ap_mm"), ("canal_width_mm", "sac_rl_mm")):
        need = values[sac_key] + values["posterior_epidural_mm"]
        if values[canal_key] < need:
            provenance[canal_key] += f"; widened from {values[canal_key]:.1f} to hold the sac and epidural fat"
            values[canal_key] = need
    for key, sac_key in (("cord_ap_mm", "sac_ap_mm"), ("cord_rl_mm", "sac_rl_mm")):
        if values[key] > values[sac_key]:
            raise ValueError(f"{level}: {key} {values[key]} exceeds {sac_key} {values[sac_key]} (check morphometry.toml)")
    return LevelDimensions(level=level, provenance=provenance, **values)
