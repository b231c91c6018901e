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
    BadInput(
        "allocate-out-below-a-file",
        "plan-allocate",
        (LAWS, "--budget", "10k", "--out", "{ws}/results.csv/plan"),
        r"Cannot write to --out '.*results.csv/plan' \('.*results.csv' is not a folder",
    ),
    BadInput(
        "allocate-out-holds-a-folder-named-like-an-output",
        "plan-allocate",
        (LAWS, "--budget", "10k", "--out", "{ws}/bad/plan"),
        r"--out '.*plan' holds a folder named 'mixture.json' where plan-allocate writes a file",
        prepare=lambda ws: (ws / "bad" / "plan" / "mixture.json").mkdir(parents=True),
    ),
    BadInput(
        "allocate-max-epochs-not-a-number",
        "plan-allocate",
        (LAWS, "--budget", "10k", "--max-epochs", "abc", "--out", "{ws}/allocate"),
        r"--max-epochs must be a positive number such as 1 or 4; got 'abc'",
    ),
    BadInput(
        "allocate-quantile-not-a-number",
        "plan-allocate",
        (LAWS, "--budget", "10k", "--quantile", "abc", "--out", "{ws}/allocate"),
        r"--quantile must be a positive number such as 0.1; got 'abc'",
    ),
    BadInput(
        "allocate-seed-negative",
        "plan-allocate",
        (LAWS, "--budget", "10k", "--seed", "-1", "--out", "{ws}/allocate"),
        r"--seed must be a whole number, 0 or more, such as 0; got '-1'",
    ),
    BadInput(
        "allocate-available-zero",
        "plan-allocate",
        (LAWS, "--budget", "10k", "--available", "de=0", "--out", "{ws}/allocate"),
        r"--available de=0 is not a pool size; give the number of training pairs",
    ),
    BadInput(
        "allocate-every-option-problem-at-once",
        "plan-allocate",
        (LAWS, "--budget", "0.5", "--max-epochs", "0", "--out", "{ws}/results.csv"),
        r"less than one example.* --max-epochs must be a positive number.* is a file, not a",
    ),
    BadInput(
        "allocate-every-floor-above-its-cap",
        "plan-allocate",
        (LAWS, "--budget", "10k", "--min-per-language", "de=1M,el=1M", "--out", "{ws}/allocate"),
        r"de=1M is above its cap of 33\.9k.* el=1M is above its cap of 33\.6k",
    ),
    BadInput(
        "allocate-loss-below-zero-before-the-cap",
        "plan-allocate",
        ("{ws}/bad/loss-below-zero.json", "--budget", "5k", "--out", "{ws}/allocate"),
        r"The saturating law for 'de' predicts heldout_ce=-0\.\d+ at [0-9.]+k examples on the "
        r"way to its cap .*, but heldout_ce is at least 0; refit it with plan-fit, or lower "
        r"--max-epochs \(its cap is 33\.9k examples\)",
        # CE = -0.2 + 7.7 (d + 60)**-0.4: 0.08 at the largest fitted size (4096), below 0 from
        # 9.6k examples on, -0.08 at de's pool of 33.9k pairs.
        prepare=lambda ws: _laws(
            ws,
            "loss-below-zero.json",
            lambda raw: raw["languages"]["de"].update(
                law="saturating",
                params={"s_max": -0.2, "a": -1.5 * 60.0**0.4, "d0": 60.0, "alpha": 0.4},
                fixed={},
                stderr={},
                draws={},
                n_draws=0,
                shared=[],
                d_min=64.0,
                d_max=4096.0,
            ),
        ),
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
