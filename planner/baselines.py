"""The heuristics the planner is compared against, as allocators (like for like).

Every baseline fixes sampling shares without looking at the laws, then respects the same
floors and caps as the planner: what a cap cuts off is redistributed over the other languages
in proportion to their shares, repeatedly, and a language below its floor is raised to it
(`split_capped`). Shares, with n_i a language's available data (one epoch, budget units):

- uniform: equal shares;
- proportional: n_i;
- temperature sampling: n_i ** (1 / T), with T = 3.33 or 5 as in mT5 / XLM-R practice;
- UniMax (Chung et al. 2023): languages in order of how much they can take (by size when
  floors are equal), each gets min(what is left / languages left, its cap).

Uniform with redistribution and UniMax give the same split whenever floors are zero, since
both are min(tau, cap_i); they differ with floors: UniMax spreads only the budget above the
floors, uniform spreads the whole budget and lifts languages below their floor.
"""

from __future__ import annotations

import numpy as np

from planner.allocation import (
    Allocation,
    BaseAllocator,
    Constraints,
    make_allocation,
    split_capped,
)
from planner.values import FloatArray, ValueModel

TEMPERATURES = (3.33, 5.0)  # the two temperatures DESIGN.md asks for


class UniformAllocator(BaseAllocator):
    """Equal shares; a capped language's excess goes equally to the others."""

    name = "uniform"

    def allocate(self, values: ValueModel, budget: float, constraints: Constraints) -> Allocation:
        """See `BaseAllocator.allocate`; `values` is ignored."""
        constraints.check_budget(budget)
        shares = np.ones(len(constraints.languages))
        amounts = split_capped(shares, budget, constraints.lower, constraints.upper)
        return make_allocation(self.name, "capped shares", amounts, budget, constraints)


class ProportionalAllocator(BaseAllocator):
    """Shares proportional to each language's available data."""

    name = "proportional"

    def allocate(self, values: ValueModel, budget: float, constraints: Constraints) -> Allocation:
        """See `BaseAllocator.allocate`; `values` is ignored."""
        constraints.check_budget(budget)
        amounts = split_capped(constraints.sizes, budget, constraints.lower, constraints.upper)
        return make_allocation(self.name, "capped shares", amounts, budget, constraints)


class TemperatureAllocator(BaseAllocator):
    """Temperature sampling: shares proportional to available data ** (1 / temperature).

    Args:
        temperature: T >= 1; T = 1 is proportional, T -> inf uniform.
    """

    def __init__(self, temperature: float) -> None:
        if not temperature > 0:
            raise ValueError(f"The temperature must be positive; got {temperature=}.")
        self.temperature = float(temperature)
        self.name = f"temperature T={self.temperature:g}"

    def allocate(self, values: ValueModel, budget: float, constraints: Constraints) -> Allocation:
        """See `BaseAllocator.allocate`; `values` is ignored."""
        constraints.check_budget(budget)
        shares = temperature_shares(constraints.sizes, self.temperature)
        amounts = split_capped(shares, budget, constraints.lower, constraints.upper)
        return make_allocation(self.name, "capped shares", amounts, budget, constraints)


def temperature_shares(sizes: FloatArray, temperature: float) -> FloatArray:
    """p_i = n_i ** (1/T) / sum_j n_j ** (1/T) (zero for languages without data)."""
    n = np.asarray(sizes, dtype=float)
    raw = np.where(n > 0, np.power(np.maximum(n, 1e-300), 1.0 / temperature), 0.0)
    total = raw.sum()
    return raw / total if total > 0 else raw


class UniMaxAllocator(BaseAllocator):
    """UniMax (Chung et al. 2023): a uniform budget, capped at each language's epochs.

    Languages are visited from the one that can take the least to the most; each gets
    min(remaining budget / languages left, its cap). The cap is the plan's (available pairs x
    max epochs); floors are given first and UniMax spreads the rest.
    """

    name = "unimax"

    def allocate(self, values: ValueModel, budget: float, constraints: Constraints) -> Allocation:
        """See `BaseAllocator.allocate`; `values` is ignored."""
        constraints.check_budget(budget)
        amounts = unimax(budget, constraints.lower, constraints.upper)
        return make_allocation(self.name, "UniMax", amounts, budget, constraints)


def unimax(budget: float, lower: FloatArray, upper: FloatArray) -> FloatArray:
    """UniMax amounts: floors, then min(remaining / languages left, room) in order of room."""
    lo, hi = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    room = hi - lo
    amounts = lo.copy()
    remaining = budget - float(lo.sum())
    order = np.argsort(room, kind="stable")
    for k, i in enumerate(order):
        give = min(remaining / (len(order) - k), float(room[i]))
        amounts[i] += give
        remaining -= give
    return amounts


def baseline_allocators() -> tuple[BaseAllocator, ...]:
    """Every baseline the reports show, in table order."""
    temperature = tuple(TemperatureAllocator(t) for t in TEMPERATURES)
    return (UniformAllocator(), ProportionalAllocator(), *temperature, UniMaxAllocator())
