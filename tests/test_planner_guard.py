"""A plan that never does worse than its reference: the guard shrinks toward a baseline until
the plan beats it in most predictive draws, and says which happened."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_planner_helpers import score_fits, write_score_laws

from fits import LAWS, LawsFile
from planner import (
    Constraints,
    GuardedPlanner,
    LawCurve,
    LawValue,
    Objective,
    PlannerAllocator,
    ProportionalAllocator,
    UniformAllocator,
    build_problem,
    read_mixture,
    report_from_mixture,
)
from planner.cli import main


def loglinear_value(slopes: list[float], spread: float, n_draws: int = 400) -> LawValue:
    """Scores `a + b * log(d)` per language, with draws of `b` spread by `spread` (relative)."""
    rng = np.random.default_rng(0)
    curves = []
    for i, b in enumerate(slopes):
        draws = {
            "a": (10.0,) * n_draws,
            "b": tuple(b * np.exp(spread * rng.standard_normal(n_draws))),
        }
        curves.append(LawCurve(f"l{i}", LAWS["loglinear"], {"a": 10.0, "b": b}, draws))
    return LawValue(curves)


CAPS = Constraints.simple([100_000] * 3)


def test_clear_evidence_keeps_the_plan() -> None:
    values = loglinear_value([1.0, 3.0, 6.0], spread=0.02)
    guard = GuardedPlanner(PlannerAllocator(), UniformAllocator())
    plan, decision = guard.decide(values, 30_000.0, CAPS)
    optimum = PlannerAllocator().allocate(values, 30_000.0, CAPS)
    assert decision.verdict == "plan" and decision.share == 1.0
    assert plan.examples == optimum.examples
    assert decision.win_probability >= 0.9
    assert "beats uniform in" in decision.summary()


def test_languages_the_draws_cannot_tell_apart_get_the_reference() -> None:
    values = loglinear_value([3.0, 3.1, 2.9], spread=0.5)
    guard = GuardedPlanner(PlannerAllocator(), UniformAllocator())
    plan, decision = guard.decide(values, 30_000.0, CAPS)
    assert decision.verdict == "reference" and decision.share == 0.0
    assert plan.examples == (10_000, 10_000, 10_000)
    assert decision.optimum_win_probability < 0.9
    assert decision.summary().startswith("The sweep cannot tell these languages apart")


def test_a_noisy_edge_moves_part_of_the_way() -> None:
    values = loglinear_value([2.0, 3.0, 4.0], spread=0.3)
    guard = GuardedPlanner(PlannerAllocator(), UniformAllocator(), confidence=0.8)
    plan, decision = guard.decide(values, 30_000.0, CAPS)
    optimum = PlannerAllocator().allocate(values, 30_000.0, CAPS)
    assert decision.verdict in ("shrunk", "plan")
    if decision.verdict == "shrunk":
        assert 0 < decision.share < 1
        # Between uniform and the optimum, language by language.
        for got, top in zip(plan.examples, optimum.examples, strict=True):
            assert min(10_000, top) - 1 <= got <= max(10_000, top) + 1
    assert decision.win_probability >= 0.8 and decision.expected_gain > 0
    assert sum(plan.examples) == 30_000


def test_the_guard_never_loses_to_its_reference_in_expectation() -> None:
    rng = np.random.default_rng(5)
    for _ in range(10):
        slopes = list(rng.uniform(1.0, 5.0, 3))
        values = loglinear_value(slopes, spread=float(rng.uniform(0.05, 0.8)))
        for reference in (UniformAllocator(), ProportionalAllocator()):
            caps = Constraints.simple([int(c) for c in rng.integers(20_000, 200_000, 3)])
            guard = GuardedPlanner(PlannerAllocator(), reference)
            plan, decision = guard.decide(values, 40_000.0, caps)
            ref = reference.allocate(values, 40_000.0, caps)
            mine = values.value_draws(np.array(plan.examples, dtype=float)).mean(axis=0)
            theirs = values.value_draws(np.array(ref.examples, dtype=float)).mean(axis=0)
            gains = mine - theirs  # per draw: the mean score over languages
            assert gains.mean() >= -1e-12
            assert decision.reference == reference.name


def test_without_draws_the_plan_is_kept_and_says_so() -> None:
    values = LawValue(
        [LawCurve(f"l{i}", LAWS["loglinear"], {"a": 1.0, "b": b}) for i, b in enumerate((1, 2, 3))]
    )
    plan, decision = GuardedPlanner(PlannerAllocator(), UniformAllocator()).decide(
        values, 30_000.0, CAPS
    )
    assert decision.verdict == "unchecked" and "no bootstrap draws" in decision.summary()
    assert plan.examples == PlannerAllocator().allocate(values, 30_000.0, CAPS).examples


def test_plan_allocate_reports_the_decision_and_records_the_guard(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    laws = write_score_laws(tmp_path / "laws.json")
    out = tmp_path / "plan"
    argv = [str(laws), "--budget", "600k", "--reference", "proportional", "--out", str(out)]
    assert main([*argv, "--confidence", "0.8", "--no-plots"]) == 0
    table = capsys.readouterr().out
    assert "Decision: " in table and "proportional" in table.split("Decision: ")[1].splitlines()[0]
    mixture = json.loads((out / "mixture.json").read_text())
    guard = mixture["guard"]
    assert guard["reference"] == "proportional" and guard["confidence"] == 0.8
    assert guard["decision"]["verdict"] in ("plan", "shrunk", "reference")
    report = report_from_mixture(
        read_mixture(out / "mixture.json"), LawsFile("chrf", True, score_fits())
    )
    assert report.guard is not None and report.guard.reference == "proportional"
    assert report.decision is not None
    assert report.decision.verdict == guard["decision"]["verdict"]


def test_reference_none_plans_without_the_guard(tmp_path: Path) -> None:
    laws = write_score_laws(tmp_path / "laws.json")
    argv = [str(laws), "--budget", "600k", "--reference", "none", "--out", str(tmp_path / "o")]
    assert main([*argv, "--no-plots"]) == 0
    mixture = json.loads((tmp_path / "o" / "mixture.json").read_text())
    assert mixture["guard"] is None
    problem = build_problem(LawsFile("chrf", True, score_fits()), tuple(score_fits()))
    optimum = PlannerAllocator(Objective.MEAN).allocate(
        problem.values, 600_000.0, problem.constraints
    )
    assert (
        tuple(mixture["languages"][c]["examples"] for c in problem.languages) == optimum.examples
    )
