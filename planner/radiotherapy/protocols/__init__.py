"""Radiotherapy policy as data (TOML), every number with its source key.

``sbrt_cord.toml``: organ-at-risk limits by protocol (TG-101, HyTEC, RTOG 0631, QUANTEC, ...);
``radiobiology.toml``: alpha/beta ratios, myelopathy and re-irradiation models;
``targets.toml``: target volumes, coverage goals and the achievable-prescription search;
``dose_to_water.toml``: water-to-medium stopping-power ratios (dose to water on request).
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from importlib import resources

__all__ = ["read_table", "protocol_tables"]


@lru_cache(maxsize=None)
def read_table(name: str) -> dict:
    """Parsed ``planner/radiotherapy/protocols/<name>.toml`` (cached; treat as read-only)."""
    return tomllib.loads(resources.files(__name__).joinpath(f"{name}.toml").read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def protocol_tables() -> dict:
    """Every constraint protocol by name: the ``[protocols]`` tables of all the TOML files here."""
    found = {}
    for entry in sorted(resources.files(__name__).iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            found.update(read_table(entry.name[:-5]).get("protocols", {}))
    return found
