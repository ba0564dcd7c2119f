"""Writing result files so that a reader never sees a half-written one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_atomically", "write_text_atomically", "write_together"]


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


def write_together(outputs) -> list[Path]:
    """Write several files all or nothing: each to a temporary file beside its target, and
    only when every one is written, rename them all into place.

    A failure while writing removes every temporary file and leaves every target as it was
    (a run that fails leaves no new file behind and never a half-written one). The renames
    at the end are single system calls on folders already checked; they do not fail in
    practice, and a target renamed before one that does is whole, never half-written.

    Parameters
    ----------
    outputs : iterable of (path, write)
        ``write(temporary_path)`` writes the whole content of ``path`` (as in
        :func:`write_atomically`); a ``str`` instead of a callable is written as UTF-8 text.

    Returns
    -------
    list of pathlib.Path
        The targets, in the order given.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> [p.name for p in write_together([(folder / "a.json", "{}"), (folder / "b.csv", "x\\n")])]
    ['a.json', 'b.csv']
    """
    staged = []
    try:
        for path, write in outputs:
            path = Path(path)
            if not path.parent.is_dir():
                raise FileNotFoundError(f"output folder {str(path.parent)!r} does not exist")
            handle, temporary = tempfile.mkstemp(suffix=path.suffix, prefix=f".{path.name}.", dir=path.parent)
            os.close(handle)
            staged.append((path, temporary))
            if isinstance(write, str):
                Path(temporary).write_text(write, encoding="utf-8")
            else:
                write(temporary)
        umask = os.umask(0)
        os.umask(umask)
        for _, temporary in staged:
            os.chmod(temporary, 0o666 & ~umask)
        for path, temporary in staged:
            os.replace(temporary, path)
    except BaseException:
        for _, temporary in staged:
            if os.path.exists(temporary):
                os.unlink(temporary)
        raise
    return [path for path, _ in staged]
