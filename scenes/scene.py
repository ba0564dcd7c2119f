"""The Scene: one immutable snapshot of a patient phantom (or an imported CT).

A Scene holds a grid, a label volume (material codes), mass density and relative electron
density volumes, named structure masks with fractional occupancy, the lesion description,
the vertebral level, the clinical attributes of the case, and the history of procedures
that produced it. It is never mutated: procedures return a new Scene.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from .grid import Grid
from .materials import MATERIAL_NAMES, density_lookup, electron_density_lookup, hu_to_density, label_of, materials
from .shapes import Mask, mask_from_full

__all__ = ["Scene", "scene_from_arrays", "paint"]


def _readonly(array: np.ndarray, dtype) -> np.ndarray:
    out = np.array(array, dtype=dtype, copy=True)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class Scene:
    """An immutable phantom.

    Attributes
    ----------
    grid : Grid
    labels : ndarray of uint8, (z, y, x)
        Material code per voxel (majority material; see :mod:`scenes.materials`).
    density_g_cc : ndarray of float32
        Mass density with partial-volume mixing at boundaries.
    electron_density : ndarray of float32
        Electron density relative to water.
    structures : mapping of str to Mask
        Named structures with fractional occupancy (0..1).
    level : str or None
        Index vertebral level, e.g. ``"T10"``.
    lesion : object or None
        The lesion description (:class:`scenes.lesions.Lesion`) if any.
    clinical : mapping
        Clinical attributes of the case (histology, neurology, SINS inputs, ...).
    anatomy : object or None
        The parametric anatomy (:class:`scenes.anatomy.Anatomy`) the scene was built from.
    history : tuple of str
        Procedures applied, in order, each a short human-readable record.
    """

    grid: Grid
    labels: np.ndarray = field(repr=False)
    density_g_cc: np.ndarray = field(repr=False)
    electron_density: np.ndarray = field(repr=False)
    structures: Mapping[str, Mask] = field(repr=False)
    level: str | None = None
    lesion: Any = None
    clinical: Mapping[str, Any] = field(default_factory=dict)
    anatomy: Any = field(default=None, repr=False)
    history: tuple[str, ...] = ()

    def __post_init__(self):
        shape = self.grid.shape
        for name in ("labels", "density_g_cc", "electron_density"):
            array = getattr(self, name)
            if np.shape(array) != shape:
                raise ValueError(f"Scene.{name} has shape {np.shape(array)}, grid expects {shape}")
        object.__setattr__(self, "labels", _readonly(self.labels, np.uint8))
        object.__setattr__(self, "density_g_cc", _readonly(self.density_g_cc, np.float32))
        object.__setattr__(self, "electron_density", _readonly(self.electron_density, np.float32))
        if np.any(~np.isfinite(self.density_g_cc)) or np.any(self.density_g_cc < 0):
            raise ValueError("Scene.density_g_cc must be finite and >= 0")
        if np.any(~np.isfinite(self.electron_density)) or np.any(self.electron_density < 0):
            raise ValueError("Scene.electron_density must be finite and >= 0")
        for key, mask in self.structures.items():
            if not isinstance(mask, Mask) or mask.grid != self.grid:
                raise ValueError(f"Scene.structures[{key!r}] must be a Mask on the scene's grid")
        object.__setattr__(self, "structures", MappingProxyType(dict(self.structures)))
        object.__setattr__(self, "clinical", MappingProxyType(dict(self.clinical)))
        object.__setattr__(self, "history", tuple(self.history))

    def structure(self, name: str) -> Mask:
        """A structure by name, with a helpful error listing what exists."""
        try:
            return self.structures[name]
        except KeyError:
            raise KeyError(f"scene has no structure {name!r}; it has: {', '.join(sorted(self.structures))}") from None

    def has(self, name: str) -> bool:
        return name in self.structures and not self.structures[name].is_empty

    def evolve(self, **changes) -> "Scene":
        """A copy with some fields replaced (the Scene itself is never changed)."""
        return replace(self, **changes)

    def fingerprint(self) -> str:
        """A hash of every array and structure: equal fingerprints mean bit-identical scenes."""
        import hashlib

        digest = hashlib.sha256()
        digest.update(repr((self.grid, self.level, self.history)).encode())
        for array in (self.labels, self.density_g_cc, self.electron_density):
            digest.update(np.ascontiguousarray(array).tobytes())
        for name in sorted(self.structures):
            mask = self.structures[name]
            digest.update(name.encode())
            digest.update(repr(mask.offset).encode())
            digest.update(np.ascontiguousarray(mask.occupancy).tobytes())
        return digest.hexdigest()


def scene_from_arrays(
    *,
    spacing_mm,
    origin_mm=(0.0, 0.0, 0.0),
    density_g_cc: np.ndarray | None = None,
    hu: np.ndarray | None = None,
    structures: Mapping[str, np.ndarray] | None = None,
    level: str | None = None,
    clinical: Mapping[str, Any] | None = None,
    electron_density: np.ndarray | None = None,
    media: Mapping[str, np.ndarray] | None = None,
) -> Scene:
    """Build a Scene from user arrays: the path an imported CT takes.

    Give one of a mass-density volume (g/cc), a CT volume in HU (converted with the teaching
    calibration of :func:`scenes.materials.hu_to_density`) or a relative electron density
    volume (electrons per cc relative to water), plus named masks (boolean or fractional
    0..1, same shape). Each voxel becomes the tissue class nearest in the quantity given
    (water among them: 1.00 g/cc is water), and the other density follows from that class's
    <Z/A>. ``media`` names the medium of some voxels outright (``{"icrp_cortical_bone":
    mask}``, any material of :data:`scenes.materials.MATERIAL_NAMES`): there the medium's
    own <Z/A> (from its composition, where the data give one) converts between the two
    densities. The scene's history says how many voxels each material received.

    Examples
    --------
    >>> density = np.ones((4, 5, 6))
    >>> cord = np.zeros((4, 5, 6), bool); cord[:, 2, 3] = True
    >>> scene = scene_from_arrays(spacing_mm=(2.5, 1.25, 1.25), density_g_cc=density,
    ...                           structures={"spinal_cord": cord})
    >>> round(scene.structure("spinal_cord").volume_cc, 4)
    0.0156
    """
    given = [name for name, value in (("density_g_cc", density_g_cc), ("hu", hu), ("electron_density", electron_density))
             if value is not None]
    if len(given) != 1:
        raise ValueError(f"give exactly one of density_g_cc, hu or electron_density, got {given or 'none'}")
    if electron_density is not None:
        relative = _volume("electron_density", electron_density)
        if np.any(~np.isfinite(relative)) or np.any(relative < 0):
            raise ValueError("electron_density must be finite and >= 0 (relative to water)")
        density = relative / _per_gram()[labels_from_electron_density(relative)]
    elif hu is not None:
        hu = _volume("hu", hu)
        if not np.all(np.isfinite(hu)):
            raise ValueError(f"hu must be finite; {int(np.count_nonzero(~np.isfinite(hu)))} voxels are NaN or infinite")
        density = hu_to_density(hu)
    else:
        density = _volume("density_g_cc", density_g_cc)
        if np.any(~np.isfinite(density)) or np.any(density < 0):
            raise ValueError("density_g_cc must be finite and >= 0 g/cc")
    spacing = _triple("spacing_mm", spacing_mm)
    if spacing is None or np.any(spacing <= 0):
        raise ValueError(f"spacing_mm must be three finite values above 0 (z, y, x mm), got {spacing_mm!r}")
    if _triple("origin_mm", origin_mm) is None:
        raise ValueError(f"origin_mm must be three finite values (z, y, x mm), got {origin_mm!r}")
    grid = Grid(density.shape, spacing_mm, origin_mm)
    labels = labels_from_electron_density(relative) if electron_density is not None else labels_from_density(density)
    for name, array in (media or {}).items():
        if name not in MATERIAL_NAMES:
            raise ValueError(f"media: unknown medium {name!r}; known: {', '.join(MATERIAL_NAMES)}")
        array = np.asarray(array)
        if array.shape != density.shape:
            raise ValueError(f"media[{name!r}] has shape {array.shape}, expected {density.shape}")
        labels = np.where(array > 0.5, np.uint8(label_of(name)), labels)
        if electron_density is not None:
            density = np.where(array > 0.5, relative / _per_gram()[label_of(name)], density)
    # Electron density per voxel scales with the voxel's own density at its class's <Z/A>.
    electron = relative if electron_density is not None else density * _per_gram()[labels]
    counts = np.bincount(labels.ravel(), minlength=len(MATERIAL_NAMES))
    census = ", ".join(f"{MATERIAL_NAMES[code]} {int(n)}" for code, n in enumerate(counts) if n)
    masks = {}
    for name, array in (structures or {}).items():
        array = np.asarray(array)
        if array.shape != density.shape:
            raise ValueError(f"structure {name!r} has shape {array.shape}, expected {density.shape}")
        if array.dtype != bool and (array.dtype.kind not in "iuf" or not np.all(np.isfinite(array))
                                    or np.min(array) < 0 or np.max(array) > 1):
            raise ValueError(f"structure {name!r} must be boolean or fractional occupancy in 0..1 (finite numbers)")
        masks[name] = mask_from_full(grid, array.astype(np.float32))
    return Scene(grid, labels, density, electron, masks, level=level, clinical=dict(clinical or {}),
                 history=(f"imported from arrays ({given[0]}); voxels per material: {census}",))


def _per_gram() -> np.ndarray:
    """Relative electron density per g/cc of each label (its <Z/A> over water's)."""
    return electron_density_lookup() / np.maximum(density_lookup(), 1e-9)


def labels_from_electron_density(relative: np.ndarray) -> np.ndarray:
    """Nearest tissue class by relative electron density (the classes of :func:`labels_from_density`)."""
    names = _DENSITY_CLASSES
    values = np.array([materials()[n].relative_electron_density for n in names])
    order = np.argsort(values)
    edges = (values[order][1:] + values[order][:-1]) / 2
    codes = np.array([label_of(names[i]) for i in order], dtype=np.uint8)
    return codes[np.searchsorted(edges, relative)]


def _triple(name: str, values) -> np.ndarray | None:
    """Three finite floats, or None."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return None
    return array if array.shape == (3,) and np.all(np.isfinite(array)) else None


def _volume(name: str, values) -> np.ndarray:
    """``values`` as a float (z, y, x) array with voxels, or a ValueError naming ``name``."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a 3-D (z, y, x) array of numbers") from None
    if array.ndim != 3:
        raise ValueError(f"{name} must be a 3-D (z, y, x) array, got {array.ndim} dimensions")
    if array.size == 0:
        raise ValueError(f"{name} must hold voxels, got shape {array.shape}")
    return array


_DENSITY_CLASSES = ("air", "lung", "fat", "water", "soft_tissue", "cancellous_bone", "blastic_lesion", "cortical_bone",
                    "titanium")


def labels_from_density(density: np.ndarray) -> np.ndarray:
    """Nearest tissue class by mass density (classes ordered by density)."""
    names = _DENSITY_CLASSES
    values = np.array([materials()[n].density_g_cc for n in names])
    order = np.argsort(values)
    values, names = values[order], [names[i] for i in order]
    edges = (values[1:] + values[:-1]) / 2
    index = np.searchsorted(edges, density)
    codes = np.array([label_of(n) for n in names], dtype=np.uint8)
    return codes[index]


def paint(labels: np.ndarray, density: np.ndarray, electron: np.ndarray, mask: Mask, material_name: str,
          *, within: str | None = None) -> None:
    """Paint a material into (mutable, working) arrays with partial-volume mixing.

    Voxels take ``(1 - f) * old + f * new`` for occupancy f: the new material displaces
    a share of whatever the voxel held. With ``within=`` the new solid lies inside one
    already painted with that material (a marrow core inside its cortical shell), and it
    displaces only that material: ``old + f * (new - within)``, exact for nested solids.
    The label switches where the new material fills at least half the voxel. Used while
    building or transforming a scene, before the new immutable Scene is made.
    """
    code = label_of(material_name)
    new = materials()[material_name]
    block = mask.slices
    fraction = mask.occupancy
    if within is None:
        density[block] = density[block] * (1 - fraction) + fraction * new.density_g_cc
        electron[block] = electron[block] * (1 - fraction) + fraction * new.relative_electron_density
    else:
        old = materials()[within]
        density[block] += fraction * (new.density_g_cc - old.density_g_cc)
        electron[block] += fraction * (new.relative_electron_density - old.relative_electron_density)
    labels[block] = np.where(fraction >= 0.5, code, labels[block])

