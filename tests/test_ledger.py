"""The ledger against every storage it supports: in-memory, SQLite, journal file, PostgreSQL.

The cell function here (`fake_train`) stands in for the trainer, which has its own tests.
Multi-process behaviour (killed workers, two workers at once) is in test_worker.py.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from postgres_server import (  # noqa: F401
    SHARED_STORAGE_KINDS,
    STORAGE_KINDS,
    postgres_url,
    storage_url,
    unique_study,
)
from test_worker_helpers import expected_metrics, fake_train

import sweeps.ledger
from muit_core import ConfigError, LedgerError
from sweeps.ledger import Cell, CellOutcome, Claim, Ledger, LedgerConfig, RunRecord, RunState
from sweeps.worker import run_worker

GRID = [Cell(lang, n, 0) for lang in ("el", "hi") for n in (0, 16, 256)]


@pytest.fixture(params=STORAGE_KINDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return storage_url(request.param, tmp_path, request)


def open_ledger(url: str, folder: Path, study: str, **options: int) -> Ledger:
    return Ledger.open(LedgerConfig(url, study, folder, heartbeat_interval_s=1, **options))


def advance_ledger_clock(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Make the ledger see heartbeats as `seconds` older, instead of sleeping that long."""
    real_time = time.time
    fake = SimpleNamespace(time=lambda: real_time() + seconds)
    monkeypatch.setattr(sweeps.ledger, "time", fake)


def test_cell_key_is_readable_and_cells_are_checked() -> None:
    cell = Cell("zh-CN", 256, 1, model="SmolLM2-135M", objective="dft")
    assert cell.key == "zh-CN/n=256/seed=1/model=SmolLM2-135M/dft"
    assert Cell.from_dict(cell.to_dict()) == cell
    with pytest.raises(ConfigError, match=r"n_examples=-1 must be a non-negative integer"):
        Cell("el", -1, 0)
    with pytest.raises(ConfigError, match=r"language='' must be a non-empty string"):
        Cell("", 16, 0)


def test_enqueue_is_idempotent_and_a_finished_sweep_runs_nothing(url: str, tmp_path: Path) -> None:
    study = unique_study()
    ledger = open_ledger(url, tmp_path, study)
    assert ledger.enqueue(GRID) == len(GRID)
    assert ledger.enqueue(GRID) == 0
    assert ledger.enqueue([*GRID, GRID[0]]) == 0
    summary = run_worker(ledger, fake_train)
    assert (summary.n_done, summary.n_failed) == (len(GRID), 0)

    # Relaunch: a new process opens the same study, enqueues the grid again, runs a worker.
    again = ledger if url == "memory://" else open_ledger(url, tmp_path, study)
    assert again.enqueue(GRID) == 0
    assert run_worker(again, fake_train).n_done == 0
    history = again.records(history=True)
    assert Counter(r.cell for r in history) == Counter(GRID)
    assert all(r.state == RunState.DONE for r in history)


def test_study_attrs_are_shared_through_the_storage(url: str, tmp_path: Path) -> None:
    study = unique_study()
    ledger = open_ledger(url, tmp_path, study)
    spec = {"name": "demo", "grid": {"sizes": [16, 256]}, "out": tmp_path}
    ledger.set_study_attr("spec", spec)
    joined = ledger if url == "memory://" else open_ledger(url, tmp_path, study)
    assert joined.study_attr("spec") == {**spec, "out": str(tmp_path)}
    assert joined.study_attr("missing", "fallback") == "fallback"


def test_records_hold_metrics_attrs_and_timings(url: str, tmp_path: Path) -> None:
    ledger = open_ledger(url, tmp_path, unique_study())
    ledger.enqueue(GRID[:2])
    finished: list[RunRecord] = []
    run_worker(ledger, fake_train, on_finished=finished.append)
    records = ledger.records()
    assert [r.cell for r in records] == sorted(GRID[:2])
    assert [r.trial_number for r in finished] == [r.trial_number for r in records]
    for record in records:
        assert record.state == RunState.DONE
        assert record.metrics == pytest.approx(expected_metrics(record.cell))
        assert record.attrs["train_tokens"] == 20 * record.cell.n_examples
        assert (record.error, record.attempt) == (None, 1)
        assert isinstance(record.started_at, datetime) and isinstance(record.finished_at, datetime)
        assert record.started_at <= record.finished_at
        assert record.wall_s is not None and 0.02 <= record.wall_s < 5  # fake_train sleeps
        assert record.worker == ledger.worker_name


def test_failing_cell_is_recorded_with_its_reason_and_retries_are_bounded(
    url: str, tmp_path: Path
) -> None:
    ledger = open_ledger(url, tmp_path, unique_study(), max_retries=1)
    bad = Cell("nan", 16, 0)
    ledger.enqueue([GRID[0], bad, GRID[1]])
    summary = run_worker(ledger, fake_train)
    assert (summary.n_done, summary.n_failed) == (2, 2)  # the bad cell: first try + 1 retry

    standing = {r.cell: r for r in ledger.records()}
    assert standing[GRID[0]].state == standing[GRID[1]].state == RunState.DONE
    failed = standing[bad]
    assert failed.state == RunState.FAILED
    assert failed.error == "FloatingPointError: loss is NaN at step 3"
    assert failed.attempt == 2 and failed.metrics == {}
    attempts = [r for r in ledger.records(history=True) if r.cell == bad]
    assert [(r.attempt, r.state) for r in attempts] == [(1, RunState.FAILED), (2, RunState.FAILED)]

    # Out of retries: a relaunch leaves it failed, unless asked to retry failed cells.
    assert ledger.enqueue([GRID[0], bad, GRID[1]]) == 0
    assert run_worker(ledger, fake_train).n_failed == 0
    assert ledger.enqueue([bad], retry_failed=True) == 1
    assert ledger.records()[-1].state == RunState.WAITING
    assert ledger.records()[-1].attempt == 3


def test_stale_run_is_failed_and_retried(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = unique_study()
    crashed = open_ledger(url, tmp_path, study, grace_period_s=1)
    crashed.enqueue(GRID[:2])
    claim = crashed.claim_next()  # a worker that takes a cell, then dies without a heartbeat
    assert claim is not None and claim.cell == sorted(GRID[:2])[0]
    other = crashed if url == "memory://" else open_ledger(url, tmp_path, study)
    assert other.fail_stale() == 0  # still inside its grace period
    advance_ledger_clock(monkeypatch, 1.5)
    assert other.fail_stale() == 1
    assert other.fail_stale() == 0
    monkeypatch.undo()

    assert run_worker(other, fake_train).n_done == 2
    attempts = [r for r in other.records(history=True) if r.cell == claim.cell]
    assert [(r.attempt, r.state) for r in attempts] == [(1, RunState.FAILED), (2, RunState.DONE)]
    assert attempts[0].error is not None and "stopped sending heartbeats" in attempts[0].error


def test_late_result_of_a_run_failed_as_stale_is_kept(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = open_ledger(url, tmp_path, unique_study(), grace_period_s=1)
    ledger.enqueue(GRID[:1])
    claim = ledger.claim_next()
    assert claim is not None
    advance_ledger_clock(monkeypatch, 1.5)  # the worker stalls past its grace period...
    assert ledger.fail_stale() == 1
    monkeypatch.undo()
    record = ledger.finish(claim, fake_train(claim.cell), 1.5)  # ...then finishes after all
    assert record.state == RunState.DONE and record.attempt == 2
    assert record.metrics == pytest.approx(expected_metrics(claim.cell))
    history = ledger.records(history=True)
    assert [(r.attempt, r.state) for r in history] == [(1, RunState.FAILED), (2, RunState.DONE)]
    assert ledger.claim_next() is None


@pytest.mark.parametrize("kind", SHARED_STORAGE_KINDS)
def test_workers_racing_for_cells_never_take_the_same_one(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # Threads with a ledger each (as separate processes would have); test_worker.py races
    # real processes.
    url, study = storage_url(kind, tmp_path, request), unique_study()
    ledgers = [open_ledger(url, tmp_path, study) for _ in range(3)]
    cells = [Cell("el", n, seed) for n in range(4) for seed in range(2)]
    ledgers[0].enqueue(cells)
    claimed: list[list[Claim]] = [[] for _ in ledgers]
    start = threading.Barrier(len(ledgers))

    def take_all(index: int) -> None:
        start.wait()
        while (claim := ledgers[index].claim_next()) is not None:
            claimed[index].append(claim)

    threads = [threading.Thread(target=take_all, args=(i,)) for i in range(len(ledgers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    taken = [claim.cell for claims in claimed for claim in claims]
    assert Counter(taken) == Counter(cells)
    assert len(ledgers[0].records(history=True)) == len(cells)


def test_saving_a_result_retries_storage_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = open_ledger("memory://", tmp_path, unique_study())
    ledger.enqueue(GRID[:2])
    monkeypatch.setattr(sweeps.ledger, "_SAVE_PAUSES_S", (0, 0))
    real_finish, calls = ledger._finish_trial, []

    def flaky(*args: object) -> bool:
        calls.append(args)
        if len(calls) == 1:
            raise OSError("NFS hiccup")
        return real_finish(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(ledger, "_finish_trial", flaky)
    claim = ledger.claim_next()
    assert claim is not None
    assert ledger.finish(claim, fake_train(claim.cell), 1.0).state == RunState.DONE
    assert len(calls) == 2

    def broken(*args: object) -> bool:
        raise OSError("the disk is gone")

    monkeypatch.setattr(ledger, "_finish_trial", broken)
    claim = ledger.claim_next()
    assert claim is not None
    with pytest.raises(LedgerError, match=r"Could not save .* after 3 tries: the disk is gone"):
        ledger.finish(claim, fake_train(claim.cell), 1.0)


def test_worker_skips_a_cell_enqueued_twice(tmp_path: Path) -> None:
    ledger = open_ledger("memory://", tmp_path, unique_study())
    ledger.enqueue(GRID[:1])
    ledger._add_trial(GRID[0], attempt=1, retries_left=2)  # what two concurrent launches leave
    summary = run_worker(ledger, fake_train)
    assert summary.n_done == 1
    history = ledger.records(history=True)
    assert [r.state for r in history] == [RunState.DONE, RunState.FAILED]
    assert history[1].error is not None and history[1].error.startswith("Duplicate of trial 0")
    assert [r.state for r in ledger.records()] == [RunState.DONE]


def test_outcome_checks_metrics_and_converts_attrs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"Metric heldout_ce=nan is not finite"):
        CellOutcome({"heldout_ce": math.nan})
    with pytest.raises(TypeError, match=r"not JSON-serialisable"):
        CellOutcome({"chrf": 1.0}, {"model": object()})

    def nan_metric(cell: Cell) -> CellOutcome:
        return CellOutcome({"heldout_ce": float("inf")})

    def numpy_attrs(cell: Cell) -> CellOutcome:
        attrs = {"tokens": np.int64(7), "curve": np.arange(3), "out": tmp_path / "x"}
        return CellOutcome({"chrf": np.float64(30.5)}, attrs)

    ledger = open_ledger("memory://", tmp_path, unique_study(), max_retries=0)
    ledger.enqueue(GRID[:1])
    run_worker(ledger, nan_metric)
    (record,) = ledger.records()
    assert record.error == "ValueError: Metric heldout_ce=inf is not finite."
    ledger.enqueue(GRID[:1], retry_failed=True)
    run_worker(ledger, numpy_attrs)
    (record,) = ledger.records()
    assert record.metrics == {"chrf": 30.5}
    assert record.attrs == {"tokens": 7, "curve": [0, 1, 2], "out": str(tmp_path / "x")}


def test_max_runs_stops_the_worker(tmp_path: Path) -> None:
    ledger = open_ledger("memory://", tmp_path, unique_study())
    ledger.enqueue(GRID)
    assert run_worker(ledger, fake_train, max_runs=2).n_done == 2
    assert sum(r.state == RunState.WAITING for r in ledger.records()) == len(GRID) - 2
    with pytest.raises(ConfigError, match=r"max_runs=0 must be at least 1"):
        run_worker(ledger, fake_train, max_runs=0)


def test_status_counts_cells_and_estimates_the_time_left(tmp_path: Path) -> None:
    ledger = open_ledger("memory://", tmp_path, unique_study(), max_retries=0)
    assert ledger.status().loc["all", "total"] == 0
    ledger.enqueue([*GRID, Cell("nan", 0, 0)])
    for _ in range(2):  # two el cells done, 10 s each
        claim = ledger.claim_next()
        assert claim is not None
        ledger.finish(claim, fake_train(claim.cell), 10.0)
    running = ledger.claim_next()  # the third el cell: running, with a live heartbeat
    assert running is not None and running.cell.language == "el"

    table = ledger.status()
    assert list(table.index) == ["el", "hi", "nan", "all"]
    el, hi, everything = table.loc["el"], table.loc["hi"], table.loc["all"]
    assert (el.done, el.running, el.failed, el.waiting, el.total) == (2, 1, 0, 0, 3)
    assert (hi.done, hi.waiting, everything.total, everything.workers) == (0, 3, 7, 1)
    assert el.mean_wall_s == pytest.approx(10.0)
    assert table["mean_wall_s"].isna().tolist() == [False, True, True, False]  # none done: NaN
    # el: the running cell has ~10 s left; hi and nan: 3 + 1 waiting cells at the overall 10 s.
    assert el.eta_s == pytest.approx(10.0, abs=1.0)
    assert hi.eta_s == pytest.approx(30.0)
    assert everything.eta_s == pytest.approx(50.0, abs=1.0)


def test_default_storage_is_a_journal_file_in_the_sweep_folder(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    ledger = Ledger.open(LedgerConfig(None, unique_study(), sweep))
    ledger.enqueue(GRID[:1])
    assert (sweep / "ledger.journal").stat().st_size > 0
    config = ledger.config
    assert config.heartbeat_interval_s == 30 and config.effective_grace_period_s == 90


@pytest.mark.parametrize(
    ("url", "made"),
    [("journal://sub/l.journal", "sub/l.journal"), ("sqlite:///sub/l.db", "sub/l.db")],
)
def test_relative_storage_paths_resolve_in_the_sweep_folder(
    url: str, made: str, tmp_path: Path
) -> None:
    Ledger.open(LedgerConfig(url, unique_study(), tmp_path)).enqueue(GRID[:1])
    assert (tmp_path / made).is_file()


def test_unreachable_storage_gives_one_clear_sentence(tmp_path: Path) -> None:
    url = "postgresql://nobody:s3cret@127.0.0.1:1/x"
    with pytest.raises(LedgerError) as caught:
        Ledger.open(LedgerConfig(url, unique_study(), tmp_path))
    message = str(caught.value)
    assert message.startswith(
        "Cannot open the ledger storage postgresql://nobody:***@127.0.0.1:1/x"
    )
    assert "s3cret" not in message and "\n" not in message
    assert message.endswith(".") and message.count(". ") == 0
    assert "journal file in the sweep folder" in message


def test_unwritable_journal_path_is_a_ledger_error(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match=r"^Cannot open the ledger storage journal:///proc/no/l"):
        Ledger.open(LedgerConfig("journal:///proc/no/l.journal", unique_study(), tmp_path))


def test_bad_url_and_settings_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"Unknown ledger storage URL 'redis://u:\*\*\*@h/0'"):
        Ledger.open(LedgerConfig("redis://u:pw@h/0", "s", tmp_path))
    with pytest.raises(ConfigError, match=r"heartbeat_interval_s=0 must be >= 1"):
        LedgerConfig("memory://", "s", tmp_path, heartbeat_interval_s=0)
    with pytest.raises(ConfigError, match=r"grace_period_s=1 must be >= the interval"):
        LedgerConfig("memory://", "s", tmp_path, heartbeat_interval_s=5, grace_period_s=1)
