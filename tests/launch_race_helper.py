"""One of the concurrent `plan-sweep launch` processes of `tests/test_launch_race.py`.

`python tests/launch_race_helper.py ROUNDS_JSON BARRIER_DIR` runs `plan-sweep <argv>` in this
process for each round of the JSON list (`[{"argv": [...]}, ...]`). Just before a round's launch
opens the ledger (after loading the spec and the data, which take the processes different
times), it writes `<BARRIER_DIR>/ready.<round>.<pid>` and waits for `<BARRIER_DIR>/go.<round>`,
so the launches of one round open the ledger and enqueue at the same moment. Each round's exit
code and error output go to `<BARRIER_DIR>/rc.<round>.<pid>` as JSON.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sweeps.ledger
from sweeps.cli import main as plan_sweep

_round = 0


def _wait_at_barrier(barrier: Path) -> None:
    Path(barrier, f"ready.{_round}.{os.getpid()}").touch()
    deadline = time.monotonic() + 120
    while not Path(barrier, f"go.{_round}").exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no go.{_round} in {barrier}")
        time.sleep(0.002)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the rounds; see the module docstring."""
    global _round
    rounds_path, barrier_text = argv if argv is not None else sys.argv[1:]
    barrier = Path(barrier_text)
    rounds = json.loads(Path(rounds_path).read_text())
    original = sweeps.ledger.open_study

    def open_after_barrier(*args: Any, **kwargs: Any) -> Any:
        _wait_at_barrier(barrier)
        return original(*args, **kwargs)

    sweeps.ledger.open_study = open_after_barrier  # type: ignore[assignment]
    for _round, spec in enumerate(rounds):
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = plan_sweep(spec["argv"])
        except Exception:  # a crash is recorded for the test to show, and the rounds go on
            code, err = -1, io.StringIO(err.getvalue() + traceback.format_exc())
        result = {"code": code, "stderr": err.getvalue()[-3000:]}
        Path(barrier, f"rc.{_round}.{os.getpid()}").write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
