"""spinesim's planner: everything above the scenes and the dose kernels, in rooms by concern.

Imports run one way, downwards (a test, ``tests/test_layers.py``, fails on an upward import
or a circle)::

    scenes -> kernels -> planner.common -> planner.radiotherapy -> planner.clinical
           -> planner.pictures -> planner.cli (later planner.app, planner.sweeps, planner.dicom)

- :mod:`planner.common`: small helpers every room may use (atomic file writes, the progress
  bar, the safety line).
- :mod:`planner.radiotherapy`: beams, the influence matrix, objectives, optimisation, plans,
  the interactive session, dose metrics, constraints and radiobiology, with their protocols.
- :mod:`planner.clinical`: scores (SINS, NOMS, Tokuhashi, Tomita), outcome estimates,
  strategies, the scorecard and the delay-of-diagnosis timeline, with their tables.
- :mod:`planner.pictures`: matplotlib figures, the PyVista 3-D package and the HTML report.
- :mod:`planner.cli`: the ``spinesim`` commands, the demo and ``spinesim view``.

Teaching and research only, not for clinical use.
"""
