"""Laws-file glue, bootstrap draws, intervals and the robust objectives."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_planner_helpers import SCORE_LANGUAGES, score_fits

from fits import FitResult, LawsFile
from muit_core import ConfigError
from planner import (
    Aggregate,
    Objective,
    PlannerAllocator,
    Problem,
    Robustness,
    Unit,
    aggregate_draws,
    baseline_allocators,
    build_problem,
    evaluate,
    gain,
    objective_per_draw,
    water_fill,
)


def score_problem(
    n_draws: int = 40, languages: tuple[str, ...] = tuple(SCORE_LANGUAGES), **kwargs: object
) -> Problem:
    """The synthetic chrF problem, with `build_problem` options."""
    laws = LawsFile(metric="chrf", higher_is_better=True, fits=score_fits(n_draws=n_draws))
    return build_problem(laws, languages, **kwargs)  # type: ignore[arg-type]


def test_law_value_agrees_with_fit_results() -> None:
    fits = score_fits(n_draws=25)
    problem = score_problem(25)
    amounts = np.array([1_000.0, 5_000, 20_000, 50_000, 100_000, 30_000])
    metric = problem.values.metric(amounts)
    draws = problem.values.metric_draws(amounts)
    for i, lang in enumerate(problem.languages):
        assert metric[i] == pytest.approx(float(fits[lang](amounts[i])), rel=1e-12)
        expected = fits[lang].predict_draws([amounts[i]])[:, 0]
        assert draws[i] == pytest.approx(expected, rel=1e-12)


def test_fixed_inputs_and_losses_are_passed_through() -> None:
    fit = FitResult(
        language="el",
        law="chinchilla",
        params={"e": 1.8, "a": 482.0, "alpha": 0.35, "b": 2085.0, "beta": 0.37},
        stderr={},
        metric="heldout_ce",
        higher_is_better=False,
        n_points=9,
        d_min=10.0,
        d_max=1e4,
        success=True,
        message="",
        data={"n_available": 10_000},
        fixed={"n": 1.35e8},
    )
    problem = build_problem(LawsFile("heldout_ce", False, {"el": fit}), ["el"])
    d = np.array([3_000.0])
    assert problem.values.metric(d)[0] == pytest.approx(float(fit(d)[0]))
    assert problem.values.value(d)[0] == pytest.approx(-float(fit(d)[0]))  # loss: negated
    assert problem.values.marginal(d)[0] > 0  # more data lowers the loss


def test_units_caps_and_floors_from_the_laws_file() -> None:
    problem = score_problem(0, unit=Unit.TOKENS, max_epochs=2.5, floors={"hi": 1_000})
    c = problem.constraints
    tpe = {lang: spec[4] for lang, spec in SCORE_LANGUAGES.items()}
    assert c.units_per_example == tuple(tpe.values())
    assert c.max_examples == tuple(int(spec[0] * 2.5) for spec in SCORE_LANGUAGES.values())
    assert c.min_examples[c.languages.index("hi")] == 1_000
    assert c.upper[0] == pytest.approx(c.max_examples[0] * tpe["el"])
    # A tokens budget is spent in tokens; whole examples come out per language.
    allocation = PlannerAllocator().allocate(problem.values, 20e6, c)
    tokens = sum(e * u for e, u in zip(allocation.examples, c.units_per_example, strict=True))
    assert tokens == pytest.approx(20e6, rel=1e-5)


def test_intervals_bracket_point_predictions_and_gains_are_paired() -> None:
    problem = score_problem(40)
    c = problem.constraints
    planner = PlannerAllocator().allocate(problem.values, 600_000.0, c)
    uniform = baseline_allocators()[0].allocate(problem.values, 600_000.0, c)
    evaluation = evaluate(problem, planner, Objective.MEAN)
    for score in evaluation.scores:
        assert score.low <= score.value <= score.high
    assert evaluation.objective.low <= evaluation.objective.value <= evaluation.objective.high
    g = gain(problem, planner, uniform, Objective.MEAN)
    assert g.value > 0
    # Paired draws: the gain's interval is far narrower than either objective's.
    other = evaluate(problem, uniform, Objective.MEAN).objective
    assert g.high - g.low < 0.5 * (other.high - other.low)


def test_no_draws_means_no_intervals_and_no_robust() -> None:
    problem = score_problem(0)
    allocation = PlannerAllocator().allocate(problem.values, 100_000.0, problem.constraints)
    evaluation = evaluate(problem, allocation, Objective.MEAN)
    assert math.isnan(evaluation.objective.low)
    with pytest.raises(ConfigError, match="--robust needs bootstrap draws"):
        PlannerAllocator(robust=Robustness()).allocate(problem.values, 1e5, problem.constraints)


def test_non_finite_draws_are_dropped_for_every_language() -> None:
    fits = score_fits(n_draws=10)
    el = fits["el"]
    draws = dict(el.draws)
    draws["a"] = (math.nan, *draws["a"][1:])
    # Without its predictive mixture (a laws file from before it) el plans on these draws.
    fits["el"] = FitResult(**{**el.__dict__, "draws": draws, "predictive": None})
    problem = build_problem(LawsFile("chrf", True, fits), tuple(fits))
    assert problem.values.n_draws == 9
    assert np.all(np.isfinite(problem.values.metric_draws(np.full(6, 1_000.0))))


def test_robust_expected_is_exact_water_filling_on_mean_curves() -> None:
    problem = score_problem(40)
    c = problem.constraints
    robust = PlannerAllocator(robust=Robustness()).allocate(problem.values, 400_000.0, c)
    assert robust.method == "water-filling"
    mean_curves = problem.values.with_aggregate(Aggregate.MEAN)
    x = water_fill(mean_curves, np.ones(6), c.lower, c.upper, 400_000.0)
    assert np.array(robust.amounts) == pytest.approx(x, rel=1e-9)
    # The expected objective is maximal: no baseline beats it.
    weights = np.array(c.weights)
    best = aggregate_draws(
        objective_per_draw(problem.values.value_draws(x), weights, Objective.MEAN), Robustness()
    )
    for allocator in baseline_allocators():
        y = np.array(allocator.allocate(problem.values, 400_000.0, c).amounts)
        per_draw = objective_per_draw(problem.values.value_draws(y), weights, Objective.MEAN)
        assert aggregate_draws(per_draw, Robustness()) <= best + 1e-12


def test_robust_quantile_beats_the_point_plan_at_that_quantile() -> None:
    problem = score_problem(30, languages=("de", "ja", "hi"))
    c = problem.constraints
    budget = 100_000.0
    quantile = Robustness(0.1)
    robust = PlannerAllocator(robust=quantile).allocate(problem.values, budget, c)
    assert robust.method == "global search"
    point = PlannerAllocator().allocate(problem.values, budget, c)
    weights = np.array(c.weights)

    def q10(amounts: tuple[float, ...]) -> float:
        per_draw = objective_per_draw(
            problem.values.value_draws(np.array(amounts)), weights, Objective.MEAN
        )
        return aggregate_draws(per_draw, quantile)

    assert q10(robust.amounts) >= q10(point.amounts) - 1e-12
    for allocator in baseline_allocators():
        assert q10(robust.amounts) >= q10(allocator.allocate(problem.values, budget, c).amounts)


def test_quantile_must_be_a_probability() -> None:
    with pytest.raises(ConfigError, match=r"--quantile must lie in \(0, 1\)"):
        Robustness(1.5)
