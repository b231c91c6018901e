"""Predicted outcomes of allocations, with intervals, and the planner's gains over baselines.

Everything is reported in the metric's own units. An objective is the weighted mean metric
(`mean`, and `target` for the score columns) or the worst language's metric (`maxmin`: the
lowest score, or the highest loss). A gain is the improvement of the planner over a baseline
in the metric's good direction (a positive gain is better for the planner, for scores and
losses alike). Intervals are central percentile intervals over the bootstrap draws, paired
across languages and allocations by draw index.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from muit_core import AllocationError
from planner.allocation import Allocation, BaseAllocator
from planner.optimiser import Objective, Robustness, aggregate_draws, objective_per_draw
from planner.problem import Problem
from planner.values import FloatArray

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

    A budget an allocator cannot split gives NaN.
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
            point, draws = objective_draws(problem, np.array(allocation.amounts), objective)
            points.append(Estimate.from_draws(problem.sign * point, problem.sign * draws))
        curves[allocator.name] = points
    return curves
