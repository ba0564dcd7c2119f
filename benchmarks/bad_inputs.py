"""Issue 18's table: bad inputs tried as a new user would, each in a fresh interpreter.

    python -m benchmarks.bad_inputs [--generated 100] [--seed 18]

For every input: the exit status, whether the answer is a clear one-line error, whether a
traceback leaked, whether a file was left behind (new, or a temporary one), and the wall
time to the answer (interpreter start included). The hand-written inputs (those of the issue
and more) run the real command line; the generated ones run it with the commands' work
replaced by a stub, so an input that passes every check costs nothing (it is counted as
accepted). The API inputs call the library functions the issue named. Not a test: it takes
a minute or two and its times depend on the machine's load.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUB = ("import sys\nimport planner.cli.commands as c\n"
        "for name in list(c._HANDLERS):\n    c._HANDLERS[name] = lambda args, out: 0\n"
        "sys.exit(c.main(sys.argv[1:]))\n")
PLAN = ["plan", "t10_rcc_escc2", "--dose", "24", "--fractions", "2"]

HAND = [
    # The issue's own.
    ["compare", "t10_rcc_escc2", "--json", "ok.json", "--csv", "/sys/a.csv"],
    ["compare", "t10_rcc_escc2", "--json", "adir.json"],
    PLAN + ["--json", "adir.json"],
    ["scene", "t10_rcc_escc2", "--out", "adir.png"],
    ["scene", "t10_rcc_escc2", "--out", "/proc/x.png"],
    PLAN + ["--spacing-mm", "0.5", "--beamlet-mm", "2.5", "--engine", "pencil"],
    ["scene", "t10_rcc_escc2", "--out", "fine.png", "--spacing-mm", "0.5", "--memory-budget", "2G"],
    ["scene", "deep.toml", "--out", "x.png"],
    ["scene", "x.toml", "--out", "x.png"],
    ["scene", "garbage.toml", "--out", "x.png"],
    ["scene", "nan.toml", "--out", "x.png"],
    ["scene", "t13.toml", "--out", "x.png"],
    # More paths and values.
    ["compare", "t10_rcc_escc2", "--json", "same.json", "--csv", "same.json"],
    ["timeline", "t10_rcc_escc2", "--json", "/dev/null"],
    ["timeline", "t10_rcc_escc2", "--json", "missing/x.json"],
    ["demo", "--out", "/sys/report"],
    ["demo", "--out", "afile"],
    ["demo", "--out", "missing/report"],
    ["view", "t10_rcc_escc2", "--out", "missing"],
    ["view", "t10_rcc_escc2", "--png", "--out", "/proc"],
    ["scene", "t10_rcc_escc2", "--out", "x.txt"],
    ["scene", "t10_rcc_escc2", "--out", ""],
    ["scene", "t10_rcc_escc2", "--out", "x.png", "--memory-budget", "lots"],
    ["scene", "t10_rcc_escc2", "--out", "x.png", "--memory-budget", "-1G"],
    ["scene", "t10_rcc_escc2", "--out", "x.png", "--spacing-mm", "0.1"],
    ["scene", "t10_rcc_escc2", "--out", "x.png", "--spacing-mm", "nan"],
    ["scene", "t10_rcc_escc2", "--out", "x.png", "--weeks", "inf"],
    PLAN[:2] + ["--dose", "nan", "--fractions", "2"],
    PLAN[:2] + ["--dose", "1e309", "--fractions", "2"],
    PLAN[:2] + ["--dose", "24", "--fractions", "0"],
    PLAN + ["--gap-mm", "-0.5"],
    PLAN + ["--protocol", "TG101"],
    *([PLAN + ["--json", "readonly.json"]] if os.geteuid() != 0 else []),  # root may write a read-only file
    ["plan", "--dose", "24", "--fractions", "2"],
    ["plan", "t10_rcc_escc2", "--dose", "24", "--fractions", "2", "--dicom", "missing"],
    ["compare", "t10_rcc_escc2", "--weights", "walking=inf"],
    ["compare", "t10_rcc_escc2", "--strategies", ""],
    ["compare", "t10_rcc_escc2", "--strategies", "magic"],
    ["timeline", "t10_rcc_escc2", "--weeks", "0,0"],
    ["timeline", "t10_rcc_escc2", "--weeks", ""],
    ["nonsense"],
    [],
]

API = {
    "build_influence, empty beam set": (
        "from planner.radiotherapy.beams import BeamSet\nfrom planner.radiotherapy.influence import build_influence\n"
        "from scenes.cases import build_scene\n"
        "build_influence(build_scene('t10_rcc_escc2', spacing_mm=(5.0, 5.0, 5.0)), BeamSet(()))"),
    "make_beams, gantry_deg=[]": (
        "import numpy as np\nfrom planner.radiotherapy.beams import make_beams\n"
        "make_beams(np.zeros((3, 3)), gantry_deg=[])"),
    "scene_from_arrays, NaN in a structure mask": (
        "import numpy as np\nfrom scenes.scene import scene_from_arrays\n"
        "m = np.zeros((4, 4, 4)); m[0, 0, 0] = np.nan\n"
        "scene_from_arrays(spacing_mm=(1, 1, 1), density_g_cc=np.ones((4, 4, 4)), structures={'gtv': m})"),
    "scene_from_arrays, NaN in HU": (
        "import numpy as np\nfrom scenes.scene import scene_from_arrays\n"
        "h = np.zeros((4, 4, 4)); h[1, 1, 1] = np.nan\nscene_from_arrays(spacing_mm=(1, 1, 1), hu=h)"),
    "scene_from_arrays, spacing (1, 1)": (
        "import numpy as np\nfrom scenes.scene import scene_from_arrays\n"
        "scene_from_arrays(spacing_mm=(1, 1), density_g_cc=np.ones((4, 4, 4)))"),
    "load_case, 50 000 nested brackets": (
        "from scenes.cases import load_case\nload_case('deep.toml')"),
    "load_case, byte-order mark (valid)": "from scenes.cases import load_case\nload_case('bom.toml')",
    "load_case, folder x.toml": "from scenes.cases import load_case\nload_case('x.toml')",
}

FLAGS = ["--dose", "--fractions", "--gap-mm", "--protocol", "--engine", "--spacing-mm", "--beams", "--beamlet-mm",
         "--json", "--csv", "--out", "--weeks", "--weeks-delay", "--weights", "--strategies", "--case",
         "--memory-budget", "--dicom"]
VALUES = ["", "0", "-1", "nan", "inf", "1e309", "2.5", "2.5,1.25,1.25", "0.5", "24", "2", "41", "abc", "hytec",
          "walking=3", "walking=-1", "speed=1", "8G", "1K", "adir.json", "x.json", "x.png", "x.csv", "/proc/x",
          "/sys/x.csv", "/dev/null", "missing/x.json", "afile", "x.toml", "deep.toml", "t10_rcc_escc2", "nope",
          "sbrt_fan", "fan", "pencil", "10", "0,2,4", "4,2", "-0", "1_0", "0x10"]


def generated(count: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    out = []
    while len(out) < count:
        command = rng.choice(["scene", "plan", "compare", "timeline", "demo", "view"])
        argv = [command]
        if command != "demo":
            argv.append(rng.choice(["t10_rcc_escc2", "l3_melanoma_escc3", "nope", "x.toml", "garbage.toml",
                                    "nan.toml", "bom.toml"]))
        for _ in range(rng.randint(1, 4)):
            argv += [rng.choice(FLAGS), rng.choice(VALUES)]
        out.append(argv)
    return out


def workspace(folder: Path) -> None:
    case = (ROOT / "scenes/data/cases/t10_rcc_escc2.toml").read_text(encoding="utf-8")
    (folder / "adir.json").mkdir()
    (folder / "adir.png").mkdir()
    (folder / "x.toml").mkdir()
    (folder / "deep.toml").write_text("x = " + "[" * 50_000 + "]" * 50_000 + "\n")
    (folder / "bom.toml").write_bytes(b"\xef\xbb\xbf" + case.encode())
    (folder / "garbage.toml").write_bytes(bytes(range(256)) * 8)
    (folder / "nan.toml").write_text(case.replace("body_fraction = 0.6", "body_fraction = nan"))
    (folder / "t13.toml").write_text(case.replace('level = "T10"', 'level = "T13"'))
    (folder / "afile").write_text("x")
    (folder / "readonly.json").write_text("{}")
    (folder / "readonly.json").chmod(0o444)


def snapshot(folder: Path) -> set:
    return {p for p in folder.rglob("*") if "cache" not in p.relative_to(folder).parts}


def run(command: list[str], folder: Path, timeout: float) -> dict:
    env = dict(os.environ, XDG_CACHE_HOME=str(folder / "cache"), NUMBA_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    before = snapshot(folder)
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=timeout)
        status, out, err = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired:
        status, out, err = "timeout", "", ""
    seconds = time.perf_counter() - start
    left = sorted(str(p.relative_to(folder)) for p in snapshot(folder) - before)
    for path in snapshot(folder) - before:  # keep the workspace as it was for the next input
        if path.is_file():
            path.unlink()
    lines = [line for line in err.strip().splitlines() if line.strip()]
    clear = status == 2 and bool(lines) and "error" in lines[-1] and (len(lines) == 1 or "usage:" in err)
    return dict(status=status, clear=clear, traceback="Traceback" in out + err, left=left, seconds=seconds,
                answer=lines[-1] if lines else "")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--generated", type=int, default=100)
    parser.add_argument("--seed", type=int, default=18)
    options = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        workspace(folder)
        for argv in HAND:
            rows.append(("hand", " ".join(argv), run([sys.executable, "-m", "planner", *argv], folder, 300)))
        for argv in generated(options.generated, options.seed):
            rows.append(("generated", " ".join(argv), run([sys.executable, "-c", STUB, *argv], folder, 120)))
        for label, code in API.items():
            # A library raises; what counts is that only ValueError (naming the argument) comes out.
            wrapped = ("import sys\ntry:\n" + "".join(f"    {line}\n" for line in code.splitlines())
                       + "except ValueError as error:\n    print(f'{type(error).__name__}: {error}', file=sys.stderr)\n"
                       "    sys.exit(1)\n")
            rows.append(("api", label, run([sys.executable, "-c", wrapped], folder, 300)))
    for kind, label, r in rows:
        print(f"{kind:9s} {r['status']!s:>7} {'clear' if r['clear'] else '-':5s} {r['seconds']:5.2f}s "
              f"{'TRACEBACK ' if r['traceback'] else ''}{'LEFT ' + ','.join(r['left']) if r['left'] else ''}"
              f"{label[:70]:70s} | {r['answer'][:150]}")
    print()
    print("| inputs | tried | clear errors | accepted | tracebacks leaked | files left | time to answer (median / max) |")
    print("|---|---|---|---|---|---|---|")
    for kind in ("hand", "generated", "api"):
        group = [r for k, _, r in rows if k == kind]
        times = sorted(r["seconds"] for r in group)
        accepted = sum(r["status"] == 0 for r in group)
        errors = sum(r["clear"] for r in group) if kind != "api" else sum(
            r["status"] == 1 and "Error: " in r["answer"] and not r["traceback"] for r in group)
        print(f"| {kind} | {len(group)} | {errors} | {accepted} | {sum(r['traceback'] for r in group)} | "
              f"{sum(bool(r['left']) for r in group)} | {times[len(times) // 2]:.2f} s / {times[-1]:.2f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
