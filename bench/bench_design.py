"""Adaptive sweep design against the fixed grid, at equal numbers of runs, under known truths.

Each case has five languages with the demo's training pools and a TRUE held-out loss curve per
language from one family of `bench/ground_truths.py` (shared with `bench_decision.py`):
`saturating` (random, as `bench_decision.py`), `sigmoid` (random, bends late, not convex) and
`demo` (the laws the real demo sweep fitted: case 0 their point parameters, later cases one
bootstrap draw per language; skipped when `runs/demo/fits/laws.json` is absent).

A cell's result is its true loss times log-normal noise (1%), the same draw for the same
(case, language, size, seed) in both designs. Designs, per budget (uniform reaching 2x, 10x,
40x the fixed grid's largest size, 128):

- fixed: the demo grid, sizes 0, 16, 32, 64, 128, one seed (25 runs), and its prefixes up to
  32 (15 runs) and 64 (20 runs);
- adaptive: a seed grid (default sizes 0, 16 and 64: 15 runs), then rounds of `--cells` cells
  from `planner.design.suggest_cells` for that budget (the noise estimated from the fits, as
  `plan-suggest` does), refitted after each round.

The issue asked for a seed grid of 0 and 32 (10 runs); `plan-fit --law auto` cannot fit it
(one positive size per language: every law fails, the pooled one needs two sizes), so the
smallest fittable seed grid is used, with its larger size spread for reach.

Every design is fitted by `plan-fit`'s pipeline (`--law auto`, 200 draws) and planned three
ways, each scored under the TRUE curves:

- `guarded`: the default `plan-allocate` (the point plan, shrunk toward uniform until it wins
  in 90% of the predictive draws);
- `guarded-robust`: `plan-allocate --robust` (the expected plan over the draws, guarded);
- `expected`: `plan-allocate --robust --reference none` (unguarded).

Oracle: the best allocation under the true curves by a global search
(`ground_truths.global_oracle`: dynamic programming on a fine grid, then exchange moves), or
the planner's water-filling on the true curves where that is better (it is exact for convex
curves); the run prints how often each wins. Gain = true mean loss of uniform - of the plan, in
nats; captured share = sum of plan gains / sum of oracle gains over cases. Cost = the training
examples the design's cells use (the sum of their sizes; size-0 cells only evaluate).

Run from the repository root (one core; see `results_design.md` for the wall time):

    nice -n 19 .venv/bin/python bench/bench_design.py --cases 6
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from ground_truths import (
    DEMO_LAWS,
    FAMILIES,
    POOLS,
    REACHES,
    Curve,
    global_oracle,
    true_objective,
)
from ground_truths import SIZES as FIXED
from threadpoolctl import threadpool_limits

from fits import LawsFile
from fits.data import Points
from fits.fitting import FitOptions
from fits.pipeline import FitRequest, fit_all
from planner import (
    BaseAllocator,
    CallableValue,
    Constraints,
    GuardedPlanner,
    Objective,
    PlannerAllocator,
    Robustness,
    UniformAllocator,
    build_problem,
)
from planner.design import suggest_cells

SEED_GRID = (0, 16, 64)  # 0 and 32 alone cannot be fitted: see the module docstring
NOISE = 0.01
PLANS = ("guarded", "guarded-robust", "expected")
EQUAL_RUNS = 5 * len(FIXED)  # the full fixed grid: the runs compared at
LOSS_TOLERANCE_NATS = 5e-4  # a plan "loses to uniform" when it is worse by more than this
Cell = tuple[str, int, int]  # language, n_examples, seed
FIT_CRASHES: list[str] = []  # fits that raised; that design's point (and later rounds) is skipped


def planners() -> dict[str, BaseAllocator]:
    """The three plans of the module docstring, as `plan-allocate` builds them."""
    point = PlannerAllocator(higher_is_better=False)
    expected = PlannerAllocator(Objective.MEAN, Robustness(), higher_is_better=False)
    return {
        "guarded": GuardedPlanner(point, UniformAllocator()),
        "guarded-robust": GuardedPlanner(expected, UniformAllocator()),
        "expected": expected,
    }


def answer(curves: dict[str, Curve], case: int, code: str, size: int, seed: int) -> float:
    """One run's measured loss: the truth times noise drawn for this very cell."""
    index = list(POOLS).index(code)
    rng = np.random.default_rng([case, index, size, seed])
    return float(curves[code](np.array([float(size)]))[0] * np.exp(rng.normal(0.0, NOISE)))


def fit_cells(curves: dict[str, Curve], case: int, cells: set[Cell]) -> LawsFile | None:
    """`plan-fit --law auto` (200 draws) on the answered cells; None if the fit crashed."""
    points = {}
    for code in POOLS:
        mine = sorted((s, seed) for c, s, seed in cells if c == code)
        d = np.array([s for s, _ in mine], dtype=float)
        y = np.array([answer(curves, case, code, s, seed) for s, seed in mine])
        seeds = np.array([seed for _, seed in mine])
        data = {"n_available": POOLS[code], "tokens_per_example": 40.0}
        points[code] = Points(code, d, y, seeds, np.full(d.size, 1.35e8), data=data)
    request = FitRequest(law="auto", options=FitOptions(n_bootstrap=200, seed=case))
    try:
        return fit_all(points, request, metric="heldout_ce", higher_is_better=False)
    except (ValueError, IndexError) as err:  # a crash inside fits/, reported in the results
        FIT_CRASHES.append(f"case {case}, {len(cells)} runs: {type(err).__name__}: {err}")
        return None


@dataclass(frozen=True)
class Oracle:
    """The best allocation's true gain over uniform (nats), and how it was found.

    Attributes:
        gain_nats: the better of the two searches.
        global_nats: the global search's gain.
        waterfill_nats: the planner's water-filling on the true curves.
    """

    gain_nats: float
    global_nats: float
    waterfill_nats: float


def utility(curve: Curve) -> Curve:
    """The planner's utility of a true loss curve: its negative."""
    return lambda x: -curve(x)


def oracle_gain(curves: dict[str, Curve], c: Constraints, budget: float) -> Oracle:
    """Both oracles' true gains over uniform at `budget` examples."""
    values = CallableValue(tuple(POOLS), tuple(utility(f) for f in curves.values()))
    base = true_objective(curves, UniformAllocator().allocate(values, budget, c).examples)
    waterfill = PlannerAllocator(higher_is_better=False).allocate(values, budget, c).examples
    best = global_oracle(list(curves.values()), c.min_examples, c.max_examples, round(budget))
    wf, gl = base - true_objective(curves, waterfill), base - true_objective(curves, best)
    return Oracle(max(wf, gl), gl, wf)


@dataclass(frozen=True)
class Outcome:
    """One plan of one design's fit, scored under the truth.

    Attributes:
        cost_examples: training examples of the design's cells (sum of sizes).
        oracle_nats: the oracle's gain over uniform; plan_nats: the plan's (negative: worse).
    """

    family: str
    case: int
    reach: int
    design: str
    runs: int
    cost_examples: int
    plan: str
    oracle_nats: float
    plan_nats: float


def score(curves: dict[str, Curve], laws: LawsFile, budget: float) -> dict[str, float]:
    """Each plan's true gain over uniform (nats) at `budget` examples."""
    problem = build_problem(laws, tuple(POOLS))
    c = problem.constraints
    base = true_objective(curves, UniformAllocator().allocate(problem.values, budget, c).examples)
    return {
        name: base - true_objective(curves, planner.allocate(problem.values, budget, c).examples)
        for name, planner in planners().items()
    }


def cost(cells: set[Cell]) -> int:
    """Training examples of `cells`: the sum of their sizes."""
    return sum(size for _, size, _ in cells)


def run_case(
    family: str,
    case: int,
    n_cells: int,
    max_runs: int,
    seed_grid: Sequence[int],
    run_overhead: float | None = None,
) -> tuple[list[Outcome], list[Oracle]]:
    """Both designs on one ground truth, at every reach."""
    rng = np.random.default_rng(2000 + case)
    curves = FAMILIES[family](rng, case)
    budgets = {r: float(len(POOLS) * max(FIXED) * r) for r in REACHES}
    out: list[Outcome] = []
    oracles: dict[int, Oracle] = {}

    def record(design: str, cells: set[Cell], laws: LawsFile, reach: int) -> None:
        if reach not in oracles:
            c = build_problem(laws, tuple(POOLS)).constraints
            oracles[reach] = oracle_gain(curves, c, budgets[reach])
        for plan, gain in score(curves, laws, budgets[reach]).items():
            out.append(
                Outcome(
                    family, case, reach, design, len(cells), cost(cells), plan,
                    oracles[reach].gain_nats, gain,
                )
            )  # fmt: skip

    for k in (3, 4, 5):  # the fixed grid up to 32, 64, 128
        cells = {(code, s, 0) for code in POOLS for s in FIXED[:k]}
        laws = fit_cells(curves, case, cells)
        if laws is not None:
            for reach in REACHES:
                record("fixed", cells, laws, reach)
    for reach, budget in budgets.items():
        cells = {(code, s, 0) for code in POOLS for s in seed_grid}
        while True:
            laws = fit_cells(curves, case, cells)
            if laws is None:
                break
            record("adaptive", cells, laws, reach)
            if len(cells) + n_cells > max_runs:
                break
            problem = build_problem(laws, tuple(POOLS))
            design = suggest_cells(
                laws, problem, budget, n_cells, seed=case, run_overhead_examples=run_overhead
            )
            new = {(s.cell.language, s.cell.n_examples, s.cell.seed) for s in design.suggestions}
            assert not new & cells, "a suggested cell was already run"
            cells |= new
    return out, list(oracles.values())


def pooled(outcomes: Sequence[Outcome]) -> float:
    """Captured share: sum of plan gains / sum of oracle gains (NaN if the oracle gains 0)."""
    oracle = sum(o.oracle_nats for o in outcomes)
    return sum(o.plan_nats for o in outcomes) / oracle if oracle > 0 else float("nan")


def select(outcomes: Sequence[Outcome], **fields: object) -> list[Outcome]:
    """The outcomes whose attributes equal `fields`."""
    return [o for o in outcomes if all(getattr(o, k) == v for k, v in fields.items())]


def gains_table(outcomes: Sequence[Outcome]) -> str:
    """Per reach, design and runs: cost, the oracle's gain and each plan's share and nats."""
    head = "| reach | design | runs | examples (mean) | cases | oracle gain, mean (nats) |"
    rule = "|---:|---|---:|---:|---:|---:|"
    for plan in PLANS:
        head += f" {plan}: share | mean (nats) | worst (nats) |"
        rule += "---:|---:|---:|"
    lines = [head, rule]
    for reach in REACHES:
        for design in ("fixed", "adaptive"):
            mine = select(outcomes, reach=reach, design=design)
            for runs in sorted({o.runs for o in mine}):
                at = select(mine, runs=runs)
                first = select(at, plan=PLANS[0])
                row = (
                    f"| {reach}x | {design} | {runs} | "
                    f"{np.mean([o.cost_examples for o in first]):.0f} | {len(first)} | "
                    f"{np.mean([o.oracle_nats for o in first]):.4f} |"
                )
                for plan in PLANS:
                    p = select(at, plan=plan)
                    gains = [o.plan_nats for o in p]
                    row += f" {pooled(p):.2f} | {np.mean(gains):+.4f} | {min(gains):+.4f} |"
                lines.append(row)
    return "\n".join(lines)


def share_curve(outcomes: Sequence[Outcome]) -> dict[int, tuple[float, float]]:
    """Runs -> (captured share, mean cost in examples), over the cases that reached those runs."""
    return {
        n: (pooled(at), float(np.mean([o.cost_examples for o in at])))
        for n in sorted({o.runs for o in outcomes})
        for at in [select(outcomes, runs=n)]
    }


def first_reaching(curve: dict[int, tuple[float, float]], share: float) -> str:
    """`runs (examples)` of the first point at or above `share`, or `not reached`."""
    hit = next(((n, c) for n, (s, c) in curve.items() if s >= share - 1e-9), None)
    return "not reached" if hit is None else f"{hit[0]} ({hit[1]:.0f})"


def goals_table(outcomes: Sequence[Outcome]) -> str:
    """Runs (examples) to 80% and 95%, and adaptive's runs and examples at fixed's final share."""
    lines = [
        "| plan | reach | design | runs to 80% (examples) | runs to 95% (examples) |",
        "|---|---:|---|---:|---:|",
    ]
    ratio = [
        f"| plan | reach | fixed share at {EQUAL_RUNS} runs | adaptive share at {EQUAL_RUNS} runs "
        "| adaptive runs (examples) to reach fixed's share | ratio of runs | ratio of examples "
        "| adaptive share at the fixed grid's cost "
        "| cases where adaptive's seed grid alone reaches the case's fixed share |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    cases = sorted({(o.family, o.case) for o in outcomes})
    for plan in PLANS:
        for reach in REACHES:
            curves = {}
            for design in ("fixed", "adaptive"):
                curves[design] = share_curve(
                    select(outcomes, plan=plan, reach=reach, design=design)
                )
                lines.append(
                    f"| {plan} | {reach}x | {design} | {first_reaching(curves[design], 0.8)} | "
                    f"{first_reaching(curves[design], 0.95)} |"
                )
            fixed_share, fixed_cost = curves["fixed"].get(EQUAL_RUNS, (float("nan"), 0.0))
            adaptive_share = curves["adaptive"].get(EQUAL_RUNS, (float("nan"), 0.0))[0]
            hit = next(
                ((n, c) for n, (s, c) in curves["adaptive"].items() if s >= fixed_share - 1e-9),
                None,
            )
            seed_only = 0
            within: list[Outcome] = []  # per case: adaptive's last point within fixed's cost
            for family, case in cases:
                mine = select(outcomes, family=family, case=case, plan=plan, reach=reach)
                target = pooled(select(mine, design="fixed", runs=EQUAL_RUNS))
                start = select(mine, design="adaptive")
                first = min((o.runs for o in start), default=0)
                cheap = [o for o in start if o.cost_examples <= fixed_cost]
                within += [max(cheap, key=lambda o: o.runs)] if cheap else []
                seed_only += any(
                    o.plan_nats >= target * o.oracle_nats - 1e-9 for o in start if o.runs == first
                )
            reached = "not reached" if hit is None else f"{hit[0]} ({hit[1]:.0f})"
            runs_ratio = "-" if hit is None else f"{hit[0] / EQUAL_RUNS:.2f}"
            cost_ratio = "-" if hit is None or not fixed_cost else f"{hit[1] / fixed_cost:.2f}"
            ratio.append(
                f"| {plan} | {reach}x | {fixed_share:.2f} | {adaptive_share:.2f} | {reached} | "
                f"{runs_ratio} | {cost_ratio} | {pooled(within):.2f} ({len(within)} cases) | "
                f"{seed_only}/{len(cases)} |"
            )
    return "\n".join(lines) + "\n\n" + "\n".join(ratio)


def losses_to_uniform(outcomes: Sequence[Outcome]) -> str:
    """Per plan: how many scored points lose more than the tolerance to uniform, the worst."""
    lines = ["| plan | design | points | lose > 0.0005 nats to uniform | worst (nats) | at |",
             "|---|---|---:|---:|---:|---|"]  # fmt: skip
    for plan in PLANS:
        for design in ("fixed", "adaptive"):
            mine = select(outcomes, plan=plan, design=design)
            worst = min(mine, key=lambda o: o.plan_nats)
            n_lost = sum(o.plan_nats < -LOSS_TOLERANCE_NATS for o in mine)
            lines.append(
                f"| {plan} | {design} | {len(mine)} | {n_lost} | {worst.plan_nats:+.4f} | "
                f"{worst.family} case {worst.case}, {worst.reach}x, {worst.runs} runs |"
            )
    return "\n".join(lines)


def oracle_summary(oracles: Sequence[Oracle]) -> str:
    """How the global search compares with water-filling on the true curves."""
    better = [o.global_nats - o.waterfill_nats for o in oracles]
    wins = sum(b > 1e-6 for b in better)
    return (
        f"oracle: {len(oracles)} (case, reach) pairs; the global search beats water-filling in "
        f"{wins} (by up to {max(better):.4f} nats), water-filling beats it by at most "
        f"{max(0.0, -min(better)):.6f} nats; mean oracle gain "
        f"{np.mean([o.gain_nats for o in oracles]):.4f} nats (water-filling alone: "
        f"{np.mean([o.waterfill_nats for o in oracles]):.4f})"
    )


def report(outcomes: Sequence[Outcome], oracles: Sequence[Oracle], title: str) -> str:
    """Every table for one set of cases."""
    return "\n\n".join(
        [f"### {title}", oracle_summary(oracles), gains_table(outcomes), goals_table(outcomes),
         losses_to_uniform(outcomes)]
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=6, help="ground truths per family")
    parser.add_argument("--cells", type=int, default=2, help="cells per adaptive round")
    parser.add_argument("--max-runs", type=int, default=EQUAL_RUNS, help="adaptive runs at most")
    parser.add_argument("--families", default=",".join(FAMILIES), help="truth families")
    parser.add_argument(
        "--seed-grid", default=",".join(map(str, SEED_GRID)), help="adaptive seed grid sizes"
    )
    parser.add_argument(
        "--run-overhead",
        type=float,
        help="suggest cells for their gain per example, a run costing its size plus this many "
        "examples (plan-suggest --run-overhead); default: for their gain alone",
    )
    parser.add_argument("--csv", help="also write every scored outcome to this CSV file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    seed_grid = tuple(int(s) for s in args.seed_grid.split(","))
    families = [f for f in args.families.split(",") if f != "demo" or DEMO_LAWS.is_file()]
    started = time.perf_counter()
    outcomes: dict[str, list[Outcome]] = {f: [] for f in families}
    oracles: dict[str, list[Oracle]] = {f: [] for f in families}
    with threadpool_limits(1):
        for family in families:
            for case in range(args.cases):
                found, best = run_case(
                    family, case, args.cells, args.max_runs, seed_grid, args.run_overhead
                )
                outcomes[family] += found
                oracles[family] += best
                print(f"  {family} case {case} done at {time.perf_counter() - started:.0f} s",
                      flush=True)  # fmt: skip
    wall_s = time.perf_counter() - started
    print(
        f"families {', '.join(families)}; {args.cases} case(s) each; seed grid {seed_grid}; "
        f"rounds of {args.cells} cells up to {args.max_runs} runs; run overhead "
        f"{args.run_overhead} examples; noise {NOISE:.0%}; "
        f"{wall_s:.0f} s on {platform.machine()}, load average {os.getloadavg()[0]:.2f}"
    )
    print(f"fits that crashed (points skipped): {FIT_CRASHES or 'none'}\n")
    everything = [o for f in families for o in outcomes[f]]
    if args.csv:
        pd.DataFrame([asdict(o) for o in everything]).to_csv(args.csv, index=False)
    print(report(everything, [o for f in families for o in oracles[f]], "All families"))
    for family in families:
        print("\n" + report(outcomes[family], oracles[family], f"{family} truths"))


if __name__ == "__main__":
    main()
