"""plan-suggest: the preposterior design picks cells where the plan is most uncertain, never a
cell already run, and its TOML fragment is what `plan-sweep launch --cells` enqueues."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest

from fits.data import Points
from fits.fitting import FitOptions
from fits.pipeline import FitRequest, fit_all
from fits.result import write_laws
from muit_core import ConfigError
from planner import build_problem
from planner.design import suggest_cells, swept_cells
from planner.design_cli import main as plan_suggest
from sweeps.cli import main as plan_sweep
from sweeps.ledger import Ledger
from sweeps.spec import load_spec
from sweeps.sweep import ledger_config

POOLS = {"de": 8000, "el": 8000}
SIZES = (0, 16, 32, 64, 128)


def _laws(noise: dict[str, float], seed: int = 0):  # type: ignore[no-untyped-def]
    """Two languages with the same true curve; `noise` per language makes one law loose."""
    rng = np.random.default_rng(seed)
    points = {}
    for code, sd in noise.items():
        d = np.asarray(SIZES, dtype=float)
        y = (1.2 + 2.0 * (d + 40.0) ** -0.3 * 40.0**0.3) * np.exp(rng.normal(0, sd, d.size))
        data = {"n_available": POOLS[code], "tokens_per_example": 40.0}
        points[code] = Points(
            code, d, y, np.zeros(d.size, int), np.full(d.size, 1.35e8), data=data
        )
    request = FitRequest(law="saturating", options=FitOptions(n_bootstrap=60, seed=0))
    return fit_all(points, request, metric="heldout_ce", higher_is_better=False)


@pytest.fixture(scope="module")
def loose_el():  # type: ignore[no-untyped-def]
    return _laws({"de": 0.002, "el": 0.04})


def test_suggestions_land_on_the_uncertain_language(loose_el) -> None:  # type: ignore[no-untyped-def]
    problem = build_problem(loose_el, ("de", "el"))
    design = suggest_cells(loose_el, problem, 400.0, 2, noise_sd=0.005)
    assert design.suggestions[0].cell.language == "el"
    assert design.total_gain <= design.perfect_gain + 1e-9
    assert design.total_gain > 0


def test_a_cell_already_run_is_not_suggested(loose_el) -> None:  # type: ignore[no-untyped-def]
    problem = build_problem(loose_el, ("de", "el"))
    design = suggest_cells(loose_el, problem, 4000.0, 6, sizes=[64, 128, 1000], noise_sd=0.005)
    done = swept_cells(loose_el, ("de", "el"))
    cells = [(s.cell.language, s.cell.n_examples, s.cell.seed) for s in design.suggestions]
    assert len(set(cells)) == len(cells)
    assert all((size, seed) not in done[code] for code, size, seed in cells)
    assert {(c, s) for c, s, _ in cells} <= {(c, s) for c in POOLS for s in (64, 128, 1000)}
    assert all(seed == 1 for _, size, seed in cells if size in (64, 128))


def test_same_inputs_same_suggestions(loose_el) -> None:  # type: ignore[no-untyped-def]
    problem = build_problem(loose_el, ("de", "el"))
    first = suggest_cells(loose_el, problem, 4000.0, 3, seed=3)
    assert first == suggest_cells(loose_el, problem, 4000.0, 3, seed=3)


def test_fragment_round_trips_and_launch_enqueues_exactly_those_cells(
    loose_el, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    # The smoke spec's languages are el and hi: rename de -> hi in the laws for launch.
    laws_path = write_laws(loose_el, tmp_path / "laws.json")
    raw = json.loads(laws_path.read_text())
    raw["languages"]["hi"] = raw["languages"].pop("de")
    raw["languages"]["hi"]["language"] = "hi"
    laws_path.write_text(json.dumps(raw))
    out = tmp_path / "suggest"
    assert plan_suggest([str(laws_path), "--budget", "1k", "--cells", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "expected gain" in printed and "plan (" in printed
    fragment = tomllib.loads((out / "cells.toml").read_text())
    suggested = json.loads((out / "suggestions.json").read_text())["suggestions"]
    assert [(c["language"], c["size"], c["seed"]) for c in fragment["grid"]["cells"]] == [
        (c["language"], c["size"], c["seed"]) for c in suggested
    ]
    spec_args = ["smoke", f"out_dir={str(tmp_path / 'sweep')!r}", "grid.sizes=[]"]
    base = load_spec(spec_args[0], spec_args[1:2])  # the product grid, no cells
    with_cells = load_spec(spec_args[0], spec_args[1:], [out / "cells.toml"])
    assert with_cells.study_name() == base.study_name()
    assert (
        plan_sweep(["launch", *spec_args, "--cells", str(out / "cells.toml"), "--workers", "0"])
        == 0
    )
    ledger = Ledger.open(ledger_config(with_cells), create=False)
    enqueued = sorted((r.cell.language, r.cell.n_examples, r.cell.seed) for r in ledger.records())
    bases = [(code, 0, 0) for code in ("el", "hi")]
    expected = sorted(bases + [(c["language"], c["size"], c["seed"]) for c in suggested])
    assert enqueued == expected
    # Launching again adds nothing.
    assert (
        plan_sweep(["launch", *spec_args, "--cells", str(out / "cells.toml"), "--workers", "0"])
        == 0
    )
    assert len(Ledger.open(ledger_config(with_cells), create=False).records()) == len(expected)


def test_run_overhead_picks_for_gain_per_example(loose_el) -> None:  # type: ignore[no-untyped-def]
    """With a run overhead, the first cell maximises expected gain per example of cost, so it
    is never larger than the cell picked for its gain alone, and never worse per example."""
    problem = build_problem(loose_el, ("de", "el"))
    overhead = 40.0
    plain = suggest_cells(loose_el, problem, 4000.0, 1, noise_sd=0.005)
    frugal = suggest_cells(
        loose_el, problem, 4000.0, 1, noise_sd=0.005, run_overhead_examples=overhead
    )
    first, cheap = plain.suggestions[0], frugal.suggestions[0]
    assert cheap.expected_gain > 0
    assert cheap.cell.n_examples <= first.cell.n_examples
    per_example = [s.expected_gain / (s.cell.n_examples + overhead) for s in (first, cheap)]
    assert per_example[1] >= per_example[0]


def test_negative_run_overhead_is_refused(loose_el, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    problem = build_problem(loose_el, ("de", "el"))
    with pytest.raises(ConfigError, match="--run-overhead"):
        suggest_cells(loose_el, problem, 4000.0, 1, run_overhead_examples=-1.0)
    laws_path = write_laws(loose_el, tmp_path / "laws.json")
    argv = [str(laws_path), "--budget", "4k", "--run-overhead", "-5", "--out", str(tmp_path)]
    assert plan_suggest(argv) != 0


def test_the_plan_it_prints_is_plan_allocates_default(loose_el, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """plan-suggest (and so each `plan-sweep rounds` line) reports the plan plan-allocate
    writes by default for the same laws and budget, not another planner's."""
    from planner.cli import main as plan_allocate
    from planner.design_cli import plan_summary

    laws_path = write_laws(loose_el, tmp_path / "laws.json")
    problem = build_problem(loose_el, tuple(loose_el.fits))
    summary = plan_summary(problem, 100.0)  # where the two planners differ: 34/66 vs 33/67
    out = tmp_path / "allocate"
    assert plan_allocate([str(laws_path), "--budget", "100", "--no-plots", "--out", str(out)]) == 0
    mixture = json.loads((out / "mixture.json").read_text())
    assert summary["examples"] == {c: v["examples"] for c, v in mixture["languages"].items()}
