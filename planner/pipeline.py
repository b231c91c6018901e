"""`plan-allocate` end to end: allocate, evaluate against the baselines, write its outputs.

`run_plan` makes the `PlanReport`, refusing one that rests on predictions the metric cannot
take; `render_outputs` turns it into the mixture config (YAML and JSON), the table and the two
plots, and `write_outputs` puts them in place all or none. `frontier_figure` solves new plans
over a range of budgets with the report's recorded objective, options and seed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from muit_core import ConfigError, OutputSet, figure_png
from planner.allocation import BaseAllocator
from planner.baselines import baseline_allocators
from planner.evaluation import (
    Estimate,
    budget_to_targets,
    check_predictions,
    evaluate,
    frontier,
    frontier_budgets,
    gain,
)
from planner.guard import GuardedPlanner, GuardSettings
from planner.mixture import mixture_texts
from planner.optimiser import Objective, PlannerAllocator, Robustness
from planner.plots import plot_frontier, plot_marginal_value
from planner.problem import Problem
from planner.report import PlanReport, format_table, objective_label

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

PNG_DPI = 130  # both plots' resolution
OUTPUT_NAMES = ("mixture.yaml", "mixture.json", "table.txt", "frontier.png", "marginal_value.png")


def make_planner(
    problem: Problem,
    objective: Objective,
    robust: Robustness | None = None,
    targets: Sequence[float] | None = None,
    seed: int = 0,
) -> PlannerAllocator:
    """The planner for a problem (targets in metric units, NaN for none)."""
    return PlannerAllocator(objective, robust, targets, problem.higher_is_better, seed)


def reference_allocator(name: str) -> BaseAllocator:
    """The baseline named `name`, for the guard.

    Raises:
        ConfigError: no baseline has that name.
    """
    for allocator in baseline_allocators():
        if allocator.name == name:
            return allocator
    names = ", ".join(a.name for a in baseline_allocators())
    raise ConfigError(f"Unknown --reference {name!r}; choose one of {names}, or none.")


def guarded_planner(planner: PlannerAllocator, guard: GuardSettings | None) -> BaseAllocator:
    """`planner`, guarded by `guard` (unchanged without one, or for the target objective,
    whose budget is the objective)."""
    if guard is None or planner.objective is Objective.TARGET:
        return planner
    return GuardedPlanner(planner, reference_allocator(guard.reference), guard.confidence)


def minimum_budget(problem: Problem, planner: PlannerAllocator) -> float:
    """The least budget that reaches the planner's targets (whole examples, rounded up)."""
    need = planner.required_amounts(problem.values, problem.constraints)
    units = np.array(problem.constraints.units_per_example)
    examples = np.ceil(need / units - 1e-9)  # as `PlannerAllocator.allocate` rounds them
    return float(np.sum(examples * units))


def run_plan(
    problem: Problem,
    budget: float,
    objective: Objective,
    robust: Robustness | None = None,
    targets: Sequence[float] | None = None,
    seed: int = 0,
    command: str = "",
    laws_path: str = "",
    baselines: Sequence[BaseAllocator] | None = None,
    guard: GuardSettings | None = None,
) -> PlanReport:
    """Allocate `budget`, evaluate the planner and every baseline, and compare them.

    With `guard`, the plan moves away from the guard's reference baseline only as far as it
    beats it in the required share of the predictive draws (`planner.guard`).

    Raises:
        AllocationError: the budget cannot be split, or a target is out of reach.
        DataError: a law predicts a value its metric cannot take at an amount the planner or
            a baseline gives, or up to a language's cap, or gets worse with more data
            (`check_predictions`).
    """
    planner = make_planner(problem, objective, robust, targets, seed)
    others = tuple(baselines if baselines is not None else baseline_allocators())
    chooser = guarded_planner(planner, guard)
    decision = None
    if isinstance(chooser, GuardedPlanner):
        allocation, decision = chooser.decide(problem.values, budget, problem.constraints)
        log.info("guard: %s", decision.summary())
    else:
        allocation = chooser.allocate(problem.values, budget, problem.constraints)
    log.info(
        "planner: %s, %s",
        allocation.method,
        dict(zip(allocation.languages, allocation.examples, strict=True)),
    )
    splits = [a.allocate(problem.values, budget, problem.constraints) for a in others]
    check_predictions(problem, [allocation, *splits])
    planned = evaluate(problem, allocation, objective, robust)
    evaluations, gains = [], []
    for other in splits:
        evaluations.append(evaluate(problem, other, objective, robust))
        gains.append(gain(problem, allocation, other, objective))
    needs: dict[str, float | None] | None = None
    if objective is Objective.TARGET and targets is not None:
        wanted = np.asarray(targets, dtype=float)
        needs = {planner.name: minimum_budget(problem, planner)}
        for allocator in others:
            needs[allocator.name] = budget_to_targets(problem, allocator, wanted)
        # The target objective is the budget: the gain is what the planner saves.
        mine = needs[planner.name]
        assert mine is not None
        gains = [
            Estimate(math.nan if (theirs := needs[a.name]) is None else theirs - mine)
            for a in others
        ]
    return PlanReport(
        problem=problem,
        objective=objective,
        robust=robust,
        budget=budget,
        planner=planned,
        baselines=tuple(evaluations),
        gains=tuple(gains),
        targets=None if targets is None else tuple(float(t) for t in targets),
        budgets_to_targets=needs,
        command=command,
        laws_path=laws_path,
        seed=seed,
        guard=guard if isinstance(chooser, GuardedPlanner) else None,
        decision=decision,
    )


def check_out_dir(out_dir: Path, names: Iterable[str] = OUTPUT_NAMES) -> None:
    """Raise `ConfigError` now unless `out_dir` can take the outputs `names`; writes nothing.

    `out_dir` must be a folder (or not exist below one this process can write to), and none
    of `names` in it may be a folder.
    """
    OutputSet.check(out_dir, "--out")
    for name in names:
        if (out_dir / name).is_dir():
            raise ConfigError(
                f"--out {str(out_dir)!r} holds a folder named {name!r} where plan-allocate "
                "writes a file; move it away or give another --out."
            )


def render_outputs(
    report: PlanReport, frontier_points: int = 16, plots: bool = True
) -> dict[str, bytes]:
    """The files of a plan by name: the mixture (YAML, JSON), the table and (unless `plots` is
    false) both plots, rendered in memory."""
    files = {name: text.encode("utf-8") for name, text in mixture_texts(report).items()}
    files["table.txt"] = (format_table(report) + "\n").encode("utf-8")
    if plots:
        files["frontier.png"] = figure_png(frontier_figure(report, frontier_points), PNG_DPI)
        marginal = plot_marginal_value(report.problem, report.planner.allocation, report.objective)
        files["marginal_value.png"] = figure_png(marginal, PNG_DPI)
    return files


def write_outputs(
    report: PlanReport,
    out_dir: Path,
    frontier_points: int = 16,
    plots: bool = True,
) -> list[Path]:
    """Write the mixture (YAML, JSON), the table and (unless `plots` is false) both plots.

    All or none: every file is rendered first, then they are put in place together
    (`muit_core.OutputSet`), so a failure leaves every earlier output as it was.

    Raises:
        ConfigError: `out_dir` cannot take them (`check_out_dir`), or writing fails (a full
            disk, say).
    """
    files = render_outputs(report, frontier_points, plots)
    check_out_dir(out_dir, files)
    try:
        with OutputSet(out_dir, "--out") as out:
            return [out.write_bytes(name, data) for name, data in files.items()]
    except OSError as err:
        raise ConfigError(
            f"Cannot write the plan into --out {str(out_dir)!r} ({err.strerror or err}); free "
            "some space or give another folder."
        ) from err


def frontier_figure(report: PlanReport, n_points: int = 16) -> Figure:
    """The budget frontier of the planner and every baseline, as `plan-allocate` draws it.

    The planner at each budget has the report's objective, robustness, targets and seed.
    """
    problem = report.problem
    if report.planner.allocation.method == "global search":  # seconds per point, not ms
        n_points = max(6, n_points // 2)
    budgets = frontier_budgets(problem, report.budget, n_points)
    planner = make_planner(problem, report.objective, report.robust, report.targets, report.seed)
    chooser = guarded_planner(planner, report.guard)
    curves = frontier(problem, [chooser, *baseline_allocators()], budgets, report.objective)
    if any(math.isnan(p.value) for p in curves[planner.name]):
        log.info(
            "The frontier leaves out budgets the planner cannot split (below its floors) or "
            "where a law predicts a value its metric cannot take."
        )
    return plot_frontier(
        budgets,
        curves,
        report.budget,
        problem.constraints.unit,
        objective_label(report),
        sign=problem.sign,
    )
