"""Mass effect: an epidural tumour displaces and flattens the thecal sac and the cord.

The epidural mass is an ellipsoid centred on the canal wall it grows from, at the index
level's mid-height: the *ventral* wall (the posterior body wall) when the vertebral body is
diseased or only a pedicle is (a pedicle's extension enters the canal ventrolaterally, at
its base), the *dorsal* wall (the laminae) when the posterior elements are diseased without
the body. Its *front* is how deep (mm) it reaches into the canal from that wall along the
midline of the mass; ``side`` moves its centre left or right.

The canal contents yield in the order of ``scenes/data/cord.toml``, slice by slice (each
axial height sees the mass's own cross-section there):

1. the sac (with the cord) moves away from the mass into a share of the epidural fat
   behind it, shapes intact;
2. the mass indents the sac: CSF is pushed out in front of the cord;
3. the mass reaches the cord (or the cauda equina below the conus) and pushes it across the
   sac into the CSF beyond it;
4. held by the far wall of the sac, the cord flattens: its diameter along the push shrinks
   and it widens so that its area is kept;
5. at the compression ratio where the literature sees cords lose area it widens no more and
   loses area; the CSF left around it is obliterated by tumour (ESCC 3);
6. it never gets smaller than the least area a compressed cord keeps; the front stops there.

So the cord and the cauda keep a positive area at every height, and every measure of
compression grows with the front: the ESCC grade read off the scene never falls as the
tumour grows. Shapes stay elliptic (flattening is along the push, y); the pushes are solved
numerically per height on the ellipses' sampled outlines, so a lateral mass is handled like a
midline one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from ._data import load_data, value_of
from .shapes import Box, Ellipsoid, Empty, Shape, Tube, Union

__all__ = ["Compression", "APPROACHES", "approach_of", "compress", "compression_bands", "front_where", "mass_solid"]

APPROACHES = ("ventral", "dorsal")
_SIDE_SIGN = {"midline": 0.0, "left": 1.0, "right": -1.0}  # LPS: +x is the patient's left


def _setting(table: str, name: str) -> float:
    return value_of(load_data("cord")[table][name])


FAT_YIELD = _setting("mass", "fat_yield")
HEIGHT_FRACTION = _setting("mass", "height_fraction")
WIDTH_FRACTION = _setting("mass", "width_fraction")
SIDE_OFFSET_FRACTION = _setting("mass", "side_offset_fraction")
FLATTENED_AREA = _setting("flattening", "area_fraction")
AREA_LOSS_RATIO = _setting("flattening", "area_loss_compression_ratio")
#: Least share of its normal area a compressed cord keeps (jbjs1989_cord over spine1994_cord).
LEAST_AREA_FRACTION = _setting("crush", "least_area_mm2") / _setting("normal_area_mm2", "C4")

# Numerical settings of the solver (not anatomy): outline samples, anchors per mass height,
# coarse steps of the push before refinement, bisection rounds.
_OUTLINE_POINTS = 241
_ANCHORS = 24
_COARSE_STEPS = 160
_ROUNDS = 24
_PUSH_ROUNDS = 12


@dataclass(frozen=True)
class Compression:
    """The canal contents after an epidural mass, as solids, and the state at mid-height.

    Attributes
    ----------
    epidural, sac, cord, cauda : Shape
        Tumour inside the canal, and the reshaped thecal sac, cord and cauda equina. The
        tumour never overlaps the cord or the cauda.
    front_mm : float
        The front as drawn: the requested reach, stopped where the cord would be crushed.
    csf_obliterated : bool
        No CSF is left around the cord at the worst heights (the cord is losing area).
    neural_ap_fraction, neural_area_fraction : float
        The cord's (or cauda's) AP diameter and area at the index mid-height, as shares of
        their uncompressed values.
    """

    epidural: Shape
    sac: Shape
    cord: Shape
    cauda: Shape
    front_mm: float
    csf_obliterated: bool
    neural_ap_fraction: float
    neural_area_fraction: float


def approach_of(sites) -> str:
    """The canal wall an epidural mass grows from: 'ventral' unless only posterior elements
    (laminae, spinous process, with or without a pedicle) are diseased, then 'dorsal'.

    Examples
    --------
    >>> approach_of(("body", "pedicle_left")), approach_of(("posterior",)), approach_of(("pedicle_right",))
    ('ventral', 'dorsal', 'ventral')
    """
    sites = tuple(sites)
    return "dorsal" if "posterior" in sites and "body" not in sites else "ventral"


@dataclass(frozen=True)
class _Frame:
    """The index level's canal seen along the push: y' = sign * (y - wall_y), the depth from
    the wall the mass grows from."""

    z0: float
    wall_y: float
    sign: float
    half_height: float
    half_width: float
    centre_x: float
    canal: Tube
    sac: Shape
    cord: Shape
    cauda: Shape


def _interp(tube: Tube, z: float) -> tuple[float, float, float, float]:
    """Centre y, centre x, radius y, radius x of a tube's cross-section at height z."""
    return tuple(float(np.interp(z, tube.z_mm, values))
                 for values in (tube.centre_y_mm, tube.centre_x_mm, tube.radii_y_mm, tube.radii_x_mm))


def _frame(anatomy, approach: str, side: str) -> _Frame:
    if approach not in APPROACHES:
        raise ValueError(f"approach must be one of {APPROACHES}, got {approach!r}")
    if side not in _SIDE_SIGN:
        raise ValueError(f"side must be one of {tuple(_SIDE_SIGN)}, got {side!r}")
    index = anatomy.index
    z0 = index.z_centre_mm
    canal_y, _, canal_ry, canal_rx = _interp(anatomy.canal, z0)
    sign = 1.0 if approach == "ventral" else -1.0
    return _Frame(z0, canal_y - sign * canal_ry, sign, HEIGHT_FRACTION * index.dims.body_height_mm,
                  WIDTH_FRACTION * canal_rx, _SIDE_SIGN[side] * SIDE_OFFSET_FRACTION * canal_rx,
                  anatomy.canal, anatomy.sac, anatomy.cord, anatomy.cauda)


def mass_solid(frame: _Frame, front_mm: float) -> Shape:
    """The epidural mass (before it is clipped to the canal) with its front at ``front_mm``."""
    if front_mm <= 0:
        return Empty()
    return Ellipsoid((frame.z0, frame.wall_y, frame.centre_x), (frame.half_height, front_mm, frame.half_width))


def _front(frame: _Frame, front_mm: float, z: float, x: np.ndarray) -> np.ndarray:
    """Depth (y') of the mass's surface facing the canal at height z over positions x; -inf
    where the mass is absent."""
    u = (z - frame.z0) / frame.half_height
    scale = math.sqrt(max(0.0, 1.0 - u * u))
    width = frame.half_width * scale
    out = np.full(np.shape(x), -np.inf)
    if front_mm <= 0 or width <= 0:
        return out
    t = (np.asarray(x, float) - frame.centre_x) / width
    inside = np.abs(t) < 1
    out[inside] = front_mm * scale * np.sqrt(1 - t[inside] ** 2)
    return out


_THETA = np.linspace(0.0, math.pi, _OUTLINE_POINTS)[1:-1]
_COS, _SIN = np.cos(_THETA), np.sin(_THETA)


def _near_overlap(frame, front_mm, z, centre, ry, rx, cx) -> np.ndarray:
    """How deep the mass reaches past the near outline of ellipses (centre y' and radii may
    be arrays of candidates): max over the outline of front - outline, per candidate."""
    centre, ry, rx = (np.atleast_1d(np.asarray(v, float)) for v in (centre, ry, rx))
    x = cx + rx[:, None] * _COS[None, :]
    near = centre[:, None] - ry[:, None] * _SIN[None, :]
    return np.max(_front(frame, front_mm, z, x) - near, axis=1)


_FIT_T = np.linspace(-1.0, 1.0, 17)  # points along the far side of a flattened cord
_FIT_SQRT = np.sqrt(1 - _FIT_T ** 2)
_TABLE_ROWS = 32  # half-APs at which the room to widen is tabulated
_FIT_ROUNDS = 14


@lru_cache(maxsize=4096)
def _width_table(far: float, ry0: float, rx0: float, cx0: float, canal: tuple) -> tuple:
    """(half-APs, half-RLs): how wide a cord flattened against a far wall at ``far`` may be
    and stay inside the canal."""
    ry = np.linspace(ry0, ry0 / _TABLE_ROWS, _TABLE_ROWS)
    c, cx, a, b = canal
    low, high = np.zeros_like(ry), np.full_like(ry, max(b, rx0))
    for _ in range(_FIT_ROUNDS):  # the widest ellipse on the far wall still inside the canal
        rx = (low + high) / 2
        x = cx0 + rx[:, None] * _FIT_T[None, :]
        y = far - ry[:, None] + ry[:, None] * _FIT_SQRT[None, :]
        inside = np.all(((y - c) / a) ** 2 + ((x - cx) / b) ** 2 <= 1 + 1e-9, axis=1)
        low, high = np.where(inside, rx, low), np.where(inside, high, rx)
    return ry, low


@dataclass(frozen=True)
class _Neural:
    """One neural tube's cross-section at one height, in the push frame, and how it yields.

    Pushed, it first moves across the sac (``room``); then, its far edge on the sac's far
    wall, it flattens and widens to keep its area, as far as the canal lets it widen (a cord
    pressed against the front of the canal, where no fat is left, cannot widen into bone) and
    at most to the compression ratio at which cords lose area; beyond either it loses area,
    down to the least area.
    """

    centre: float  # y' of the centre, after the sac moved
    ry: float
    rx: float
    cx: float
    room: float  # how far it can move before it meets the sac's far wall
    canal: tuple  # (centre y', centre x, half-depth, half-width) of the canal at this height

    @property
    def far(self) -> float:
        return self.centre + self.room + self.ry

    @cached_property
    def _table(self) -> tuple:
        """(half-APs, widths): how wide the cord can be, flattened to each half-AP."""
        rys, room = _width_table(self.far, self.ry, self.rx, self.cx, self.canal)
        return rys, self._width(rys, room)

    def _width(self, ry, room):
        """Half-RL flattened to half-AP ``ry`` with ``room`` to widen: its area kept, at most to
        the area-loss compression ratio and within the room (never narrower than it was, room
        allowing)."""
        ratio_limit = min(self.ry, math.sqrt(AREA_LOSS_RATIO * self.rx * self.ry))
        kept = FLATTENED_AREA * self.rx * self.ry / np.maximum(ry, ratio_limit)
        return np.maximum(np.minimum(kept, room), np.minimum(self.rx, room))

    def width(self, ry):
        """Half-RL when flattened to half-AP ``ry``."""
        rys, room = _width_table(self.far, self.ry, self.rx, self.cx, self.canal)
        return self._width(ry, np.interp(ry, rys[::-1], room[::-1]))

    @cached_property
    def ry_limit(self) -> float:
        """Half-AP below which it loses area (the ratio or the canal stops its widening)."""
        rys, widths = self._table
        deficit = rys * widths / (FLATTENED_AREA * self.rx * self.ry) - 1  # < 0 once area is lost
        lost = deficit < -1e-6
        if not lost.any():
            return float(rys[-1])
        i = int(np.argmax(lost))
        if i == 0:
            return float(rys[0])
        return float(np.interp(0.0, [deficit[i], deficit[i - 1]], [rys[i], rys[i - 1]]))

    @cached_property
    def ry_least(self) -> float:
        """Half-AP at its least area."""
        rys, widths = self._table
        area = np.minimum.accumulate(rys * widths)  # from the full height down
        least = LEAST_AREA_FRACTION * self.rx * self.ry
        if area[-1] >= least:
            return float(rys[-1])
        return float(np.interp(least, area[::-1], rys[::-1]))

    @property
    def push_limit(self) -> float:  # push at which it starts to lose area
        return self.room + 2 * (self.ry - self.ry_limit)

    @property
    def push_most(self) -> float:
        return self.room + 2 * (self.ry - self.ry_least)

    def shape(self, push):
        """Centre y', half-AP and half-RL after being pushed ``push`` mm (arrays allowed)."""
        push = np.asarray(push, float)
        moved = np.minimum(push, self.room)
        ry = np.maximum(self.ry - np.maximum(push - self.room, 0.0) / 2, self.ry_least)
        rx = np.where(push > self.room, self.width(ry), self.rx)
        far = self.centre + moved + self.ry  # the far edge stays on the sac's far wall
        return far - ry, ry, rx

    def push_needed(self, frame, front_mm, z) -> float:
        """The least push that clears the mass (the most push when even that does not)."""
        if _near_overlap(frame, front_mm, z, self.centre, self.ry, self.rx, self.cx)[0] <= 0:
            return 0.0
        pushes = np.linspace(0.0, self.push_most, _COARSE_STEPS + 1)
        clear = _near_overlap(frame, front_mm, z, *self.shape(pushes), self.cx) <= 0
        if not clear.any():
            return self.push_most
        first = int(np.argmax(clear))
        low, high = pushes[first - 1], pushes[first]
        for _ in range(_PUSH_ROUNDS):
            middle = (low + high) / 2
            if _near_overlap(frame, front_mm, z, *self.shape(middle), self.cx)[0] <= 0:
                high = middle
            else:
                low = middle
        return float(high)


def _section(frame: _Frame, front_mm: float, z: float, names=("cord", "cauda")):
    """At height z: the sac's move (y'), and for the cord and the cauda (or those of ``names``)
    their _Neural and push."""
    sac_y, sac_x, sac_ry, sac_rx = _interp(frame.sac, z)
    canal_y, canal_x, canal_ry, canal_rx = _interp(frame.canal, z)
    to_frame = lambda y: frame.sign * (y - frame.wall_y)  # noqa: E731
    sac_c = to_frame(sac_y)
    far_wall = to_frame(canal_y + frame.sign * canal_ry)
    fat_beyond = max(0.0, far_wall - (sac_c + sac_ry))
    overlap = _near_overlap(frame, front_mm, z, sac_c, sac_ry, sac_rx, sac_x)[0]
    sac_move = float(min(max(overlap, 0.0), FAT_YIELD * fat_beyond))
    pushed = {}
    for name, tube in (("cord", frame.cord), ("cauda", frame.cauda)):
        if isinstance(tube, Empty) or name not in names or not tube.z_range_mm[0] <= z <= tube.z_range_mm[1]:
            continue  # (a tube's cross-section outside its own heights is never drawn)
        y, x, ry, rx = _interp(tube, z)
        centre = to_frame(y) + sac_move
        room = max(0.0, (sac_c + sac_move + sac_ry) - (centre + ry))
        neural = _Neural(centre, ry, rx, x, room, (to_frame(canal_y), canal_x, canal_ry, canal_rx))
        pushed[name] = (neural, neural.push_needed(frame, front_mm, z))
    return sac_move, pushed


def _active(frame: _Frame, z: float) -> str:
    """The neural tube drawn at height z: the cord above the conus, else the cauda equina."""
    cord = frame.cord
    if not isinstance(cord, Empty) and cord.z_range_mm[0] <= z <= cord.z_range_mm[1]:
        return "cord"
    return "cauda"


def _deformed(tube: Tube, frame: _Frame, anchors, moves) -> Tube:
    """``tube`` with its cross-section replaced at ``anchors`` by ``moves`` (y', ry, rx)."""
    z = np.asarray(tube.z_mm, float)
    keep = (z < anchors[0]) | (z > anchors[-1])
    new_z = np.concatenate([z[keep], anchors])
    order = np.argsort(new_z, kind="stable")
    old = {key: np.interp(anchors, z, getattr(tube, key)) for key in
           ("radii_y_mm", "radii_x_mm", "centre_y_mm", "centre_x_mm")}
    centre = np.array([frame.wall_y + frame.sign * m[0] if m is not None else c
                       for m, c in zip(moves, old["centre_y_mm"])])
    ry = np.array([m[1] if m is not None else r for m, r in zip(moves, old["radii_y_mm"])])
    rx = np.array([m[2] if m is not None else r for m, r in zip(moves, old["radii_x_mm"])])

    def merged(name, values):
        return tuple(float(v) for v in np.concatenate([np.asarray(getattr(tube, name), float)[keep], values])[order])

    return Tube(merged("z_mm", anchors), merged("radii_y_mm", ry), merged("radii_x_mm", rx),
                merged("centre_y_mm", centre), merged("centre_x_mm", old["centre_x_mm"]), tube.z_range_mm)


@lru_cache(maxsize=256)
def _state_at_centre(frame: _Frame, front_mm: float) -> tuple:
    """(sac move, the active _Neural, its push) at the index mid-height."""
    active = _active(frame, frame.z0)
    sac_move, pushed = _section(frame, front_mm, frame.z0, (active,))
    neural, push = pushed[active]
    return sac_move, neural, push


def _first_front(frame: _Frame, happened, high: float) -> float:
    """The least front (0..high) at which ``happened(front)`` holds (it must stay true)."""
    if not happened(high):
        return high
    low = 0.0
    for _ in range(_ROUNDS):
        middle = (low + high) / 2
        if happened(middle):
            high = middle
        else:
            low = middle
    return float(high)


@lru_cache(maxsize=256)
def _bands(frame: _Frame) -> dict:
    canal_y, _, canal_ry, _ = _interp(frame.canal, frame.z0)
    depth = 2 * canal_ry
    eps = 1e-6

    def state(front):
        return _state_at_centre(frame, float(front))

    _, neural, _ = state(0.0)
    indent = _first_front(frame, lambda f: _near_overlap(frame, f, frame.z0, *_sac_after(frame, f))[0] > eps, depth)
    touch = _first_front(frame, lambda f: state(f)[2] > eps, depth)
    flatten = _first_front(frame, lambda f: state(f)[2] > state(f)[1].room + eps, depth)
    crush = _first_front(frame, lambda f: state(f)[2] > state(f)[1].push_limit + eps, depth)
    most = _first_front(frame, lambda f: state(f)[2] >= state(f)[1].push_most - eps, depth)
    return {"indent": min(indent, touch), "touch": touch, "flatten": flatten, "crush": crush, "most": most,
            "depth": depth}


def _sac_after(frame: _Frame, front_mm: float):
    """The sac's cross-section at mid-height after it moved (centre y', ry, rx, cx)."""
    sac_y, sac_x, sac_ry, sac_rx = _interp(frame.sac, frame.z0)
    sac_move, _, _ = _state_at_centre(frame, float(front_mm))
    return frame.sign * (sac_y - frame.wall_y) + sac_move, sac_ry, sac_rx, sac_x


_AREA_SAMPLES = np.linspace(-1.0, 1.0, 81)


def _sac_area_lost(frame: _Frame, front_mm: float) -> float:
    """Share of the sac's area at mid-height that the mass has taken (after the sac moved)."""
    centre, ry, rx, cx = _sac_after(frame, front_mm)
    u, v = np.meshgrid(_AREA_SAMPLES, _AREA_SAMPLES, indexing="ij")
    inside = u * u + v * v <= 1
    y, x = centre + ry * u[inside], cx + rx * v[inside]
    return float(np.mean(y < _front(frame, front_mm, frame.z0, x)))


def _gap(frame: _Frame, front_mm: float) -> float:
    """Distance along the push between the mass and the cord (or cauda) at mid-height (0 once
    they touch)."""
    _, neural, push = _state_at_centre(frame, float(front_mm))
    if push > 0:
        return 0.0
    return float(max(0.0, -_near_overlap(frame, front_mm, frame.z0, neural.centre, neural.ry, neural.rx, neural.cx)[0]))


def _ratio_lost(frame: _Frame, front_mm: float) -> float:
    """How much the cord's (or cauda's) AP/RL ratio has fallen at mid-height (0..1)."""
    _, neural, push = _state_at_centre(frame, float(front_mm))
    _, ry, rx = neural.shape(push)
    return float(1 - (ry / rx) / (neural.ry / neural.rx))


@lru_cache(maxsize=1024)
def _front_where(frame: _Frame, what: str, value: float) -> float:
    depth = 2 * _interp(frame.canal, frame.z0)[2]
    test = {"sac_area_loss": lambda f: _sac_area_lost(frame, f) >= value,
            "gap_mm": lambda f: _gap(frame, f) <= value,
            "ratio_loss": lambda f: _ratio_lost(frame, f) >= value}[what]
    return _first_front(frame, test, depth)


def front_where(anatomy, *, approach: str = "ventral", side: str = "midline", sac_area_loss: float | None = None,
                gap_mm: float | None = None, ratio_loss: float | None = None) -> float:
    """The least front (mm) at which, at the index mid-height, the mass has taken at least
    ``sac_area_loss`` of the sac's area, or comes within ``gap_mm`` of the cord (along the
    push), or has lowered the cord's AP/RL ratio by at least ``ratio_loss`` (give one).

    Examples
    --------
    >>> from scenes.anatomy import build_anatomy
    >>> anatomy = build_anatomy("T10")
    >>> bands = compression_bands(anatomy)
    >>> bands["indent"] < front_where(anatomy, sac_area_loss=0.05) < front_where(anatomy, gap_mm=1.0) < bands["touch"]
    True
    """
    given = {k: v for k, v in (("sac_area_loss", sac_area_loss), ("gap_mm", gap_mm), ("ratio_loss", ratio_loss))
             if v is not None}
    if len(given) != 1:
        raise ValueError(f"give exactly one of sac_area_loss, gap_mm, ratio_loss; got {sorted(given)}")
    (what, value), = given.items()
    return _front_where(_frame(anatomy, approach, side), what, float(value))


def compression_bands(anatomy, approach: str = "ventral", side: str = "midline") -> dict:
    """Fronts (mm from the wall the mass grows from) at which each stage of the yield begins.

    Returns
    -------
    dict
        ``indent`` the sac starts to deform, ``touch`` the mass reaches the cord (or cauda),
        ``flatten`` the cord starts to flatten, ``crush`` it starts to lose area (CSF gone),
        ``most`` it has its least area (the front stops), ``depth`` the canal's depth.

    Examples
    --------
    >>> from scenes.anatomy import build_anatomy
    >>> bands = compression_bands(build_anatomy("T10"))
    >>> 0 < bands["indent"] < bands["touch"] < bands["flatten"] < bands["crush"] < bands["most"] < bands["depth"]
    True
    """
    return dict(_bands(_frame(anatomy, approach, side)))


def compress(anatomy, front_mm: float, *, approach: str = "ventral", side: str = "midline") -> Compression:
    """The canal contents of ``anatomy`` after an epidural mass whose front reaches ``front_mm``.

    Parameters
    ----------
    anatomy : Anatomy
        The phantom's anatomy (:func:`scenes.anatomy.build_anatomy`).
    front_mm : float
        How deep the mass reaches into the canal from its wall (>= 0).
    approach : str
        ``"ventral"`` or ``"dorsal"`` (:func:`approach_of`).
    side : str
        ``"midline"``, ``"left"`` or ``"right"``.

    Returns
    -------
    Compression
        The tumour, sac, cord and cauda solids and the state at mid-height.

    Examples
    --------
    >>> from scenes.anatomy import build_anatomy
    >>> anatomy = build_anatomy("T10")
    >>> deep = compress(anatomy, 30.0)  # beyond the canal: the front stops at the crushed cord
    >>> deep.csf_obliterated, 0.3 < deep.neural_area_fraction < 0.4, deep.front_mm < 17
    (True, True, True)
    """
    if not math.isfinite(front_mm) or front_mm < 0:
        raise ValueError(f"front_mm must be >= 0, got {front_mm}")
    frame = _frame(anatomy, approach, side)
    if front_mm == 0:
        return Compression(Empty(), anatomy.sac, anatomy.cord, anatomy.cauda, 0.0, False, 1.0, 1.0)
    bands = _bands(frame)
    front = float(min(front_mm, bands["most"]))
    anchors = frame.z0 + frame.half_height * np.linspace(-1.0, 1.0, _ANCHORS + 1)
    sac_moves, moves = [], {"cord": [], "cauda": []}
    crushed = []
    for z in anchors:
        sac_move, pushed = _section(frame, front, float(z))
        sac_y, _, sac_ry, sac_rx = _interp(frame.sac, float(z))
        sac_moves.append((frame.sign * (sac_y - frame.wall_y) + sac_move, sac_ry, sac_rx))
        for name in moves:
            if name in pushed:
                neural, push = pushed[name]
                moves[name].append(tuple(float(v) for v in neural.shape(push)))
            else:
                moves[name].append(None)
        active = "cord" if "cord" in pushed else "cauda"
        if active in pushed:
            neural, push = pushed[active]
            crushed.append(push - neural.push_limit)
        else:
            crushed.append(-1.0)  # no neural tube at this height
    sac = _deformed(frame.sac, frame, anchors, sac_moves)
    cord = _deformed(frame.cord, frame, anchors, moves["cord"]) if isinstance(frame.cord, Tube) else frame.cord
    cauda = _deformed(frame.cauda, frame, anchors, moves["cauda"]) if isinstance(frame.cauda, Tube) else frame.cauda
    mass = mass_solid(frame, front)
    neural = Union((cord, cauda))
    tumour = mass & frame.canal
    sac_left = sac - mass
    slab = _crushed_slab(anchors, np.asarray(crushed))
    if slab is not None:
        # No CSF is left where the cord is being crushed: tumour fills the sac around it.
        tumour = tumour | ((sac & slab) & frame.canal)
        sac_left = sac_left - slab
    _, neural_state, push = _state_at_centre(frame, front)
    _, ry, rx = neural_state.shape(push)
    ap = float(ry) / neural_state.ry
    area = float(ry * rx) / (neural_state.ry * neural_state.rx)
    return Compression(tumour - neural, Union((sac_left, cord, cauda)), cord, cauda, front, slab is not None, ap, area)


def _crushed_slab(anchors: np.ndarray, margin: np.ndarray) -> Shape | None:
    """The heights where ``margin`` (push beyond the crush limit) is positive, as a box."""
    positive = margin > 1e-9
    if not positive.any():
        return None
    first, last = int(np.argmax(positive)), len(positive) - 1 - int(np.argmax(positive[::-1]))

    def crossing(i, j):  # where margin crosses 0 between anchors i (<= 0) and j (> 0)
        return float(anchors[i] + (anchors[j] - anchors[i]) * (-margin[i]) / (margin[j] - margin[i]))

    low = crossing(first - 1, first) if first > 0 else float(anchors[0])
    high = crossing(last + 1, last) if last < len(anchors) - 1 else float(anchors[-1])
    return Box((low, -1e3, -1e3), (high, 1e3, 1e3))
