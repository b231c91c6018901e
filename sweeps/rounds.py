"""`plan-sweep rounds`: an adaptive sweep, round by round, in one study.

Round 0 runs the spec's own grid (a small seed grid); every round then exports the results,
fits them (`plan-fit`), and asks `plan-suggest` for the next `cells` cells at the budget, which
the next round enqueues beside the grid (`plan-sweep launch SPEC --cells ...`). It stops after
`rounds` rounds, or early when the suggested cells' expected gain falls under `min_gain`.

`sweeps` imports neither `fits` nor `planner`: the two commands run as subprocesses (or through
the `runner` a caller passes) and talk through their files. Each round keeps its files in
`SWEEP_DIR/rounds/round-<r>/` (`fits/laws.json`, `suggest/cells.toml`,
`suggest/suggestions.json`). The ledger, its workers, PostgreSQL storage and SLURM are those of
`plan-sweep launch`, unchanged.

Resuming: a round counts as done once its `suggestions.json` exists. Run again, the command
starts at the first round that is not done, launching with every earlier round's cells; the
ledger enqueues only cells not yet waiting, running or done, so an interrupted round never
enqueues a cell twice, and its unfinished runs are picked up as `launch` always does.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from muit_core import ConfigError, LedgerError
from sweeps.cells import RunState
from sweeps.spec import SweepSpec
from sweeps.sweep import open_ledger

log = logging.getLogger(__name__)

Runner = Callable[[Sequence[str]], int]
"""Runs a command line (`plan-fit ...`, `plan-suggest ...`) and returns its exit code."""

_MODULES = {"plan-fit": "fits.cli", "plan-suggest": "planner.design_cli"}


def run_command(argv: Sequence[str]) -> int:
    """Run `plan-fit` or `plan-suggest` as a subprocess (the console script on PATH, else
    `python -m` its module), its output on stderr: stdout holds the rounds' lines."""
    exe = shutil.which(argv[0])
    command = [exe, *argv[1:]] if exe else [sys.executable, "-m", _MODULES[argv[0]], *argv[1:]]
    return subprocess.run(command, check=False, stdout=sys.stderr).returncode


@dataclass(frozen=True)
class RoundsRequest:
    """What `plan-sweep rounds` was asked.

    Attributes:
        spec_arg: the spec's name or path, with `overrides` as given to `launch`.
        budget: the plan's budget in examples, as typed (`20k`), passed to `plan-suggest`.
        n_rounds: rounds after the seed grid (0: only the seed grid).
        n_cells: cells per round.
        min_gain: stop when the next cells' expected gain is under this (objective units).
        launch_args: extra `launch` arguments (`--workers 2`, `--storage URL`, `--slurm ...`).
        fit_args: extra `plan-fit` arguments (`--bootstrap 200`).
    """

    spec_arg: str
    overrides: tuple[str, ...]
    budget: str
    n_rounds: int
    n_cells: int
    min_gain: float = 0.0
    launch_args: tuple[str, ...] = ()
    fit_args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problems = []
        if self.n_rounds < 0:
            problems.append(f"--rounds={self.n_rounds} must be 0 or more")
        if self.n_cells < 1:
            problems.append(f"--cells={self.n_cells} must be 1 or more, such as 5")
        if not self.min_gain >= 0:
            problems.append(f"--min-gain={self.min_gain} must be 0 or more, such as 0.001")
        if problems:
            raise ConfigError(f"Invalid rounds request: {'; '.join(problems)}.")


def round_dir(spec: SweepSpec, r: int) -> Path:
    """Where round `r`'s files go."""
    return spec.sweep_dir / "rounds" / f"round-{r}"


def done_rounds(spec: SweepSpec) -> int:
    """How many rounds, counted from 0, are done (their suggestions written), in a row."""
    r = 0
    while (round_dir(spec, r) / "suggest" / "suggestions.json").is_file():
        r += 1
    return r


def _wait_until_run(spec: SweepSpec, storage: str | None, poll_s: float) -> int:
    """Block until the study has no waiting or running cell (SLURM or remote workers); return
    the number of done runs."""
    ledger = open_ledger(spec, storage, create=False)
    while True:
        states = [r.state for r in ledger.records()]
        if not any(s in (RunState.WAITING, RunState.RUNNING) for s in states):
            return sum(s is RunState.DONE for s in states)
        time.sleep(poll_s)


def _storage(launch_args: Sequence[str]) -> str | None:
    args = list(launch_args)
    return args[args.index("--storage") + 1] if "--storage" in args else None


def round_line(r: int, runs: int, suggestions: dict[str, Any]) -> str:
    """What a round prints: runs so far, the plan with its interval, the next cells' gain."""
    plan = suggestions["plan"]
    low, high = plan["interval"]
    examples = ", ".join(f"{k} {v}" for k, v in plan["examples"].items())
    cells = ", ".join(
        f"{c['language']}@{c['size']}/s{c['seed']}" for c in suggestions["suggestions"]
    )
    return (
        f"round {r}: {runs} runs; plan ({plan['verdict']}) {examples}; mean "
        f"{suggestions['metric']} {plan['objective']:.4g} [{low:.4g}, {high:.4g}]; next "
        f"{len(suggestions['suggestions'])} cells ({cells}) expected gain "
        f"{suggestions['total_gain']:.3g}"
    )


def run_rounds(
    request: RoundsRequest,
    spec: SweepSpec,
    launch: Runner,
    runner: Runner = run_command,
    echo: Callable[[str], None] = print,
    poll_s: float = 30.0,
) -> int:
    """Run (or resume) the rounds; `launch` runs `plan-sweep` with the given arguments.

    Returns:
        The number of rounds run or found done.

    Raises:
        LedgerError: a launch, fit or suggest step failed (its own error was printed).
    """
    start = min(done_rounds(spec), request.n_rounds + 1)
    for r in range(start):
        payload = json.loads((round_dir(spec, r) / "suggest" / "suggestions.json").read_text())
        echo(round_line(r, int(payload.get("runs", 0)), payload) + " (done before)")
        if _stops(payload, request):
            return r + 1
    results = spec.sweep_dir / "results.csv"
    for r in range(start, request.n_rounds + 1):
        cells = [str(round_dir(spec, j) / "suggest" / "cells.toml") for j in range(r)]
        target = [request.spec_arg, *request.overrides]
        launch_argv = ["launch", *target, *(a for c in cells for a in ("--cells", c))]
        with contextlib.redirect_stdout(sys.stderr):  # stdout holds the rounds' lines only
            _step(launch([*launch_argv, *request.launch_args]), f"round {r}: plan-sweep launch")
            runs = _wait_until_run(spec, _storage(request.launch_args), poll_s)
            export = ["export", *target, "--out", str(results)]
            export += ["--storage", s] if (s := _storage(request.launch_args)) else []
            _step(launch(export), f"round {r}: plan-sweep export")
        here = round_dir(spec, r)
        fit = ["plan-fit", str(results), "--out", str(here / "fits"), "--no-plots"]
        _step(runner([*fit, *request.fit_args]), f"round {r}: plan-fit")
        suggest = ["plan-suggest", str(here / "fits" / "laws.json"), "--budget", request.budget]
        suggest += ["--cells", str(request.n_cells), "--out", str(here / "suggest")]
        suggest += ["--seed", str(r)]
        _step(runner(suggest), f"round {r}: plan-suggest")
        path = here / "suggest" / "suggestions.json"
        payload = json.loads(path.read_text(encoding="utf-8"))
        payload["runs"] = runs
        path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        echo(round_line(r, runs, payload))
        if _stops(payload, request):
            return r + 1
    return request.n_rounds + 1


def _stops(payload: dict[str, Any], request: RoundsRequest) -> bool:
    gain = payload.get("total_gain")
    if gain is not None and gain < request.min_gain:
        log.info("stopping: the next cells' expected gain %.3g is under --min-gain", gain)
        return True
    return False


def _step(code: int, what: str) -> None:
    if code != 0:
        raise LedgerError(
            f"{what} failed (exit {code}; its error is above); fix it and run the same "
            "plan-sweep rounds command again to resume."
        )
