"""A stand-in task function for the driver tests: no physics, deterministic rows, a short
sleep per scenario so that a run can be killed part-way. Optionally kills its own worker
process the first time it runs (``SWEEP_STUB_KILL`` names a marker file), to test that a
lost worker loses nothing."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

#: Seconds per scenario (long enough to kill a run between rows, short enough to be cheap).
DELAY_S = 0.02


def evaluate_batch(scenarios, *, dose_arrays=False, threads=None):
    marker = os.environ.get("SWEEP_STUB_KILL")
    if marker and not Path(marker).exists():
        Path(marker).write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)  # this worker dies holding the batch
    rows = []
    for s in scenarios:
        time.sleep(DELAY_S)
        gap = s["params"]["gap_mm"]
        rows.append({"key": s["key"], "index": s["index"], "params": s["params"], "status": "ok", "message": "",
                     "metrics": {"twice_gap_mm": 2 * gap, "index_seen": s["index"]}, "wall_s": DELAY_S,
                     "compute_s": DELAY_S, "worker": os.getpid(), "dose": None})
    return rows
