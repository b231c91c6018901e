"""Benchmark: the planner's exact allocation against a general-purpose constrained optimiser.

Run from the repository root:

    .venv/bin/python bench/bench_allocate.py                      # 1,000 languages
    .venv/bin/python bench/bench_allocate.py --languages 100 300 1000 --repeats 9

For each size it builds random per-language laws (saturating chrF-like scores and power-law
losses, pools of 1k-100k pairs, up to 4 epochs, a few floors), times `PlannerAllocator`
(concavity check, KKT water-filling, integer rounding) and scipy's SLSQP on the same problem,
and prints a Markdown table: median planner time, optimiser time, their ratio, and how far
apart the two objectives and allocations are.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
from scipy import optimize

from fits import LAWS
from planner import Constraints, LawCurve, LawValue, PlannerAllocator, split_capped


def random_problem(n: int, seed: int = 0) -> tuple[LawValue, Constraints, float]:
    """`n` random concave languages and a budget of half their caps."""
    rng = np.random.default_rng(seed)
    curves, caps = [], []
    for i in range(n):
        pool = float(rng.integers(1_000, 100_000))
        if i % 2:
            params = {
                "s_max": 60.0,
                "a": rng.uniform(100, 400),
                "d0": 50.0,
                "alpha": rng.uniform(0.2, 0.6),
            }
            curve = LawCurve(f"l{i}", LAWS["saturating"], params, n_available=pool)
        else:
            params = {
                "e": rng.uniform(1, 2),
                "b": rng.uniform(2, 20),
                "beta": rng.uniform(0.2, 0.5),
            }
            curve = LawCurve(
                f"l{i}", LAWS["power"], params, higher_is_better=False, n_available=pool
            )
        curves.append(curve)
        caps.append(int(pool * rng.choice([1, 2, 4])))
    floors = np.where(rng.random(n) < 0.1, 500, 0).tolist()
    constraints = Constraints.simple(caps, floors, rng.uniform(0.5, 2.0, n).tolist())
    budget = float(round(0.5 * (constraints.lower.sum() + constraints.upper.sum())))
    return LawValue(curves), constraints, budget


def slsqp(
    values: LawValue, c: Constraints, budget: float, max_iter: int
) -> tuple[np.ndarray, str]:
    """SLSQP on amounts scaled by the budget, with the same marginals as gradient."""
    w, lo, hi = np.array(c.weights), c.lower / budget, c.upper / budget
    w = w / w.sum()  # the weighted mean: O(1) values and gradients
    y0 = split_capped(np.ones(len(lo)), 1.0, lo, hi)  # a feasible start: the uniform split
    ones = {"type": "eq", "fun": lambda y: y.sum() - 1, "jac": lambda y: np.ones_like(y)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = optimize.minimize(
            lambda y: -float(w @ values.value(y * budget)),
            y0,
            jac=lambda y: -(w * values.marginal(y * budget)) * budget,
            method="SLSQP",
            bounds=list(zip(lo, hi, strict=True)),
            constraints=[ones],
            options={"ftol": 1e-15, "maxiter": max_iter},
        )
    return np.asarray(result.x) * budget, "yes" if result.success else f"no ({result.message})"


def bench(n: int, repeats: int, max_iter: int) -> dict[str, float | str]:
    values, c, budget = random_problem(n)
    planner = PlannerAllocator()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        allocation = planner.allocate(values, budget, c)
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    reference, converged = slsqp(values, c, budget, max_iter)
    reference_s = time.perf_counter() - start
    w = np.array(c.weights)
    ours = float(w @ values.value(np.array(allocation.amounts))) / w.sum()
    theirs = float(w @ values.value(reference)) / w.sum()
    return {
        "n": n,
        "planner_ms": 1e3 * statistics.median(times),
        "planner_min_ms": 1e3 * min(times),
        "reference_ms": 1e3 * reference_s,
        "objective_gap": (ours - theirs) / abs(theirs),
        "max_amount_gap": float(np.max(np.abs(np.array(allocation.amounts) - reference))) / budget,
        "method": allocation.method,
        "converged": converged,
    }


def main() -> None:
    """Print the benchmark table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--languages", type=int, nargs="+", default=[1000])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--slsqp-iterations", type=int, default=200,
        help="SLSQP's iteration limit (each costs O(languages^3); 1,000 languages need hours)",
    )  # fmt: skip
    args = parser.parse_args()
    print(
        "| languages | planner median (min) ms | SLSQP ms | SLSQP / planner | "
        "objective: planner - SLSQP (relative) | max amount gap / budget | SLSQP converged |"
    )
    print("|---:|---:|---:|---:|---:|---:|:---|")
    for n in args.languages:
        r = bench(n, args.repeats, args.slsqp_iterations)
        print(
            f"| {r['n']:,} | {r['planner_ms']:.1f} ({r['planner_min_ms']:.1f}) | "
            f"{r['reference_ms']:,.0f} | {r['reference_ms'] / r['planner_ms']:,.0f}x | "
            f"{r['objective_gap']:+.1e} | {r['max_amount_gap']:.1e} | {r['converged']} |"
        )


if __name__ == "__main__":
    main()
