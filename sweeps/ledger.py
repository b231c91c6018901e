"""The sweep ledger: an Optuna storage holding one trial per attempt at a grid cell.

The ledger stores cells and hands them out; it does not run them: the worker loop
(`sweeps.worker`) uses it. This module and its private helpers (`sweeps._ledger_storage`, which
turns a URL into an Optuna storage, and `sweeps._ledger_trials`, the trial layout) are the only
ones that import optuna; other modules see `Cell`, `RunRecord`, `CellOutcome` and `LedgerConfig`
(from `sweeps.cells`, re-exported here), never a `FrozenTrial`.

Storage URLs (`LedgerConfig.storage_url`); a relative path resolves against the sweep folder:
- `None`, the embedded default: the journal file `<sweep_dir>/ledger.journal` (Optuna's
  `JournalStorage` + `JournalFileBackend`, whose symlink lock works on NFS, so machines that
  share the sweep folder can share the ledger);
- `journal:///abs/path.journal`: a journal file elsewhere;
- `sqlite:///path.db`: one machine only (SQLite's locks are unreliable on NFS);
- `postgresql://user:password@host:5432/db` (needs `pip install 'muit-planner[postgres]'`), or
  any other SQLAlchemy URL that Optuna's `RDBStorage` accepts;
- `memory://`: this process only, nothing saved (tests, dry runs).

Trial layout. The cell is in the user attrs (`cell`, `cell_key`) and in
`system_attrs["fixed_params"]`, where `Study.enqueue_trial` puts it; `n_examples` and `seed` are
also trial params so Optuna's tables and dashboard show them. The string fields are not params:
an Optuna categorical cannot gain choices once a study has it, so adding a language would break.
User attrs also hold `attempt`, `retries_left`, `worker`, `heartbeat_unix_s`, `grace_period_s`;
`metrics`, `attrs`, `wall_s` once done; `error`, `traceback` once failed. A completed trial's
objective value is a dummy 0.0: the ledger is a work queue, and the metrics live in user attrs.

Heartbeats and retries. Optuna 5.0 has heartbeats only for RDB storages (`JournalStorage` has
none), and `fail_stale_trials` never fails a trial that died before its first beat. So the
ledger keeps its own, the same on every back-end: a worker writes `heartbeat_unix_s` when it
claims a cell and every `heartbeat_interval_s` while it runs; `fail_stale` fails a running trial
whose last beat is older than its grace period (the claiming worker's setting, default 3 beats).
Heartbeat times are the workers' clocks, so machines sharing a ledger need NTP-synced clocks.
Every failure (an exception, a non-finite metric, a stale heartbeat, an interrupt) enqueues a
new trial for the same cell while retries are left: at most `1 + max_retries` attempts. Saving a
finished run retries storage errors for about a minute, and a run that finishes after it was
failed as stale still lands in the ledger (in its queued retry).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from muit_core import LedgerError
from sweeps._ledger_storage import (
    DEFAULT_JOURNAL_NAME,
    QueueLocks,
    claim_guard,
    open_study,
    queue_guard,
    storage_errors,
)
from sweeps._ledger_trials import (
    STATE,
    last_beat,
    standing_record,
    template_trial,
    to_record,
    trials_by_cell,
)
from sweeps.cells import (
    GRACE_HEARTBEATS,
    AnyCell,
    Cell,
    CellOutcome,
    Claim,
    LedgerConfig,
    MixtureCell,
    RunRecord,
    RunState,
    cell_from_dict,
    json_default,
)
from sweeps.progress import status_table

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEFAULT_JOURNAL_NAME",
    "GRACE_HEARTBEATS",
    "AnyCell",
    "Cell",
    "CellOutcome",
    "Claim",
    "Ledger",
    "LedgerConfig",
    "MixtureCell",
    "RunRecord",
    "RunState",
]

_SAVE_PAUSES_S = (1, 2, 4, 8, 16, 32)  # back-off between tries to save a finished run
_log = logging.getLogger(__name__)


class Ledger:
    """The shared record of a sweep: enqueue cells, hand them to workers, read the results.

    Safe to use from many processes and machines at once, `enqueue` included on the PostgreSQL,
    journal-file, SQLite and memory storages (it holds a lock in the database or beside the
    file; see `sweeps._ledger_storage.queue_guard`). Build it with `Ledger.open`; run its cells
    with `sweeps.worker.run_worker`.

    Attributes:
        config: the settings it was opened with.
        worker_name: `host:pid`, recorded on the cells this process claims.
    """

    def __init__(
        self,
        study: optuna.Study,
        storage: BaseStorage,
        config: LedgerConfig,
        *,
        locks: QueueLocks,
    ) -> None:
        self._study = study
        self._storage = storage
        self.config = config
        self._locks = locks
        self.worker_name = f"{socket.gethostname()}:{os.getpid()}"

    @classmethod
    def open(cls, config: LedgerConfig, *, create: bool = True) -> Ledger:
        """Open the study `config.study_name` in the config's storage, creating it if `create`.

        A journal or SQLite file is created (with its folder) when missing, if `create`; a
        storage that fails to open leaves nothing behind.

        Raises:
            ConfigError: an unknown URL scheme.
            LedgerError: the storage cannot be reached or opened; with `create=False`, the
                study is not there (the message lists the studies that are).
        """
        study, storage, locks = open_study(config, create=create)
        return cls(study, storage, config, locks=locks)

    # --- queue -------------------------------------------------------------------------------

    def enqueue(self, cells: Sequence[AnyCell], *, retry_failed: bool = False) -> int:
        """Add the cells that are not yet waiting, running or done.

        A cell whose last attempt failed with retries left gets its retry; one that used up its
        retries stays failed unless `retry_failed`, which gives it `max_retries` more. Launches
        from several processes or machines at once add each cell once: the read and the writes
        happen under the storage's enqueue lock.

        Returns:
            How many trials were added.
        """
        with queue_guard(self._storage, self._locks, self.config.study_name):
            by_cell = self._trials_by_cell()
            added = 0
            for cell in dict.fromkeys(cells):
                trials = by_cell.get(cell, [])
                if any(STATE[t.state] != RunState.FAILED for t in trials):
                    continue
                left = int(trials[-1].user_attrs.get("retries_left", 0)) if trials else 0
                if trials and left == 0 and not retry_failed:
                    continue
                retries = left - 1 if left > 0 else self.config.max_retries
                self._add_trial(cell, attempt=len(trials) + 1, retries_left=retries)
                added += 1
        return added

    def claim_next(self) -> Claim | None:
        """Take the oldest waiting cell and mark it running by this worker; None when none wait.

        The take is atomic (PostgreSQL row locks, the journal's first-writer-wins replay, a file
        lock the ledger adds for SQLite), so two workers never get the same trial. A trial whose
        cell is done or running elsewhere (a duplicate enqueue) is failed as such and skipped.
        """
        while True:
            with claim_guard(self._locks.claim):
                waiting = self._study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
                trial = self._take_waiting(waiting)
            if trial is None:
                return None
            cell = cell_from_dict(trial.user_attrs["cell"])
            attempt = int(trial.user_attrs.get("attempt", 1))
            claim = Claim(cell, trial.number, attempt, trial._trial_id)
            busy = (TrialState.COMPLETE, TrialState.RUNNING)
            twins = [
                t.number
                for t in self._trials_by_cell().get(cell, [])
                if t.number != trial.number and t.state in busy
            ]
            if twins:
                error = f"Duplicate of trial {twins[0]} for cell {cell.key}; skipped."
                self._finish_trial(claim.trial_id, TrialState.FAIL, {"error": error})
                continue
            grace_s = self.config.effective_grace_period_s
            attrs = {"worker": self.worker_name, "grace_period_s": grace_s}
            for key, value in {**attrs, "heartbeat_unix_s": time.time()}.items():
                self._storage.set_trial_user_attr(claim.trial_id, key, value)
            return claim

    def heartbeat(self, claim: Claim) -> bool:
        """Record that `claim` is alive; False if its trial was already failed as stale."""
        try:
            self._storage.set_trial_user_attr(claim.trial_id, "heartbeat_unix_s", time.time())
        except UpdateFinishedTrialError:
            return False
        return True

    def finish(self, claim: Claim, outcome: CellOutcome, wall_s: float) -> RunRecord:
        """Record a finished run as done and return its record.

        If another process failed the trial as stale meanwhile (its worker stalled past the
        grace period), the result is still kept; see `_rescue`.
        """
        attrs = {
            "metrics": {k: float(v) for k, v in outcome.metrics.items()},
            "attrs": json.loads(json.dumps(dict(outcome.attrs), default=json_default)),
            "wall_s": wall_s,
        }
        done = TrialState.COMPLETE
        if self._persist(claim, lambda: self._finish_trial(claim.trial_id, done, attrs)):
            return self._record(claim.trial_id)
        return self._rescue(claim, attrs)

    def fail(
        self, claim: Claim, error: str, *, traceback: str = "", wall_s: float | None = None
    ) -> RunRecord:
        """Record a run as failed with `error` (`Type: message`); queue a retry if any are left."""
        attrs = {"error": error, "traceback": traceback, "wall_s": wall_s}
        self._persist(claim, lambda: self._fail_and_retry(claim.trial_id, attrs))
        return self._record(claim.trial_id)

    def fail_stale(self) -> int:
        """Fail running trials whose heartbeat stopped, queueing retries; returns how many."""
        now, failed = time.time(), 0
        default_grace = self.config.effective_grace_period_s
        for trial in self._study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if "cell" not in trial.user_attrs:
                continue
            last = last_beat(trial)
            grace = trial.user_attrs.get("grace_period_s", default_grace)
            if now - last <= grace:
                continue
            error = (
                f"Worker {trial.user_attrs.get('worker', '?')} stopped sending heartbeats "
                f"({now - last:.0f} s since the last, grace {grace} s); it probably crashed "
                "or was killed."
            )
            failed += self._fail_and_retry(trial._trial_id, {"error": error})
        return failed

    # --- study-level metadata ---------------------------------------------------------------

    def set_study_attr(self, key: str, value: Any) -> None:
        """Store a JSON-able value on the study (e.g. the resolved spec, for remote workers).

        Numpy values, paths and datetimes are converted as in `CellOutcome.attrs`; an unchanged
        value is not written again (every worker may call this; the journal stays small).
        """
        value = json.loads(json.dumps(value, default=json_default))
        if self._study.user_attrs.get(key) != value:
            self._study.set_user_attr(key, value)

    def study_attr(self, key: str, default: Any = None) -> Any:
        """A value stored with `set_study_attr`, or `default` when there is none."""
        return self._study.user_attrs.get(key, default)

    # --- reading -----------------------------------------------------------------------------

    def records(self, *, history: bool = False) -> list[RunRecord]:
        """One record per cell, sorted by cell: its done attempt, else its running one, else its
        waiting one, else its last failed one. With `history`, every attempt, by cell then
        attempt."""
        by_cell = self._trials_by_cell()
        if history:
            return [to_record(t) for cell in sorted(by_cell) for t in by_cell[cell]]
        return [standing_record(by_cell[cell]) for cell in sorted(by_cell)]

    def live_cells(self) -> list[AnyCell]:
        """The cells running with a heartbeat inside their grace period (one per live worker)."""
        now, out = time.time(), []
        default_grace = self.config.effective_grace_period_s
        for trial in self._study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            grace = trial.user_attrs.get("grace_period_s", default_grace)
            if "cell" in trial.user_attrs and now - last_beat(trial) <= grace:
                out.append(cell_from_dict(trial.user_attrs["cell"]))
        return out

    def status(self) -> pd.DataFrame:
        """Per-language progress with an ETA: `sweeps.progress.status_table` of this ledger."""
        return status_table(self.records(), self.live_cells())

    # --- optuna plumbing ---------------------------------------------------------------------

    def _trials_by_cell(self) -> dict[AnyCell, list[FrozenTrial]]:
        return trials_by_cell(self._study.get_trials(deepcopy=False))

    def _record(self, trial_id: int) -> RunRecord:
        return to_record(self._storage.get_trial(trial_id))

    def _add_trial(
        self,
        cell: AnyCell,
        *,
        attempt: int,
        retries_left: int,
        state: TrialState = TrialState.WAITING,
        extra: Mapping[str, Any] | None = None,
    ) -> int:
        trial = template_trial(
            cell, attempt=attempt, retries_left=retries_left, state=state, extra=extra
        )
        # Study.add_trial does the same but does not say which trial it made.
        return self._storage.create_new_trial(self._study._study_id, template_trial=trial)

    def _take_waiting(self, trials: Sequence[FrozenTrial]) -> FrozenTrial | None:
        """Flip the first of `trials` that is still waiting to running, as Study.ask does."""
        for trial in trials:
            if "cell" not in trial.user_attrs:
                continue  # a trial someone enqueued by hand through Optuna: not ours to run
            try:
                if self._storage.set_trial_state_values(trial._trial_id, TrialState.RUNNING):
                    return trial
            except UpdateFinishedTrialError:
                continue
        return None

    def _persist(self, claim: Claim, write: Callable[[], bool]) -> bool:
        """Run `write`, retrying storage errors for about a minute: a run's result is worth it."""
        for pause_s in (*_SAVE_PAUSES_S, None):
            try:
                return write()
            except storage_errors() as err:
                if pause_s is None:
                    raise LedgerError(
                        f"Could not save the run of cell {claim.cell.key} (trial "
                        f"{claim.trial_number}) to the ledger after {len(_SAVE_PAUSES_S) + 1} "
                        f"tries: {err}."
                    ) from err
                _log.warning("Saving trial %d failed (%s); retrying.", claim.trial_number, err)
                time.sleep(pause_s)
        raise AssertionError("unreachable")

    def _finish_trial(self, trial_id: int, state: TrialState, attrs: Mapping[str, Any]) -> bool:
        """Write `attrs`, then COMPLETE or FAIL; False if another process finished it first."""
        try:
            for key, value in attrs.items():
                self._storage.set_trial_user_attr(trial_id, key, value)
            values = [0.0] if state == TrialState.COMPLETE else None
            self._storage.set_trial_state_values(trial_id, state, values)
        except UpdateFinishedTrialError:
            return False
        return True

    def _fail_and_retry(self, trial_id: int, attrs: Mapping[str, Any]) -> bool:
        # Only the process whose FAIL lands queues the retry, so a cell never gets two; the
        # enqueue lock keeps a launch from seeing the failure before its retry is queued.
        with queue_guard(self._storage, self._locks, self.config.study_name):
            if not self._finish_trial(trial_id, TrialState.FAIL, attrs):
                return False
            trial = self._storage.get_trial(trial_id)
            left = int(trial.user_attrs.get("retries_left", 0))
            if left > 0:
                cell = cell_from_dict(trial.user_attrs["cell"])
                attempt = int(trial.user_attrs.get("attempt", 1)) + 1
                self._add_trial(cell, attempt=attempt, retries_left=left - 1)
        return True

    def _rescue(self, claim: Claim, attrs: Mapping[str, Any]) -> RunRecord:
        """Save a result whose trial another process failed as stale while it ran.

        It goes to the cell's queued retry, or else to a new done trial (so if the retry is
        already running elsewhere, the cell may end with two done attempts; records() shows the
        later one). Dropped only when the cell is already done.
        """
        trials = self._trials_by_cell().get(claim.cell, [])
        done = [t for t in trials if t.state == TrialState.COMPLETE]
        if done:
            _log.warning(
                "Trial %d finished after it was failed as stale, but cell %s is already done "
                "(trial %d); its result is dropped.",
                *(claim.trial_number, claim.cell.key, done[-1].number),
            )
            return to_record(done[-1])
        with claim_guard(self._locks.claim):
            taken = self._take_waiting([t for t in trials if t.state == TrialState.WAITING])
        attrs = {"worker": self.worker_name, **attrs}
        if taken is not None and self._finish_trial(taken._trial_id, TrialState.COMPLETE, attrs):
            trial_id = taken._trial_id
        else:
            state, attempt = TrialState.COMPLETE, len(trials) + 1
            trial_id = self._add_trial(
                claim.cell, attempt=attempt, retries_left=0, state=state, extra=attrs
            )
        record = self._record(trial_id)
        _log.warning(
            "Trial %d finished after it was failed as stale; its result is saved in trial %d.",
            *(claim.trial_number, record.trial_number),
        )
        return record
