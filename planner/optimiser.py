"""The planner: the allocation that maximises the predicted objective.

Exact where it can be (water-filling for concave laws and the weighted mean, level-filling for
monotone laws and the max-min objective), global search otherwise (non-concave laws, robust
quantiles). Objectives work on utilities (the metric, negated when lower is better):

- `mean`: maximise sum_i w_i u_i(x_i) / sum_i w_i, the weighted mean score or the negated
  weighted mean loss;
- `maxmin`: maximise min_i u_i(x_i) (weights are ignored); ties are broken in favour of the
  next worst language, so a capped language does not freeze the rest;
- `target`: give each language with a target the least amount that reaches it; a budget
  beyond that is spent by the `mean` objective above those amounts.

Robustness uses the laws' bootstrap draws (paired across languages by index): the expected
objective over draws, or a lower quantile of it.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from muit_core import AllocationError, ConfigError, format_count
from planner.allocation import Allocation, BaseAllocator, Constraints, make_allocation
from planner.search import global_search
from planner.solvers import (
    is_concave,
    is_monotone,
    level_fill,
    minimal_amounts,
    water_fill,
)
from planner.values import Aggregate, FloatArray, LawValue, ValueModel


class Objective(enum.Enum):
    """What the planner maximises."""

    MEAN = "mean"
    MAXMIN = "maxmin"
    TARGET = "target"


@dataclass(frozen=True)
class Robustness:
    """Optimise over the bootstrap draws instead of the fitted parameters.

    Attributes:
        quantile: None for the expected objective over draws; else the lower quantile of the
            objective to maximise (0.1: the value the plan beats in 90% of the draws).
    """

    quantile: float | None = None

    def __post_init__(self) -> None:
        if self.quantile is not None and not 0.0 < self.quantile < 1.0:
            raise ConfigError(f"--quantile must lie in (0, 1), e.g. 0.1; got {self.quantile}.")

    @property
    def label(self) -> str:
        """'expected' or 'q0.1'."""
        return "expected" if self.quantile is None else f"q{self.quantile:g}"


def objective_per_draw(
    utilities: FloatArray, weights: FloatArray, objective: Objective
) -> FloatArray:
    """The objective (utility units) from utilities of shape (n_languages, ...) per column."""
    if objective is Objective.MAXMIN:
        return np.asarray(utilities.min(axis=0), dtype=float)
    w = np.asarray(weights, dtype=float).reshape((-1,) + (1,) * (utilities.ndim - 1))
    return np.asarray((w * utilities).sum(axis=0) / w.sum(), dtype=float)


def aggregate_draws(per_draw: FloatArray, robust: Robustness) -> float:
    """Expected value, or the robust lower quantile, of per-draw objectives."""
    if robust.quantile is None:
        return float(np.mean(per_draw))
    return float(np.quantile(per_draw, robust.quantile))


class PlannerAllocator(BaseAllocator):
    """Maximise the predicted objective under floors and caps.

    Args:
        objective: what to maximise.
        robust: optimise over bootstrap draws (needs a `LawValue` with draws), or None.
        targets: per-language metric targets for `Objective.TARGET` (NaN: no target), in
            `constraints.languages` order.
        higher_is_better: the metric's direction (how targets and messages read).
        seed: seed of the global search.
    """

    name = "planner"

    def __init__(
        self,
        objective: Objective = Objective.MEAN,
        robust: Robustness | None = None,
        targets: Sequence[float] | None = None,
        higher_is_better: bool = True,
        seed: int = 0,
    ) -> None:
        if objective is Objective.TARGET and targets is None:
            raise ConfigError("--objective target needs --targets, e.g. --targets el=0.55.")
        self.objective = objective
        self.robust = robust
        self.targets = None if targets is None else np.asarray(targets, dtype=float)
        self.sign = 1.0 if higher_is_better else -1.0
        self.seed = seed

    def _model(self, values: ValueModel) -> ValueModel:
        """The per-language curve the exact solvers use: point, or mean over draws."""
        if self.robust is None:
            return values
        if not isinstance(values, LawValue) or values.n_draws == 0:
            raise ConfigError(
                "--robust needs bootstrap draws in the laws file; refit with plan-fit's "
                "bootstrap or drop --robust."
            )
        if self.objective is Objective.TARGET and self.robust.quantile is not None:
            return values.with_aggregate(Aggregate.QUANTILE, self.robust.quantile)
        return values.with_aggregate(Aggregate.MEAN)

    def required_amounts(self, values: ValueModel, constraints: Constraints) -> FloatArray:
        """The least amount per language that reaches its target (floors elsewhere).

        Raises:
            AllocationError: a target is out of reach within a language's cap.
        """
        assert self.targets is not None
        model = self._model(values)
        lo, hi = constraints.lower, constraints.upper
        need = minimal_amounts(model, self.sign * self.targets, lo, hi)
        for i, lang in enumerate(constraints.languages):
            if np.isnan(need[i]):
                best = self.sign * float(model.value(hi)[i])
                raise AllocationError(
                    f"The target {self.targets[i]:g} for {lang!r} is out of reach: even its cap "
                    f"of {format_count(hi[i])} {constraints.unit} predicts {best:.4g}; lower "
                    "the target, raise --max-epochs or add data."
                )
        return np.maximum(need, lo)

    def allocate(self, values: ValueModel, budget: float, constraints: Constraints) -> Allocation:
        """See `BaseAllocator.allocate`."""
        constraints.check_budget(budget)
        lo, hi = constraints.lower, constraints.upper
        objective = self.objective
        if objective is Objective.TARGET:
            # Whole examples, rounded up, become the floors, so rounding keeps every target.
            units = np.asarray(constraints.units_per_example)
            need = np.ceil(self.required_amounts(values, constraints) / units - 1e-9)
            constraints = dataclasses.replace(
                constraints, min_examples=tuple(int(n) for n in need)
            )
            lo = constraints.lower
            if lo.sum() > budget * (1 + 1e-12):
                raise AllocationError(
                    f"Reaching the targets needs {format_count(lo.sum())} {constraints.unit}, "
                    f"{format_count(lo.sum() - budget)} more than --budget "
                    f"{format_count(budget)}; raise --budget or omit it to get the minimum."
                )
            objective = Objective.MEAN
        amounts, method = self._solve(values, objective, budget, lo, hi, constraints)
        return make_allocation(self.name, method, amounts, budget, constraints)

    def _solve(
        self,
        values: ValueModel,
        objective: Objective,
        budget: float,
        lo: FloatArray,
        hi: FloatArray,
        constraints: Constraints,
    ) -> tuple[FloatArray, str]:
        model = self._model(values)
        weights = np.asarray(constraints.weights, dtype=float)
        exact: FloatArray | None = None
        if objective is Objective.MEAN and is_concave(model, lo, hi):
            exact = water_fill(model, weights, lo, hi, budget)
        elif objective is Objective.MAXMIN and is_monotone(model, lo, hi):
            exact = level_fill(model, lo, hi, budget)
        needs_draws = self.robust is not None and (
            self.robust.quantile is not None or objective is Objective.MAXMIN
        )
        if exact is not None and not needs_draws:
            return exact, "water-filling" if objective is Objective.MEAN else "level-filling"

        if needs_draws:
            assert isinstance(values, LawValue) and self.robust is not None
            robust = self.robust

            def score(x: FloatArray) -> float:
                per_draw = objective_per_draw(values.value_draws(x), weights, objective)
                return aggregate_draws(per_draw, robust)

        else:

            def score(x: FloatArray) -> float:
                return float(objective_per_draw(model.value(x), weights, objective))

        starts = [] if exact is None else [exact]
        x = global_search(score, lo, hi, budget, starts, seed=self.seed)
        return x, "global search"
