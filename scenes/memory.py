"""Is there memory for a grid? A cheap estimate before a scene is rendered (issue 18).

The planner's budget (planner.common.memory, with the command line's ``--memory-budget``)
lives above this layer; here a scene only refuses a grid that cannot fit in the memory the
machine has available at all, with a message naming the grid and the spacing, instead of
numpy's MemoryError minutes into the work. The reader of the available memory lives here,
in the lowest layer, and planner.common.memory uses it. Standard library only.
"""

from __future__ import annotations

import os

__all__ = ["GridTooLarge", "SCENE_PEAK_BYTES_PER_VOXEL", "check_scene_memory", "available_memory_bytes"]

#: Peak memory of rendering a scene per voxel (tracemalloc peak of build_scene on
#: t10_rcc_escc2: 51 bytes at 1.25 mm; 3.5 GB for a 0.5 mm grid of 64 M voxels).
SCENE_PEAK_BYTES_PER_VOXEL = 56


class GridTooLarge(MemoryError):
    """A grid whose scene cannot fit in the memory available."""


def available_memory_bytes(meminfo: str = "/proc/meminfo") -> int | None:
    """Memory available to a new job now (``MemAvailable``), or None where it cannot be read.

    Parameters
    ----------
    meminfo : str
        The file to read (Linux's ``/proc/meminfo`` format); without it the operating
        system's count of available pages is used where there is one.

    Returns
    -------
    int or None
        Bytes, or None where neither can be read.
    """
    try:
        with open(meminfo, encoding="ascii") as handle:
            for line in handle:
                key, _, rest = line.partition(":")
                if key == "MemAvailable":
                    return int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    if hasattr(os, "sysconf"):
        try:
            return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (OSError, ValueError):
            return None
    return None


def check_scene_memory(shape, spacing_mm) -> int:
    """Refuse a grid whose scene cannot fit in the memory available.

    Parameters
    ----------
    shape : sequence of int
        The grid's (z, y, x) voxel counts.
    spacing_mm : sequence of float
        Its spacing, for the message.

    Returns
    -------
    int
        The estimated peak bytes of rendering the scene.

    Raises
    ------
    GridTooLarge
        When the estimate is above the memory available now.
    """
    voxels = 1
    for n in shape:
        voxels *= int(n)
    need = voxels * SCENE_PEAK_BYTES_PER_VOXEL
    available = available_memory_bytes()
    if available is not None and need > available:
        raise GridTooLarge(f"a scene on a grid of {tuple(shape)} voxels at spacing_mm {tuple(spacing_mm)} needs about "
                           f"{need / 2**30:.1f} GiB, more than the {available / 2**30:.1f} GiB available: use a coarser "
                           f"spacing_mm")
    return need
