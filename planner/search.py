"""Global search for allocations the exact solvers cannot handle.

Non-concave laws (a sigmoid-shaped curve, a fit whose marginal rises somewhere) and
non-separable objectives (a lower quantile of the objective over bootstrap draws, the expected
worst language) have no water-filling solution. `global_search` maximises any objective over
the feasible set {lo <= x <= hi, sum(x) = budget}: differential evolution (scipy) on share
vectors that `split_capped` maps onto that set, seeded with the caller's starting points, then
an SLSQP polish. It is deterministic for a given seed and never returns a point worse than the
best start.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence

import numpy as np
from scipy import optimize

from planner.allocation import split_capped
from planner.values import FloatArray

log = logging.getLogger(__name__)

Objective = Callable[[FloatArray], float]

MAX_EVOLUTION_LANGUAGES = 40  # above this, differential evolution is too slow: polish only
_POPULATION = 15  # differential evolution's population per dimension (scipy's default)


def repair(x: FloatArray, budget: float, lo: FloatArray, hi: FloatArray) -> FloatArray:
    """Clip `x` into bounds and spread the sum's shortfall or excess over the room left."""
    y = np.clip(np.asarray(x, dtype=float), lo, hi)
    gap = budget - float(y.sum())
    room = hi - y if gap > 0 else y - lo
    if gap != 0 and room.sum() > 0:
        y = y + np.sign(gap) * room * min(abs(gap) / float(room.sum()), 1.0)
    return np.clip(y, lo, hi)


def _polish(
    objective: Objective, x0: FloatArray, budget: float, lo: FloatArray, hi: FloatArray
) -> FloatArray:
    """SLSQP from `x0` on amounts scaled by the budget (so the problem is well conditioned)."""
    scale = budget

    def loss(y: FloatArray) -> float:
        return -objective(repair(y * scale, budget, lo, hi))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = optimize.minimize(
            loss,
            x0 / scale,
            method="SLSQP",
            bounds=list(zip(lo / scale, hi / scale, strict=True)),
            constraints=[{"type": "eq", "fun": lambda y: float(y.sum()) - 1.0}],
            options={"ftol": 1e-14, "maxiter": 500},
        )
    return repair(np.asarray(result.x) * scale, budget, lo, hi)


def global_search(
    objective: Objective,
    lo: FloatArray,
    hi: FloatArray,
    budget: float,
    starts: Sequence[FloatArray],
    seed: int = 0,
    max_generations: int = 100,
) -> FloatArray:
    """Maximise `objective(x)` over lo <= x <= hi with sum(x) == budget.

    Args:
        objective: the value to maximise; called with feasible amounts only.
        lo: floors (n,); hi: caps (n,).
        budget: total amount, between sum(lo) and sum(hi).
        starts: feasible points to begin from (e.g. an exact solution of a simpler problem).
        seed: seed of the differential evolution, for reproducible results.
        max_generations: differential evolution's generation limit.

    Returns:
        The best feasible amounts found.
    """
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    candidates = [repair(np.asarray(s, dtype=float), budget, lo, hi) for s in starts]
    if not candidates:
        candidates = [split_capped(np.ones_like(lo), budget, lo, hi)]
    n = len(lo)
    if n <= MAX_EVOLUTION_LANGUAGES:
        candidates.append(_evolve(objective, lo, hi, budget, candidates, seed, max_generations))
    else:
        log.warning("%d languages: global search polishes the starting points only.", n)
    scores = [objective(c) for c in candidates]
    best = candidates[int(np.argmax(scores))]
    polished = _polish(objective, best, budget, lo, hi)
    return polished if objective(polished) > max(scores) else best


def _evolve(
    objective: Objective,
    lo: FloatArray,
    hi: FloatArray,
    budget: float,
    starts: Sequence[FloatArray],
    seed: int,
    max_generations: int,
) -> FloatArray:
    """Differential evolution on shares z in [0, 1]^n, mapped by `split_capped`."""
    n = len(lo)

    def to_amounts(z: FloatArray) -> FloatArray:
        return split_capped(np.asarray(z, dtype=float) + 1e-12, budget, lo, hi)

    rng = np.random.default_rng(seed)
    population = rng.random((max(_POPULATION * n, 8), n))
    for i, start in enumerate(starts[: len(population)]):
        population[i] = start / max(float(np.max(start)), 1e-300)  # shares reproducing start
    result = optimize.differential_evolution(
        lambda z: -objective(to_amounts(z)),
        bounds=[(0.0, 1.0)] * n,
        init=np.clip(population, 0.0, 1.0),
        maxiter=max_generations,
        tol=1e-8,
        seed=seed,
        polish=False,
    )
    return to_amounts(result.x)
