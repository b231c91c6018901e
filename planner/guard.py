"""Never worse than the reference: the plan moves away from a baseline only as far as the
evidence carries it.

The planner's optimum `x*` is found on the predicted curves; the reference `r` is a baseline
allocation (uniform unless named). The guard walks `x(t) = r + t * (x* - r)` from `t = 1`
down to `t = 0` in `steps` steps and keeps the largest `t` at which `x(t)` beats `r` in at
least `confidence` of the predictive draws (the law mixture, parameter noise and reach error
of `fits.predictive`) with a positive expected gain. Every `x(t)` is within the floors and
caps (both ends are), and the draws are paired, so each comparison is the same draw of every
curve under both allocations.

- `t = 1`: the evidence supports the plan;
- `0 < t < 1`: the full plan is too uncertain, a part of the way is not;
- `t = 0`: the sweep cannot tell the languages apart at this budget, and the plan is the
  reference.

Without draws (a laws file without bootstrap) there is nothing to weigh: the plan is kept and
the decision says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from planner.allocation import Allocation, BaseAllocator, Constraints, make_allocation
from planner.optimiser import Objective, PlannerAllocator, objective_per_draw
from planner.values import FloatArray, LawValue, ValueModel

DEFAULT_CONFIDENCE = 0.9
DEFAULT_STEPS = 20
DEFAULT_REFERENCE = "uniform"


@dataclass(frozen=True)
class GuardSettings:
    """How `plan-allocate` guards its plan: the baseline it must beat, and how surely.

    Attributes:
        reference: a baseline's name (`planner.baselines.baseline_allocators`).
        confidence: share of the predictive draws the plan must win, in (0.5, 1).
    """

    reference: str = DEFAULT_REFERENCE
    confidence: float = DEFAULT_CONFIDENCE


@dataclass(frozen=True)
class GuardDecision:
    """What the guard decided, and on what evidence.

    Attributes:
        reference: the baseline the plan is compared with.
        share: how far the plan moved from the reference toward the optimum, in [0, 1].
        win_probability: share of draws in which the chosen plan beats the reference (NaN
            when it is the reference, or without draws).
        optimum_win_probability: the same for the planner's unshrunk optimum.
        expected_gain: the chosen plan's mean gain over the reference across draws, in the
            objective's units (utility: higher is better).
        confidence: the share of draws a plan must win.
        n_draws: draws weighed (0: not checked).
        optimum_examples: the planner's unshrunk optimum, whole examples per language.
    """

    reference: str
    share: float
    win_probability: float
    optimum_win_probability: float
    expected_gain: float
    confidence: float
    n_draws: int
    optimum_examples: tuple[int, ...] = ()

    @property
    def verdict(self) -> str:
        """`plan`, `shrunk`, `reference` or `unchecked`."""
        if self.n_draws == 0:
            return "unchecked"
        if self.share >= 1.0:
            return "plan"
        return "reference" if self.share <= 0.0 else "shrunk"

    def summary(self) -> str:
        """One sentence for the report."""
        ref, need = self.reference, f"{self.confidence:.0%}"
        if self.verdict == "unchecked":
            return (
                f"Not compared with {ref} over draws: the laws file has no bootstrap draws "
                "(refit with plan-fit's bootstrap to check the plan against the baselines)."
            )
        optimum = f"{self.optimum_win_probability:.0%}"
        if self.verdict == "plan":
            return (
                f"The plan beats {ref} in {self.win_probability:.0%} of the predictive draws "
                f"(at least {need} needed)."
            )
        if self.verdict == "shrunk":
            return (
                f"The planner's optimum beats {ref} in only {optimum} of the predictive draws, "
                f"so the plan moves {self.share:.0%} of the way from {ref} toward it, where it "
                f"wins in {self.win_probability:.0%} (at least {need} needed)."
            )
        return (
            f"The sweep cannot tell these languages apart at this budget: the planner's "
            f"optimum beats {ref} in only {optimum} of the predictive draws (at least {need} "
            f"needed), so the plan is {ref}."
        )

    def to_dict(self) -> dict[str, object]:
        """JSON-safe form for the mixture file."""

        def num(x: float) -> float | None:
            return None if not np.isfinite(x) else round(float(x), 6)

        return {
            "reference": self.reference,
            "verdict": self.verdict,
            "share_of_the_way_to_the_optimum": num(self.share),
            "win_probability": num(self.win_probability),
            "optimum_win_probability": num(self.optimum_win_probability),
            "expected_gain": num(self.expected_gain),
            "confidence": self.confidence,
            "n_draws": self.n_draws,
            "optimum_examples": list(self.optimum_examples),
            "summary": self.summary(),
        }


def decision_from_dict(entry: Mapping[str, Any]) -> GuardDecision:
    """The `GuardDecision` that `GuardDecision.to_dict` wrote."""

    def num(key: str) -> float:
        value = entry.get(key)
        return float("nan") if value is None else float(value)

    optimum = entry.get("optimum_examples") or []
    return GuardDecision(
        reference=str(entry["reference"]),
        share=num("share_of_the_way_to_the_optimum"),
        win_probability=num("win_probability"),
        optimum_win_probability=num("optimum_win_probability"),
        expected_gain=num("expected_gain"),
        confidence=num("confidence"),
        n_draws=int(entry.get("n_draws") or 0),
        optimum_examples=tuple(int(x) for x in optimum),
    )


class GuardedPlanner(BaseAllocator):
    """The planner, shrunk toward a reference allocation until it wins in most draws.

    Args:
        planner: finds the optimum.
        reference: the baseline the plan must beat (its `name` is reported).
        confidence: share of draws the plan must win, in (0.5, 1).
        steps: grid steps between the reference and the optimum.
    """

    name = "planner"

    def __init__(
        self,
        planner: PlannerAllocator,
        reference: BaseAllocator,
        confidence: float = DEFAULT_CONFIDENCE,
        steps: int = DEFAULT_STEPS,
    ) -> None:
        if not 0.5 < confidence < 1.0:
            raise ValueError(f"The guard's confidence must lie in (0.5, 1); got {confidence}.")
        self.planner = planner
        self.reference = reference
        self.confidence = confidence
        self.steps = steps

    def allocate(self, values: ValueModel, budget: float, constraints: Constraints) -> Allocation:
        """See `BaseAllocator.allocate`."""
        return self.decide(values, budget, constraints)[0]

    def decide(
        self, values: ValueModel, budget: float, constraints: Constraints
    ) -> tuple[Allocation, GuardDecision]:
        """The guarded plan and the decision behind it."""
        optimum = self.planner.allocate(values, budget, constraints)
        reference = self.reference.allocate(values, budget, constraints)
        nan = float("nan")
        if not isinstance(values, LawValue) or values.n_draws == 0:
            return optimum, GuardDecision(
                self.reference.name, 1.0, nan, nan, nan, self.confidence, 0, optimum.examples
            )
        objective = self.planner.objective
        if objective is Objective.TARGET:
            objective = Objective.MEAN
        weights = np.asarray(constraints.weights, dtype=float)

        def per_draw(allocation: Allocation) -> FloatArray:
            x = np.asarray(allocation.examples, dtype=float) * np.asarray(
                constraints.units_per_example
            )
            return objective_per_draw(values.value_draws(x), weights, objective)

        base = per_draw(reference)
        top = np.asarray(optimum.amounts)
        low = np.asarray(reference.amounts)
        optimum_gain = per_draw(optimum) - base
        optimum_win = float(np.mean(optimum_gain > 0))
        for k in range(self.steps, 0, -1):
            share = k / self.steps
            if k == self.steps:
                candidate, gains = optimum, optimum_gain
            else:
                method = f"{optimum.method}, {share:.0%} of the way from {self.reference.name}"
                x = low + share * (top - low)
                candidate = make_allocation(self.name, method, x, budget, constraints)
                gains = per_draw(candidate) - base
            win = float(np.mean(gains > 0))
            if win >= self.confidence and float(gains.mean()) > 0:
                decision = GuardDecision(
                    self.reference.name,
                    share,
                    win,
                    optimum_win,
                    float(gains.mean()),
                    self.confidence,
                    values.n_draws,
                    optimum.examples,
                )
                return candidate, decision
        as_reference = make_allocation(
            self.name,
            f"{self.reference.name} (the sweep cannot tell the languages apart)",
            low,
            budget,
            constraints,
        )
        decision = GuardDecision(
            self.reference.name,
            0.0,
            nan,
            optimum_win,
            0.0,
            self.confidence,
            values.n_draws,
            optimum.examples,
        )
        return as_reference, decision
