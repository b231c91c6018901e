"""The allocator interface, its constraints and result, and the two exact helpers every
allocator shares: a capped proportional split and largest-remainder rounding."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from muit_core import AllocationError, format_count
from planner.values import FloatArray, ValueModel


@dataclass(frozen=True)
class Constraints:
    """What bounds an allocation, per language (all tuples in `languages` order).

    Bounds are whole examples; amounts and budgets are in the budget's unit, which is
    `units_per_example` times examples (1 for the examples unit, mean tokens per example for
    the tokens unit).

    Attributes:
        languages: language codes.
        min_examples: floors, in examples.
        max_examples: caps, in examples (available pairs x max epochs, rounded down).
        n_available: unique training pairs per language (one epoch).
        weights: objective weight per language (positive).
        units_per_example: budget units per example.
        unit: the budget's unit, for messages: "examples" or "tokens".
        max_epochs: the epoch cap the caps came from, for messages.
    """

    languages: tuple[str, ...]
    min_examples: tuple[int, ...]
    max_examples: tuple[int, ...]
    n_available: tuple[int, ...]
    weights: tuple[float, ...]
    units_per_example: tuple[float, ...]
    unit: str = "examples"
    max_epochs: float = 1.0

    def __post_init__(self) -> None:
        n = len(self.languages)
        fields = (self.min_examples, self.max_examples, self.n_available, self.weights)
        if any(len(f) != n for f in (*fields, self.units_per_example)):
            raise ValueError(
                "Every per-language field of Constraints needs one entry per language."
            )
        for lang, lo, hi in zip(self.languages, self.min_examples, self.max_examples, strict=True):
            if lo > hi:
                raise AllocationError(
                    f"The floor for {lang!r} ({format_count(lo)} examples) is above its cap "
                    f"({format_count(hi)} examples = available pairs x --max-epochs "
                    f"{self.max_epochs:g}); lower --min-per-language or raise --max-epochs."
                )

    @classmethod
    def simple(
        cls,
        caps: Sequence[int],
        floors: Sequence[int] | None = None,
        weights: Sequence[float] | None = None,
        languages: Sequence[str] | None = None,
    ) -> Constraints:
        """Constraints in examples with one epoch of data (caps are the available pairs)."""
        n = len(caps)
        return cls(
            languages=tuple(languages or (f"l{i}" for i in range(n))),
            min_examples=tuple(int(f) for f in (floors or [0] * n)),
            max_examples=tuple(int(c) for c in caps),
            n_available=tuple(int(c) for c in caps),
            weights=tuple(float(w) for w in (weights or [1.0] * n)),
            units_per_example=(1.0,) * n,
        )

    @property
    def lower(self) -> FloatArray:
        """Floors in budget units."""
        return np.array(self.min_examples, dtype=float) * np.array(self.units_per_example)

    @property
    def upper(self) -> FloatArray:
        """Caps in budget units."""
        return np.array(self.max_examples, dtype=float) * np.array(self.units_per_example)

    @property
    def sizes(self) -> FloatArray:
        """Available data (one epoch) in budget units."""
        return np.array(self.n_available, dtype=float) * np.array(self.units_per_example)

    def check_budget(self, budget: float) -> None:
        """Raise `AllocationError` unless `budget` lies between the sum of floors and of caps."""
        unit = self.unit
        if not budget > 0:
            raise AllocationError(f"The budget must be positive; got {budget=:g} {unit}.")
        low, high = float(self.lower.sum()), float(self.upper.sum())
        if budget < low * (1 - 1e-12):
            raise AllocationError(
                f"The budget of {format_count(budget)} {unit} is {format_count(low - budget)} "
                f"below the sum of the per-language floors ({format_count(low)} {unit}); "
                "lower --min-per-language or raise --budget."
            )
        if budget > high * (1 + 1e-12):
            raise AllocationError(
                f"The budget of {format_count(budget)} {unit} is {format_count(budget - high)} "
                f"above what the languages can absorb ({format_count(high)} {unit} = available "
                f"pairs x --max-epochs {self.max_epochs:g}); raise --max-epochs, add data for "
                "the capped languages, or lower --budget."
            )


@dataclass(frozen=True)
class Allocation:
    """An allocator's answer.

    Attributes:
        allocator: the allocator's name ("planner", "uniform", ...).
        method: how it was found ("water-filling", "global search", "closed form", ...).
        languages: language codes.
        amounts: the continuous solution, in budget units (sums to `budget`).
        examples: whole examples per language (largest remainder, caps and floors kept).
        budget: the budget, in budget units.
    """

    allocator: str
    method: str
    languages: tuple[str, ...]
    amounts: tuple[float, ...]
    examples: tuple[int, ...]
    budget: float

    @property
    def probabilities(self) -> tuple[float, ...]:
        """Each language's share of the examples (sampling probability)."""
        total = sum(self.examples)
        return tuple(e / total if total else 0.0 for e in self.examples)


class BaseAllocator(abc.ABC):
    """Splits a budget across languages.

    Contract every allocator meets: amounts are non-negative, they sum to the budget (and the
    whole examples to the budget rounded, in the examples unit), every language stays within
    its floor and cap, and the same inputs give the same output. Raise `AllocationError` for
    a budget that cannot be split.
    """

    name: str = "allocator"

    @abc.abstractmethod
    def allocate(self, values: ValueModel, budget: float, constraints: Constraints) -> Allocation:
        """Split `budget` (budget units) across `constraints.languages`.

        Args:
            values: per-language utilities (allocators that ignore the laws may ignore it).
            budget: the amount to split, in the budget's unit.
            constraints: floors, caps, weights and units.

        Returns:
            The allocation.

        Raises:
            AllocationError: the budget is not between the sum of floors and of caps.
        """


def split_capped(
    shares: FloatArray, budget: float, lower: FloatArray, upper: FloatArray
) -> FloatArray:
    """Split `budget` in proportion to `shares`, within bounds, exactly.

    Returns x_i = clip(tau * shares_i, lower_i, upper_i) with sum(x) == budget: what a cap cuts
    off (or a floor adds) is redistributed over the unbounded languages in proportion to their
    shares, as often as needed. Languages with a zero share get their floor. The budget must
    lie between sum(lower) and the sum of bounds reachable by positive shares.
    """
    p = np.asarray(shares, dtype=float)
    lo, hi = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    positive = p > 0
    if not positive.any():
        return lo.copy()
    safe = np.where(positive, p, 1.0)
    breaks = np.unique(
        np.concatenate([lo[positive] / safe[positive], hi[positive] / safe[positive]])
    )

    def total(tau: float) -> float:
        return float(np.where(positive, np.clip(tau * p, lo, hi), lo).sum())

    # Largest breakpoint whose total is still <= budget (binary search; totals are monotone).
    left, right = 0, len(breaks) - 1
    if total(breaks[right]) <= budget:
        return np.where(positive, hi, lo)
    if total(breaks[0]) > budget:
        return lo.copy()
    while right - left > 1:
        mid = (left + right) // 2
        if total(breaks[mid]) <= budget:
            left = mid
        else:
            right = mid
    tau_mid = 0.5 * (breaks[left] + breaks[right])
    free = positive & (tau_mid * p > lo) & (tau_mid * p < hi)
    fixed = np.where(positive, np.clip(tau_mid * p, lo, hi), lo)
    tau = (budget - float(fixed[~free].sum())) / float(p[free].sum())
    return np.where(free, tau * p, fixed)


def round_examples(amounts: FloatArray, constraints: Constraints) -> tuple[int, ...]:
    """Whole examples per language by largest remainder, keeping floors, caps and the total.

    The total is the continuous examples' sum rounded to the nearest integer (exactly the
    budget in the examples unit). Remainder ties go to the earlier language. Like any
    largest-remainder method it can move a language down by one example when the budget
    grows (the Alabama paradox); continuous amounts are monotone.
    """
    units = np.array(constraints.units_per_example)
    exact = np.asarray(amounts, dtype=float) / units
    lo = np.array(constraints.min_examples, dtype=np.int64)
    hi = np.array(constraints.max_examples, dtype=np.int64)
    total = round(float(exact.sum()))
    base = np.clip(np.floor(exact + 1e-9).astype(np.int64), lo, hi)
    short = total - int(base.sum())
    remainder = exact - base
    if short > 0:
        room = np.flatnonzero(base < hi)
        order = room[np.argsort(-remainder[room], kind="stable")]
        base[order[:short]] += 1
    elif short < 0:
        room = np.flatnonzero(base > lo)
        order = room[np.argsort(remainder[room], kind="stable")]
        base[order[:-short]] -= 1
    assert int(base.sum()) == total, (int(base.sum()), total)
    return tuple(int(b) for b in base)


def make_allocation(
    allocator: str, method: str, amounts: FloatArray, budget: float, constraints: Constraints
) -> Allocation:
    """Clip `amounts` into bounds, round them, and package an `Allocation`."""
    x = np.clip(np.asarray(amounts, dtype=float), constraints.lower, constraints.upper)
    return Allocation(
        allocator=allocator,
        method=method,
        languages=constraints.languages,
        amounts=tuple(float(v) for v in x),
        examples=round_examples(x, constraints),
        budget=float(budget),
    )
