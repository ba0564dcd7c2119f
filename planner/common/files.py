"""Writing result files so that a reader never sees a half-written one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_atomically", "write_text_atomically"]


def write_atomically(path: str | os.PathLike, write) -> Path:
    """Call ``write(temporary_path)`` in the target's folder, then rename it into place.

    The file gets ordinary permissions (mkstemp makes files private); on any failure the
    temporary file is removed and the target is left untouched.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write; its folder must exist (FileNotFoundError otherwise).
    write : callable
        ``write(temporary_path)`` writes the whole content to the temporary file (a str
        path with the target's suffix, in the same folder).

    Returns
    -------
    pathlib.Path
        ``path``, now holding the new content.
    """
    path = Path(path)
    if not path.parent.exists():
        raise FileNotFoundError(f"output folder {str(path.parent)!r} does not exist")
    handle, temporary = tempfile.mkstemp(suffix=path.suffix, dir=path.parent)
    os.close(handle)
    try:
        write(temporary)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return path


def write_text_atomically(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`write_atomically`.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write; its folder must exist.
    text : str
        The content.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    return write_atomically(path, lambda temporary: Path(temporary).write_text(text, encoding="utf-8"))
