"""Exact solvers against general-purpose optimisers, the global-search fallback against brute
force, and the data-constrained effective-data formula."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable

import numpy as np
import pytest
from scipy import optimize
from test_planner_allocators import loglinear, power, saturating

from planner import (
    R_STAR,
    CallableValue,
    Constraints,
    LawCurve,
    LawValue,
    Objective,
    PlannerAllocator,
    effective_data,
    effective_data_slope,
    global_search,
    is_concave,
    is_monotone,
    level_fill,
    split_capped,
    water_fill,
)


def mixed_instance(seed: int) -> tuple[LawValue, Constraints, float]:
    """Saturating scores, power-law losses and log-linear scores; up to 4 epochs; floors."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 9))
    curves, caps = [], []
    for i in range(n):
        pool = float(rng.integers(1_000, 100_000))
        kind = int(rng.integers(3))
        if kind == 0:
            law, hib = saturating, True
            params = {
                "s_max": 60.0,
                "a": rng.uniform(100, 400),
                "d0": 50.0,
                "alpha": rng.uniform(0.2, 0.6),
            }
        elif kind == 1:
            law, hib = power, False
            params = {
                "e": rng.uniform(1, 2),
                "b": rng.uniform(2, 20),
                "beta": rng.uniform(0.2, 0.5),
            }
        else:
            law, hib = loglinear, True
            params = {"a": rng.uniform(0, 10), "b": rng.uniform(0.5, 3)}
        curves.append(LawCurve(f"l{i}", law, params, higher_is_better=hib, n_available=pool))
        caps.append(int(pool * rng.choice([1, 2, 4])))
    floors = np.where(rng.random(n) < 0.3, rng.integers(0, 500, n), 0)
    c = Constraints.simple(caps, floors.tolist(), rng.uniform(0.5, 2.0, n).tolist())
    budget = float(c.lower.sum() + rng.uniform(0.05, 0.95) * (c.upper.sum() - c.lower.sum()))
    return LawValue(curves), c, budget


def reference_optimum(values: LawValue, c: Constraints, budget: float, method: str) -> np.ndarray:
    """scipy's SLSQP or trust-constr on amounts scaled by the budget, with exact-ish gradients."""
    w, lo, hi = np.array(c.weights), c.lower / budget, c.upper / budget
    w = w / w.sum()  # the weighted mean: O(1) values and gradients

    def loss(y: np.ndarray) -> float:
        return -float(w @ values.value(y * budget))

    def grad(y: np.ndarray) -> np.ndarray:
        return -(w * values.marginal(y * budget)) * budget

    y0 = split_capped(np.ones(len(lo)), 1.0, lo, hi)  # a feasible start: the uniform split
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method == "SLSQP":
            ones = {"type": "eq", "fun": lambda y: y.sum() - 1, "jac": lambda y: np.ones_like(y)}
            result = optimize.minimize(
                loss, y0, jac=grad, method="SLSQP", bounds=list(zip(lo, hi, strict=True)),
                constraints=[ones], options={"ftol": 1e-15, "maxiter": 1000},
            )  # fmt: skip
        else:
            result = optimize.minimize(
                loss, y0, jac=grad, method="trust-constr", bounds=optimize.Bounds(lo, hi),
                constraints=[optimize.LinearConstraint(np.ones((1, len(lo))), 1, 1)],
                options={"gtol": 1e-12, "xtol": 1e-14, "maxiter": 5000},
            )  # fmt: skip
    return np.asarray(result.x) * budget


@pytest.mark.parametrize("seed", range(12))
def test_water_filling_matches_general_optimisers(seed: int) -> None:
    values, c, budget = mixed_instance(seed)
    w = np.array(c.weights)
    x = water_fill(values, w, c.lower, c.upper, budget)
    assert is_concave(values, c.lower, c.upper)
    assert x.sum() == pytest.approx(budget, rel=1e-12)
    ours = float(w @ values.value(x))
    closest = np.inf
    for method in ("SLSQP", "trust-constr"):
        ref = reference_optimum(values, c, budget, method)
        theirs = float(w @ values.value(ref))
        assert ours == pytest.approx(theirs, rel=1e-6)  # the 1e-6 relative match
        assert ours >= theirs - 1e-12 * abs(theirs)  # and never worse than the optimiser
        closest = min(closest, float(np.max(np.abs(ref - x))) / budget)
    # The allocations agree as far as the optimisers' own stopping rules allow.
    assert closest < 1e-6


def test_water_filling_kkt_conditions() -> None:
    values, c, budget = mixed_instance(3)
    w = np.array(c.weights)
    x = water_fill(values, w, c.lower, c.upper, budget)
    m = w * values.marginal(x)
    free = (x > c.lower + 1e-6) & (x < c.upper - 1e-6)
    level = np.median(m[free])
    assert m[free] == pytest.approx(np.full(free.sum(), level), rel=1e-8)
    assert np.all(m[x >= c.upper - 1e-6] >= level * (1 - 1e-8))  # capped: still worth more
    assert np.all(m[x <= c.lower + 1e-6] <= level * (1 + 1e-8))  # at floor: worth less


def test_level_fill_equalises_scores() -> None:
    values, c, budget = mixed_instance(4)
    x = level_fill(values, c.lower, c.upper, budget)
    u = values.value(x)
    free = (x > c.lower + 1e-6) & (x < c.upper - 1e-6)
    assert u[free] == pytest.approx(np.full(free.sum(), u[free][0]), rel=1e-9, abs=1e-9)
    assert x.sum() == pytest.approx(budget, rel=1e-12)


def sigmoid(
    centre: float, width: float, height: float = 1.0
) -> Callable[[np.ndarray], np.ndarray]:
    """An S-shaped (non-concave) value curve."""

    def f(x: np.ndarray) -> np.ndarray:
        return height / (1.0 + np.exp(-(x - centre) / width))

    return f


@pytest.mark.parametrize(
    ("centres", "budget"),
    [((30, 50, 20), 80), ((10, 40, 70), 100), ((25, 25, 60), 70)],
)
def test_fallback_matches_brute_force(centres: tuple[int, int, int], budget: int) -> None:
    """Non-concave (sigmoid) curves: the planner's global search against every integer split."""
    widths = (3.0, 4.0, 2.5)
    values = CallableValue(
        ("a", "b", "c"), tuple(sigmoid(m, s) for m, s in zip(centres, widths, strict=True))
    )
    c = Constraints.simple([60, 60, 60])
    assert not is_concave(values, c.lower, c.upper)
    allocation = PlannerAllocator().allocate(values, float(budget), c)
    assert allocation.method == "global search"
    best = max(
        float(values.value(np.array([i, j, budget - i - j], dtype=float)).sum())
        for i, j in itertools.product(range(61), range(61))
        if 0 <= budget - i - j <= 60
    )
    rounded = float(values.value(np.array(allocation.examples, dtype=float)).sum())
    continuous = float(values.value(np.array(allocation.amounts)).sum())
    assert continuous >= best - 1e-6
    assert rounded == pytest.approx(best, abs=1e-6)


def test_fallback_maxmin_non_monotone_against_brute_force() -> None:
    bump = CallableValue(
        ("a", "b"),
        (lambda x: np.exp(-(((x - 30) / 10) ** 2)), lambda x: 1 - np.exp(-x / 15)),
    )
    c = Constraints.simple([50, 50])
    assert not is_monotone(bump, c.lower, c.upper)
    allocation = PlannerAllocator(Objective.MAXMIN).allocate(bump, 50.0, c)
    best = max(float(bump.value(np.array([i, 50.0 - i])).min()) for i in range(51))
    assert float(bump.value(np.array(allocation.amounts)).min()) >= best - 1e-6


def test_global_search_never_worse_than_its_start() -> None:
    lo, hi = np.zeros(4), np.full(4, 10.0)
    start = np.array([10.0, 10.0, 0.0, 0.0])

    def objective(x: np.ndarray) -> float:
        return -float(np.sum((x - np.array([10.0, 10.0, 0.0, 0.0])) ** 2))

    x = global_search(objective, lo, hi, 20.0, [start], seed=0)
    assert x == pytest.approx(start)


def test_effective_data_formula() -> None:
    u = 1_000.0
    # One epoch or less is fresh data; above it D' = U + U R* (1 - exp(-R / R*)).
    assert effective_data(np.array([500.0, u]), np.array([u, u])).tolist() == [500.0, u]
    d = np.array([2 * u, 4 * u, 1e9])
    r = d / u - 1
    expected = u + u * R_STAR * (1 - np.exp(-r / R_STAR))
    assert effective_data(d, np.full(3, u)) == pytest.approx(expected, rel=1e-12)
    assert effective_data(np.array([4 * u]), np.array([u]))[0] / (4 * u) > 0.9  # ~fresh at 4
    assert effective_data(np.array([1e12]), np.array([u]))[0] == pytest.approx(u * (1 + R_STAR))
    slope = effective_data_slope(np.array([u * (1 - 1e-9), u * (1 + 1e-9), 3 * u]), np.full(3, u))
    assert slope[:2] == pytest.approx([1.0, 1.0]) and slope[2] == pytest.approx(
        np.exp(-2 / R_STAR)
    )


def test_repeated_epochs_are_worth_less_than_fresh_data() -> None:
    fresh = LawValue([LawCurve("a", loglinear, {"a": 0.0, "b": 1.0}, n_available=1e9)])
    repeated = LawValue([LawCurve("a", loglinear, {"a": 0.0, "b": 1.0}, n_available=1_000)])
    x = np.array([8_000.0])
    assert repeated.value(x)[0] < fresh.value(x)[0]
    assert repeated.value(np.array([1_000.0]))[0] == pytest.approx(
        fresh.value(np.array([1_000.0]))[0]
    )
    assert is_concave(repeated, np.zeros(1), np.array([16_000.0]))
