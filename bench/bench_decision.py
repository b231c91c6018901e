"""Decision quality under known true curves: how much of the best allocation's gain over uniform
the plan captures, and how much it can lose to uniform, as the plan reaches beyond the sweep.

Each case draws five languages with saturating held-out cross-entropy curves,
`L(d) = floor + gap * (d + d0)**(-alpha)` with random floor, untuned value, `d0` and `alpha`,
and the demo's real training pools (el 16,563, hi 2,304, tr 10,790, vi 7,605, zh-CN 11,740);
the truths and pools live in `bench/ground_truths.py`, shared with `bench_design.py`.
A demo-sized sweep is simulated (sizes 0, 16, 32, 64, 128; one seed; 1% multiplicative noise),
fitted by `plan-fit`'s pipeline (`--law auto`, 200 bootstrap draws), and planned by
`plan-allocate`'s planner at budgets that give uniform sampling 2x, 10x and 40x the largest
swept size per language. Every allocation is scored under the TRUE curves (mean loss over the
languages, the planner's own objective): the oracle is the planner's water-filling on the true
curves.

- captured share = (true objective of the plan - of uniform) / (of the oracle - of uniform);
  1 is the best possible, 0 is no better than uniform, below 0 is worse than uniform. The
  pooled figure sums gains over cases (robust to cases where the oracle gains almost nothing).
- loss to uniform = true loss of the plan - of uniform, in nats (positive: the plan is worse).

Run from the repository root (about a minute on 2 cores):

    .venv/bin/python bench/bench_decision.py --cases 12
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import time
from dataclasses import dataclass

import numpy as np
from ground_truths import POOLS, REACHES, SIZES, Truth, draw_truths, true_objective
from threadpoolctl import threadpool_limits

from fits.data import Points
from fits.fitting import FitOptions
from fits.pipeline import FitRequest, fit_all
from planner import (
    CallableValue,
    GuardedPlanner,
    Objective,
    PlannerAllocator,
    Robustness,
    UniformAllocator,
    build_problem,
)


def simulate_sweep(
    truths: dict[str, Truth], rng: np.random.Generator, noise: float, seeds: int
) -> dict[str, Points]:
    """The sweep's measured points: every size and seed, with multiplicative noise."""
    d = np.repeat(np.asarray(SIZES, dtype=float), seeds)
    points = {}
    for code, truth in truths.items():
        y = truth.loss(d) * np.exp(rng.normal(0.0, noise, d.size))
        seed_ids = np.tile(np.arange(seeds), len(SIZES))
        data = {"n_available": POOLS[code], "tokens_per_example": 40.0}
        points[code] = Points(code, d, y, seed_ids, np.full(d.size, 1.35e8), data=data)
    return points


@dataclass(frozen=True)
class Outcome:
    case: int
    reach: int
    variant: str
    oracle_gain: float  # nats the oracle gains over uniform
    plan_gain: float  # nats the plan gains over uniform (negative: it loses)

    @property
    def share(self) -> float:
        return self.plan_gain / self.oracle_gain if self.oracle_gain > 0 else float("nan")


def run_case(case: int, noise: float, seeds: int, n_draws: int) -> list[Outcome]:
    rng = np.random.default_rng(1000 + case)
    truths = draw_truths(rng)
    points = simulate_sweep(truths, rng, noise, seeds)
    request = FitRequest(law="auto", options=FitOptions(n_bootstrap=n_draws, seed=case))
    laws = fit_all(points, request, metric="heldout_ce", higher_is_better=False)
    problem = build_problem(laws, tuple(POOLS))
    constraints = problem.constraints
    oracle_values = CallableValue(
        tuple(POOLS), tuple((lambda x, t=t: -t.loss(x)) for t in truths.values())
    )
    point = PlannerAllocator(higher_is_better=False)
    expected = PlannerAllocator(Objective.MEAN, Robustness(), higher_is_better=False)
    variants = {
        "planner (point)": point,
        "planner (expected)": expected,
        "planner --robust --quantile 0.1": PlannerAllocator(
            Objective.MEAN, Robustness(quantile=0.1), higher_is_better=False
        ),
        "guarded (point)": GuardedPlanner(point, UniformAllocator()),
        "guarded (expected)": GuardedPlanner(expected, UniformAllocator()),
    }
    out = []
    for reach in REACHES:
        budget = float(len(POOLS) * max(SIZES) * reach)
        uniform = UniformAllocator().allocate(problem.values, budget, constraints)
        oracle = PlannerAllocator(higher_is_better=False).allocate(
            oracle_values, budget, constraints
        )
        base = true_objective(truths, uniform.examples)
        oracle_gain = base - true_objective(truths, oracle.examples)
        for name, allocator in variants.items():
            plan = allocator.allocate(problem.values, budget, constraints)
            plan_gain = base - true_objective(truths, plan.examples)
            out.append(Outcome(case, reach, name, oracle_gain, plan_gain))
    return out


def summarise(outcomes: list[Outcome]) -> str:
    lines = [
        "| plan | reach | cases | captured share, pooled | median share | beats uniform "
        "| worst loss to uniform (nats) | mean oracle gain (nats) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for variant in dict.fromkeys(o.variant for o in outcomes):
        for reach in REACHES:
            mine = [o for o in outcomes if o.variant == variant and o.reach == reach]
            pooled = sum(o.plan_gain for o in mine) / sum(o.oracle_gain for o in mine)
            shares = [o.share for o in mine if np.isfinite(o.share)]
            wins = sum(o.plan_gain > 0 for o in mine)
            worst = max(-o.plan_gain for o in mine)
            lines.append(
                f"| {variant} | {reach}x | {len(mine)} | {pooled:.2f} | "
                f"{np.median(shares):.2f} | {wins}/{len(mine)} | {max(worst, 0.0):.4f} | "
                f"{np.mean([o.oracle_gain for o in mine]):.4f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=12, help="random ground truths")
    parser.add_argument("--noise", type=float, default=0.01, help="multiplicative noise sd")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per swept size")
    parser.add_argument("--draws", type=int, default=200, help="bootstrap draws per language")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    outcomes: list[Outcome] = []
    with threadpool_limits(1):
        for case in range(args.cases):
            outcomes.extend(run_case(case, args.noise, args.seeds, args.draws))
    wall_s = time.perf_counter() - started
    print(
        f"{args.cases} cases, sizes {SIZES}, {args.seeds} seed(s), noise {args.noise:.0%}, "
        f"{args.draws} draws; {wall_s:.0f} s on {platform.machine()}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(summarise(outcomes))
    print("\nper case (reach, variant, oracle gain, plan gain):")
    for o in outcomes:
        print(
            f"  case {o.case:2d} {o.reach:3d}x {o.variant:32s} {o.oracle_gain:+.4f} "
            f"{o.plan_gain:+.4f}"
        )


if __name__ == "__main__":
    main()
