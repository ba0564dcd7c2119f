#!/usr/bin/env bash
# One call on a GPU host (the `device` tool's machine, or any CUDA host) for issue 16: install,
# run the CUDA twin tests on the hardware (each twin against its CPU twin and tests/naive.py,
# plus the PTX check), time the reference case on the GPU and on the CPU (all cores, and 2 cores
# as the development machine's stand-in), and the per-kernel twin benchmarks. Everything lands
# in $OUT (at most 8 files). Budget: under 8 minutes; each step has its own timeout and a
# failing step does not stop the next (the summary says which failed).
#
#   device run:  bash benchmarks/gpu_device_check.sh          (timeout_s 540 leaves room for one rerun)
#   elsewhere:   OUT=/tmp/gpu-check bash benchmarks/gpu_device_check.sh
set -u
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 NUMBA_CACHE_DIR=/tmp/numba-cache
LOG="$OUT/log.txt"
PY=${PYTHON:-python3}
status=()
step() {  # step NAME SECONDS COMMAND...: run with a time limit, log it, remember the outcome
  local name=$1 limit=$2; shift 2
  echo "=== $name ($(date -u +%T), limit ${limit}s): $*" | tee -a "$LOG"
  local start=$SECONDS
  timeout "$limit" "$@" >>"$LOG" 2>&1
  local rc=$?
  echo "=== $name: exit $rc after $((SECONDS - start)) s" | tee -a "$LOG"
  status+=("$name=$rc")
}

# Install: the device image has numpy, scipy, numba, numba-cuda, pytest and pytest-benchmark but
# no network; spinesim itself goes on the path (pyvista, needed only for 3-D pictures, may be absent).
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.memory,clocks.max.sm --format=csv \
  >"$OUT/nvidia-smi.csv" 2>&1
$PY -m pip install -q --no-deps --no-build-isolation --no-index -e . >>"$LOG" 2>&1 || true
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
$PY - >>"$LOG" 2>&1 <<'PY'
import numba, numpy, scipy
from numba import cuda
print("numba", numba.__version__, "numpy", numpy.__version__, "scipy", scipy.__version__)
print("cuda available:", cuda.is_available(), cuda.get_current_device().name if cuda.is_available() else "")
PY

# 1. The twins on hardware against the CPU twins and the NumPy references, and the PTX check.
step cuda-tests 120 $PY -m pytest -m cuda tests/kernels/cuda -q -p no:cacheprovider --junitxml="$OUT/cuda-tests.xml"
# 2. Reference case, GPU and CPU (all cores) in one process: figures, host facts, GPU-vs-CPU checks.
step bench-2.5 150 $PY -m planner bench --backend all --grid 2.5 --json "$OUT/bench-2.5.json"
# 3. The same CPU figures on 2 cores (the development machine's core count), for the >= 20x targets.
step bench-cpu-2core 110 env NUMBA_NUM_THREADS=2 OMP_NUM_THREADS=1 taskset -c 0,1 \
  $PY -m planner bench --backend cpu --grid 2.5 --json "$OUT/bench-cpu-2core.json"
# 4. Per-kernel twin benchmarks (pytest-benchmark groups).
step kernel-benchmarks 80 $PY -m pytest benchmarks/test_kernel_twins.py -q -p no:cacheprovider --benchmark-enable \
  --benchmark-group-by=group --benchmark-columns=min,median,max --benchmark-json="$OUT/kernel-benchmarks.json"
{
  $PY -m planner bench compare "$OUT/bench-cpu-2core.json" "$OUT/bench-2.5.json"
  echo "steps: ${status[*]}"
} >"$OUT/summary.txt" 2>&1
cat "$OUT/summary.txt"
