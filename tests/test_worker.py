"""Workers as real processes sharing a ledger: killed mid-run, interrupted, two at once.

The cell function (`test_worker_helpers.fake_train`) stands in for the trainer, which has its
own tests. Heartbeats every 1 s with a 3 s grace period keep the crash tests short.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from postgres_server import postgres_url, storage_url, unique_study  # noqa: F401
from test_worker_helpers import (
    BARRIER_DIR_ENV,
    SLEEP_ENV,
    SLOW_CELL_ENV,
    STARTED_DIR_ENV,
    expected_metrics,
    make_fake_train,
)

from muit_core import ConfigError
from sweeps.ledger import Cell, Ledger, LedgerConfig, RunRecord, RunState
from sweeps.progress import format_progress
from sweeps.worker import format_run, run_local_workers

HELPERS = Path(__file__).with_name("test_worker_helpers.py")
GRACE_S = 3


# SQLite's multi-process runs are slow here and its claim lock is also raced in test_ledger.py.
PROCESS_STORAGE_KINDS = [
    "journal",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("sqlite", marks=pytest.mark.slow),
]


@pytest.fixture(params=PROCESS_STORAGE_KINDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return storage_url(request.param, tmp_path, request)


def start_worker(url: str, study: str, folder: Path, **env: str) -> subprocess.Popen[bytes]:
    """One worker process running `fake_train`, steered by the helpers' environment variables."""
    command = [sys.executable, str(HELPERS), url, study, str(folder)]
    command += ["--heartbeat-s", "1", "--grace-s", str(GRACE_S)]
    log = open(folder / f"worker-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115
    return subprocess.Popen(command, env={**os.environ, **env}, stdout=log, stderr=log)


def wait_for(path_glob: str, folder: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not list(folder.glob(path_glob)):
        assert time.monotonic() < deadline, f"nothing matched {path_glob} in {timeout_s} s"
        time.sleep(0.05)


def worker_logs(folder: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(folder.glob("worker-*.log")))


def test_worker_killed_mid_run_loses_nothing_and_its_cell_reruns(url: str, tmp_path: Path) -> None:
    study, started = unique_study(), tmp_path / "started"
    started.mkdir()
    cells = [Cell("el", n, 0) for n in (0, 16, 64, 256)]
    slow = cells[2]
    config = LedgerConfig(url, study, tmp_path, heartbeat_interval_s=1, grace_period_s=GRACE_S)
    ledger = Ledger.open(config)
    ledger.enqueue(cells)

    doomed = start_worker(
        url, study, tmp_path, **{SLOW_CELL_ENV: slow.key, STARTED_DIR_ENV: str(started)}
    )
    wait_for(f"{slow.key.replace('/', '_')}.*", started)
    before = {r.cell: r for r in ledger.records()}
    assert [before[c].state for c in cells] == [
        RunState.DONE,
        RunState.DONE,
        RunState.RUNNING,
        RunState.WAITING,
    ]
    rescuer = start_worker(url, study, tmp_path)  # starts up while the grace period runs
    doomed.send_signal(signal.SIGKILL)
    assert doomed.wait(timeout=10) == -signal.SIGKILL
    assert rescuer.wait(timeout=60) == 0, worker_logs(tmp_path)
    history = ledger.records(history=True)
    assert Counter(r.cell for r in history if r.state == RunState.DONE) == Counter(cells)
    for record in ledger.records():
        assert record.state == RunState.DONE
        assert record.metrics == pytest.approx(expected_metrics(record.cell))
    for cell in cells[:2]:  # finished before the kill: kept as they were, not rerun
        assert [r.trial_number for r in history if r.cell == cell] == [before[cell].trial_number]
    attempts = [r for r in history if r.cell == slow]
    assert [(r.attempt, r.state) for r in attempts] == [(1, RunState.FAILED), (2, RunState.DONE)]
    assert attempts[0].error is not None and "stopped sending heartbeats" in attempts[0].error
    assert attempts[0].worker != attempts[1].worker


def test_a_dead_workers_cell_is_requeued_within_its_grace_while_the_others_are_busy(
    url: str, tmp_path: Path
) -> None:
    """A SIGKILLed worker's cell is back in the queue about one beat after its grace period,
    although the only other worker is in the middle of a long cell: that worker's heartbeat
    thread reaps it. It used to wait until the survivor's cell ended (here 30 s)."""
    study, started = unique_study(), tmp_path / "started"
    started.mkdir()
    doomed_cell, long_cell = Cell("el", 16, 0), Cell("hi", 16, 0)
    config = LedgerConfig(url, study, tmp_path, heartbeat_interval_s=1, grace_period_s=GRACE_S)
    ledger = Ledger.open(config)
    ledger.enqueue([doomed_cell, long_cell])
    doomed = start_worker(
        url, study, tmp_path, **{SLOW_CELL_ENV: doomed_cell.key, STARTED_DIR_ENV: str(started)}
    )
    wait_for(f"{doomed_cell.key.replace('/', '_')}.*", started)
    busy = start_worker(url, study, tmp_path, **{SLEEP_ENV: "30", STARTED_DIR_ENV: str(started)})
    try:
        wait_for(f"{long_cell.key.replace('/', '_')}.*", started)
        time.sleep(1.5)  # the dead worker has beaten at least once by now
        doomed.send_signal(signal.SIGKILL)
        killed_at = time.time()
        assert doomed.wait(timeout=10) == -signal.SIGKILL
        deadline = killed_at + 20
        while True:
            history = [r for r in ledger.records(history=True) if r.cell == doomed_cell]
            if any(r.state == RunState.WAITING for r in history):
                break
            assert time.time() < deadline, (history, worker_logs(tmp_path))
            time.sleep(0.05)
        requeued_at = time.time()
        assert busy.poll() is None  # the survivor is still busy with its long cell
    finally:
        busy.kill()
        busy.wait(timeout=10)
    first, retry = history
    assert first.state == RunState.FAILED and "stopped sending heartbeats" in str(first.error)
    assert retry.attempt == 2
    beats = (requeued_at - killed_at) / config.heartbeat_interval_s
    print(f"requeued {beats:.1f} beats after the kill (grace {GRACE_S} beats)")
    # The dead worker's last beat was at most one beat before the kill; the grace, then up to
    # one beat until the survivor's next beat notices, plus one beat of slack for a busy machine.
    assert beats <= GRACE_S + 2


def test_two_workers_run_every_cell_exactly_once(url: str, tmp_path: Path) -> None:
    study = unique_study()
    cells = [Cell(lang, n, seed) for lang in ("el", "hi") for n in (0, 16, 64) for seed in (0, 1)]
    config = LedgerConfig(url, study, tmp_path, heartbeat_interval_s=1, grace_period_s=GRACE_S)
    ledger = Ledger.open(config)
    assert ledger.enqueue(cells) == len(cells)
    # Both workers start taking cells at the same moment, so their first claims race.
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = {BARRIER_DIR_ENV: str(barrier), SLEEP_ENV: "0.1"}
    workers = [start_worker(url, study, tmp_path, **env) for _ in range(2)]
    deadline = time.monotonic() + 60
    while len(list(barrier.glob("ready.*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    (barrier / "go").touch()
    assert [w.wait(timeout=60) for w in workers] == [0, 0], worker_logs(tmp_path)

    history = ledger.records(history=True)
    assert len(history) == len(cells)  # no duplicates, no retries
    assert Counter(r.cell for r in history if r.state == RunState.DONE) == Counter(cells)
    per_worker = Counter(r.worker for r in history)
    assert len(per_worker) == 2, per_worker  # both took part


def test_sigterm_fails_the_run_as_interrupted_and_requeues_it_at_once(tmp_path: Path) -> None:
    url, study, started = f"journal://{tmp_path / 'l.journal'}", unique_study(), tmp_path / "s"
    started.mkdir()
    cell = Cell("el", 16, 0)
    ledger = Ledger.open(LedgerConfig(url, study, tmp_path, heartbeat_interval_s=1))
    ledger.enqueue([cell])
    worker = start_worker(
        url, study, tmp_path, **{SLOW_CELL_ENV: cell.key, STARTED_DIR_ENV: str(started)}
    )
    wait_for("el_*", started)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=20) == 128 + signal.SIGTERM
    first, retry = ledger.records(history=True)
    assert (first.state, first.error) == (
        RunState.FAILED,
        "Interrupted by SystemExit; the worker stopped.",
    )
    assert (retry.state, retry.attempt) == (RunState.WAITING, 2)


def test_local_worker_processes_share_the_sweep(tmp_path: Path) -> None:
    url, study = f"journal://{tmp_path / 'l.journal'}", unique_study()
    cells = [Cell("vi", n, 0) for n in (0, 16, 64, 256)]
    config = LedgerConfig(url, study, tmp_path, heartbeat_interval_s=1)
    Ledger.open(config).enqueue(cells)
    codes = run_local_workers(2, config, make_fake_train)
    assert codes == [0, 0]
    records = Ledger.open(config).records()
    assert [r.state for r in records] == [RunState.DONE] * len(cells)
    assert format_run(records[0]).startswith("vi/n=0/seed=0/model=default/sft done in 0.")
    with pytest.raises(ConfigError, match=r"n_workers=0 must be at least 1"):
        run_local_workers(0, config, make_fake_train)
    with pytest.raises(ConfigError, match=r"Cannot send run_cell_factory"):
        run_local_workers(1, config, lambda: make_fake_train())


def _record(n_examples: int, state: RunState, wall_s: float | None = None) -> RunRecord:
    return RunRecord(
        cell=Cell("el", n_examples, 0),
        state=state,
        trial_number=n_examples,
        metrics={},
        attrs={},
        error=None,
        attempt=1,
        started_at=None,
        finished_at=None,
        wall_s=wall_s,
        worker="host:1",
    )


def test_format_progress_spreads_the_cells_left_over_the_workers() -> None:
    standing = [
        _record(0, RunState.DONE, 60.0),
        _record(16, RunState.DONE, 120.0),
        _record(32, RunState.FAILED, 5.0),  # failed for good: neither done nor left
        _record(64, RunState.RUNNING),
        *(_record(n, RunState.WAITING) for n in (128, 256, 512)),
    ]
    # 4 cells left at 90 s each over 2 workers: 3 min.
    assert format_progress(standing, 2) == "2/7 cells done, 4 left, ~90 s a cell, ETA 3 min"
    assert format_progress(standing[2:], 2) == "0/5 cells done"  # no rate before a run is done
    assert format_progress(standing[:3], 1) == "2/3 cells done"  # nothing left


def test_a_run_that_goes_stale_while_the_worker_looks_is_reaped_before_it_stops(
    tmp_path: Path,
) -> None:
    """The last worker must not stop while a dead run is still RUNNING: a run that was fresh
    when the round began and went stale by the time the queue turned out empty is failed and
    retried, not left behind (a race seen under load)."""
    from sweeps.cells import CellOutcome
    from sweeps.worker import run_worker

    config = LedgerConfig(None, unique_study(), tmp_path, heartbeat_interval_s=1)
    dead = Ledger.open(config)
    cell = Cell("el", 16, 0)
    dead.enqueue([cell])
    assert dead.claim_next() is not None  # claimed, then its worker "dies": no more beats
    survivor = Ledger.open(config)
    real_claim = survivor.claim_next
    calls = []

    def slow_first_claim():  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:
            time.sleep(config.effective_grace_period_s + 0.5)  # the dead run goes stale now
            return None
        return real_claim()

    survivor.claim_next = slow_first_claim  # type: ignore[method-assign]
    summary = run_worker(survivor, lambda c: CellOutcome({"heldout_ce": 1.0}))
    assert summary.n_done == 1
    assert [r.state for r in survivor.records()] == [RunState.DONE]
