"""A small text progress bar for the command line (no dependency).

On a terminal the bar redraws in place; otherwise (pipes, logs, tests) each step is one
timed line, so nothing is lost in CI output.
"""

from __future__ import annotations

import time

__all__ = ["ProgressBar", "is_terminal"]


def is_terminal(out) -> bool:
    """Whether ``out`` is an interactive terminal (colours, a redrawn bar).

    Parameters
    ----------
    out : object
        A stream; one without ``isatty`` counts as not a terminal.

    Returns
    -------
    bool
        ``out.isatty()``.
    """
    return bool(getattr(out, "isatty", lambda: False)())


class ProgressBar:
    """``bar(message, done, total)`` draws ``[#####.....] done/total  12.3 s  message``.

    On a terminal the line is redrawn in place (ending with a newline when ``done`` reaches
    ``total``); elsewhere each call prints one line. The time is counted from creation.

    Parameters
    ----------
    out : file-like
        The stream written to (e.g. ``sys.stderr``).
    width : int, default 24
        Characters of the bar between the brackets.
    """

    def __init__(self, out, *, width: int = 24):
        self.out = out
        self.width = width
        self.start = time.perf_counter()
        self.tty = is_terminal(out)

    def __call__(self, message: str, done: int, total: int) -> None:
        total = max(int(total), 1)
        filled = int(round(self.width * min(max(done, 0), total) / total))
        line = (f"[{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} "
                f"{time.perf_counter() - self.start:6.1f} s  {message}")
        if self.tty:
            end = "\n" if done >= total else ""
            print("\r" + line.ljust(110)[:110], end=end, file=self.out, flush=True)
        else:
            print(line, file=self.out, flush=True)
