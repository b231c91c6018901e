"""`plan-suggest`: the next sweep cells expected to improve the plan most (adaptive design).

Reads the laws file `plan-fit` writes (with bootstrap draws), weighs candidate cells per
language (swept sizes with a new seed, their midpoints, sizes up to where the budget puts the
language, within its pool) by the expected gain of the plan's true objective
(`planner.design`), prints them, and writes into --out `cells.toml` (a `[[grid.cells]]` spec
fragment for `plan-sweep launch SPEC --cells`) and `suggestions.json` (the cells, their gains,
today's guarded plan and its objective interval).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from fits import read_laws
from muit_core import ConfigError, PlannerError, parse_count
from muit_core.atomic import OutputSet
from muit_core.cli import add_common_flags, run_main
from planner.baselines import UniformAllocator
from planner.cli import parse_budget, parse_positive, parse_seed
from planner.design import cells_toml, design_dict, format_design, suggest_cells
from planner.guard import GuardedPlanner
from planner.optimiser import Objective
from planner.pipeline import make_planner
from planner.problem import Problem, Unit, build_problem, raise_all, select_languages

T = TypeVar("T")

log = logging.getLogger("plan-suggest")

OUTPUT_NAMES = ("cells.toml", "suggestions.json")
INTERVAL = (0.05, 0.95)  # the plan's objective interval: 90% of the predictive draws

EPILOG = """\
examples:
  plan-suggest runs/demo/fits/laws.json --budget 20k --cells 5 --out runs/demo/suggest
  plan-sweep launch demo --cells runs/demo/suggest/cells.toml      # run them
  plan-suggest laws.json --budget 1M --cells 3 --sizes 256,1k,4k --noise 0.01
  plan-suggest laws.json --budget 20k --cells 5 --run-overhead 40 --out suggest  # gain per example

The budget is in examples, spent as plan-allocate would (one epoch per pool unless
--max-epochs). Gains are in the objective's units (nats of mean loss for heldout_ce).
"""


def build_parser() -> argparse.ArgumentParser:
    """The command's argument parser."""
    parser = argparse.ArgumentParser(
        prog="plan-suggest",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("laws", metavar="LAWS_JSON", help="laws file written by plan-fit")
    parser.add_argument("--budget", help="the plan's budget in examples, e.g. 20k or 1M")
    parser.add_argument("--cells", default="5", help="cells to suggest (default 5)")
    parser.add_argument("--sizes", help="candidate sizes for every language, e.g. 256,1k,4k")
    parser.add_argument(
        "--noise", help="a run's relative noise, e.g. 0.01 (default: from the laws' residuals)"
    )
    parser.add_argument(
        "--run-overhead",
        help="pick cells for their gain per training example, a run costing its size plus "
        "this many examples, e.g. 40 (default: for their gain alone)",
    )
    parser.add_argument("--max-epochs", default="1", help="passes over each pool (default 1)")
    parser.add_argument("--languages", help="plan only these languages, e.g. el,tr,vi")
    parser.add_argument("--seed", default="0", help="design seed (default 0)")
    parser.add_argument("--out", required=True, help="folder for cells.toml, suggestions.json")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    add_common_flags(parser)
    return parser


def parse_cells(text: str) -> int:
    """The number of cells: a whole number, 1 or more."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"--cells must be a whole number, 1 or more, such as 5; got {text!r}.")
    return value


def parse_overhead(text: str | None) -> float | None:
    """`--run-overhead`: a finite number of examples, 0 or more (None when not given)."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise ConfigError(f"--run-overhead must be 0 or more examples, such as 40; got {text!r}.")
    return value


def parse_sizes(text: str | None) -> list[int] | None:
    """Candidate sizes `256,1k,4k` as positive whole numbers of examples."""
    if text is None:
        return None
    sizes = [parse_count(item, what="--sizes") for item in text.split(",") if item.strip()]
    if not sizes or any(s < 1 or s != int(s) for s in sizes):
        raise ConfigError(
            f"--sizes must list positive whole numbers of examples, e.g. 256,1k,4k; got {text!r}."
        )
    return [int(s) for s in sizes]


@dataclass(frozen=True)
class _Options:
    """What the options say, checked."""

    problem: Problem
    budget: float
    n_cells: int
    sizes: list[int] | None
    noise: float | None
    seed: int
    run_overhead_examples: float | None = None


def _checked(args: argparse.Namespace) -> _Options:
    """Every option checked before any work or write; every problem reported at once."""
    problems: list[PlannerError] = []

    def run(check: Callable[[], T]) -> T | None:
        try:
            return check()
        except PlannerError as err:
            problems.append(err)
            return None

    budget = run(lambda: parse_budget(args.budget, Unit.EXAMPLES))
    n_cells = run(lambda: parse_cells(args.cells))
    sizes = run(lambda: parse_sizes(args.sizes))
    noise = None
    if args.noise is not None:
        noise = run(lambda: parse_positive(args.noise, "--noise", "0.01"))
    max_epochs = run(lambda: parse_positive(args.max_epochs, "--max-epochs", "1 or 4"))
    seed = run(lambda: parse_seed(args.seed))
    overhead = run(lambda: parse_overhead(args.run_overhead))
    run(lambda: OutputSet.check(Path(args.out), "--out"))
    laws = run(lambda: read_laws(args.laws))
    raise_all(problems)
    assert laws is not None and max_epochs is not None and budget is not None  # else raised
    assert n_cells is not None and seed is not None
    languages = select_languages(laws, args.languages)
    problem = build_problem(laws, languages, max_epochs=max_epochs)
    if problem.values.n_draws < 2:
        raise ConfigError(
            f"The laws file {args.laws!r} has no bootstrap draws, so no cell's value can be "
            "weighed; refit with plan-fit --bootstrap 200 and suggest again."
        )
    problem.constraints.check_budget(budget)
    return _Options(problem, budget, n_cells, sizes, noise, seed, overhead)


def plan_line(plan: dict[str, Any], metric: str) -> str:
    """One line: the plan's examples per language, its mean metric and 90% interval."""
    low, high = plan["interval"]
    examples = ", ".join(f"{k} {v}" for k, v in plan["examples"].items())
    return (
        f"plan ({plan['verdict']}): {examples}; mean {metric} {plan['objective']:.4g} "
        f"[{low:.4g}, {high:.4g}]"
    )


def plan_summary(problem: Problem, budget: float) -> dict[str, Any]:
    """Today's plan as `plan-allocate LAWS --budget B` makes it by default (the planner shrunk
    toward uniform until it wins in 90% of the draws), its objective and 90% interval over the
    draws, and the guard's verdict."""
    guarded = GuardedPlanner(make_planner(problem, Objective.MEAN), UniformAllocator())
    allocation, decision = guarded.decide(problem.values, budget, problem.constraints)
    units = np.asarray(problem.constraints.units_per_example, dtype=float)
    metric = problem.values.metric_draws(np.asarray(allocation.examples, dtype=float) * units)
    weights = np.asarray(problem.constraints.weights, dtype=float)
    per_draw = (weights[:, None] * metric).sum(axis=0) / weights.sum()
    low, high = (float(np.quantile(per_draw, q)) for q in INTERVAL)
    return {
        "examples": dict(zip(problem.languages, allocation.examples, strict=True)),
        "objective": float(np.mean(per_draw)),
        "interval": [low, high],
        "verdict": decision.verdict,
        "summary": decision.summary(),
    }


def cmd_suggest(args: argparse.Namespace) -> int:
    """Suggest the next cells; print them; write cells.toml and suggestions.json."""
    options = _checked(args)
    problem, budget = options.problem, options.budget
    laws = read_laws(args.laws)
    design = suggest_cells(
        laws,
        problem,
        budget,
        options.n_cells,
        sizes=options.sizes,
        noise_sd=options.noise,
        seed=options.seed,
        run_overhead_examples=options.run_overhead_examples,
    )
    command = shlex.join(["plan-suggest", *args.argv])
    plan = plan_summary(problem, budget)
    payload = {
        "format": "muit-suggest/1",
        "command": command,
        "metric": problem.metric,
        "budget_examples": budget,
        **design_dict(design),
        "plan": plan,
    }
    with OutputSet(Path(args.out), "--out") as out:
        out.write_text("cells.toml", cells_toml(design, command, problem.metric))
        out.write_text("suggestions.json", json.dumps(payload, indent=2) + "\n")
    log.info("wrote %s and %s", *(Path(args.out) / name for name in OUTPUT_NAMES))
    if args.format == "json":
        print(json.dumps(payload, indent=2))
        return 0
    print(format_design(design, problem.metric))
    print(plan_line(plan, problem.metric))
    if not math.isfinite(design.total_gain):
        log.warning("The expected gain is not finite; check the laws file's draws.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `plan-suggest`."""
    return run_main(build_parser(), cmd_suggest, argv)


if __name__ == "__main__":
    sys.exit(main())
