"""A disk cache for pure functions of the packaged beam data (tables that take seconds).

Files go next to numba's cache: ``$NUMBA_CACHE_DIR/spinesim`` when that is set, else
``$XDG_CACHE_HOME/spinesim`` or ``~/.cache/spinesim``. Each file is named by a SHA-256 of
everything its content depends on (:func:`fingerprint`), so a changed input is a new file,
never a stale one. Files are written atomically (a temporary file, then ``os.replace``), so
concurrent processes never see half a file; one that cannot be read (truncated, corrupt,
from another version) is computed again and replaced. Where the directory cannot be written
the result is simply not kept: the cache saves time, it is never needed for a result. Only
the most recently used files of each name are kept (an upgrade or an edit of the kernels
makes new keys; the old files would otherwise pile up).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

__all__ = ["cache_dir", "fingerprint", "package_fingerprint", "cached_arrays", "KEEP_PER_NAME"]

#: Files kept per name (a beamlet table is about 6 MB).
KEEP_PER_NAME = 8


def cache_dir() -> Path:
    """The directory of spinesim's cached tables (read from the environment at each call).

    Returns
    -------
    pathlib.Path
        ``$NUMBA_CACHE_DIR/spinesim``, else ``$XDG_CACHE_HOME/spinesim``, else
        ``~/.cache/spinesim``; it may not exist yet.
    """
    numba_dir = os.environ.get("NUMBA_CACHE_DIR")
    if numba_dir:
        return Path(numba_dir) / "spinesim"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "spinesim"


def _feed(digest, value) -> None:
    # Every value is framed by its kind and length, so no two different inputs feed equal bytes.
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise TypeError("object arrays have no stable bytes to fingerprint")
        head = f"ndarray:{value.dtype.str}:{value.shape}".encode()
        body = value.tobytes()  # C order whatever the layout
    elif isinstance(value, (bytes, bytearray)):
        head, body = b"bytes", bytes(value)
    elif isinstance(value, str):
        head, body = b"str", value.encode()
    elif value is None or isinstance(value, (bool, int, float, complex, np.generic)):
        # repr keeps the type and every bit of a float (2 and 2.0 differ, as 0.1 and 0.1000001).
        head, body = b"scalar", f"{type(value).__name__}:{value!r}".encode()
    elif isinstance(value, (tuple, list)):
        digest.update(f"<{type(value).__name__}:{len(value)}>".encode())
        for item in value:
            _feed(digest, item)
        return
    elif isinstance(value, dict):
        digest.update(f"<dict:{len(value)}>".encode())
        for key in sorted(value, key=repr):
            _feed(digest, key)
            _feed(digest, value[key])
        return
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        digest.update(f"<{type(value).__qualname__}>".encode())
        for item in dataclasses.fields(value):
            _feed(digest, item.name)
            _feed(digest, getattr(value, item.name))
        return
    else:
        raise TypeError(f"cannot fingerprint a {type(value).__name__}")
    digest.update(head + b":" + str(len(body)).encode() + b":")
    digest.update(body)


def fingerprint(*parts) -> str:
    """SHA-256 (hex) of ``parts``: arrays (dtype, shape and bytes), numbers (type and exact
    value), strings, bytes, and tuples, lists, dicts and dataclasses of those.

    Parameters
    ----------
    *parts : object
        The values the key depends on.

    Returns
    -------
    str
        64 hexadecimal digits.

    Examples
    --------
    >>> fingerprint(1.0, np.arange(3)) == fingerprint(1.0, np.arange(3))
    True
    >>> fingerprint(1.0) == fingerprint(1)
    False
    """
    digest = hashlib.sha256()
    _feed(digest, parts)
    return digest.hexdigest()


def package_fingerprint(package_dir: Path, data_files=()) -> str:
    """SHA-256 of the package's Python sources and of the named data files.

    A cached table is the output of the package's code; keying on the code itself means an
    edit to any kernel can never leave a stale table behind (a hand-kept version number would).

    Parameters
    ----------
    package_dir : pathlib.Path
        The package's directory; its ``*.py`` files are read.
    data_files : sequence of str
        Further files, relative to ``package_dir``.

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    package_dir = Path(package_dir)
    parts = [(path.name, path.read_bytes()) for path in sorted(package_dir.glob("*.py"))]
    parts += [(str(name), (package_dir / name).read_bytes()) for name in data_files]
    return fingerprint(parts)


def cached_arrays(name: str, key: str, compute: Callable[[], dict], names: tuple) -> dict:
    """The arrays ``compute()`` returns, from ``<cache_dir>/<name>-<key>.npz`` when that holds
    them, else computed and stored there.

    Parameters
    ----------
    name : str
        Prefix of the file (what the table is).
    key : str
        :func:`fingerprint` of every input of ``compute`` (data, arguments, code).
    compute : callable
        Returns a dict of str to ndarray (numeric dtypes); called only on a miss.
    names : tuple of str
        The arrays a valid file holds; a file missing one is treated as corrupt.

    Returns
    -------
    dict of str to ndarray
        Bit-identical to what ``compute()`` returned when the file was written.
    """
    path = cache_dir() / f"{name}-{key}.npz"
    arrays = _read(path, key, names)
    if arrays is not None:
        try:
            os.utime(path)  # used now: pruning goes by last use
        except OSError:
            pass
        return arrays
    arrays = compute()
    if _write(path, key, arrays):
        _prune(path.parent, name)
    return arrays


def _read(path: Path, key: str, names) -> dict | None:
    try:
        # Our own handle: np.load leaves its file open when the zip turns out to be damaged.
        with open(path, "rb") as file, np.load(file, allow_pickle=False) as data:
            if str(data["__key__"][()]) != key:
                return None
            return {name: data[name] for name in names}
    except Exception:  # noqa: BLE001 - whatever is wrong with the file, recomputing is right
        return None


def _write(path: Path, key: str, arrays: dict) -> bool:
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(prefix=path.stem + ".", suffix=".tmp", dir=path.parent)
        with os.fdopen(handle, "wb") as file:
            np.savez(file, __key__=np.array(key), **arrays)
        os.replace(tmp, path)
        tmp = None
        return True
    except OSError:
        return False  # read-only or full disk: keep the result in memory only
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _prune(directory: Path, name: str) -> None:
    def last_use(path):
        try:
            return path.stat().st_mtime
        except OSError:
            return 0.0

    files = sorted(directory.glob(f"{name}-*.npz"), key=last_use, reverse=True)
    for old in files[KEEP_PER_NAME:]:
        try:
            # Another process reading it keeps its open handle; one about to open it
            # finds no file and computes.
            old.unlink()
        except OSError:
            pass
