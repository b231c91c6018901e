"""plan-sweep rounds: seed grid, then rounds of suggested cells into one study; an interrupted
run resumes from the ledger and never enqueues a cell twice. Cells are answered by a known
curve (no training)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from fits.cli import main as plan_fit
from planner.design_cli import main as plan_suggest
from sweeps import cli
from sweeps.cells import Cell, CellOutcome
from sweeps.ledger import Ledger
from sweeps.rounds import RoundsRequest, done_rounds, run_rounds
from sweeps.spec import load_spec
from sweeps.sweep import ledger_config


def _fake_run_cell(spec_dict: dict[str, Any]) -> Any:
    def run(cell: Cell) -> CellOutcome:
        slope = 0.3 if cell.language == "el" else 0.15
        loss = 1.0 + 2.0 * (cell.n_examples + 30.0) ** -slope * 30.0**slope
        loss *= math.exp(0.003 * math.sin(7 * cell.n_examples + cell.seed))
        attrs = {
            "n_available": 3000,
            "tokens_per_example": 30.0,
            "wall_s": 0.01,
            "n_params": 10**6,
        }
        return CellOutcome({"heldout_ce": loss}, attrs)

    return run


def _runner(argv: Sequence[str]) -> int:
    return {"plan-fit": plan_fit, "plan-suggest": plan_suggest}[argv[0]](list(argv[1:]))


def test_rounds_run_resume_and_never_enqueue_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "make_run_cell", _fake_run_cell)
    overrides = (f"out_dir={str(tmp_path / 'sweep')!r}", "grid.sizes=[16,64]")
    spec = load_spec("smoke", list(overrides))
    request = RoundsRequest(
        "smoke", overrides, "1k", 1, 2, 0.0, ("--workers", "1"), ("--bootstrap", "40")
    )
    lines: list[str] = []
    assert run_rounds(request, spec, cli.main, _runner, lines.append) == 2
    assert [line.split(":")[0] for line in lines] == ["round 0", "round 1"]
    assert "6 runs" in lines[0] and "8 runs" in lines[1] and "plan (" in lines[1]
    records = Ledger.open(ledger_config(spec), create=False).records()
    keys = [r.cell.key for r in records]
    assert len(keys) == len(set(keys)) == 8
    # Interrupted after round 1's suggestions: asking for one more round resumes there.
    longer = RoundsRequest(
        "smoke", overrides, "1k", 2, 2, 0.0, ("--workers", "1"), ("--bootstrap", "40")
    )
    again: list[str] = []
    assert run_rounds(longer, spec, cli.main, _runner, again.append) == 3
    assert again[0].endswith("(done before)") and again[1].endswith("(done before)")
    assert again[2].startswith("round 2: 10 runs")
    keys = [r.cell.key for r in Ledger.open(ledger_config(spec), create=False).records()]
    assert len(keys) == len(set(keys)) == 10
    assert done_rounds(spec) == 3
    # Everything done: running again enqueues nothing and runs nothing.
    assert run_rounds(longer, spec, cli.main, _runner, again.append) == 3
    assert len(Ledger.open(ledger_config(spec), create=False).records()) == 10


def test_rounds_request_refuses_bad_counts() -> None:
    with pytest.raises(ValueError, match=r"--cells=0 must be 1 or more"):
        RoundsRequest("smoke", (), "1k", 1, 0)
