"""Allocator contract suite (every allocator), closed-form cases, UniMax's golden example."""

from __future__ import annotations

import math

import numpy as np
import pytest

from muit_core import AllocationError, ConfigError
from planner import (
    BaseAllocator,
    CallableValue,
    Constraints,
    LawCurve,
    LawValue,
    Objective,
    PlannerAllocator,
    ProportionalAllocator,
    TemperatureAllocator,
    UniformAllocator,
    UniMaxAllocator,
    baseline_allocators,
    round_examples,
    split_capped,
    unimax,
)


def saturating(d: np.ndarray, s_max: float, a: float, d0: float, alpha: float) -> np.ndarray:
    """S(d) = s_max - a * (d + d0)**(-alpha)."""
    return s_max - a * np.power(d + d0, -alpha)


def loglinear(d: np.ndarray, a: float, b: float) -> np.ndarray:
    """S(d) = a + b * log(d)."""
    return a + b * np.log(d)


def power(d: np.ndarray, e: float, b: float, beta: float) -> np.ndarray:
    """L(d) = e + b * d**(-beta)."""
    return e + b * np.power(d, -beta)


def random_instance(seed: int, n: int | None = None) -> tuple[LawValue, Constraints]:
    """Saturating score laws with random parameters, caps and floors."""
    rng = np.random.default_rng(seed)
    n = n or int(rng.integers(2, 8))
    curves = [
        LawCurve(
            f"l{i}",
            saturating,
            {
                "s_max": float(rng.uniform(40, 70)),
                "a": float(rng.uniform(100, 400)),
                "d0": float(rng.uniform(10, 100)),
                "alpha": float(rng.uniform(0.2, 0.6)),
            },
        )
        for i in range(n)
    ]
    caps = rng.integers(2_000, 200_000, n)
    floors = np.where(rng.random(n) < 0.3, rng.integers(0, 1_000, n), 0)
    weights = rng.uniform(0.5, 2.0, n)
    constraints = Constraints.simple(
        caps.tolist(), floors.tolist(), weights.tolist(), [c.language for c in curves]
    )
    curves = [
        LawCurve(c.language, c.law, c.params, n_available=float(cap))
        for c, cap in zip(curves, caps, strict=True)
    ]
    return LawValue(curves), constraints


def every_allocator() -> list[BaseAllocator]:
    return [
        PlannerAllocator(Objective.MEAN),
        PlannerAllocator(Objective.MAXMIN),
        *baseline_allocators(),
    ]


ALLOCATORS = every_allocator()
IDS = [f"{a.name}-{getattr(a, 'objective', None) and a.objective.value}" for a in ALLOCATORS]


@pytest.mark.parametrize("allocator", ALLOCATORS, ids=IDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.97])
def test_contract_invariants(allocator: BaseAllocator, seed: int, fraction: float) -> None:
    values, c = random_instance(seed)
    lo, hi = c.lower.sum(), c.upper.sum()
    budget = float(round(lo + fraction * (hi - lo)))
    allocation = allocator.allocate(values, budget, c)
    amounts = np.array(allocation.amounts)
    examples = np.array(allocation.examples)
    assert allocation.languages == c.languages
    assert np.all(amounts >= 0) and np.all(examples >= 0)
    assert amounts.sum() == pytest.approx(budget, rel=1e-9)
    assert int(examples.sum()) == int(budget)
    assert np.all(amounts >= c.lower - 1e-6) and np.all(amounts <= c.upper + 1e-6)
    assert np.all(examples >= np.array(c.min_examples))
    assert np.all(examples <= np.array(c.max_examples))
    again = allocator.allocate(values, budget, c)
    assert again == allocation  # deterministic


@pytest.mark.parametrize("allocator", ALLOCATORS, ids=IDS)
def test_contract_monotone_in_budget(allocator: BaseAllocator) -> None:
    values, c = random_instance(5, n=5)
    lo, hi = c.lower.sum(), c.upper.sum()
    previous_amounts = previous_examples = None
    for fraction in np.linspace(0.01, 1.0, 12):
        budget = float(round(lo + fraction * (hi - lo)))
        allocation = allocator.allocate(values, budget, c)
        amounts, examples = np.array(allocation.amounts), np.array(allocation.examples)
        if previous_amounts is not None:
            assert np.all(amounts >= previous_amounts - 1e-6 * budget)
            assert np.all(examples >= previous_examples - 1)  # largest remainder: +-1 at most
        previous_amounts, previous_examples = amounts, examples


@pytest.mark.parametrize("allocator", ALLOCATORS, ids=IDS)
def test_contract_infeasible_budget(allocator: BaseAllocator) -> None:
    values, c = random_instance(3)
    with pytest.raises(
        AllocationError, match=r"above what the languages can absorb.*--max-epochs"
    ):
        allocator.allocate(values, float(c.upper.sum()) + 10, c)
    floors = Constraints.simple([100, 100], [60, 60])
    two = LawValue([LawCurve(f"l{i}", loglinear, {"a": 0.0, "b": 1.0}) for i in range(2)])
    with pytest.raises(AllocationError, match=r"is 20 below the sum of the per-language floors"):
        allocator.allocate(two, 100.0, floors)
    with pytest.raises(AllocationError, match="must be positive"):
        allocator.allocate(values, 0.0, c)


def two_languages(*curves: LawCurve) -> LawValue:
    return LawValue(list(curves))


def test_closed_form_loglinear_weighted_mean() -> None:
    # max w1 b1 log x1 + w2 b2 log x2 with x1 + x2 = B  =>  x_i = B * w_i b_i / sum w b.
    values = two_languages(
        LawCurve("a", loglinear, {"a": 3.0, "b": 2.0}),
        LawCurve("b", loglinear, {"a": 0.0, "b": 3.0}),
    )
    c = Constraints.simple([10**7, 10**7], weights=[1.0, 2.0])
    allocation = PlannerAllocator().allocate(values, 80_000.0, c)
    assert allocation.amounts == pytest.approx([80_000 * 2 / 8, 80_000 * 6 / 8], rel=1e-9)
    assert allocation.method == "water-filling"


def test_closed_form_power_losses() -> None:
    # Loss e + b d^-beta, shared beta: b_i beta x_i^(-beta-1) equal => x_i ~ b_i^(1/(1+beta)).
    beta = 0.3
    values = two_languages(
        LawCurve("a", power, {"e": 1.0, "b": 4.0, "beta": beta}, higher_is_better=False),
        LawCurve("b", power, {"e": 2.0, "b": 9.0, "beta": beta}, higher_is_better=False),
    )
    c = Constraints.simple([10**8, 10**8])
    x = np.array(PlannerAllocator().allocate(values, 1e6, c).amounts)
    share = np.array([4.0, 9.0]) ** (1 / (1 + beta))
    assert x == pytest.approx(1e6 * share / share.sum(), rel=1e-9)


def test_closed_form_cap_binds() -> None:
    values = two_languages(
        LawCurve("a", loglinear, {"a": 0.0, "b": 1.0}),
        LawCurve("b", loglinear, {"a": 0.0, "b": 1.0}),
    )
    c = Constraints.simple([1_000, 100_000])
    allocation = PlannerAllocator().allocate(values, 50_000.0, c)
    assert allocation.examples == (1_000, 49_000)


def test_closed_form_maxmin_and_target() -> None:
    # Equal slopes b: a1 + b log x1 = a2 + b log x2  =>  x1 / x2 = exp((a2 - a1) / b).
    values = two_languages(
        LawCurve("a", loglinear, {"a": 1.0, "b": 2.0}),
        LawCurve("b", loglinear, {"a": 3.0, "b": 2.0}),
    )
    c = Constraints.simple([10**7, 10**7])
    x = np.array(PlannerAllocator(Objective.MAXMIN).allocate(values, 10_000.0, c).amounts)
    ratio = math.exp((3.0 - 1.0) / 2.0)
    assert x == pytest.approx([10_000 * ratio / (1 + ratio), 10_000 / (1 + ratio)], rel=1e-9)
    # Target t: a + b log x >= t  =>  x = exp((t - a) / b).
    target = PlannerAllocator(Objective.TARGET, targets=[15.0, math.nan])
    need = target.required_amounts(values, c)
    assert need == pytest.approx([math.exp(7.0), 0.0], rel=1e-9, abs=1e-9)
    spare = target.allocate(values, 5_000.0, c)
    assert spare.amounts[0] >= math.exp(7.0) - 1e-6 and sum(spare.examples) == 5_000


def test_target_out_of_reach_names_language() -> None:
    values = two_languages(
        LawCurve("el", loglinear, {"a": 1.0, "b": 2.0}),
        LawCurve("hi", loglinear, {"a": 0.0, "b": 1.0}),
    )
    c = Constraints.simple([10**6, 1_000], languages=["el", "hi"])
    planner = PlannerAllocator(Objective.TARGET, targets=[5.0, 50.0])
    with pytest.raises(AllocationError, match=r"target 50 for 'hi' is out of reach"):
        planner.required_amounts(values, c)
    with pytest.raises(ConfigError, match="needs --targets"):
        PlannerAllocator(Objective.TARGET)


def test_closed_form_baselines() -> None:
    c = Constraints.simple([90_000, 10_000])
    uniform = UniformAllocator().allocate(None, 20_000.0, c)  # type: ignore[arg-type]
    assert uniform.examples == (10_000, 10_000)
    uniform_capped = UniformAllocator().allocate(None, 50_000.0, c)  # type: ignore[arg-type]
    assert uniform_capped.examples == (40_000, 10_000)  # the cut-off 15k went to the other
    proportional = ProportionalAllocator().allocate(None, 20_000.0, c)  # type: ignore[arg-type]
    assert proportional.examples == (18_000, 2_000)
    for t in (3.33, 5.0):
        hot = TemperatureAllocator(t).allocate(None, 20_000.0, c)  # type: ignore[arg-type]
        p = np.array([90_000.0, 10_000.0]) ** (1 / t)
        assert hot.amounts == pytest.approx(20_000 * p / p.sum(), rel=1e-12)


def test_unimax_golden_example() -> None:
    # DESIGN.md, "Anchors": budget 250e9, 4 epochs.
    counts = {
        "swe": 179955884499,
        "fas": 184595788282,
        "ekk": 42541080893,
        "isl": 10027573389,
        "fao": 549707867,
    }
    c = Constraints(
        languages=tuple(counts),
        min_examples=(0,) * 5,
        max_examples=tuple(4 * n for n in counts.values()),
        n_available=tuple(counts.values()),
        weights=(1.0,) * 5,
        units_per_example=(1.0,) * 5,
        max_epochs=4,
    )
    allocation = UniMaxAllocator().allocate(None, 250e9, c)  # type: ignore[arg-type]
    got = dict(zip(allocation.languages, allocation.amounts, strict=True))
    assert got["fao"] == 2198831468
    assert got["isl"] == 40110293556
    for lang in ("swe", "fas", "ekk"):
        assert round(got[lang], 2) == 69230291658.67
    assert sum(allocation.examples) == 250_000_000_000
    whole = dict(zip(allocation.languages, allocation.examples, strict=True))
    assert sorted(whole[k] for k in ("swe", "fas", "ekk")) == [
        69230291658,
        69230291659,
        69230291659,
    ]
    assert unimax(250e9, np.zeros(5), np.array(c.max_examples, dtype=float)).sum() == 250e9


def test_unimax_spreads_only_above_floors() -> None:
    # Floors first, then equal shares of the rest: differs from uniform with floors.
    amounts = unimax(100.0, np.array([40.0, 0.0]), np.array([100.0, 100.0]))
    assert amounts.tolist() == [70.0, 30.0]
    assert split_capped(np.ones(2), 100.0, np.array([40.0, 0.0]), np.full(2, 100.0)).tolist() == [
        50.0,
        50.0,
    ]


def test_split_capped_redistributes_exactly() -> None:
    x = split_capped(
        np.array([1.0, 1.0, 1.0, 0.0]), 90.0, np.zeros(4), np.array([10.0, 50, 50, 5])
    )
    assert x.tolist() == [10.0, 40.0, 40.0, 0.0]


def test_round_examples_keeps_sum_caps_and_floors() -> None:
    c = Constraints.simple([3, 3, 10, 10], floors=[0, 1, 0, 0])
    amounts = np.array([2.6, 1.2, 2.6, 2.6])  # sum 9; largest remainders .6, .6, .6 tie by order
    assert round_examples(amounts, c) == (3, 1, 3, 2)
    capped = Constraints.simple([2, 2, 10])
    assert round_examples(np.array([2.0, 2.0, 5.5]), capped) == (2, 2, 6)  # cap-free gets the 1


def test_callable_values_work_too() -> None:
    values = CallableValue(("a", "b"), (np.log1p, lambda x: 2 * np.log1p(x)))
    c = Constraints.simple([1_000, 1_000])
    x = np.array(PlannerAllocator().allocate(values, 999.0, c).amounts)
    # 1 / (1 + x1) = 2 / (1 + x2) and x1 + x2 = 999  =>  x2 = 1 + 2 x1, x1 = 998 / 3.
    assert x == pytest.approx([998 / 3, 999 - 998 / 3], rel=1e-8)
