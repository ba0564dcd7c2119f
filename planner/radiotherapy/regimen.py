"""A prescription: total dose and fractions, with the simulator's input range."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Regimen", "MAX_PRESCRIPTION_GY", "MAX_FRACTIONS"]

#: The simulator's prescription range (an input bound, not a clinical figure).
MAX_PRESCRIPTION_GY, MAX_FRACTIONS = 80.0, 40


@dataclass(frozen=True)
class Regimen:
    """A prescription: total dose (Gy, in (0, 80]) in a number of fractions (1..40)."""

    dose_gy: float
    fractions: int

    def __post_init__(self):
        if not (0 < self.dose_gy <= MAX_PRESCRIPTION_GY):
            raise ValueError(f"prescription dose must be in (0, {MAX_PRESCRIPTION_GY:g}] Gy, got {self.dose_gy}")
        if not (isinstance(self.fractions, int) and 1 <= self.fractions <= MAX_FRACTIONS):
            raise ValueError(f"fractions must be an integer 1..{MAX_FRACTIONS}, got {self.fractions}")
