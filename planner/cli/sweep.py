"""`spinesim sweep`: run a scenario sweep from a TOML spec, export its table, write its report.

    spinesim sweep SPEC.toml [--db RESULTS.sqlite] [--workers N | --local-cluster N | --scheduler tcp://HOST:8786]
    spinesim sweep export RESULTS.sqlite --csv table.csv | --parquet table.parquet
    spinesim sweep report RESULTS.sqlite --out DIR

SPEC is a spec file or the name of a shipped example (``gap_vs_dose``, ``delay_vs_walking``:
planner/sweeps/examples). The spec is validated with the standard library before anything
heavy is imported; every error names the file, the field, the value and what is allowed.
"""

from __future__ import annotations

import os
import re
import sys
from importlib import resources
from pathlib import Path

from planner.common.safety import DISCLAIMER

NAME = "sweep"
ACTIONS = ("export", "report")
WORKERS_MAX = 1024
_ADDRESS = re.compile(r"^(tcp|tls|ucx|inproc)://[^\s/]+(:\d+)?$")


def _examples() -> dict:
    folder = resources.files("planner.sweeps").joinpath("examples")
    return {p.name[:-5]: Path(str(p)) for p in folder.iterdir() if p.name.endswith(".toml")}


def add_parser(commands) -> None:
    """Add ``spinesim sweep`` to the command line's subparsers."""
    sweep = commands.add_parser("sweep", help="run a scenario sweep from a TOML spec; `sweep export` / `sweep report` "
                                              "turn its results into a table or a report")
    sweep.add_argument("target", help="a sweep spec .toml (or a shipped example: gap_vs_dose, delay_vs_walking), "
                                      "or 'export' / 'report'")
    sweep.add_argument("results", nargs="?", default=None, help="with export/report: the sweep database")
    sweep.add_argument("--db", default=None, help="the results database (default ./<sweep name>.sqlite)")
    sweep.add_argument("--workers", type=int, default=None, help="local worker processes (default: the machine's cores)")
    sweep.add_argument("--local-cluster", type=int, default=None, help="start a Dask LocalCluster of N workers on 127.0.0.1")
    sweep.add_argument("--scheduler", default=None, help="a running Dask scheduler, e.g. tcp://10.0.0.5:8786")
    sweep.add_argument("--dashboard", default="127.0.0.1:0",
                       help="the LocalCluster dashboard address (default loopback, any port; 'none' for none)")
    sweep.add_argument("--batch-size", type=int, default=None, help="plans per task (default 1 locally, 4 on Dask)")
    sweep.add_argument("--csv", default=None, help="export: write the tidy table as CSV here")
    sweep.add_argument("--parquet", default=None, help="export: write the tidy table as Parquet here (pyarrow)")
    sweep.add_argument("--out", default=None, help="report: the report folder")


def _writable_file(flag: str, text: str) -> None:
    path = Path(text)
    if path.is_dir():
        raise ValueError(f"{flag} {text!r} is a folder, not a file")
    folder = path.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{flag} folder {str(folder)!r} does not exist or is not writable")


def _spec_path(text: str) -> Path:
    if not Path(text).suffix:
        examples = _examples()
        if text not in examples:
            raise ValueError(f"no sweep spec {text!r}: give a .toml file or a shipped example ({', '.join(sorted(examples))})")
        return examples[text]
    return Path(text)


def check(args) -> None:
    """Check the arguments (standard library only); ValueError with a one-line message."""
    from planner.sweeps.spec import load_spec

    run_flags = ("db", "workers", "local_cluster", "scheduler", "batch_size")
    if args.target in ACTIONS:
        if args.results is None:
            raise ValueError(f"sweep {args.target} needs the results database: spinesim sweep {args.target} RESULTS.sqlite")
        if not Path(args.results).is_file():
            raise ValueError(f"RESULTS {args.results!r}: no such sweep database")
        for flag in run_flags:
            if getattr(args, flag) is not None:
                raise ValueError(f"--{flag.replace('_', '-')} is for running a sweep, not for sweep {args.target}")
        if args.target == "export":
            if (args.csv is None) == (args.parquet is None):
                raise ValueError("sweep export needs exactly one of --csv FILE or --parquet FILE")
            _writable_file("--csv" if args.csv else "--parquet", args.csv or args.parquet)
            if args.out is not None:
                raise ValueError("--out is for sweep report; export takes --csv or --parquet")
        else:
            if args.out is None:
                raise ValueError("sweep report needs --out DIR")
            out = Path(args.out)
            if out.exists() and not out.is_dir():
                raise ValueError(f"--out {args.out!r} is a file, not a folder")
            if not out.resolve().parent.is_dir():
                raise ValueError(f"--out: the parent of {args.out!r} does not exist")
            if args.csv or args.parquet:
                raise ValueError("--csv/--parquet are for sweep export")
        return
    if args.results is not None:
        raise ValueError(f"unexpected argument {args.results!r}: run a sweep with `spinesim sweep SPEC.toml`, or use "
                         "`spinesim sweep export|report RESULTS`")
    for flag in ("csv", "parquet", "out"):
        if getattr(args, flag) is not None:
            raise ValueError(f"--{flag} is for sweep {'export' if flag != 'out' else 'report'}, not for running a sweep")
    for flag in ("workers", "local_cluster", "batch_size"):
        value = getattr(args, flag)
        if value is not None and not 1 <= value <= WORKERS_MAX:
            raise ValueError(f"--{flag.replace('_', '-')} must be in 1..{WORKERS_MAX}, got {value}")
    chosen = [flag for flag in ("workers", "local_cluster", "scheduler") if getattr(args, flag) is not None]
    if len(chosen) > 1:
        raise ValueError("give one of --workers, --local-cluster or --scheduler, got " +
                         ", ".join("--" + flag.replace("_", "-") for flag in chosen))
    if args.scheduler is not None and not _ADDRESS.match(args.scheduler):
        raise ValueError(f"--scheduler must be an address like tcp://HOST:8786, got {args.scheduler!r}")
    args.dashboard = None if str(args.dashboard).lower() == "none" else args.dashboard
    args.spec = load_spec(_spec_path(args.target))  # SpecError is a ValueError naming file, field and value
    args.db = args.db or f"{args.spec.name}.sqlite"
    _writable_file("--db", args.db)


def run(args, out) -> int:
    """Run the checked command; returns the exit status."""
    from planner.common.progress import ProgressBar

    if args.target == "export":
        from planner.sweeps.store import export_table

        kind, target = ("csv", args.csv) if args.csv else ("parquet", args.parquet)
        try:
            export_table(args.results, target, kind=kind)
        except ImportError as error:  # pyarrow missing: say which extra brings it
            raise ValueError(str(error)) from None
        print(f"wrote {target}", file=out)
    elif args.target == "report":
        from planner.sweeps.report import write_sweep_report

        path = write_sweep_report(args.results, args.out)
        print(f"wrote {path}", file=out)
    else:
        from planner.sweeps.execute import run_sweep

        spec = args.spec
        print(f"sweep {spec.name}: {len(spec.scenarios)} scenarios from {spec.source}; results in {args.db}", file=out)
        summary = run_sweep(spec, args.db, workers=args.workers, scheduler=args.scheduler,
                            local_cluster=args.local_cluster, dashboard=args.dashboard, batch_size=args.batch_size,
                            progress=ProgressBar(sys.stderr))
        print(summary.text(), file=out)
        print(f"next: spinesim sweep export {args.db} --csv {spec.name}.csv; "
              f"spinesim sweep report {args.db} --out {spec.name}-report", file=out)
    print(DISCLAIMER, file=out)
    return 0
