"""Submitting workers through submitit, run here with its LocalExecutor on a journal ledger.

The cell function (`test_worker_helpers.fake_train`) stands in for the trainer, which has its
own tests.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest
from postgres_server import unique_study
from test_worker_helpers import SLOW_CELL_ENV, STARTED_DIR_ENV, expected_metrics, make_fake_train

from muit_core import ConfigError
from sweeps.ledger import Cell, Ledger, LedgerConfig, RunState
from sweeps.slurm import ExecutorKind, submit_workers


def test_local_executor_runs_real_workers_on_a_journal_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The jobs unpickle make_fake_train by module name, so they need the tests folder.
    tests_dir = str(Path(__file__).parent)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([tests_dir, os.environ.get("PYTHONPATH", "")])
    )
    study, sweep = unique_study(), tmp_path / "sweep"
    cells = [Cell("tr", n, seed) for n in (0, 16, 64) for seed in (0, 1)]
    config = LedgerConfig(None, study, sweep, heartbeat_interval_s=1)
    Ledger.open(config).enqueue(cells)

    jobs = submit_workers(
        None,
        2,
        config,
        make_fake_train,
        executor_kind="local",
        gpus_per_node=0,
        timeout_min=5,
    )
    assert len(jobs.job_ids) == 2 and jobs.log_dir == sweep / "slurm"
    summaries = jobs.wait()
    assert sum(s.n_done for s in summaries) == len(cells)
    assert sum(s.n_failed for s in summaries) == 0
    records = Ledger.open(config).records(history=True)
    assert [r.state for r in records] == [RunState.DONE] * len(cells)
    for record in records:
        assert record.metrics == pytest.approx(expected_metrics(record.cell))
    assert list(jobs.log_dir.rglob("*_log.err"))


def test_preempted_job_requeues_its_cell_and_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tests_dir = str(Path(__file__).parent)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([tests_dir, os.environ.get("PYTHONPATH", "")])
    )
    study, sweep, started = unique_study(), tmp_path / "sweep", tmp_path / "started"
    started.mkdir()
    cell = Cell("tr", 16, 0)
    monkeypatch.setenv(SLOW_CELL_ENV, cell.key)
    monkeypatch.setenv(STARTED_DIR_ENV, str(started))
    config = LedgerConfig(None, study, sweep, heartbeat_interval_s=1)
    Ledger.open(config).enqueue([cell])
    # timeout_min=60: the signal below reads as preemption, not the end of the time limit.
    jobs = submit_workers(
        None, 1, config, make_fake_train, executor_kind="local", gpus_per_node=0,
        timeout_min=60,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not (marks := list(started.glob("tr_*"))):
        assert time.monotonic() < deadline, "the job never started its cell"
        time.sleep(0.05)
    os.kill(int(marks[0].suffix[1:]), signal.SIGUSR2)  # what SLURM sends before preempting

    (summary,) = jobs.wait()  # the requeued job's worker reran the cell
    assert (summary.n_done, summary.n_failed) == (1, 0)
    first, rerun = Ledger.open(config).records(history=True)
    assert (first.state, first.error) == (
        RunState.FAILED,
        "Interrupted by SystemExit; the worker stopped.",
    )
    assert (rerun.state, rerun.attempt) == (RunState.DONE, 2)


def test_bad_arguments_are_config_errors(tmp_path: Path) -> None:
    args = (LedgerConfig("memory://", "s", tmp_path), make_fake_train)
    with pytest.raises(
        ConfigError, match=r"Unknown executor_kind='pbs'; use one of: slurm, local"
    ):
        submit_workers("gpu", 1, *args, executor_kind="pbs")
    with pytest.raises(ConfigError, match=r"n_workers=0 must be at least 1"):
        submit_workers("gpu", 0, *args, executor_kind=ExecutorKind.LOCAL)
    with pytest.raises(ConfigError, match=r"A SLURM partition is needed"):
        submit_workers(None, 1, *args)


@pytest.mark.skipif(shutil.which("sbatch") is not None, reason="a real SLURM is installed here")
def test_slurm_without_sbatch_says_where_to_submit_from(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"sbatch is not on PATH; submit from a SLURM login"):
        submit_workers("gpu", 2, LedgerConfig("memory://", "s", tmp_path), make_fake_train)
