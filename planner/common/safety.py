"""The medical-safety line every report, picture, table and app page carries."""

__all__ = ["DISCLAIMER"]

DISCLAIMER = "spinesim: teaching and research only, not for clinical use"
