"""Packaged data files (TOML) with their sources; see sources.toml for citations."""
