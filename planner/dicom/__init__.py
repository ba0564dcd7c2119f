"""DICOM RT in and out: plans that open in a treatment-planning viewer, CT as a scene.

:mod:`.export` writes a scene and its plan as one DICOM RT set (CT series, RT Structure
Set, RT Dose, RT Plan) on one frame of reference, atomically; :mod:`.contours` turns masks
into closed planar contours; :mod:`.read` reads the RT Dose and RT Plan back;
:mod:`.independent` computes DVH metrics with dicompyler-core (a tool not written here) for
the independent check; :mod:`.picture` renders the RT Dose over the CT with the contours
from the files alone. Importing a CT and structure set is :func:`scenes.from_dicom` (the
importer returns a Scene, so it lives with the scenes).

pydicom 3 (the ``dicom`` extra) is imported inside functions: this package imports without it.

May import: scenes, kernels, planner.common, planner.radiotherapy, planner.clinical. Nothing
from planner.pictures, sweeps, app or cli.
"""

from .export import FLUENCE_STATEMENT, DicomExport, export_dicom
from .read import DicomPlan, PlanBeam, find_objects, read_dose, read_plan

__all__ = ["export_dicom", "DicomExport", "FLUENCE_STATEMENT", "read_dose", "read_plan", "DicomPlan", "PlanBeam",
           "find_objects"]
