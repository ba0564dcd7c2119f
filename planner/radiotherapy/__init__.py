"""Radiotherapy planning as a short chain of verbs on a Scene.

:mod:`.beams` (IEC 61217 beams and beamlets) -> :mod:`.influence` (the one adapter to the
dose kernels: the influence matrix and the final superposition dose) -> :mod:`.objectives`
and :mod:`.optimise` (fluence optimisation) -> :mod:`.plan` (targets, objectives, plans of a
case, the escalation search for the maximum achievable prescription) with
:mod:`.achievable` (its figure, the limit that binds it, the escalation bound and the hot
spot) -> :mod:`.metrics` (DVH, D0.035cc, ...) -> :mod:`.constraints` (protocol limits and the checker) with :mod:`.radiobiology` (BED, EQD2,
myelopathy and re-irradiation). :mod:`.session` keeps an influence matrix warm for sliders. :mod:`.device_objective` keeps the
optimiser's matrix, dose and terms on the GPU (``backend="cuda"``).
:mod:`.dose_to_water` reports a dose as dose to medium (default) or dose to water.
Policy lives as data in :mod:`.protocols` (TOML, each number with its source key).

May import: scenes, kernels, planner.common. Nothing from planner.clinical, pictures, cli.
"""
