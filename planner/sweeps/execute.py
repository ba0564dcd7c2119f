"""Run a sweep: local process pool by default, or Dask distributed; resumable, one writer.

:func:`run_sweep` opens the sweep's database (refusing one made by another spec), skips the
rows already stored, groups the rest into batches (scenarios sharing a scene stay together,
and scenarios that differ only in their weights are never split: they share one plan) and
hands the batches to an executor:

* local (default): a process pool of ``workers`` processes (spawned, so that no numba thread
  pool is forked), each capped at ``cores // workers`` numba threads; ``workers=1`` runs in
  this process;
* Dask: ``scheduler="tcp://HOST:8786"`` submits to a running cluster, ``local_cluster=N``
  starts a LocalCluster of N single-threaded worker processes bound to 127.0.0.1 (dashboard
  on loopback unless told otherwise). The task function lives in the installed package
  (:func:`planner.sweeps.evaluate.evaluate_batch`); a worker that dies has its batches
  rerun elsewhere by the scheduler.

Only this driver writes the database: each batch's rows are committed in one transaction as
the batch returns, so a run killed at any moment (SIGKILL included) loses no returned row
and writes no partial or duplicate one; the next run skips what is stored.
"""

from __future__ import annotations

import importlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["run_sweep", "check_cases", "make_batches", "RunSummary", "DEFAULT_EVALUATOR", "DASK_BATCH"]

DEFAULT_EVALUATOR = "planner.sweeps.evaluate:evaluate_batch"
#: Scenarios per Dask task: every scenario takes ~0.5-10 s, so a task of a few lasts well
#: over the ~1 s that keeps the scheduler's few ms per task negligible.
DASK_BATCH = 4
#: Batches in flight per worker (one running, one queued, so no worker waits for the driver).
IN_FLIGHT_PER_WORKER = 2


@dataclass
class RunSummary:
    """What a run did: counts, times and where the time went."""

    total: int
    skipped: int
    done: int = 0
    infeasible: int = 0
    removed: list = field(default_factory=list)
    wall_s: float = 0.0
    startup_s: float = 0.0
    compute_s: float = 0.0
    database_s: float = 0.0
    workers: int = 1
    executor: str = "local"

    @property
    def per_minute(self) -> float:
        return 60.0 * self.done / self.wall_s if self.wall_s > 0 and self.done else 0.0

    @property
    def outside_share(self) -> float:
        """Share of the workers' time not spent in the evaluator (scheduling, serialisation,
        database, start-up and idle workers): 1 - compute / (wall x workers)."""
        capacity = self.wall_s * self.workers
        return max(0.0, 1.0 - self.compute_s / capacity) if capacity > 0 else 0.0

    def text(self) -> str:
        """The summary in words.

        Returns
        -------
        str
            Counts, rate, and the time outside the evaluator.
        """
        lines = list(self.removed)
        lines.append(f"{self.done} scenario{'s' if self.done != 1 else ''} run ({self.infeasible} infeasible), "
                     f"{self.skipped} already stored, {self.total} in the sweep; {self.executor} executor, "
                     f"{self.workers} worker{'s' if self.workers != 1 else ''}")
        if self.done:
            lines.append(f"{self.wall_s:.1f} s: {self.per_minute:.1f} scenarios/minute; start-up {self.startup_s:.1f} s; "
                         f"evaluation {self.compute_s:.1f} s of {self.wall_s * self.workers:.1f} worker-seconds; "
                         f"outside it (start-up, scheduling, serialisation, database, idle) "
                         f"{100 * self.outside_share:.0f}%; database {self.database_s:.2f} s")
        return "\n".join(lines)


def _resolve(dotted: str):
    module, _, name = dotted.partition(":")
    return getattr(importlib.import_module(module), name)


def _scene_group(params: dict) -> str:
    from .spec import scenario_key

    return scenario_key({k: params.get(k) for k in ("case", "case_sha256", "level", "histology", "escc_grade",
                                                       "lesion_sites", "body_fraction", "weeks_delay", "grid_mm")})


def _plan_group(params: dict) -> str:
    from .spec import scenario_key

    return scenario_key({k: v for k, v in params.items() if k != "weights"})


def make_batches(scenarios, *, batch_size: int) -> list[list[dict]]:
    """Scenarios into batches: grouped by scene, at most ``batch_size`` plans per batch.

    Parameters
    ----------
    scenarios : sequence of Scenario
        The scenarios to run.
    batch_size : int
        Plans per batch (>= 1); scenarios differing only in their weights count once and
        are never split across batches.

    Returns
    -------
    list of list of dict
        Batches of plain dicts (``key``, ``index``, ``params``) in the spec's order of their
        first scenario.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    by_scene: dict[str, dict[str, list]] = {}
    for s in scenarios:
        plans = by_scene.setdefault(_scene_group(s.params), {})
        plans.setdefault(_plan_group(s.params), []).append({"key": s.key, "index": s.index, "params": s.params})
    batches = []
    for plans in by_scene.values():
        groups = list(plans.values())
        for start in range(0, len(groups), batch_size):
            batches.append([item for group in groups[start:start + batch_size] for item in group])
    return batches


def check_cases(sweep) -> tuple[list, list[str]]:
    """Build every distinct case variant of a sweep (no scene) and drop the scenarios whose
    overrides contradict their case (e.g. a cord neurology at a cauda level).

    Parameters
    ----------
    sweep : Sweep
        The expanded spec.

    Returns
    -------
    scenarios : list of Scenario
        Those whose case is valid.
    removed : list of str
        One line per reason with the count removed.
    """
    from scenes.cases import CaseError

    from .evaluate import scenario_case

    fields = ("case", "level", "histology", "escc_grade", "lesion_sites", "body_fraction")
    verdict, kept, removed = {}, [], {}
    for s in sweep.scenarios:
        variant = json.dumps([s.params.get(k) for k in fields])
        if variant not in verdict:
            try:
                scenario_case(s.params)
                verdict[variant] = None
            except CaseError as error:
                verdict[variant] = str(error)
        if verdict[variant] is None:
            kept.append(s)
        else:
            removed[verdict[variant]] = removed.get(verdict[variant], 0) + 1
    return kept, [f"removed {n} scenario{'s' if n != 1 else ''}: {why}" for why, n in removed.items()]


def _init_worker(threads: int) -> None:
    # Runs in each spawned worker before numba is imported there.
    os.environ["NUMBA_NUM_THREADS"] = str(threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))


class _Local:
    """A spawned process pool, or this process when one worker is asked for."""

    def __init__(self, workers: int, threads: int):
        self.workers, self.threads = workers, threads
        self.pool = None
        if workers > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_init_worker, initargs=(threads,))

        self._deferred = {}  # in this process: future -> the call, run when the driver waits

    def submit(self, function, batch, **options):
        if self.pool is None:
            from concurrent.futures import Future

            future = Future()
            self._deferred[future] = lambda: function(batch, threads=self.threads, **options)
            return future
        return self.pool.submit(function, batch, threads=self.threads, **options)

    def wait(self, futures):
        if self.pool is None:  # run the oldest submitted batch, so rows are stored one batch at a time
            future = next(f for f in self._deferred if f in futures)
            call = self._deferred.pop(future)
            try:
                future.set_result(call())
            except Exception as error:  # handed to the driver like a worker's failure
                future.set_exception(error)
            return {future}
        from concurrent.futures import FIRST_COMPLETED, wait

        return wait(futures, return_when=FIRST_COMPLETED).done

    def close(self):
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


class _Dask:
    """A Dask client: to a running scheduler, or to a LocalCluster started here."""

    def __init__(self, *, scheduler: str | None, local_cluster: int | None, dashboard: str | None):
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ImportError("Dask execution needs dask.distributed: pip install 'spinesim[dist]'") from None
        self.cluster = None
        if local_cluster:
            self.cluster = LocalCluster(n_workers=local_cluster, threads_per_worker=1, processes=True,
                                        host="127.0.0.1", dashboard_address=dashboard,
                                        env={"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})
            self.client = Client(self.cluster)
        else:
            try:
                self.client = Client(scheduler, timeout="20s")
            except (OSError, TimeoutError) as error:  # nothing listens there: say so, in one line
                raise ValueError(f"--scheduler {scheduler}: cannot connect to a Dask scheduler ({error})") from None
        self.workers = max(1, len(self.client.scheduler_info().get("workers", {})))

    def submit(self, function, batch, **options):
        # pure=False: a batch is run once per submission; the store ignores a row it holds.
        return self.client.submit(function, batch, threads=1, pure=False, **options)

    def wait(self, futures):
        from distributed import wait

        return wait(futures, return_when="FIRST_COMPLETED").done

    def close(self):
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def run_sweep(sweep, db_path, *, workers: int | None = None, scheduler: str | None = None,
              local_cluster: int | None = None, dashboard: str | None = "127.0.0.1:0", batch_size: int | None = None,
              progress=None, evaluator: str = DEFAULT_EVALUATOR, validate_cases: bool = True,
              on_batch=None) -> RunSummary:
    """Run the scenarios of ``sweep`` not yet in the database at ``db_path``.

    Parameters
    ----------
    sweep : Sweep
        The expanded spec (:func:`planner.sweeps.spec.load_spec`).
    db_path : str or os.PathLike
        The sweep's database (created; refused when another spec made it).
    workers : int, optional
        Local worker processes (default: the machine's cores); ignored with Dask.
    scheduler : str, optional
        A Dask scheduler address, e.g. 'tcp://10.0.0.5:8786'.
    local_cluster : int, optional
        Start a Dask LocalCluster of this many single-threaded workers (on 127.0.0.1).
    dashboard : str or None, default "127.0.0.1:0"
        The LocalCluster's dashboard address (loopback, any free port); None: no dashboard.
    batch_size : int, optional
        Plans per batch (default: 1 locally, :data:`DASK_BATCH` on Dask).
    progress : callable, optional
        ``progress(message, done, total)`` after each batch (rate and ETA in the message).
    evaluator : str, default DEFAULT_EVALUATOR
        'module:function' of the task function (its signature is
        :func:`planner.sweeps.evaluate.evaluate_batch`'s).
    validate_cases : bool, default True
        Drop, and report, the scenarios whose overrides contradict their case
        (:func:`check_cases`) before anything runs.
    on_batch : callable, optional
        ``on_batch(rows_stored_so_far)`` after each commit (for tests and dashboards).

    Returns
    -------
    RunSummary
        Counts and times.

    Notes
    -----
    Local workers are spawned processes: a script that calls this must guard its entry
    point with ``if __name__ == "__main__":``, as for any multiprocessing pool.
    """
    from .store import ResultStore

    say = progress or (lambda message, done, total: None)
    start = time.perf_counter()
    scenarios, removed = check_cases(sweep) if validate_cases else (list(sweep.scenarios), [])
    fresh = not Path(db_path).exists()
    store = ResultStore(db_path, sweep, removed=sweep.removed_text() + removed)
    try:
        finished = store.finished_keys()
        pending = [s for s in scenarios if s.key not in finished]
        dask = scheduler is not None or local_cluster is not None
        summary = RunSummary(total=len(scenarios), skipped=len(scenarios) - len(pending),
                             removed=sweep.removed_text() + removed, executor="dask" if dask else "local")
        if not pending:
            summary.wall_s = time.perf_counter() - start
            return summary
        batches = make_batches(pending, batch_size=batch_size or (DASK_BATCH if dask else 1))
        function = _resolve(evaluator)
        cores = os.cpu_count() or 1
        try:
            if dask:
                executor = _Dask(scheduler=scheduler, local_cluster=local_cluster, dashboard=dashboard)
            else:
                count = max(1, min(workers or cores, len(batches)))
                executor = _Local(count, max(1, cores // count))
        except BaseException:
            if fresh and store.count() == 0:  # nothing ran: leave no empty database behind
                store.close()
                Path(db_path).unlink(missing_ok=True)
            raise
        summary.workers = executor.workers
        try:
            summary = _drive(executor, function, batches, store, sweep, summary, say, start, on_batch)
        finally:
            executor.close()
        summary.wall_s = time.perf_counter() - start
        return summary
    finally:
        store.close()


def _drive(executor, function, batches, store, sweep, summary, say, start, on_batch):
    total = sum(len(b) for b in batches)
    queue = list(reversed(batches))
    running = set()
    first = None
    say(f"{total} scenarios in {len(batches)} batches on {executor.workers} worker(s)", 0, total)
    while queue or running:
        while queue and len(running) < IN_FLIGHT_PER_WORKER * executor.workers:
            running.add(executor.submit(function, queue.pop(), dose_arrays=sweep.dose_arrays))
        for future in executor.wait(running):
            running.discard(future)
            rows = future.result()  # a failing batch stops the run; what was stored stays
            if first is None:
                first = time.perf_counter()
                summary.startup_s = first - start - sum(r["wall_s"] for r in rows)
            mark = time.perf_counter()
            store.commit(rows, seed=sweep.seed)
            summary.database_s += time.perf_counter() - mark
            summary.done += len(rows)
            summary.infeasible += sum(r["status"] != "ok" for r in rows)
            summary.compute_s += sum(r.get("compute_s", r["wall_s"]) for r in rows)
            elapsed = time.perf_counter() - start
            rate = summary.done / elapsed * 60.0
            eta = (total - summary.done) / (summary.done / elapsed) if summary.done else float("inf")
            say(f"{rate:.1f}/min, ETA {eta:.0f} s", summary.done, total)
            if on_batch is not None:
                on_batch(summary.done)
    return summary
