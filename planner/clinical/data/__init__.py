"""Clinical policy as data (TOML), every number with its source key.

``scores.toml``: SINS, NOMS, revised Tokuhashi and Tomita tables; ``outcomes.toml``: the
outcome figures of the strategies, each with its cohort and source.
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from importlib import resources

__all__ = ["read_table"]


@lru_cache(maxsize=None)
def read_table(name: str) -> dict:
    """Parsed ``planner/clinical/data/<name>.toml`` (cached; treat as read-only)."""
    return tomllib.loads(resources.files(__name__).joinpath(f"{name}.toml").read_text(encoding="utf-8"))
