"""Clinical judgement on a scene and its plans.

:mod:`.scores` (SINS and NOMS measured on the scene), :mod:`.prognosis` (revised Tokuhashi,
Tomita), :mod:`.outcomes` (the estimate, walking, surgical risks and time) and
:mod:`.radiation_effects` (local control, myelopathy, fracture, pain, retreatment): every
estimate with its cohort, source key and verified flag, :mod:`.strategies` (the strategy
menu, each strategy's procedures and plan), :mod:`.scorecard` (strategies compared, ranked,
Pareto front and NOMS beside the ranking) and :mod:`.timeline` (delay of diagnosis). Tables
live as data in :mod:`.data` (TOML, each number with its source key).

May import: scenes, kernels, planner.common, planner.radiotherapy. Nothing from
planner.pictures or planner.cli.
"""
