"""Scenes: grids, phantoms, lesions, surgical procedures, and imported CT (:func:`from_dicom`).

``scenes.from_dicom`` is loaded on first use (PEP 562), so ``import scenes.grid`` stays light.
"""

__all__ = ["from_dicom"]


def __getattr__(name):
    if name == "from_dicom":
        from .dicom_import import from_dicom

        return from_dicom
    raise AttributeError(f"module 'scenes' has no attribute {name!r}")
