"""``spinesim teach``: the resident app in the browser (one process per resident session)."""

from __future__ import annotations

import math
from pathlib import Path

NAME = "teach"


def add_parser(commands) -> None:
    parser = commands.add_parser(NAME, help="the resident app: pick a case, decide, then plan live in the browser")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; another address opens it to a classroom)")
    parser.add_argument("--port", type=int, default=0, help="launcher port (default: a free one)")
    parser.add_argument("--db", default=None, help="progress file (SQLite; default: the user's data folder)")
    parser.add_argument("--max-sessions", type=int, default=8, help="resident sessions at once, 1..64 (default 8)")
    parser.add_argument("--idle-minutes", type=float, default=15.0,
                        help="a session with no browser ends after this many minutes, 1..1440 (default 15)")
    parser.add_argument("--grid-mm", type=float, default=2.5, help="planning grid, 2.5..5 mm (default 2.5)")
    parser.add_argument("--threads", type=int, default=1, help="numba threads per session, 1..64 (default 1)")


def check(args) -> None:
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be in 0..65535, got {args.port}")
    if not 1 <= args.max_sessions <= 64:
        raise ValueError(f"--max-sessions must be in 1..64, got {args.max_sessions}")
    if not (math.isfinite(args.idle_minutes) and 1 <= args.idle_minutes <= 1440):
        raise ValueError(f"--idle-minutes must be in 1..1440, got {args.idle_minutes:g}")
    if not (math.isfinite(args.grid_mm) and 2.5 <= args.grid_mm <= 5):
        raise ValueError(f"--grid-mm must be in 2.5..5 mm, got {args.grid_mm:g}")
    if not 1 <= args.threads <= 64:
        raise ValueError(f"--threads must be in 1..64, got {args.threads}")
    if args.db is not None and Path(args.db).is_dir():
        raise ValueError(f"--db {args.db!r} is a folder, not a file")


def run(args, out) -> int:
    from planner.app.launcher import Launcher
    from planner.app.store import ProgressStore, StoreError, default_store_path
    from planner.common.safety import DISCLAIMER

    db = Path(args.db) if args.db else default_store_path()
    try:
        ProgressStore(db).close()  # refuses a foreign or damaged file before anything starts
    except StoreError as error:
        raise ValueError(f"--db: {error}") from None
    classroom = args.host not in ("127.0.0.1", "localhost", "::1")
    banner = (f"CLASSROOM MODE: listening on {args.host}, reachable from other machines on this network"
              if classroom else "")
    launcher = Launcher(host=args.host, port=args.port, db=db, grid_mm=args.grid_mm, max_sessions=args.max_sessions,
                        idle_s=int(args.idle_minutes * 60), threads=args.threads, banner=banner)
    if banner:
        print(banner, file=out)
    print(f"spinesim teach: open {launcher.url}  (progress in {db}; Ctrl-C stops)", file=out, flush=True)
    print(DISCLAIMER, file=out, flush=True)
    import signal
    import sys

    # A terminated launcher stops its sessions too (serve_forever's cleanup runs on SystemExit).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        launcher.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0
