"""Predicted outcomes of allocations, with intervals, and the planner's gains over baselines.

Everything is reported in the metric's own units. An objective is the weighted mean metric
(`mean`, and `target` for the score columns) or the worst language's metric (`maxmin`: the
lowest score, or the highest loss). A gain is the improvement of the planner over a baseline
in the metric's good direction (a positive gain is better for the planner, for scores and
losses alike). Intervals are central percentile intervals over the bootstrap draws, paired
across languages and allocations by draw index.

`check_predictions` refuses a plan that would rest on a prediction the metric cannot take
(`muit_core.METRICS`' bounds) or on a law that gets worse with more data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from muit_core import METRICS, AllocationError, DataError, format_count
from planner.allocation import Allocation, BaseAllocator
from planner.optimiser import Objective, Robustness, aggregate_draws, objective_per_draw
from planner.problem import Problem
from planner.values import FloatArray

if TYPE_CHECKING:
    from numpy.typing import NDArray

INTERVAL_LEVEL = 0.9  # central coverage of every reported interval (5th to 95th percentile)


@dataclass(frozen=True)
class Estimate:
    """A predicted value with its interval (NaN bounds when the laws carry no draws)."""

    value: float
    low: float = math.nan
    high: float = math.nan

    @classmethod
    def from_draws(cls, value: float, draws: FloatArray) -> Estimate:
        """`value` with the `INTERVAL_LEVEL` percentile interval of `draws`."""
        if draws.size == 0:
            return cls(float(value))
        tail = 50.0 * (1.0 - INTERVAL_LEVEL)
        low, high = np.percentile(draws, [tail, 100.0 - tail])
        return cls(float(value), float(low), float(high))

    def as_list(self) -> list[float | None]:
        """[value, low, high] for JSON (None for NaN)."""
        return [None if math.isnan(v) else v for v in (self.value, self.low, self.high)]


@dataclass(frozen=True)
class Evaluation:
    """What an allocation is predicted to give.

    Attributes:
        allocation: the allocation evaluated (its whole examples are what is scored).
        scores: predicted metric per language.
        objective: the objective in metric units.
        robust: the robust aggregate of the objective over draws (metric units), or None.
    """

    allocation: Allocation
    scores: tuple[Estimate, ...]
    objective: Estimate
    robust: float | None = None


def trained_amounts(problem: Problem, allocation: Allocation) -> FloatArray:
    """The allocation's whole examples, in budget units (what training will see)."""
    units = np.array(problem.constraints.units_per_example)
    return np.array(allocation.examples, dtype=float) * units


def _score_objective(objective: Objective) -> Objective:
    return Objective.MEAN if objective is Objective.TARGET else objective


def objective_draws(
    problem: Problem, amounts: FloatArray, objective: Objective
) -> tuple[float, FloatArray]:
    """The objective in utility units at the fitted parameters and per draw."""
    weights = np.array(problem.constraints.weights)
    objective = _score_objective(objective)
    point = float(objective_per_draw(problem.values.value(amounts), weights, objective))
    if problem.values.n_draws == 0:
        return point, np.empty(0)
    per_draw = objective_per_draw(problem.values.value_draws(amounts), weights, objective)
    return point, per_draw


def evaluate(
    problem: Problem,
    allocation: Allocation,
    objective: Objective,
    robust: Robustness | None = None,
) -> Evaluation:
    """Predicted scores and objective of an allocation's whole examples."""
    amounts = trained_amounts(problem, allocation)
    metric = problem.values.metric(amounts)
    draws = problem.values.metric_draws(amounts) if problem.values.n_draws else None
    scores = tuple(
        Estimate.from_draws(metric[i], draws[i] if draws is not None else np.empty(0))
        for i in range(len(metric))
    )
    point, per_draw = objective_draws(problem, amounts, objective)
    sign = problem.sign
    robust_value = None
    if robust is not None and per_draw.size:
        robust_value = sign * aggregate_draws(per_draw, robust)
    return Evaluation(
        allocation, scores, Estimate.from_draws(sign * point, sign * per_draw), robust_value
    )


def gain(
    problem: Problem, planner: Allocation, baseline: Allocation, objective: Objective
) -> Estimate:
    """The planner's predicted improvement over a baseline (metric units, positive = better)."""
    p_point, p_draws = objective_draws(problem, trained_amounts(problem, planner), objective)
    b_point, b_draws = objective_draws(problem, trained_amounts(problem, baseline), objective)
    return Estimate.from_draws(p_point - b_point, p_draws - b_draws)


def budget_to_targets(
    problem: Problem,
    allocator: BaseAllocator,
    targets: FloatArray,
    tolerance: float = 1e-4,
) -> float | None:
    """The least budget at which `allocator` reaches every target, or None if it never does.

    Bisection on the budget (allocators are monotone in it) to `tolerance` relative.
    """
    c = problem.constraints
    wanted = ~np.isnan(targets)
    utility_targets = problem.sign * targets

    def reaches(budget: float) -> bool:
        x = np.array(allocator.allocate(problem.values, budget, c).amounts)
        return bool(np.all(problem.values.value(x)[wanted] >= utility_targets[wanted]))

    low, high = max(float(c.lower.sum()), 1e-9), float(c.upper.sum())
    if not reaches(high):
        return None
    if reaches(low):
        return low
    while high - low > tolerance * high:
        mid = math.sqrt(low * high) if low > 0 else 0.5 * high
        if reaches(mid):
            high = mid
        else:
            low = mid
    return high


def frontier_budgets(problem: Problem, budget: float, n_points: int = 16) -> FloatArray:
    """Log-spaced budgets from a small one (or the floors) to the sum of caps, plus `budget`."""
    c = problem.constraints
    top = float(c.upper.sum())
    bottom = max(float(c.lower.sum()), top * 1e-3, float(np.sum(c.units_per_example)))
    grid = np.geomspace(min(bottom, budget), top, n_points)
    return np.unique(np.append(grid, budget))


def frontier(
    problem: Problem,
    allocators: Sequence[BaseAllocator],
    budgets: FloatArray,
    objective: Objective,
) -> dict[str, list[Estimate]]:
    """Each allocator's predicted objective (metric units) at each budget (continuous amounts).

    A budget an allocator cannot split gives NaN, and so does one where a language's predicted
    metric is not finite or lies outside the metric's bounds (`muit_core.METRICS`).
    """
    curves: dict[str, list[Estimate]] = {}
    for allocator in allocators:
        points = []
        for budget in budgets:
            try:
                allocation = allocator.allocate(problem.values, float(budget), problem.constraints)
            except AllocationError:
                points.append(Estimate(math.nan))
                continue
            amounts = np.array(allocation.amounts)
            if _outside(problem, problem.values.metric(amounts)).any():
                points.append(Estimate(math.nan))  # a curve must not rest on such a value
                continue
            point, draws = objective_draws(problem, amounts, objective)
            points.append(Estimate.from_draws(problem.sign * point, problem.sign * draws))
        curves[allocator.name] = points
    return curves


_CHECK_POINTS = 17  # log-spaced amounts per language between its least planned amount and cap


def _outside(problem: Problem, metric: FloatArray) -> NDArray[np.bool_]:
    """Where predicted metric values are not finite or lie outside the metric's bounds."""
    info = METRICS.get(problem.metric)
    values = np.asarray(metric, dtype=float)
    bad = ~np.isfinite(values)
    if info is not None and info.lowest is not None:
        bad |= values < info.lowest
    if info is not None and info.highest is not None:
        bad |= values > info.highest
    return bad


def _bounds_text(problem: Problem) -> str:
    info = METRICS[problem.metric]
    if info.highest is None:
        return f"{problem.metric} is at least {info.lowest:g}"
    if info.lowest is None:
        return f"{problem.metric} is at most {info.highest:g}"
    return f"{problem.metric} lies between {info.lowest:g} and {info.highest:g}"


def check_predictions(problem: Problem, allocations: Sequence[Allocation]) -> None:
    """Refuse a plan that rests on a prediction the metric cannot take, or on a law that gets
    worse with more data.

    Checked for each language at the point estimates (the fitted parameters): at the whole
    examples of every allocation (the planner's and each baseline's, what is evaluated and
    written), and at log-spaced amounts from the least positive of them up to the language's
    cap (the range the planner searches and the top of the frontier). The predicted metric
    must be finite, within `muit_core.METRICS[problem.metric]`'s bounds (a metric not listed
    has none) and never worse at a larger amount.

    Args:
        problem: the problem planned.
        allocations: the planner's allocation first, then the baselines'.

    Raises:
        DataError: one sentence naming the language, the amount, the predicted value and the
            fix (refit the law, or change --budget, --max-epochs or --min-per-language).
    """
    c = problem.constraints
    units = np.array(c.units_per_example)
    used = np.array([trained_amounts(problem, a) for a in allocations], dtype=float)
    used = used.reshape(len(allocations), len(units))
    least = np.where(used > 0, used, np.inf).min(axis=0, initial=np.inf)
    least = np.where(np.isfinite(least), least, np.maximum(c.lower, units))
    grid = np.geomspace(least, np.maximum(c.upper, least), _CHECK_POINTS)  # (points, languages)
    metric = np.array([problem.values.metric(row) for row in grid])
    utility = problem.sign * metric
    for i, lang in enumerate(problem.languages):
        column = utility[:, i]
        if not np.isfinite(column).all():
            continue  # reported below, as a value the metric cannot take
        drop = np.flatnonzero(np.diff(column) < -1e-9 * max(1.0, float(np.abs(column).max())))
        if drop.size:
            k = int(drop[0])
            worse = "falling" if problem.higher_is_better else "rising"
            raise DataError(
                f"The {problem.laws[i]} law for {lang!r} predicts {problem.metric} {worse} "
                f"with more data ({metric[k, i]:.4g} at {_examples(grid[k, i], units[i])}, "
                f"{metric[k + 1, i]:.4g} at {_examples(grid[k + 1, i], units[i])}), so a plan "
                "would starve it; refit it with plan-fit, or leave it out with --languages."
            )
    for allocation, amounts in zip(allocations, used, strict=True):
        predicted = problem.values.metric(amounts)
        bad = np.flatnonzero(_outside(problem, predicted))
        if bad.size:
            j, name = int(bad[0]), allocation.allocator
            who = "the planner's plan" if name == "planner" else f"the {name} baseline's split"
            raise DataError(_outside_message(problem, j, amounts[j], predicted[j], who))
    bad = np.flatnonzero(_outside(problem, metric).any(axis=0))
    if bad.size:
        j = int(bad[0])
        k = int(np.argmax(_outside(problem, metric[:, j])))
        raise DataError(_outside_message(problem, j, grid[k, j], metric[k, j], None))


def _examples(amount: float, units_per_example: float) -> str:
    return f"{format_count(round(amount / units_per_example))} examples"


def _outside_message(
    problem: Problem, i: int, amount: float, value: float, who: str | None
) -> str:
    """The sentence for language `i`, predicted at `value` (impossible) at `amount`, in `who`'s
    allocation (None: on the way to its cap)."""
    c = problem.constraints
    lang, metric = problem.languages[i], problem.metric
    at = _examples(amount, c.units_per_example[i])
    cap = f"its cap is {format_count(c.max_examples[i])} examples"
    if math.isfinite(value):
        info = METRICS[metric]
        said, can = f"{metric}={value:.4g}", _bounds_text(problem)
        # With a law that improves with data, more data moves a score up and a loss down.
        too_much = (info.lowest is not None and value < info.lowest) != problem.higher_is_better
    else:
        said, can, too_much = f"{metric}={value}", f"{metric} is a finite number", True
    where = "on the way to its cap (the frontier's range)" if who is None else f"in {who}"
    if too_much:
        fix = f"lower --max-epochs ({cap}) and --budget, or leave it out with --languages"
    else:
        fix = f"raise --budget or --min-per-language (e.g. {lang}=1k)"
    return (
        f"The {problem.laws[i]} law for {lang!r} predicts {said} at {at} {where}, but {can}; "
        f"refit it with plan-fit, or {fix}."
    )
