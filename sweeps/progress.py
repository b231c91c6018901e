"""How far a sweep has got: counts per language, mean run time, and the time left.

One computation (`progress_rows`, pure over the ledger's standing records) behind both views of
it: the table `plan-sweep status` prints (`status_table`, what `Ledger.status` returns) and the
progress a worker logs after each run (`format_progress`).

The work left is counted in worker-seconds: a waiting cell costs its language's mean wall time
(the sweep's mean while the language has no done run), a running one what is left of that mean
since it started. Dividing by the number of workers gives the ETA.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sweeps.cells import AnyCell, RunRecord, RunState, mean_wall_s

if TYPE_CHECKING:
    import pandas as pd

ALL_LANGUAGES = "all"  # the row that sums every language
_COUNT_COLUMNS = ["done", "running", "failed", "waiting", "total", "workers"]


@dataclass(frozen=True)
class LanguageProgress:
    """Where a language's cells stand (or every cell's, for the `all` row).

    Attributes:
        language: the language code, or `ALL_LANGUAGES`.
        n_done, n_running, n_failed, n_waiting: cells by the state of their standing attempt.
        n_total: cells in all.
        mean_wall_s: mean wall time of the done runs; NaN while none is done.
        n_workers: live workers running one of these cells.
        work_left_s: worker-seconds of runs still to do (see the module docstring); NaN while
            no run of the sweep is done.
    """

    language: str
    n_done: int
    n_running: int
    n_failed: int
    n_waiting: int
    n_total: int
    mean_wall_s: float
    n_workers: int
    work_left_s: float

    @property
    def n_left(self) -> int:
        """Cells waiting or running."""
        return self.n_waiting + self.n_running

    def counts(self) -> dict[str, int]:
        """`{"done": n_done, "running": ..., "failed": ..., "waiting": ...}`, in that order."""
        return {
            RunState.DONE.value: self.n_done,
            RunState.RUNNING.value: self.n_running,
            RunState.FAILED.value: self.n_failed,
            RunState.WAITING.value: self.n_waiting,
        }


def progress_rows(
    standing: Sequence[RunRecord],
    live_cells: Sequence[AnyCell] = (),
    now: datetime | None = None,
) -> tuple[LanguageProgress, ...]:
    """One row per language (sorted), then the `all` row.

    Args:
        standing: one record per cell, its standing attempt (`Ledger.records()`).
        live_cells: the cells running with a fresh heartbeat (`Ledger.live_cells()`).
        now: the local time running cells' elapsed time is measured to; default now.
    """
    now = now or datetime.now()
    overall_mean = mean_wall_s(standing)
    rows = []
    for language in sorted({r.cell.group for r in standing}):
        mine = [r for r in standing if r.cell.group == language]
        mean = mean_wall_s(mine)
        cost = overall_mean if math.isnan(mean) else mean
        running = [r.started_at for r in mine if r.state == RunState.RUNNING]
        left = [cost - (now - t).total_seconds() if t else cost for t in running]
        n_waiting = sum(r.state == RunState.WAITING for r in mine)
        work_left_s = n_waiting * cost + sum(max(x, 0.0) for x in left)
        n_workers = sum(c.group == language for c in live_cells)
        rows.append(_row(language, mine, mean, n_workers, work_left_s))
    work_left_s = sum(row.work_left_s for row in rows)
    everything = _row(ALL_LANGUAGES, standing, overall_mean, len(live_cells), work_left_s)
    return (*rows, everything)


def _row(
    language: str,
    records: Sequence[RunRecord],
    mean_s: float,
    n_workers: int,
    work_left_s: float,
) -> LanguageProgress:
    def count(state: RunState) -> int:
        return sum(r.state == state for r in records)

    return LanguageProgress(
        language=language,
        n_done=count(RunState.DONE),
        n_running=count(RunState.RUNNING),
        n_failed=count(RunState.FAILED),
        n_waiting=count(RunState.WAITING),
        n_total=len(records),
        mean_wall_s=mean_s,
        n_workers=n_workers,
        work_left_s=work_left_s,
    )


def status_table(
    standing: Sequence[RunRecord],
    live_cells: Sequence[AnyCell],
    now: datetime | None = None,
) -> pd.DataFrame:
    """Per-language progress, indexed by language, plus an `all` row.

    Columns: `done, running, failed, waiting, total` count cells by their standing attempt;
    `mean_wall_s` of done runs; `workers`, the live workers (cells running with a fresh
    heartbeat); `eta_s`, the work left divided by all live workers: on the `all` row the time
    until the sweep ends, on a language row its share. NaN while no run is done or no worker is
    live. Arguments as in `progress_rows`.
    """
    import pandas as pd  # here only: workers never need it, and it costs ~1 s to import

    n_live = len(live_cells)
    table = pd.DataFrame.from_dict(
        {
            row.language: {
                **row.counts(),
                "total": row.n_total,
                "mean_wall_s": row.mean_wall_s,
                "workers": row.n_workers,
                "eta_s": row.work_left_s / n_live if n_live else math.nan,
            }
            for row in progress_rows(standing, live_cells, now)
        },
        orient="index",
    )
    table.index.name = "language"
    return table.astype({c: int for c in _COUNT_COLUMNS})


def format_progress(
    standing: Sequence[RunRecord], n_workers: int, now: datetime | None = None
) -> str:
    """ "12/40 cells done, 28 left, ~64 s a cell, ETA 15 min" for the sweep-level log line.

    `standing` is one record per cell (its standing attempt); the ETA spreads the work left
    over `n_workers` workers. The rate and ETA are left out until a run is done, and once
    nothing is left.
    """
    everything = progress_rows(standing, now=now)[-1]
    text = f"{everything.n_done}/{everything.n_total} cells done"
    mean_s = everything.mean_wall_s
    if math.isnan(mean_s) or not everything.n_left:
        return text
    eta_min = everything.work_left_s / max(n_workers, 1) / 60
    return f"{text}, {everything.n_left} left, ~{mean_s:.0f} s a cell, ETA {eta_min:.0f} min"
