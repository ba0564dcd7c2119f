"""A memory budget: how much a job may allocate, and a clear refusal before it starts.

Large jobs (fine scene grids, influence matrices, superposition) are estimated analytically
from the grid shape and the beam count *before* anything is allocated; an estimate above the
budget raises :class:`MemoryBudgetExceeded`, a ``ValueError`` whose message names the
estimate, the budget and the settings that shrink the job. The default budget is a share of
the memory the machine has available now (``MemAvailable`` of ``/proc/meminfo``).

Standard library only (with scenes.memory, also standard library only), so that the command
line can check before its heavy imports.
"""

from __future__ import annotations

from scenes.memory import available_memory_bytes  # the one reader of MemAvailable (standard library only)

__all__ = ["MemoryBudgetExceeded", "available_memory_bytes", "default_budget_bytes", "parse_memory_size",
           "format_bytes", "check_budget", "DEFAULT_SHARE"]

#: Share of the available memory a job may use by default: the rest is left to the
#: operating system, the page cache and the other programs of a shared machine.
DEFAULT_SHARE = 0.5
_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 2**10, "kib": 2**10, "m": 2**20, "mb": 2**20, "mib": 2**20,
          "g": 2**30, "gb": 2**30, "gib": 2**30, "t": 2**40, "tb": 2**40, "tib": 2**40}


class MemoryBudgetExceeded(ValueError):
    """A job whose estimated memory is above the budget; the message says what to change."""


def default_budget_bytes(share: float = DEFAULT_SHARE) -> int | None:
    """The default budget: a share of the memory available now.

    Parameters
    ----------
    share : float
        Fraction of :func:`available_memory_bytes` a job may use.

    Returns
    -------
    int or None
        Bytes, or None where the available memory is unknown (then nothing is refused).
    """
    available = available_memory_bytes()
    return None if available is None else int(available * share)


def parse_memory_size(text: str, *, flag: str = "--memory-budget") -> int:
    """Bytes of a size like ``8G``, ``512MiB``, ``2.5GB`` or ``1000000`` (bytes).

    Units are binary (``G``, ``GB`` and ``GiB`` all mean 2**30 bytes).

    Parameters
    ----------
    text : str
        The size as a user typed it.
    flag : str
        The setting named in the error.

    Returns
    -------
    int
        Bytes; a size that is not above 0, not finite or has an unknown unit raises
        ValueError naming ``flag``.

    Examples
    --------
    >>> parse_memory_size("2G"), parse_memory_size("512 MiB")
    (2147483648, 536870912)
    """
    raw = str(text).strip().lower()
    number = raw.rstrip("abcdefghijklmnopqrstuvwxyz ")
    unit = raw[len(number):].strip()
    try:
        value = float(number)
    except ValueError:
        value = float("nan")
    if unit not in _UNITS or not value == value or value <= 0 or value == float("inf"):
        raise ValueError(f"{flag} must be a size above 0 like 8G, 512M or 2.5GiB, got {text!r}")
    return int(value * _UNITS[unit])


def format_bytes(count: float) -> str:
    """A byte count for people: binary units, three significant figures.

    Parameters
    ----------
    count : float
        Bytes.

    Returns
    -------
    str
        E.g. ``'1.5 KiB'`` for 1536.
    """
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024:
            return f"{value:.3g} {unit}"
        value /= 1024
    return f"{value:.3g} TiB"


def check_budget(parts: dict, budget_bytes: int | None, *, knobs: str, flag: str = "--memory-budget") -> int:
    """Raise :class:`MemoryBudgetExceeded` when the parts' total is above ``budget_bytes``.

    Parameters
    ----------
    parts : dict of str to int
        Estimated bytes per part of the job (e.g. ``{"scene": ..., "influence matrix": ...}``).
    budget_bytes : int or None
        The budget; None means no budget (nothing is refused).
    knobs : str
        The settings that shrink the job, named in the refusal (e.g. ``"--spacing-mm"``).
    flag : str
        The setting that changes the budget.

    Returns
    -------
    int
        The estimated total (bytes).
    """
    total = int(sum(parts.values()))
    if budget_bytes is not None and total > budget_bytes:
        detail = ", ".join(f"{name} {format_bytes(size)}" for name, size in parts.items())
        raise MemoryBudgetExceeded(f"this job needs about {format_bytes(total)} of memory ({detail}), over the budget "
                                   f"of {format_bytes(budget_bytes)}: {knobs}, or raise {flag}")
    return total
