"""Read the packaged TOML data files once. Every number there carries its source key."""

from __future__ import annotations

import tomllib
from functools import lru_cache
from importlib import resources

__all__ = ["load_data", "value_of", "sources"]


@lru_cache(maxsize=None)
def load_data(name: str) -> dict:
    """Parsed ``scenes/data/<name>.toml`` (cached; treat as read-only)."""
    text = resources.files("scenes.data").joinpath(f"{name}.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def value_of(entry) -> float:
    """The number of a data entry written as ``{ value = ..., source = ... }`` or a bare number."""
    if isinstance(entry, dict):
        return float(entry["value"])
    return float(entry)


def sources() -> dict[str, str]:
    """Source key -> full citation."""
    return dict(load_data("sources")["sources"])
