"""Sweep workers: pull waiting cells from the ledger, run them, record the outcome.

`run_worker` is the loop over an open `Ledger` (the ledger only stores and hands out cells; this
module runs them). `run_worker_process` is the body of one worker process, whatever starts it
(`plan-sweep worker`, `run_local_workers` for `--workers N`, a SLURM job from `sweeps.slurm`);
`run_local_workers` starts N of them here. All take the ledger's settings as one `LedgerConfig`.

While `run_cell` runs in the worker's main thread, a daemon thread writes a heartbeat to the
ledger every `config.heartbeat_interval_s`, and with each beat fails the runs of other workers
whose heartbeats stopped, queueing their retries (see `sweeps.ledger`). So if a worker process
dies, its cell is back in the queue within about one beat after its grace period, whatever the
other workers are running; an idle worker checks as often.
An exception from `run_cell` fails the run with `Type: message` and the loop goes on; Ctrl-C or
SIGTERM fails it as interrupted (which uses up a retry too, so a cell that always outlives its
job cannot loop forever) and stops the worker. Each finished run logs one line, e.g.
`el/n=256/seed=0/model=default/sft done in 65.2 s: chrf=31 heldout_ce=2.1 [12/40 cells done,
28 left, ~64 s a cell, ETA 15 min]`.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import pickle
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType

from muit_core import ConfigError, LedgerError, configure_logging
from sweeps.cells import AnyCell, CellOutcome, Claim, LedgerConfig, RunRecord, RunState
from sweeps.ledger import Ledger
from sweeps.progress import format_progress

RunCell = Callable[[AnyCell], CellOutcome]
# Builds the cell function inside the worker process (load the spec, the corpus, ...); it must
# be picklable (a module-level function, or functools.partial of one) to reach other processes.
RunCellFactory = Callable[[], RunCell]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerSummary:
    """What one worker did.

    Attributes:
        worker: `host:pid`.
        n_done: runs it finished.
        n_failed: runs that failed (each queued for retry while retries were left).
        wall_s: seconds the worker ran.
        records: the records of its runs, in order.
    """

    worker: str
    n_done: int
    n_failed: int
    wall_s: float
    records: tuple[RunRecord, ...]


def run_worker(
    ledger: Ledger,
    run_cell: RunCell,
    *,
    max_runs: int | None = None,
    on_finished: Callable[[RunRecord], None] | None = None,
    stop_when_empty: bool = True,
) -> WorkerSummary:
    """Run waiting cells one at a time until there is nothing left to do.

    Each round first fails stale runs (crashed workers; their retries are queued), then claims
    the oldest waiting cell. With nothing waiting the worker sleeps the heartbeat interval and
    looks again, as long as other workers are running cells with live heartbeats (if one of
    them dies, this worker reruns its cell); it stops once nothing is waiting or running, unless
    `stop_when_empty` is False (then it waits for new cells until stopped).

    Args:
        ledger: the open ledger.
        run_cell: trains and scores one cell; raises on failure (e.g. a NaN loss).
        max_runs: stop after this many runs (done or failed); None for no limit.
        on_finished: called with each finished run's record (e.g. to append results.csv).
        stop_when_empty: see above.

    Returns:
        What this worker did.

    Raises:
        ConfigError: `max_runs` is below 1.
        KeyboardInterrupt, SystemExit: re-raised after the running cell is failed as interrupted.
    """
    if max_runs is not None and max_runs < 1:
        raise ConfigError(f"{max_runs=} must be at least 1, or None for no limit.")
    start = time.monotonic()
    records: list[RunRecord] = []
    while max_runs is None or len(records) < max_runs:
        if n_stale := ledger.fail_stale():
            _log.warning("Failed %d run(s) whose worker stopped sending heartbeats.", n_stale)
        claim = ledger.claim_next()
        if claim is None:
            if stop_when_empty and not ledger.live_cells():
                # No live run: every running one is stale by now, even one that was not when
                # this round began; fail it (queueing its retry) before deciding to stop.
                if ledger.fail_stale():
                    continue
                break
            time.sleep(ledger.config.heartbeat_interval_s)
            continue
        record = _run_one(ledger, claim, run_cell)
        records.append(record)
        standing = ledger.records()
        # This worker's cell has just finished, so it is not among the live ones.
        progress = format_progress(standing, len(ledger.live_cells()) + 1)
        line = f"{format_run(record)} [{progress}]"
        _log.log(logging.INFO if record.state == RunState.DONE else logging.WARNING, line)
        if on_finished is not None:
            on_finished(record)
    return WorkerSummary(
        worker=ledger.worker_name,
        n_done=sum(r.state == RunState.DONE for r in records),
        n_failed=sum(r.state != RunState.DONE for r in records),
        wall_s=time.monotonic() - start,
        records=tuple(records),
    )


def format_run(record: RunRecord) -> str:
    """One line for a finished run: cell, outcome, wall time, metrics or error."""
    wall = f" in {record.wall_s:.1f} s" if record.wall_s is not None else ""
    if record.state == RunState.DONE:
        metrics = " ".join(f"{k}={v:.4g}" for k, v in sorted(record.metrics.items()))
        return f"{record.cell.key} done{wall}: {metrics or 'no metrics'}"
    return f"{record.cell.key} FAILED on attempt {record.attempt}{wall}: {record.error}"


def _run_one(ledger: Ledger, claim: Claim, run_cell: RunCell) -> RunRecord:
    start = time.monotonic()
    with _heartbeat(ledger, claim):
        try:
            outcome = run_cell(claim.cell)
            if not isinstance(outcome, CellOutcome):
                raise TypeError(f"run_cell returned {type(outcome).__name__}, not CellOutcome.")
        except Exception as err:  # any failure of the cell is recorded, and the loop goes on
            _log.warning("%s raised:", claim.cell.key, exc_info=err)
            return ledger.fail(
                claim,
                f"{type(err).__name__}: {err}",
                traceback=traceback.format_exc(limit=-20),
                wall_s=time.monotonic() - start,
            )
        except BaseException as err:  # KeyboardInterrupt, SystemExit: record, then stop
            record = ledger.fail(
                claim, f"Interrupted by {type(err).__name__}; the worker stopped."
            )
            _log.warning("%s [the worker stops]", format_run(record))
            raise
    try:
        return ledger.finish(claim, outcome, time.monotonic() - start)
    except LedgerError:
        # The ledger is unreachable; keep the result in the log at least, then stop.
        _log.error("Unsaved result of %s: %r", claim.cell.key, outcome)
        raise


@contextlib.contextmanager
def _heartbeat(ledger: Ledger, claim: Claim) -> Iterator[None]:
    """Beat for `claim` from a daemon thread while the block runs; each beat also fails the
    runs of dead workers (the main thread only checks between cells, which may be hours)."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(ledger.config.heartbeat_interval_s):
            try:
                alive = ledger.heartbeat(claim)
                if n_stale := ledger.fail_stale():
                    _log.warning(
                        "Failed %d run(s) whose worker stopped sending heartbeats; their retries "
                        "are queued.",
                        n_stale,
                    )
            except Exception as err:  # a storage hiccup must not end the beats; the next retries
                _log.warning("Heartbeat for %s failed: %s", claim.cell.key, err)
                continue
            if not alive:
                _log.warning(
                    "Trial %d (%s) was failed as stale by another worker while running; its "
                    "result will still be saved when it ends.",
                    *(claim.trial_number, claim.cell.key),
                )
                return

    thread = threading.Thread(target=beat, name=f"heartbeat-{claim.trial_number}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def run_worker_process(
    config: LedgerConfig,
    run_cell_factory: RunCellFactory,
    *,
    max_runs: int | None = None,
    stop_when_empty: bool = True,
) -> WorkerSummary:
    """The body of one worker process: open the ledger, build `run_cell`, run the loop.

    Logs to stderr at INFO when the process has no logging set up, and turns SIGTERM (the
    signal `kill` and schedulers send) into SystemExit, so the running cell is failed as
    interrupted and retried at once instead of after the grace period.

    Args:
        config: the ledger to open and its heartbeat and retry settings.
        run_cell_factory: builds the cell function inside this process.
        max_runs: as in `run_worker`.
        stop_when_empty: as in `run_worker`.

    Returns:
        What the worker did.
    """
    configure_logging()
    with _sigterm_as_exit():
        ledger = Ledger.open(config)
        run_cell = run_cell_factory()
        summary = run_worker(ledger, run_cell, max_runs=max_runs, stop_when_empty=stop_when_empty)
    _log.info(
        "Worker %s stops: %d done, %d failed in %.0f s.",
        *(summary.worker, summary.n_done, summary.n_failed, summary.wall_s),
    )
    return summary


@contextlib.contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    # Only where nobody else handles SIGTERM (submitit installs its own handlers in its jobs).
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def run_local_workers(
    n_workers: int,
    config: LedgerConfig,
    run_cell_factory: RunCellFactory,
    *,
    max_runs: int | None = None,
    stop_when_empty: bool = True,
) -> list[int]:
    """Run `n_workers` worker processes on this machine and wait for them (`--workers N`).

    Processes are started with `spawn` (nothing forked from the caller; CUDA-safe), so
    `run_cell_factory` must be picklable. Other arguments as in `run_worker_process`.

    Returns:
        The processes' exit codes (0 for a worker that ran out of cells).

    Raises:
        ConfigError: `n_workers` is below 1, or the factory cannot be sent to a process.
    """
    if n_workers < 1:
        raise ConfigError(f"{n_workers=} must be at least 1.")
    context = multiprocessing.get_context("spawn")
    kwargs = {"max_runs": max_runs, "stop_when_empty": stop_when_empty}
    processes = [
        context.Process(
            target=run_worker_process,
            args=(config, run_cell_factory),
            kwargs=kwargs,
            name=f"worker-{i}",
        )
        for i in range(n_workers)
    ]
    try:
        for process in processes:
            process.start()
    except (AttributeError, TypeError, pickle.PicklingError) as err:
        for process in processes:
            if process.is_alive():
                process.terminate()
        raise ConfigError(
            f"Cannot send run_cell_factory={run_cell_factory!r} to a worker process ({err}); "
            "use a module-level function or a functools.partial of one."
        ) from err
    for process in processes:
        process.join()
    return [int(process.exitcode or 0) for process in processes]
