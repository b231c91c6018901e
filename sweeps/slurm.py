"""Run sweep workers as SLURM jobs through submitit (`plan-sweep launch --slurm`).

`submit_workers` submits `n_workers` jobs as one SLURM job array. Each job is one worker process
(`sweeps.worker.run_worker_process`) that pulls cells from the shared ledger until nothing is
waiting or running, so K jobs work through the grid together. A job that dies costs only its
current cell. On the scheduler's warning signal (submitit asks SLURM for USR2 90 s before the
time limit; preemption) the worker fails its cell as interrupted, which queues the retry at once,
and stops; then submitit requeues a preempted job (its worker starts again later) and ends a
timed-out one. After a hard kill (node failure), another worker notices the missing heartbeats
and reruns the cell after the grace period.

The compute nodes must reach the ledger: use a PostgreSQL URL, or the default journal file in a
sweep folder on a shared filesystem (the journal's lock works on NFS; SQLite's does not). The
`run_cell_factory` is pickled (cloudpickle) into each job and called there to build the cell
function, so it should be a module-level function or a `functools.partial` of one, and the
package must be importable on the nodes (same virtual environment on a shared filesystem).

`executor_kind="local"` runs the same jobs as processes on this machine with submitit's
`LocalExecutor`: what the tests do, and a way to try a setup without a cluster.

Example:
    config = LedgerConfig("postgresql://sweeps@db:5432/sweeps", study, sweep_dir)
    jobs = submit_workers("gpu", 8, config, functools.partial(make_run_cell, spec_dict),
                          timeout_min=240)
    print(jobs.job_ids)      # SLURM array job ids, e.g. ('4242_0', ..., '4242_7')
    summaries = jobs.wait()  # optional: block until every worker has stopped

Logs: `<log_dir>/<job id>/<job id>_0_log.out` and `.err`; `log_dir` defaults to
`<sweep_dir>/slurm`. submitit is an optional extra: `pip install 'muit-planner[slurm]'`.
"""

from __future__ import annotations

import enum
import os
import shutil
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from muit_core import ConfigError, PlannerError
from sweeps.cells import LedgerConfig
from sweeps.worker import RunCellFactory, WorkerSummary, run_worker_process

if TYPE_CHECKING:
    import submitit


class ExecutorKind(enum.Enum):
    """Where submitted workers run."""

    SLURM = "slurm"  # an sbatch job array
    LOCAL = "local"  # processes on this machine (submitit.LocalExecutor)


@dataclass(frozen=True)
class WorkerJobs:
    """Submitted worker jobs.

    Attributes:
        job_ids: the scheduler's job ids, one per worker.
        log_dir: where the jobs write their logs (one sub-folder per job).
    """

    job_ids: tuple[str, ...]
    log_dir: Path
    _jobs: tuple[submitit.Job[WorkerSummary], ...] = field(repr=False, compare=False)

    def wait(self) -> list[WorkerSummary]:
        """Block until every worker stops; return what each did.

        Raises:
            PlannerError: a worker job failed or timed out; the message names its log.
        """
        from submitit.core.utils import UncompletedJobError  # also FailedJobError's base

        summaries = []
        for job in self._jobs:
            try:
                summaries.append(job.result())
            except UncompletedJobError as err:
                lines = str(err).strip().splitlines() or ["no message"]
                raise PlannerError(
                    f"Worker job {job.job_id} did not finish ({lines[0]}); see its log "
                    f"{job.paths.stderr}."
                ) from err
        return summaries

    def cancel(self) -> None:
        """Cancel the jobs that have not finished (their running cells are retried later)."""
        for job in self._jobs:
            if not job.done():
                job.cancel(check=False)


def submit_workers(
    partition: str | None,
    n_workers: int,
    config: LedgerConfig,
    run_cell_factory: RunCellFactory,
    *,
    executor_kind: ExecutorKind | str = ExecutorKind.SLURM,
    timeout_min: int = 12 * 60,
    gpus_per_node: int = 1,
    cpus_per_task: int = 8,
    mem_gb: float | None = None,
    job_name: str = "plan-sweep-worker",
    slurm_additional_parameters: Mapping[str, Any] | None = None,
    log_dir: Path | None = None,
) -> WorkerJobs:
    """Submit `n_workers` worker jobs that run the sweep's waiting cells.

    Enqueue the cells first (`Ledger.enqueue`); the jobs only pull.

    Args:
        partition: SLURM partition (ignored by the local executor).
        n_workers: how many workers (array tasks) to start.
        config: the sweep's ledger and its heartbeat and retry settings; its sweep folder
            must be shared with the compute nodes.
        run_cell_factory: builds the cell function inside each job; must be picklable.
        executor_kind: `slurm` or `local`.
        timeout_min: the job time limit in minutes (SLURM `--time`).
        gpus_per_node: GPUs per worker (SLURM `--gpus-per-node`).
        cpus_per_task: CPU cores per worker.
        mem_gb: memory per worker in GB; None for the partition's default.
        job_name: the SLURM job name.
        slurm_additional_parameters: other sbatch options, e.g. `{"account": "proj", "qos":
            "low"}`.
        log_dir: where job logs go; default `<sweep_dir>/slurm`.

    Returns:
        The submitted jobs.

    Raises:
        ConfigError: a bad argument, submitit missing, no `sbatch` here, or SLURM refused the jobs.
    """
    kind = _executor_kind(executor_kind)
    if n_workers < 1:
        raise ConfigError(f"{n_workers=} must be at least 1.")
    if kind == ExecutorKind.SLURM:
        if not partition:
            raise ConfigError("A SLURM partition is needed to submit workers, e.g. partition=gpu.")
        if shutil.which("sbatch") is None:
            raise ConfigError(
                "SLURM's sbatch is not on PATH; submit from a SLURM login node, or use "
                "executor_kind='local' to run the workers on this machine."
            )
    try:
        import submitit
        from submitit.core.utils import FailedSubmissionError
    except ImportError as err:
        raise ConfigError(
            "Submitting workers needs submitit; install it with pip install 'muit-planner[slurm]'."
        ) from err
    folder = Path(log_dir) if log_dir is not None else config.sweep_dir / "slurm"
    executor = submitit.AutoExecutor(folder=folder / "%j", cluster=kind.value)
    parameters: dict[str, Any] = {
        "name": job_name,
        "timeout_min": timeout_min,
        "gpus_per_node": gpus_per_node,
        "cpus_per_task": cpus_per_task,
        "mem_gb": mem_gb,
        "slurm_partition": partition,
        "slurm_array_parallelism": n_workers,
        "slurm_additional_parameters": dict(slurm_additional_parameters or {}),
    }
    executor.update_parameters(**{k: v for k, v in parameters.items() if v is not None})
    try:
        with executor.batch():
            jobs = [
                executor.submit(_worker_job, config, run_cell_factory) for _ in range(n_workers)
            ]
    except (FailedSubmissionError, OSError) as err:
        message = f"Could not submit {n_workers} worker job(s) to {kind.value}: {err}."
        raise ConfigError(message) from err
    return WorkerJobs(tuple(job.job_id for job in jobs), folder, tuple(jobs))


def _worker_job(config: LedgerConfig, run_cell_factory: RunCellFactory) -> WorkerSummary:
    """The body of one job: `run_worker_process`, stopped cleanly by the scheduler's signal.

    submitit's own handler for that signal raises an ordinary exception in whatever runs, which
    the worker would record as a failed cell before taking the next one. So this handler stops
    the worker first (its cell is failed as interrupted and queued again), then hands the signal
    to submitit's, which requeues a preempted job and ends a timed-out one.
    """
    # The signal submitit asks SLURM for; SUBMITIT_PREEMPT_SIGNAL is submitit's own override.
    job_signal = getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2"))
    submitit_handler = signal.getsignal(job_signal)
    caught: list[tuple[int, FrameType | None]] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        caught.append((signum, frame))
        raise SystemExit(128 + signum)

    signal.signal(job_signal, stop)
    try:
        return run_worker_process(config, run_cell_factory)
    except SystemExit:
        if caught and callable(submitit_handler):
            submitit_handler(*caught[0])
        raise


def _executor_kind(value: ExecutorKind | str) -> ExecutorKind:
    try:
        return ExecutorKind(value)
    except ValueError:
        known = ", ".join(kind.value for kind in ExecutorKind)
        raise ConfigError(f"Unknown executor_kind={value!r}; use one of: {known}.") from None


SLURM_COUNTS = ("workers", "time", "gpus", "cpus")  # --slurm items that are whole numbers


def parse_slurm_options(text: str) -> dict[str, str]:
    """`--slurm partition=gpu,workers=8,time=720` as a dict, its counts checked.

    Raises:
        ConfigError: an item is not `key=value`, or a count is not a positive whole number.
    """
    options: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(
                f"--slurm item {item!r} is not key=value; write e.g. "
                "--slurm partition=gpu,workers=8,time=720."
            )
        options[key.strip()] = value.strip()
    bad = [
        f"{key}={options[key]!r}"
        for key in SLURM_COUNTS
        if key in options and not (options[key].isdigit() and int(options[key]) > 0)
    ]
    if bad:
        raise ConfigError(
            f"--slurm {', '.join(bad)} must be positive whole numbers; write e.g. "
            "--slurm partition=gpu,workers=8,time=720."
        )
    return options


def submit_from_options(
    options: Mapping[str, str],
    default_workers: int,
    config: LedgerConfig,
    run_cell_factory: RunCellFactory,
) -> Any:
    """`submit_workers` as `--slurm` options say (`parse_slurm_options`): `partition`,
    `workers` (default `default_workers`), `time` (minutes), `gpus`, `cpus`, and any other
    item passed to sbatch as is. Returns what `submit_workers` returns."""
    rest = dict(options)
    return submit_workers(
        rest.pop("partition", None),
        int(rest.pop("workers", default_workers)),
        config,
        run_cell_factory,
        timeout_min=int(rest.pop("time", 12 * 60)),
        gpus_per_node=int(rest.pop("gpus", 1)),
        cpus_per_task=int(rest.pop("cpus", 8)),
        slurm_additional_parameters=rest or None,
    )
