"""``spinesim bench``: time the reference spine case on this host's CPU and GPU, write JSON.

``spinesim bench [--backend cpu|cuda|all] [--grid 2.5|1.25] [--json OUT]`` runs the T10
reference case (influence build, optimisation to convergence, final superposition dose, a
slider re-optimisation, the sparse products with the measured stream bandwidth) and prints
each figure; the JSON also holds the host's facts (CPU model, cores, memory, GPU name,
driver, library versions), so two hosts' files compare:
``spinesim bench compare A.json B.json`` prints B's speed-up over A for every figure both
hold, and each file's GPU-over-CPU speed-ups. Timings exclude JIT compilation.
``--beams`` and ``--n-azimuth`` shrink the case for a quick smoke run; the JSON records
them and ``compare`` warns when two files' settings differ.
"""

from __future__ import annotations

import json

NAME = "bench"
BACKEND_CHOICES = ("cpu", "cuda", "all")
GRID_CHOICES_MM = (2.5, 1.25)
BEAMS_RANGE = (7, 13)  # planner.radiotherapy.beams.arrangement_angles: an sbrt_fan has 7..13 beams
REPEATS_MAX = 50
SLIDER_MOVES_MAX = 200
#: Figures printed, in this order, with the quantity each one's number is.
FIGURES = ("influence_build", "optimisation", "final_dose", "slider", "matvec", "rmatvec", "rmatvec_transposed")


def add_parser(commands) -> None:
    """Register ``spinesim bench`` on the argparse subparsers object."""
    parser = commands.add_parser(
        "bench", help="time the reference case on the CPU and GPU (JSON compares across hosts); "
                      "`bench compare A.json B.json` prints the ratios")
    parser.add_argument("compare", nargs="*", metavar="compare A.json B.json",
                        help="compare two bench JSON files instead of running")
    parser.add_argument("--backend", choices=BACKEND_CHOICES, default="all",
                        help="cpu, cuda, or all (default: every backend this host has)")
    parser.add_argument("--grid", type=float, default=2.5,
                        help="2.5 (2.5 mm voxels) or 1.25 (2.5 x 1.25 x 1.25 mm); default 2.5")
    parser.add_argument("--json", default=None, help="write the figures and host facts to this JSON file")
    parser.add_argument("--repeats", type=int, default=3, help=f"rounds per figure, best and median kept (1..{REPEATS_MAX})")
    parser.add_argument("--beams", type=int, default=9, help=f"beams of the fan ({BEAMS_RANGE[0]}..{BEAMS_RANGE[1]}; default 9)")
    parser.add_argument("--n-azimuth", type=int, default=None,
                        help="cone azimuths per zenith bin in the final dose (>= 3; default the beam model's)")
    parser.add_argument("--slider-moves", type=int, default=12,
                        help=f"prescription-slider moves timed (1..{SLIDER_MOVES_MAX})")


def check(args) -> None:
    """Refuse bad flags before any heavy import (ValueError naming the flag and the range)."""
    if args.compare:
        if args.compare[0] != "compare" or len(args.compare) != 3:
            raise ValueError("bench takes no positional arguments except `compare A.json B.json`, "
                             f"got {' '.join(args.compare)!r}")
        from pathlib import Path

        for path in args.compare[1:]:
            if not Path(path).is_file():
                raise FileNotFoundError(f"compare: no such file {path!r}")
        return
    if args.grid not in GRID_CHOICES_MM:
        raise ValueError(f"--grid must be 2.5 or 1.25 (mm), got {args.grid:g}")
    if not 1 <= args.repeats <= REPEATS_MAX:
        raise ValueError(f"--repeats must be in 1..{REPEATS_MAX}, got {args.repeats}")
    if not BEAMS_RANGE[0] <= args.beams <= BEAMS_RANGE[1]:
        raise ValueError(f"--beams must be in {BEAMS_RANGE[0]}..{BEAMS_RANGE[1]}, got {args.beams}")
    if args.n_azimuth is not None and not args.n_azimuth >= 3:
        raise ValueError(f"--n-azimuth must be >= 3, got {args.n_azimuth}")
    if not 1 <= args.slider_moves <= SLIDER_MOVES_MAX:
        raise ValueError(f"--slider-moves must be in 1..{SLIDER_MOVES_MAX}, got {args.slider_moves}")
    if args.json is not None:
        from pathlib import Path

        if not Path(args.json).parent.exists():
            raise FileNotFoundError(f"--json: folder {str(Path(args.json).parent)!r} does not exist")


def _backends(choice: str) -> tuple:
    from kernels._dispatch import cuda_available

    if choice == "cpu":
        return ("cpu",)
    if choice == "cuda" and not cuda_available():
        raise ValueError("--backend cuda: this host has no usable NVIDIA GPU or numba-cuda "
                         "(pip install 'spinesim[gpu]'); use --backend cpu")
    if choice == "cuda":
        return ("cuda",)
    return ("cpu", "cuda") if cuda_available() else ("cpu",)


def _number(figure: dict) -> str:
    text = f"{1e3 * figure['best_s']:10.2f} ms (median {1e3 * figure['median_s']:.2f})"
    if "gb_s" in figure:
        text += f"  {figure['gb_s']:6.1f} GB/s, {figure['fraction_of_stream']:.2f} of stream"
    return text


def describe(result: dict) -> list:
    """The lines ``spinesim bench`` prints for one result (host, then each backend's figures)."""
    host = result["host"]
    gpu = host.get("gpu") or {}
    lines = [result["disclaimer"],
             f"host: {host['cpu_model']}, {host['cpu_cores']} cores, {(host['memory_bytes'] or 0) / 2**30:.0f} GiB; "
             + (f"GPU {gpu['gpu_name']} (cc {gpu['compute_capability']}, driver {gpu['driver_version']})" if gpu
                else "no GPU"),
             f"case: {result['settings']['case']}, grid {result['settings']['grid_mm']} mm, "
             f"{result['settings']['beams']} beams"]
    for backend, figures in result["results"].items():
        stream = figures["stream"]
        peak = stream.get("peak_gb_s")
        lines.append(f"[{backend}] stream triad {stream['triad_gb_s']:.1f} GB/s"
                     + (f", read {stream['read_gb_s']:.1f} GB/s" if "read_gb_s" in stream else "")
                     + (f", theoretical peak {peak:.0f} GB/s" if peak else ""))
        for name in FIGURES:
            if name in figures:
                lines.append(f"  {name:20s} {_number(figures[name])}")
    if "checks" in result:
        checks = result["checks"]
        lines.append(f"GPU vs CPU twins: influence {checks['influence_max_difference']:.2e} of the largest entry, "
                     f"final dose {checks['final_dose_max_difference']:.2e} of the maximum, objective "
                     f"{checks['optimisation_objective_difference']:.2e}: {'agree' if checks['all_ok'] else 'DIFFER'}")
    return lines


def compare_lines(first: dict, second: dict) -> list:
    """B's speed-up over A (A best / B best) for each (backend, figure) both hold, and the
    GPU-over-CPU speed-up inside each file."""
    lines = []
    for key in ("case", "grid_mm", "beams", "n_azimuth"):
        if first["settings"].get(key) != second["settings"].get(key):
            lines.append(f"warning: settings differ: {key} {first['settings'].get(key)} vs {second['settings'].get(key)}")
    names = (first["host"].get("gpu") or {}).get("gpu_name"), (second["host"].get("gpu") or {}).get("gpu_name")
    lines.append(f"A: {first['host']['cpu_model']} / {names[0] or 'no GPU'}")
    lines.append(f"B: {second['host']['cpu_model']} / {names[1] or 'no GPU'}")
    lines.append(f"{'figure':20s} {'backend':7s} {'A ms':>10s} {'B ms':>10s} {'A/B':>8s}")
    for backend in sorted(set(first["results"]) & set(second["results"])):
        for name in FIGURES:
            a, b = first["results"][backend].get(name), second["results"][backend].get(name)
            if a and b:
                lines.append(f"{name:20s} {backend:7s} {1e3 * a['best_s']:10.2f} {1e3 * b['best_s']:10.2f} "
                             f"{a['best_s'] / b['best_s']:8.2f}")
    if "cpu" in first["results"] and "cuda" in second["results"]:
        for name in FIGURES:
            cpu, gpu = first["results"]["cpu"].get(name), second["results"]["cuda"].get(name)
            if cpu and gpu:
                lines.append(f"B's GPU over A's CPU {name:20s} {cpu['best_s'] / gpu['best_s']:.1f}x")
    for label, result in (("A", first), ("B", second)):
        if {"cpu", "cuda"} <= set(result["results"]):
            for name in FIGURES:
                cpu, gpu = result["results"]["cpu"].get(name), result["results"]["cuda"].get(name)
                if cpu and gpu:
                    lines.append(f"{label} {name:20s} GPU over CPU: {cpu['best_s'] / gpu['best_s']:.1f}x")
    return lines


def run(args, out) -> int:
    """Run the benchmark (or the comparison) and print its lines to ``out``; 0 on success."""
    if args.compare:
        from pathlib import Path

        first, second = (json.loads(Path(path).read_text(encoding="utf-8")) for path in args.compare[1:])
        for result, path in ((first, args.compare[1]), (second, args.compare[2])):
            if result.get("spinesim_bench") != 1:
                raise ValueError(f"compare: {path!r} is not a spinesim bench JSON file")
        print("\n".join(compare_lines(first, second)), file=out)
        return 0
    from planner.cli.bench_run import run_bench
    from planner.common.files import write_text_atomically
    from planner.common.progress import is_terminal

    backends = _backends(args.backend)
    progress = (lambda message: print(f"... {message}", file=out)) if is_terminal(out) else None
    result = run_bench(backends=backends, grid_mm=args.grid, n_beams=args.beams, n_azimuth=args.n_azimuth,
                       repeats=args.repeats, slider_moves=args.slider_moves, progress=progress)
    if args.backend == "all" and "cuda" not in backends:
        result["settings"]["note"] = "no NVIDIA GPU on this host: CPU figures only"
    print("\n".join(describe(result)), file=out)
    if args.json:
        write_text_atomically(args.json, json.dumps(result, indent=2, default=_plain) + "\n")
        print(f"wrote {args.json}", file=out)
    return 0


def _plain(value):
    """JSON for NumPy scalars; NaN and infinities stay as JSON's NaN/Infinity (Python's json)."""
    try:
        return value.item()
    except AttributeError:
        raise TypeError(f"not JSON serialisable: {type(value).__name__}") from None

