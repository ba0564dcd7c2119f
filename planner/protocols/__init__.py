"""Constraint protocols as data (TOML), each row with its source key."""
