"""Plan an imported CT and structure set through the public planning API.

:func:`plan_dicom` reads a DICOM folder with :func:`scenes.from_dicom` and plans the scene
with :func:`planner.radiotherapy.plan.plan_case` and its ``scene=`` option (the public
entry that plans a given scene; ``add_targets`` inside it grows the CTV and PTV from the
imported GTV, so a PTV in the structure set is replaced by spinesim's). A plan needs a
case for its clinical context (its id and any prior course, which adds the re-irradiation
limits); without one, :func:`imported_case` stands in: no prior radiotherapy, the level
given, the patient id from the DICOM header.
"""

from __future__ import annotations

from scenes.cases import Case
from scenes.scene import Scene

__all__ = ["imported_case", "plan_dicom"]


def imported_case(scene: Scene, *, case_id: str | None = None) -> Case:
    """The clinical context of an imported CT when no teaching case supplies one.

    Parameters
    ----------
    scene : Scene
        A scene from :func:`scenes.from_dicom`.
    case_id : str, optional
        The plan's case name (default ``dicom_<PatientID>``).

    Returns
    -------
    Case
        No prior radiotherapy, histology unknown, no lesion description (the CTV is then
        the GTV alone: no vertebral sectors are known), the scene's level.
    """
    patient = scene.clinical.get("dicom", {}).get("patient", ("", ""))
    name = case_id or "dicom_" + "".join(ch if ch.isalnum() else "_" for ch in (patient[1] or "ct")).lower()
    return Case(id=name, title=f"imported CT ({patient[1] or 'no patient id'})", level=scene.level or "",
                description="imported from DICOM", patient={"histology": "unknown"}, lesion=None)


def plan_dicom(folder, *, regimen, case=None, spacing_mm=(2.5, 2.5, 2.5), level: str | None = None, name_map=None,
               **options):
    """Import a DICOM CT + RT Structure Set and plan it like a phantom.

    Parameters
    ----------
    folder : str or os.PathLike
        A folder with one CT series and one RT Structure Set (other RT objects ignored).
    regimen : Regimen
        The prescription.
    case : str or Case, optional
        A teaching case for the clinical context (default :func:`imported_case`): its prior
        course, and its lesion and level, whose involved sectors enter the CTV whole.
    spacing_mm : tuple of float, default (2.5, 2.5, 2.5)
        The planning grid the CT is resampled onto.
    level : str, optional
        The index vertebral level (DICOM does not carry it).
    name_map : mapping of str to str, optional
        Extra structure names {DICOM: spinesim} (see :func:`scenes.dicom_import.map_structure_name`).
    **options : dict
        Passed to :func:`~planner.radiotherapy.plan.plan_case` (protocol, engine, arrangement,
        beamlet_mm, max_iterations, progress, ...); ``gap_mm`` is refused (separation surgery
        needs the phantom's parametric anatomy).

    Returns
    -------
    PlanResult
        The plan of the imported scene.
    """
    from scenes import from_dicom
    from scenes.cases import load_case

    from planner.radiotherapy.plan import plan_case

    if options.get("gap_mm"):
        raise ValueError("--gap-mm: separation surgery needs a phantom's anatomy; an imported CT is planned as it is")
    scene = from_dicom(folder, spacing_mm=spacing_mm, level=level, name_map=name_map)
    if not scene.has("gtv"):
        raise ValueError(f"{folder}: the structure set has no GTV (a structure the name map sends to 'gtv'); "
                         f"structures found: {', '.join(sorted(scene.structures)) or 'none'}")
    if isinstance(case, str):
        case = load_case(case)
    if case is not None and case.lesion is not None:
        # The case's lesion names the involved vertebral sectors, so the CTV takes them whole
        # (when the structure set has them under spinesim's names), as on the phantom.
        scene = scene.evolve(lesion=case.lesion, level=scene.level or case.level)
    return plan_case(case if case is not None else imported_case(scene), regimen=regimen, scene=scene, **options)
