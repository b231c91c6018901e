"""Sweep cells, run records and ledger settings: the types the ledger, the workers, the
SLURM jobs and the trainer share.

Plain dataclasses with no optuna import, so code that only describes or runs a cell stays light.
`sweeps.ledger` stores them; see it for how attempts, retries and heartbeats work.
"""

from __future__ import annotations

import enum
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from muit_core import ConfigError

CELL_FIELDS = ("language", "n_examples", "seed", "model", "objective")
GRACE_HEARTBEATS = 3  # default grace = 3 beats: one slow write never fails a live run


@dataclass(frozen=True)
class LedgerConfig:
    """Where a sweep's ledger is and how its workers keep it; checked on construction.

    One value that `Ledger.open`, the worker processes and the SLURM jobs all take (it is
    picklable, so it travels to other processes as it is).

    Attributes:
        storage_url: see `sweeps.ledger`; None is the journal file in `sweep_dir`.
        study_name: derived from the config by the caller, so relaunching is idempotent.
        sweep_dir: the sweep folder (created when the ledger is opened); relative storage
            paths resolve against it.
        heartbeat_interval_s: seconds between a running worker's heartbeats; also how often
            an idle worker polls the queue.
        grace_period_s: seconds without a heartbeat before a run counts as crashed; None for
            `GRACE_HEARTBEATS` beats (see `effective_grace_period_s`).
        max_retries: how often a failed cell is retried automatically.

    Raises:
        ConfigError: naming every bad setting at once.
    """

    storage_url: str | None
    study_name: str
    sweep_dir: Path
    heartbeat_interval_s: int = 30
    grace_period_s: int | None = None
    max_retries: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "sweep_dir", Path(self.sweep_dir))
        interval, grace = self.heartbeat_interval_s, self.effective_grace_period_s
        problems = [
            text
            for bad, text in (
                (interval < 1, f"heartbeat_interval_s={interval} must be >= 1"),
                (grace < interval, f"grace_period_s={grace} must be >= the interval"),
                (self.max_retries < 0, f"max_retries={self.max_retries} must be >= 0"),
                (not self.study_name, "study_name must not be empty"),
            )
            if bad
        ]
        if problems:
            raise ConfigError(f"Invalid ledger settings: {'; '.join(problems)}.")

    @property
    def effective_grace_period_s(self) -> int:
        """`grace_period_s`, or `GRACE_HEARTBEATS` heartbeat intervals when that is None."""
        if self.grace_period_s is None:
            return GRACE_HEARTBEATS * self.heartbeat_interval_s
        return self.grace_period_s


def _check_fields(cell: object, kind: str, strings: tuple[str, ...]) -> None:
    """Raise one `ConfigError` naming every bad field: `strings` must be non-empty strings,
    `n_examples` and `seed` non-negative integers."""
    problems = [
        f"{name}={getattr(cell, name)!r} must be a non-empty string"
        for name in strings
        if not isinstance(getattr(cell, name), str) or not getattr(cell, name)
    ]
    for name in ("n_examples", "seed"):
        value = getattr(cell, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            problems.append(f"{name}={value!r} must be a non-negative integer")
    if problems:
        raise ConfigError(f"Invalid {kind}: {'; '.join(problems)}.")


@dataclass(frozen=True, order=True)
class Cell:
    """One grid cell: the parameters of one fine-tuning run.

    Attributes:
        language: language code, the same string as in the spec and the fits.
        n_examples: translation examples trained on; 0 is the untuned base model.
        seed: data-sampling and training seed.
        model: base model name or id.
        objective: training objective (`sft` or `dft`).
    """

    language: str
    n_examples: int
    seed: int
    model: str = "default"
    objective: str = "sft"

    def __post_init__(self) -> None:
        _check_fields(self, "sweep cell", ("language", "model", "objective"))

    @property
    def group(self) -> str:
        """What progress is grouped by: the language."""
        return self.language

    @property
    def key(self) -> str:
        """A stable, readable id, e.g. `el/n=256/seed=0/model=default/sft`."""
        return (
            f"{self.language}/n={self.n_examples}/seed={self.seed}"
            f"/model={self.model}/{self.objective}"
        )

    def to_dict(self) -> dict[str, Any]:
        """The cell as a JSON-able dict (the ledger's `cell` user attr)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Cell:
        """Inverse of `to_dict`."""
        return cls(**{name: data[name] for name in CELL_FIELDS})


MIXTURE_CELL_FIELDS = ("allocator", "seed", "n_examples", "model", "objective")


@dataclass(frozen=True, order=True)
class MixtureCell:
    """One closed-loop run: a MuIT model trained on one allocation of a mixture file.

    Attributes:
        allocator: whose allocation (`planner`, `uniform`, ...), as the mixture names it.
        seed: the training seed (initialisation and batch order); the data is the
            allocation's own, drawn with the mixture's seed, the same for every seed.
        n_examples: the allocation's total examples (shown in the ledger and the status).
        model: base model name or id.
        objective: training objective (`sft` or `dft`).
    """

    allocator: str
    seed: int
    n_examples: int
    model: str = "default"
    objective: str = "sft"

    def __post_init__(self) -> None:
        _check_fields(self, "mixture cell", ("allocator", "model", "objective"))

    @property
    def group(self) -> str:
        """What progress is grouped by: the allocator."""
        return self.allocator

    @property
    def key(self) -> str:
        """A stable, readable id, e.g. `mixture/planner/seed=0/model=default/sft`."""
        return f"mixture/{self.allocator}/seed={self.seed}/model={self.model}/{self.objective}"

    def to_dict(self) -> dict[str, Any]:
        """The cell as a JSON-able dict (the ledger's `cell` user attr)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MixtureCell:
        """Inverse of `to_dict`."""
        return cls(**{name: data[name] for name in MIXTURE_CELL_FIELDS})


AnyCell = Cell | MixtureCell
"""What a ledger holds: sweep cells (one language, one size) or mixture cells (closed loop)."""


def cell_from_dict(data: Mapping[str, Any]) -> AnyCell:
    """The cell a ledger's `cell` attr describes, of either kind."""
    return MixtureCell.from_dict(data) if "allocator" in data else Cell.from_dict(data)


class RunState(enum.Enum):
    """Where a cell (or one attempt at it) stands."""

    WAITING = "waiting"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class CellOutcome:
    """What a finished run reports; checked on construction.

    Attributes:
        metrics: metric name -> finite value, e.g. `{"heldout_ce": 2.1, "chrf": 31.0}`.
        attrs: timings, token counts, the resolved config; JSON-able (numpy scalars, paths and
            datetimes are converted).

    Raises:
        ValueError: a metric is not a finite number (NaN must not pass silently).
        TypeError: an attr cannot be written as JSON.
    """

    metrics: Mapping[str, float]
    attrs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, value in self.metrics.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"Metric {name}={value!r} is not a number.")
            if not math.isfinite(value):
                raise ValueError(f"Metric {name}={value!r} is not finite.")
        json.dumps(dict(self.attrs), default=json_default)


@dataclass(frozen=True)
class RunRecord:
    """One attempt at a cell, as other modules see it.

    Attributes:
        cell: the grid cell.
        state: waiting, running, done or failed.
        trial_number: the Optuna trial number (unique within the study).
        metrics: the run's metrics (empty unless done).
        attrs: the run's attrs as `run_cell` returned them (empty unless done).
        error: why the attempt failed (`Type: message`), else None.
        attempt: 1 for the first try, 2.. for retries.
        started_at: when a worker claimed it (local time), None while waiting.
        finished_at: when it finished (local time), None until then.
        wall_s: seconds `run_cell` took, None until it finished.
        worker: `host:pid` of the worker that claimed it.
    """

    cell: AnyCell
    state: RunState
    trial_number: int
    metrics: Mapping[str, float]
    attrs: Mapping[str, Any]
    error: str | None
    attempt: int
    started_at: datetime | None
    finished_at: datetime | None
    wall_s: float | None = None
    worker: str | None = None


def mean_wall_s(records: Sequence[RunRecord]) -> float:
    """Mean `wall_s` of the done runs among `records`; NaN when none is done."""
    walls = [r.wall_s for r in records if r.state == RunState.DONE and r.wall_s is not None]
    return sum(walls) / len(walls) if walls else math.nan


@dataclass(frozen=True)
class Claim:
    """A cell a worker has taken from the queue; hand it back with `finish` or `fail`."""

    cell: AnyCell
    trial_number: int
    attempt: int
    trial_id: int = field(repr=False)  # the storage's handle


def json_default(obj: Any) -> Any:
    """JSON for the values trainers commonly put in attrs: numpy values, paths, datetimes."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, enum.Enum):
        return obj.value
    raise TypeError(f"Attr value {obj!r} of type {type(obj).__name__} is not JSON-serialisable.")
