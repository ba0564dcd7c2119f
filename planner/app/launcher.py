"""The session launcher: one trame process per resident session.

A small HTTP server (standard library) shows a start page; ``/start?resident=NAME`` starts a
session process (:mod:`planner.app.ui`) on a free port of the same host and redirects the
browser to it. A session ends itself after ``idle_s`` seconds with no browser connected;
the launcher refuses new sessions above ``max_sessions`` (HTTP 503, with a message) and
stops every session it started when it stops.
"""

from __future__ import annotations

import html
import os
import re
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from planner.common.safety import DISCLAIMER

__all__ = ["Launcher", "free_port"]

_NAME = re.compile(r"^[A-Za-z0-9 ._-]{1,40}$")
# The name pattern escapes its hyphen: browsers compile `pattern` with the v flag, where a bare
# "-" in a class is a syntax error and the browser drops the whole check (the server still checks).
_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>spinesim teach</title>
<style>body{{font-family:sans-serif;max-width:720px;margin:40px auto}} .warn{{color:#a00}}</style></head><body>
<h1>spinesim teach</h1><p class="warn">{disclaimer}</p>{banner}{message}
<form action="start" method="get"><label>Your name (progress is kept under it):
<input id="resident" name="resident" required maxlength="40" pattern="[A-Za-z0-9 ._\\-]+"></label>
<button id="start" type="submit">Start my session</button></form>
<p>{count} of {cap} sessions in use.</p></body></html>"""


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on now (the system's choice)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class Launcher:
    """Starts and tracks session processes.

    Parameters
    ----------
    host : str
        Where the launcher and the sessions listen ('127.0.0.1' by default; a classroom gives
        an address other machines reach).
    port : int
        The launcher's port (0: a free one).
    db : str
        The progress file every session writes to.
    grid_mm : float
        Planning grid of the sessions.
    score_grid_mm : float, optional
        Grid of the sessions' scorecards and timelines; default the report's gap-resolving grid
        (:class:`planner.app.resident.ResidentModel`); tests pass a coarse one.
    max_sessions : int
        Sessions allowed at once.
    idle_s : int
        Seconds a session waits with no browser before it ends.
    threads : int
        Numba threads per session process.
    """

    def __init__(self, *, host="127.0.0.1", port=0, db, grid_mm=2.5, max_sessions=8, idle_s=900, threads=1,
                 banner="", score_grid_mm=None):
        self.host, self.db, self.grid_mm, self.score_grid_mm = host, str(db), grid_mm, score_grid_mm
        self.max_sessions, self.idle_s, self.threads, self.banner = max_sessions, idle_s, threads, banner
        self.sessions = []  # (process, port, resident)
        self.lock = threading.Lock()
        launcher = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                launcher._handle(self)

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.port = self.httpd.server_address[1]

    @property
    def url(self) -> str:
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{shown}:{self.port}/"

    def _alive(self) -> list:
        with self.lock:
            self.sessions = [s for s in self.sessions if s[0].poll() is None]
            return list(self.sessions)

    def _page(self, request, status=200, message=""):
        body = _PAGE.format(disclaimer=html.escape(DISCLAIMER), banner=self.banner and f"<p><b>{html.escape(self.banner)}</b></p>",
                            message=message and f'<p class="warn" id="message">{html.escape(message)}</p>',
                            count=len(self._alive()), cap=self.max_sessions).encode()
        request.send_response(status)
        request.send_header("Content-Type", "text/html; charset=utf-8")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def _handle(self, request):
        parsed = urlparse(request.path)
        if parsed.path in ("/", "/index.html"):
            return self._page(request)
        if parsed.path != "/start":
            return self._page(request, 404, "no such page")
        name = (parse_qs(parsed.query).get("resident") or [""])[0].strip()
        if not _NAME.match(name):
            return self._page(request, 400, "name: 1-40 letters, digits, spaces, dots, dashes or underscores")
        if len(self._alive()) >= self.max_sessions:
            return self._page(request, 503, f"all {self.max_sessions} sessions are in use; try again in a few minutes")
        try:
            port = self.start_session(name)
        except RuntimeError as error:
            return self._page(request, 500, str(error))
        where = (request.headers.get("Host") or self.host).rsplit(":", 1)[0]
        request.send_response(303)
        request.send_header("Location", f"http://{where}:{port}/")
        request.end_headers()

    def start_session(self, resident: str, *, timeout_s: float = 120.0) -> int:
        """Start a session process for ``resident``; returns its port once it listens."""
        port = free_port(self.host if self.host not in ("", "0.0.0.0") else "127.0.0.1")
        env = dict(os.environ, NUMBA_NUM_THREADS=str(self.threads), TRAME_SERVER="1")
        command = [sys.executable, "-m", "planner.app.ui", "--port", str(port), "--host", self.host,
                   "--resident", resident, "--db", self.db, "--grid-mm", str(self.grid_mm), "--idle-s",
                   str(self.idle_s), "--threads", str(self.threads)]
        if self.score_grid_mm is not None:
            command += ["--score-grid-mm", str(self.score_grid_mm)]
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=None)
        with self.lock:
            self.sessions.append((process, port, resident))
        probe = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the session process ended at start (exit status {process.returncode})")
            if _listening(probe, port):
                return port
            time.sleep(0.1)
        process.terminate()
        raise RuntimeError("the session did not start in time")

    def serve_forever(self) -> None:
        try:
            self.httpd.serve_forever()
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop the launcher and every session it started."""
        self.httpd.server_close()
        for process, _, _ in self._alive():
            process.terminate()
        for process, _, _ in self.sessions:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
