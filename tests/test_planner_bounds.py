"""A plan never rests on a prediction its metric cannot take, nor on a law that gets worse with
more data: `check_predictions`, through `run_plan`, and the frontier that leaves such points out.
"""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest
from test_planner_helpers import loss_fits, score_fits

from fits import FitResult, LawsFile
from muit_core import DataError
from planner import (
    Objective,
    Problem,
    UniformAllocator,
    build_problem,
    check_predictions,
    frontier,
    run_plan,
)


def _loss_problem(code: str, **params: float) -> Problem:
    """The three cross-entropy power laws, with `code`'s parameters changed."""
    fits = loss_fits()
    fits[code] = dataclasses.replace(fits[code], params={**fits[code].params, **params})
    laws = LawsFile(metric="heldout_ce", higher_is_better=False, fits=fits)
    return build_problem(laws, tuple(fits))


def _score_problem(pool: int, **params: float) -> Problem:
    """chrF saturating laws for el and hi, pools of `pool` pairs, hi's parameters changed."""
    fits = {code: fit for code, fit in score_fits(n_draws=0).items() if code in ("el", "hi")}
    fits["hi"] = dataclasses.replace(fits["hi"], params={**fits["hi"].params, **params})
    laws = LawsFile(metric="chrf", higher_is_better=True, fits=fits)
    return build_problem(laws, ("el", "hi"), max_epochs=3.0, available={"el": pool, "hi": pool})


def test_a_loss_below_zero_at_the_planned_amount_is_refused() -> None:
    # hi: CE = -1 + 9 d**-0.35 is below 0 from about 530 examples on.
    problem = _loss_problem("hi", e=-1.0, b=9.0, beta=0.35)
    with pytest.raises(DataError) as caught:
        run_plan(problem, 6_000, Objective.MEAN)
    message = str(caught.value)
    assert re.search(
        r"^The power law for 'hi' predicts heldout_ce=-0\.\d+ at [0-9.]+k? examples in the "
        r"planner's plan, but heldout_ce is at least 0; refit it with plan-fit, or lower "
        r"--max-epochs \(its cap is 3k examples\) and --budget, or leave it out with "
        r"--languages\.$",
        message,
    ), message


def test_a_loss_below_zero_on_the_way_to_the_cap_is_refused() -> None:
    # el: CE = -0.06 + 6 d**-0.5 crosses 0 at 10k examples; its cap is 30k, the plan ~1-3k.
    problem = _loss_problem("el", e=-0.06, b=6.0, beta=0.5)
    with pytest.raises(
        DataError,
        match=r"'el' predicts heldout_ce=-[0-9.e-]+ at [0-9.]+k examples on the way to its cap "
        r"\(the frontier's range\)",
    ):
        run_plan(problem, 3_000, Objective.MEAN)


def test_a_loss_that_rises_with_data_is_refused_not_starved() -> None:
    # hi: b < 0 makes the loss rise with data; the planner would give it its floor (0).
    problem = _loss_problem("hi", e=12.0, b=-9.0, beta=0.35)
    with pytest.raises(
        DataError,
        match=r"The power law for 'hi' predicts heldout_ce rising with more data \([0-9.]+ at "
        r"[0-9.]+k? examples, [0-9.]+ at [0-9.]+k? examples\), so a plan would starve it; refit",
    ):
        run_plan(problem, 6_000, Objective.MEAN)


def test_a_negative_score_at_a_small_planned_amount_asks_for_more_budget() -> None:
    # hi with D0 = 40: S(14) = 50 - 280 * 54**-0.28 = -41 chrF.
    problem = _score_problem(10, d0=40.0)
    with pytest.raises(
        DataError,
        match=r"'hi' predicts chrf=-\d+\.?\d* at \d+ examples in the planner's plan, but chrf "
        r"lies between 0 and 100; refit it with plan-fit, or raise --budget or "
        r"--min-per-language \(e\.g\. hi=1k\)\.",
    ):
        run_plan(problem, 28, Objective.MEAN)
    run_plan(_score_problem(10), 28, Objective.MEAN)  # the same plan on possible laws


def test_check_predictions_names_the_baseline_whose_split_is_impossible() -> None:
    problem = _score_problem(10_000, d0=40.0)
    # A split that gives hi nothing is fine for the check only where hi's law allows it: here
    # uniform gives hi 14 examples (S = -41), which it cannot.
    uniform = UniformAllocator().allocate(problem.values, 28, problem.constraints)
    with pytest.raises(DataError, match=r"in the uniform baseline's split"):
        check_predictions(problem, [uniform])


def test_the_frontier_leaves_out_budgets_resting_on_impossible_predictions() -> None:
    problem = _score_problem(10_000, d0=40.0)
    # Uniform at 100: 50 examples each, hi at -29.5 chrF; at 10k: 5k each, hi at 24 chrF.
    curves = frontier(problem, [UniformAllocator()], np.array([100.0, 10_000.0]), Objective.MEAN)
    low, high = curves["uniform"]
    assert math.isnan(low.value)
    assert math.isfinite(high.value) and 0 < high.value < 100


def test_a_fit_missing_a_parameter_is_refused_with_one_sentence() -> None:
    fit = loss_fits()["hi"]
    broken = FitResult(**{**vars(fit), "params": {"e": 1.5, "b": 9.0}})
    laws = LawsFile(metric="heldout_ce", higher_is_better=False, fits={"hi": broken})
    with pytest.raises(DataError, match=r"The power fit for 'hi' lacks the parameter\(s\) beta"):
        build_problem(laws, ("hi",))
