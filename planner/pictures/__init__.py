"""What users see: :mod:`.figures` (matplotlib slices of scenes), :mod:`.dose_figures`
(isodoses, the gap close-up, DVH), :mod:`.charts` (trade-off, gap and timeline charts, with
labels placed so none overlap), :mod:`.three_d`
(PyVista/VTK 3-D views, imported lazily; a missing OpenGL driver is reported, never a crash)
and :mod:`.report` (the self-contained HTML report with its JSON, CSV and PNGs).

May import: scenes, kernels, planner.common, planner.radiotherapy, planner.clinical. Nothing
from planner.cli. PyVista is imported only here (and in the app), inside functions.
"""
