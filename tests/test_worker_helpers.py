"""Cell functions for the worker tests, importable by name from worker subprocesses.

`fake_train` stands in for the trainer (which has its own tests): it sleeps briefly and returns
metrics derived from the cell, so a test knows exactly what must be recorded. Environment
variables let a test steer it inside a worker process:
- `SWEEPS_TEST_STARTED_DIR`: each run writes `<dir>/<cell key with / as _>.<pid>` as it starts;
- `SWEEPS_TEST_SLOW_CELL`: the key of a cell whose first run (the first with a started file)
  hangs, for a test to kill or interrupt the worker mid-run; its rerun is quick;
- `SWEEPS_TEST_SLEEP_S`: seconds each run sleeps (default 0.02);
- `SWEEPS_TEST_BARRIER_DIR`: the factory writes `<dir>/ready.<pid>`, then waits for `<dir>/go`,
  so that workers start taking cells at the same moment.
A cell of language `nan` fails like a diverged run.

Run as a script, it is one worker process:
`python tests/test_worker_helpers.py STORAGE_URL STUDY SWEEP_DIR [--heartbeat-s 1] [--grace-s 3]`.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from sweeps.ledger import Cell, CellOutcome, LedgerConfig
from sweeps.worker import RunCell, run_worker_process

SLOW_CELL_ENV = "SWEEPS_TEST_SLOW_CELL"
STARTED_DIR_ENV = "SWEEPS_TEST_STARTED_DIR"
SLEEP_ENV = "SWEEPS_TEST_SLEEP_S"
BARRIER_DIR_ENV = "SWEEPS_TEST_BARRIER_DIR"


def expected_metrics(cell: Cell) -> dict[str, float]:
    """The metrics `fake_train` reports for `cell`: a loss falling with data, a score rising."""
    return {
        "heldout_ce": 3.0 - 0.1 * math.log2(cell.n_examples + 1) + 0.01 * cell.seed,
        "chrf": 20.0 + 2.0 * math.log2(cell.n_examples + 1),
    }


def fake_train(cell: Cell) -> CellOutcome:
    """Stand-in for the trainer: sleep, then report `expected_metrics(cell)`."""
    started_dir = os.environ.get(STARTED_DIR_ENV)
    first_run = True
    if started_dir:
        stem = cell.key.replace("/", "_")
        first_run = not list(Path(started_dir).glob(f"{stem}.*"))
        Path(started_dir, f"{stem}.{os.getpid()}").write_text(str(time.time()))
    if cell.key == os.environ.get(SLOW_CELL_ENV) and first_run:
        time.sleep(300)  # the test kills or interrupts the worker long before this ends
    time.sleep(float(os.environ.get(SLEEP_ENV, "0.02")))
    if cell.language == "nan":
        raise FloatingPointError("loss is NaN at step 3")
    return CellOutcome(
        metrics=expected_metrics(cell),
        attrs={"train_tokens": 20 * cell.n_examples, "pid": os.getpid()},
    )


def make_fake_train() -> RunCell:
    """The run_cell factory worker processes call; waits at `SWEEPS_TEST_BARRIER_DIR` if set."""
    barrier = os.environ.get(BARRIER_DIR_ENV)
    if barrier:
        Path(barrier, f"ready.{os.getpid()}").touch()
        deadline = time.monotonic() + 60
        while not Path(barrier, "go").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
    return fake_train


def main(argv: Sequence[str] | None = None) -> int:
    """Run one worker over the fake cells until the ledger has nothing left."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("storage_url")
    parser.add_argument("study_name")
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--heartbeat-s", type=int, default=1)
    parser.add_argument("--grace-s", type=int, default=3)
    args = parser.parse_args(argv)
    config = LedgerConfig(
        args.storage_url,
        args.study_name,
        args.sweep_dir,
        heartbeat_interval_s=args.heartbeat_s,
        grace_period_s=args.grace_s,
    )
    run_worker_process(config, make_fake_train)
    return 0


if __name__ == "__main__":
    sys.exit(main())
