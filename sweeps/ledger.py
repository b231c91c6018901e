"""The sweep ledger: an Optuna storage holding one trial per attempt at a grid cell.

This module and `sweeps._ledger_storage` (which turns a URL into an Optuna storage) are the only
ones that import optuna; other modules see `Cell`, `RunRecord` and `CellOutcome` (from
`sweeps.cells`, re-exported here), never a `FrozenTrial`. The worker loop is in `sweeps.worker`.

Storage URLs (`Ledger.open`); a relative path resolves against the sweep folder:
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

import contextlib
import fcntl
import json
import logging
import math
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.distributions import IntDistribution
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from muit_core import ConfigError, LedgerError
from sweeps._ledger_storage import (
    DEFAULT_JOURNAL_NAME,
    make_storage,
    mask_password,
    storage_errors,
)
from sweeps.cells import (
    Cell,
    CellOutcome,
    Claim,
    RunRecord,
    RunState,
    json_default,
    mean_wall_s,
)

if TYPE_CHECKING:
    import pandas as pd

    from sweeps.worker import WorkerSummary

__all__ = [
    "DEFAULT_JOURNAL_NAME",
    "GRACE_HEARTBEATS",
    "Cell",
    "CellOutcome",
    "Claim",
    "Ledger",
    "RunRecord",
    "RunState",
]

GRACE_HEARTBEATS = 3  # default grace = 3 beats: one slow write never fails a live run
_SAVE_PAUSES_S = (1, 2, 4, 8, 16, 32)  # back-off between tries to save a finished run


_STATE = {
    TrialState.WAITING: RunState.WAITING,
    TrialState.RUNNING: RunState.RUNNING,
    TrialState.COMPLETE: RunState.DONE,
    TrialState.FAIL: RunState.FAILED,
    TrialState.PRUNED: RunState.FAILED,
}
# Which attempt stands for a cell: a finished run beats a live one, which beats a queued one.
_RANK = {RunState.DONE: 3, RunState.RUNNING: 2, RunState.WAITING: 1, RunState.FAILED: 0}
_ORDER = (RunState.DONE, RunState.RUNNING, RunState.FAILED, RunState.WAITING)
_COUNT_COLUMNS = [*(s.value for s in _ORDER), "total", "workers"]
_log = logging.getLogger(__name__)


class Ledger:
    """The shared record of a sweep: enqueue cells, run them from workers, read the results.

    Safe to use from many processes and machines at once, except `enqueue`, which one process
    (`plan-sweep launch`) should call at a time: concurrent enqueues can duplicate cells (a
    worker then skips the duplicate). Build it with `Ledger.open`.
    """

    def __init__(
        self,
        study: optuna.Study,
        storage: BaseStorage,
        *,
        heartbeat_interval_s: int,
        grace_period_s: int,
        max_retries: int,
        claim_lock: Path | None,
    ) -> None:
        self._study = study
        self._storage = storage
        self.heartbeat_interval_s = heartbeat_interval_s
        self.grace_period_s = grace_period_s
        self.max_retries = max_retries
        self._claim_lock = claim_lock
        self.worker_name = f"{socket.gethostname()}:{os.getpid()}"

    @classmethod
    def open(
        cls,
        storage_url: str | None,
        study_name: str,
        sweep_dir: Path,
        *,
        heartbeat_interval_s: int = 30,
        grace_period_s: int | None = None,
        max_retries: int = 2,
    ) -> Ledger:
        """Open (creating if needed) the study `study_name` in the storage at `storage_url`.

        Args:
            storage_url: see the module docstring; None is the journal file in `sweep_dir`.
            study_name: derived from the config by the caller, so relaunching is idempotent.
            sweep_dir: the sweep folder (created if missing).
            heartbeat_interval_s: seconds between a running worker's heartbeats; also how often
                an idle worker polls the queue.
            grace_period_s: seconds without a heartbeat before a run counts as crashed;
                default `3 * heartbeat_interval_s`.
            max_retries: how often a failed cell is retried automatically.

        Raises:
            ConfigError: a bad setting or an unknown URL scheme.
            LedgerError: the storage cannot be reached or opened.
        """
        grace = (
            GRACE_HEARTBEATS * heartbeat_interval_s if grace_period_s is None else grace_period_s
        )
        problems = [
            text
            for bad, text in (
                (heartbeat_interval_s < 1, f"{heartbeat_interval_s=} must be >= 1"),
                (grace < heartbeat_interval_s, f"grace_period_s={grace} must be >= the interval"),
                (max_retries < 0, f"{max_retries=} must be >= 0"),
                (not study_name, "study_name must not be empty"),
            )
            if bad
        ]
        if problems:
            raise ConfigError(f"Invalid ledger settings: {'; '.join(problems)}.")
        # Optuna logs a line per study opened ("Using an existing study ..."); workers open
        # the ledger often, and the sweep's own log says what matters.
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sweep_dir = Path(sweep_dir)
        shown = mask_password(storage_url or f"journal://{sweep_dir / DEFAULT_JOURNAL_NAME}")
        try:
            sweep_dir.mkdir(parents=True, exist_ok=True)
            storage, claim_lock = make_storage(storage_url, sweep_dir)
            study = optuna.create_study(
                storage=storage,
                study_name=study_name,
                load_if_exists=True,
                direction="minimize",
                sampler=optuna.samplers.RandomSampler(seed=0),
            )
        except ConfigError:
            raise  # an unknown URL scheme: the message says what to write instead
        except ImportError as err:  # optuna re-raises the driver's ModuleNotFoundError
            missing = getattr(err.__cause__, "name", None) or err.name or "?"
            raise LedgerError(
                f"The ledger storage {shown} needs the database driver {missing!r}, which is not "
                "installed; for PostgreSQL run pip install 'muit-planner[postgres]'."
            ) from err
        except storage_errors(ValueError, RuntimeError) as err:
            cause = mask_password(str(getattr(err, "orig", None) or err).strip().splitlines()[0])
            on_server = not shown.startswith(("journal:", "sqlite:", "memory"))
            fix = (
                "check that the server is running and that the URL's host, port, user, password "
                "and database are right, or leave the storage URL unset to use a journal file in "
                "the sweep folder"
                if on_server
                else "check that the path is writable and holds an Optuna ledger"
            )
            raise LedgerError(
                f"Cannot open the ledger storage {shown} ({cause.rstrip('.')}); {fix}."
            ) from err
        return cls(
            study,
            storage,
            heartbeat_interval_s=heartbeat_interval_s,
            grace_period_s=grace,
            max_retries=max_retries,
            claim_lock=claim_lock,
        )

    # --- queue -------------------------------------------------------------------------------

    def enqueue(self, cells: Sequence[Cell], *, retry_failed: bool = False) -> int:
        """Add the cells that are not yet waiting, running or done; not for concurrent use.

        A cell whose last attempt failed with retries left gets its retry; one that used up its
        retries stays failed unless `retry_failed`, which gives it `max_retries` more.

        Returns:
            How many trials were added.
        """
        by_cell = self._trials_by_cell()
        added = 0
        for cell in dict.fromkeys(cells):
            trials = by_cell.get(cell, [])
            if any(_STATE[t.state] != RunState.FAILED for t in trials):
                continue
            left = int(trials[-1].user_attrs.get("retries_left", 0)) if trials else 0
            if trials and left == 0 and not retry_failed:
                continue
            retries = left - 1 if left > 0 else self.max_retries
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
            with self._claim_guard():
                waiting = self._study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
                trial = self._take_waiting(waiting)
            if trial is None:
                return None
            cell = Cell.from_dict(trial.user_attrs["cell"])
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
            attrs = {"worker": self.worker_name, "grace_period_s": self.grace_period_s}
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
        for trial in self._study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if "cell" not in trial.user_attrs:
                continue
            last = _last_beat(trial)
            grace = trial.user_attrs.get("grace_period_s", self.grace_period_s)
            if now - last <= grace:
                continue
            error = (
                f"Worker {trial.user_attrs.get('worker', '?')} stopped sending heartbeats "
                f"({now - last:.0f} s since the last, grace {grace} s); it probably crashed "
                "or was killed."
            )
            failed += self._fail_and_retry(trial._trial_id, {"error": error})
        return failed

    def run_worker(
        self,
        run_cell: Callable[[Cell], CellOutcome],
        *,
        max_runs: int | None = None,
        on_finished: Callable[[RunRecord], None] | None = None,
        stop_when_empty: bool = True,
    ) -> WorkerSummary:
        """Run waiting cells until none are left; see `sweeps.worker.run_worker`."""
        from sweeps.worker import run_worker  # the loop lives there; it imports this module

        return run_worker(
            self,
            run_cell,
            max_runs=max_runs,
            on_finished=on_finished,
            stop_when_empty=stop_when_empty,
        )

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
            return [_to_record(t) for cell in sorted(by_cell) for t in by_cell[cell]]
        return [
            max(map(_to_record, by_cell[cell]), key=lambda r: (_RANK[r.state], r.trial_number))
            for cell in sorted(by_cell)
        ]

    def live_cells(self) -> list[Cell]:
        """The cells running with a heartbeat inside their grace period (one per live worker)."""
        now, out = time.time(), []
        for trial in self._study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            grace = trial.user_attrs.get("grace_period_s", self.grace_period_s)
            if "cell" in trial.user_attrs and now - _last_beat(trial) <= grace:
                out.append(Cell.from_dict(trial.user_attrs["cell"]))
        return out

    def status(self) -> pd.DataFrame:
        """Per-language progress, indexed by language, plus an `all` row.

        Columns: `done, running, failed, waiting, total` count cells by their standing attempt;
        `mean_wall_s` of done runs; `workers`, the live workers (cells running with a fresh
        heartbeat); `eta_s`, the remaining work (waiting cells at the language's mean wall time,
        running ones at what is left of it) divided by all live workers: on the `all` row the
        time until the sweep ends, on a language row its share. NaN while no run is done or no
        worker is live.
        """
        import pandas as pd  # here only: workers never need it, and it costs ~1 s to import

        records, live, now = self.records(), self.live_cells(), datetime.now()
        overall_mean = mean_wall_s(records)
        rows: dict[str, dict[str, float]] = {}
        for language in [*sorted({r.cell.language for r in records}), "all"]:
            mine = [r for r in records if language in ("all", r.cell.language)]
            row: dict[str, float] = {s.value: sum(r.state == s for r in mine) for s in _ORDER}
            mean = mean_wall_s(mine)
            row.update(total=len(mine), mean_wall_s=mean)
            row["workers"] = sum(language in ("all", c.language) for c in live)
            rows[language] = row
            if language == "all":
                row["work_s"] = sum(r["work_s"] for r in rows.values() if r is not row)
                continue
            mean = overall_mean if math.isnan(mean) else mean
            running = [r.started_at for r in mine if r.state == RunState.RUNNING]
            left = [mean - (now - t).total_seconds() if t else mean for t in running]
            row["work_s"] = row["waiting"] * mean + sum(max(x, 0.0) for x in left)
        table = pd.DataFrame.from_dict(rows, orient="index")
        work_s = table.pop("work_s")  # worker-seconds of runs still to do
        table["eta_s"] = work_s / len(live) if live else math.nan
        table.index.name = "language"
        return table.astype({c: int for c in _COUNT_COLUMNS})

    # --- optuna plumbing ---------------------------------------------------------------------

    def _trials_by_cell(self) -> dict[Cell, list[FrozenTrial]]:
        out: dict[Cell, list[FrozenTrial]] = {}
        for trial in self._study.get_trials(deepcopy=False):
            if "cell" in trial.user_attrs:
                out.setdefault(Cell.from_dict(trial.user_attrs["cell"]), []).append(trial)
        return out

    def _record(self, trial_id: int) -> RunRecord:
        return _to_record(self._storage.get_trial(trial_id))

    def _add_trial(
        self,
        cell: Cell,
        *,
        attempt: int,
        retries_left: int,
        state: TrialState = TrialState.WAITING,
        extra: Mapping[str, Any] | None = None,
    ) -> int:
        params = {"n_examples": cell.n_examples, "seed": cell.seed}
        trial = optuna.trial.create_trial(
            state=state,
            value=0.0 if state == TrialState.COMPLETE else None,
            params=params,
            distributions={k: IntDistribution(v, v) for k, v in params.items()},
            user_attrs={
                "cell": cell.to_dict(),
                "cell_key": cell.key,
                "attempt": attempt,
                "retries_left": retries_left,
                **(extra or {}),
            },
            system_attrs={"fixed_params": cell.to_dict()},  # as Study.enqueue_trial writes it
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

    @contextlib.contextmanager
    def _claim_guard(self) -> Iterator[None]:
        # pysqlite reads the WAITING state outside the write transaction, so two processes could
        # both flip the same SQLite trial to RUNNING; a file lock serialises the take.
        if self._claim_lock is None:
            yield
            return
        with open(self._claim_lock, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

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
        # Only the process whose FAIL lands queues the retry, so a cell never gets two.
        if not self._finish_trial(trial_id, TrialState.FAIL, attrs):
            return False
        trial = self._storage.get_trial(trial_id)
        left = int(trial.user_attrs.get("retries_left", 0))
        if left > 0:
            cell = Cell.from_dict(trial.user_attrs["cell"])
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
            return _to_record(done[-1])
        with self._claim_guard():
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


def _last_beat(trial: FrozenTrial) -> float:
    beat = trial.user_attrs.get("heartbeat_unix_s")
    if beat is not None:
        return float(beat)
    # Claimed but died before its first beat: count from the claim.
    return trial.datetime_start.timestamp() if trial.datetime_start else time.time()


def _to_record(trial: FrozenTrial) -> RunRecord:
    attrs = trial.user_attrs
    state = _STATE[trial.state]
    return RunRecord(
        cell=Cell.from_dict(attrs["cell"]),
        state=state,
        trial_number=trial.number,
        metrics=dict(attrs.get("metrics", {})) if state == RunState.DONE else {},
        attrs=dict(attrs.get("attrs", {})) if state == RunState.DONE else {},
        error=attrs.get("error", "Failed without a recorded reason.")
        if state == RunState.FAILED
        else None,
        attempt=int(attrs.get("attempt", 1)),
        started_at=trial.datetime_start,
        finished_at=trial.datetime_complete,
        wall_s=attrs.get("wall_s"),
        worker=attrs.get("worker"),
    )
