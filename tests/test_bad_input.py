"""Every refused input, one row each: the command line, the one sentence it must print, exit 1,
no traceback, and every earlier output in the workspace byte-identical afterwards.

The workspace (built once per module) holds a good results table, the laws `plan-fit` wrote for
it and the plan `plan-allocate` wrote from those laws; each case may first write a bad file of
its own (`prepare`), then runs the command in-process with `--out` pointing at the good outputs,
so a command that writes before it checks is caught. Adding a bad input is one `BadInput(...)`
line in `CASES`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from fits.cli import main as plan_fit
from fits.synthetic import synthetic_results
from planner.cli import main as plan_allocate
from sweeps.cli import main as plan_sweep

COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "plan-fit": plan_fit,
    "plan-allocate": plan_allocate,
    "plan-sweep": plan_sweep,
}


@dataclass(frozen=True)
class BadInput:
    """One refused input.

    Attributes:
        id: the test id.
        command: `plan-fit`, `plan-allocate` or `plan-sweep`.
        argv: its arguments; `{ws}` is replaced by the workspace folder.
        sentence: a regex the error line must match (it names the value and the fix).
        prepare: writes the case's bad input into the workspace (a path under `{ws}/bad/`).
    """

    id: str
    command: str
    argv: tuple[str, ...]
    sentence: str
    prepare: Callable[[Path], None] | None = None


def _results(ws: Path, name: str, change: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    (ws / "bad").mkdir(exist_ok=True)
    change(pd.read_csv(ws / "results.csv")).to_csv(ws / "bad" / name, index=False)


def _laws(ws: Path, name: str, change: Callable[[dict], None]) -> None:  # type: ignore[type-arg]
    (ws / "bad").mkdir(exist_ok=True)
    raw = json.loads((ws / "fits" / "laws.json").read_text())
    change(raw)
    (ws / "bad" / name).write_text(json.dumps(raw))


def _first_language(raw: dict) -> dict:  # type: ignore[type-arg]
    return next(iter(raw["languages"].values()))  # type: ignore[no-any-return]


LAWS = "{ws}/fits/laws.json"
CASES: list[BadInput] = [
    # --- plan-fit ---------------------------------------------------------------------------
    BadInput(
        "fit-plan-max-typo",
        "plan-fit",
        ("{ws}/results.csv", "--out", "{ws}/fits", "--plan-max", "5OOk"),
        r"--plan-max='5OOk'.*1M",
    ),
    BadInput(
        "fit-plan-max-not-a-number-without-plots",
        "plan-fit",
        ("{ws}/results.csv", "--out", "{ws}/fits", "--plan-max", "abc", "--no-plots"),
        r"--plan-max='abc'",
    ),
    BadInput(
        "fit-out-is-a-file",
        "plan-fit",
        ("{ws}/results.csv", "--out", "{ws}/results.csv"),
        r"--out '.*results.csv' is a file, not a folder",
    ),
    # --- plan-allocate ----------------------------------------------------------------------
    BadInput(
        "allocate-budget-below-one-example",
        "plan-allocate",
        (LAWS, "--budget", "0.5", "--out", "{ws}/allocate"),
        r"--budget '0.5' is less than one example",
    ),
    BadInput(
        "allocate-out-is-a-file",
        "plan-allocate",
        (LAWS, "--budget", "10k", "--out", "{ws}/results.csv"),
        r"--out '.*results.csv' is a file, not a folder",
    ),
    # --- plan-sweep -------------------------------------------------------------------------
    BadInput(
        "sweep-write-data-unknown-allocator",
        "plan-sweep",
        ("write-data", "{ws}/allocate/mixture.json", "--allocator", "oracle"),
        r"has no allocator 'oracle'; it has: planner",
    ),
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A good results table, its laws and a plan: the outputs every case must leave as they are."""
    ws = tmp_path_factory.mktemp("bad-input")
    synthetic_results(languages=("de", "el", "hi")).to_csv(ws / "results.csv", index=False)
    assert plan_fit([str(ws / "results.csv"), "--bootstrap", "40", "--out", str(ws / "fits")]) == 0
    assert (
        plan_allocate(
            [str(ws / "fits" / "laws.json"), "--budget", "20k", "--out", str(ws / "allocate")]
        )
        == 0
    )
    return ws


def _snapshot(ws: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(ws)): p.read_bytes()
        for p in sorted(ws.rglob("*"))
        if p.is_file() and p.parts[len(ws.parts)] != "bad"
    }


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_refused_with_one_sentence_and_nothing_overwritten(
    case: BadInput, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if case.prepare is not None:
        case.prepare(workspace)
    before = _snapshot(workspace)
    capsys.readouterr()
    argv = [arg.replace("{ws}", str(workspace)) for arg in case.argv]
    code = COMMANDS[case.command](argv)
    err = capsys.readouterr().err
    assert code == 1, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith(f"{case.command}: error: ")]
    assert len(errors) == 1, err
    assert re.search(case.sentence, errors[0]), errors[0]
    assert _snapshot(workspace) == before
