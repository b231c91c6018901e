"""The ledger's trial layout: Optuna trials <-> cells and run records (see `sweeps.ledger`).

Pure helpers over `FrozenTrial`s, so `sweeps.ledger` holds only the queue's logic.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.distributions import IntDistribution
from optuna.trial import FrozenTrial, TrialState

from sweeps.cells import AnyCell, RunRecord, RunState, cell_from_dict

STATE = {
    TrialState.WAITING: RunState.WAITING,
    TrialState.RUNNING: RunState.RUNNING,
    TrialState.COMPLETE: RunState.DONE,
    TrialState.FAIL: RunState.FAILED,
    TrialState.PRUNED: RunState.FAILED,
}
# Which attempt stands for a cell: a finished run beats a live one, which beats a queued one.
_RANK = {RunState.DONE: 3, RunState.RUNNING: 2, RunState.WAITING: 1, RunState.FAILED: 0}


def trials_by_cell(trials: Sequence[FrozenTrial]) -> dict[AnyCell, list[FrozenTrial]]:
    """The ledger's trials (those with a `cell` attr) per cell, in trial order."""
    out: dict[AnyCell, list[FrozenTrial]] = {}
    for trial in trials:
        if "cell" in trial.user_attrs:
            out.setdefault(cell_from_dict(trial.user_attrs["cell"]), []).append(trial)
    return out


def standing_record(trials: Sequence[FrozenTrial]) -> RunRecord:
    """The attempt that stands for a cell: its done one, else running, else waiting, else its
    last failed one."""
    return max(map(to_record, trials), key=lambda r: (_RANK[r.state], r.trial_number))


def template_trial(
    cell: AnyCell,
    *,
    attempt: int,
    retries_left: int,
    state: TrialState,
    extra: Mapping[str, Any] | None,
) -> FrozenTrial:
    """A new trial for `cell`, laid out as the module docstring of `sweeps.ledger` says."""
    params = {"n_examples": cell.n_examples, "seed": cell.seed}
    return optuna.trial.create_trial(
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


def last_beat(trial: FrozenTrial) -> float:
    """The trial's last heartbeat (Unix seconds), or its claim time before the first beat."""
    beat = trial.user_attrs.get("heartbeat_unix_s")
    if beat is not None:
        return float(beat)
    # Claimed but died before its first beat: count from the claim.
    return trial.datetime_start.timestamp() if trial.datetime_start else time.time()


def to_record(trial: FrozenTrial) -> RunRecord:
    """The plain record other modules see for one trial."""
    attrs = trial.user_attrs
    state = STATE[trial.state]
    return RunRecord(
        cell=cell_from_dict(attrs["cell"]),
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
