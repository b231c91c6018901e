"""Tables and figures of a plan for the analysis notebook, and its what-if re-plans.

`notebooks/analysis.ipynb` calls these functions. A sweep's plan lives in
`SWEEP_DIR/allocate/mixture.json`, as `plan-allocate LAWS --budget N --out SWEEP_DIR/allocate`
writes it (`notebooks/execute.py` runs that when it is missing). `load_plan` reads the plan
from that file, so every table here shows the numbers `plan-allocate` wrote; the laws file
gives the curves for what only the laws can answer (the frontier, the marginal values and
`what_if` plans, which are built from the plan's recorded settings).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from fits.analysis import resolve_sweep
from muit_core import ConfigError, DataError, format_count, parse_count
from planner.evaluation import INTERVAL_LEVEL, Estimate
from planner.mixture import read_mixture, report_from_mixture
from planner.pipeline import (
    frontier_figure as frontier_figure,
)  # the notebook calls pa.frontier_figure
from planner.pipeline import run_plan
from planner.plots import plot_marginal_value
from planner.problem import Unit
from planner.report import PlanReport, objective_label

if TYPE_CHECKING:
    import os

    from fits import LawsFile

PLAN_FOLDER = "allocate"  # SWEEP_DIR/allocate/, where notebooks/execute.py plans
DEFAULT_BUDGET_SHARE = 0.5  # default budget: half of all languages' pools (one epoch)


def mixture_path(sweep_dir: str | os.PathLike[str]) -> Path:
    """Where a sweep's mixture config lives: `SWEEP_DIR/allocate/mixture.json`."""
    return Path(sweep_dir) / PLAN_FOLDER / "mixture.json"


def default_budget(laws: LawsFile) -> float:
    """A budget that makes the planner choose: half the languages' pools, in examples.

    Rounded to two significant digits. Below the sum of the pools, some languages are not
    capped, so the allocation differs from the trivial one.

    Raises:
        DataError: a language's pool size is missing from the laws file.
    """
    missing = [code for code, fit in laws.fits.items() if not fit.data.get("n_available")]
    if missing:
        raise DataError(
            f"The laws file gives no pool size for {', '.join(missing)}; pass --budget."
        )
    total = DEFAULT_BUDGET_SHARE * sum(
        float(fit.data["n_available"]) for fit in laws.fits.values()
    )
    digits = 1 - math.floor(math.log10(total))
    return float(round(total, digits))


def load_plan(
    sweep_dir: str | os.PathLike[str], laws: LawsFile, laws_path: str = ""
) -> PlanReport:
    """The plan of `SWEEP_DIR/allocate/mixture.json`, as recorded, with the curves of `laws`.

    Nothing is solved: see `planner.mixture.report_from_mixture` (which warns when `laws` is
    not the laws file the plan was made from). A relative `sweep_dir` is found as
    `fits.analysis.resolve_sweep` finds it.

    Raises:
        DataError: no sweep folder, no mixture there, or one an older plan-allocate wrote (the
            message gives the command that writes it).
    """
    path = mixture_path(resolve_sweep(sweep_dir))
    if not path.is_file():
        raise DataError(
            f"No mixture config at {str(path)!r}; run `plan-allocate LAWS_JSON --budget N "
            f"--out {path.parent}` or `notebooks/execute.py {sweep_dir}` first."
        )
    source = f"The mixture config {str(path)!r}"
    return report_from_mixture(read_mixture(path), laws, laws_path, source)


def what_if(
    report: PlanReport,
    *,
    budget: float | str | None = None,
    weights: Mapping[str, float] | None = None,
    max_epochs: float | None = None,
    seed: int | None = None,
) -> PlanReport:
    """The same plan with another budget, other weights or another epoch cap, solved anew.

    The problem is the plan's own (its recorded bounds, objective, robustness and targets),
    with the given changes.

    Args:
        report: the plan to vary.
        budget: the new budget in the plan's unit (a number, or text such as "250k").
        weights: new objective weights for some languages; the others keep theirs.
        max_epochs: the new cap on passes over each pool.
        seed: the planner's search seed (default: the plan's).

    Raises:
        ConfigError: an unknown language or a non-positive weight or epoch cap.
        AllocationError: the budget cannot be split under the floors and caps.
    """
    problem, c = report.problem, report.problem.constraints
    new_weights = dict(zip(c.languages, c.weights, strict=True))
    for code, weight in (weights or {}).items():
        if code not in new_weights:
            known = ", ".join(c.languages)
            raise ConfigError(f"Unknown language {code!r} in weights. Known: {known}.")
        if not (math.isfinite(weight) and weight > 0):
            raise ConfigError(f"The weight of {code!r} must be positive; got {weight}.")
        new_weights[code] = float(weight)
    changes: dict[str, Any] = {"weights": tuple(new_weights[code] for code in c.languages)}
    if max_epochs is not None:
        if not (math.isfinite(max_epochs) and max_epochs > 0):
            raise ConfigError(f"max_epochs must be a positive number; got {max_epochs}.")
        caps = tuple(math.floor(n * max_epochs + 1e-9) for n in c.n_available)
        changes.update(max_examples=caps, max_epochs=float(max_epochs))
    constraints = dataclasses.replace(c, **changes)
    amount = report.budget
    if budget is not None:
        amount = parse_count(budget, what="budget") if isinstance(budget, str) else float(budget)
        if Unit(c.unit) is Unit.EXAMPLES:
            amount = float(round(amount))
    return run_plan(
        dataclasses.replace(problem, constraints=constraints),
        amount,
        report.objective,
        report.robust,
        report.targets,
        report.seed if seed is None else seed,
        laws_path=report.laws_path,
    )


def _evaluations(report: PlanReport) -> list[tuple[str, Any]]:
    return [
        ("planner", report.planner),
        *((ev.allocation.allocator, ev) for ev in report.baselines),
    ]


def examples_table(report: PlanReport) -> pd.DataFrame:
    """Examples per language (rows) for the planner and every baseline (columns)."""
    return pd.DataFrame(
        {name: list(ev.allocation.examples) for name, ev in _evaluations(report)},
        index=pd.Index(report.problem.languages, name="language"),
    )


def predictions_table(report: PlanReport) -> pd.DataFrame:
    """Predicted metric per language (rows) under each allocator's examples (columns)."""
    return pd.DataFrame(
        {name: [s.value for s in ev.scores] for name, ev in _evaluations(report)},
        index=pd.Index(report.problem.languages, name="language"),
    )


def summary_table(report: PlanReport) -> pd.DataFrame:
    """Per allocator: the predicted objective and the planner's gain over it, with intervals.

    Gains are in metric units, positive when the planner is better; bounds are the
    `INTERVAL_LEVEL` interval over the laws' bootstrap draws (NaN without draws).
    """
    rows = []
    gains = [Estimate(0.0, 0.0, 0.0), *report.gains]
    for (name, ev), g in zip(_evaluations(report), gains, strict=True):
        o = ev.objective
        rows.append(
            {
                "allocator": name,
                "objective": o.value,
                "objective_low": o.low,
                "objective_high": o.high,
                "planner_gain": g.value,
                "gain_low": g.low,
                "gain_high": g.high,
            }
        )
    return pd.DataFrame(rows).set_index("allocator")


def compare_plans(before: PlanReport, after: PlanReport) -> pd.DataFrame:
    """Per language: examples and predicted metric of two plans (e.g. a what-if and the plan)."""
    if before.problem.languages != after.problem.languages:
        raise ConfigError("The two plans cover different languages; compare like with like.")
    return pd.DataFrame(
        {
            "examples_before": list(before.planner.allocation.examples),
            "examples_after": list(after.planner.allocation.examples),
            "predicted_before": [s.value for s in before.planner.scores],
            "predicted_after": [s.value for s in after.planner.scores],
            "weight_before": list(before.problem.constraints.weights),
            "weight_after": list(after.problem.constraints.weights),
        },
        index=pd.Index(before.problem.languages, name="language"),
    )


def plot_allocations(report: PlanReport) -> Figure:
    """Left: examples per language for each allocator. Right: each allocator's predicted
    objective with its interval, the planner's in black."""
    evaluations = _evaluations(report)
    languages = report.problem.languages
    figure = Figure(figsize=(12.0, 4.6), layout="constrained")
    left, right = figure.subplots(1, 2, width_ratios=[2.0, 1.0])
    width = 0.8 / len(evaluations)
    x = np.arange(len(languages))
    for k, (name, ev) in enumerate(evaluations):
        color = "black" if name == "planner" else f"C{k - 1}"
        offset = (k - (len(evaluations) - 1) / 2) * width
        left.bar(x + offset, ev.allocation.examples, width, color=color, label=name)
    caps = np.array(report.problem.constraints.max_examples, dtype=float)
    left.scatter(x, caps, marker="_", s=400, color="#444444", label="cap", zorder=3)
    left.set_xticks(x, list(languages))
    left.set_ylabel("training examples")
    left.set_title(f"Examples per language, budget {format_count(report.budget)}")
    left.grid(True, axis="y", alpha=0.3)
    left.legend(fontsize=8)
    y = np.arange(len(evaluations))[::-1]
    for row, (k, (name, ev)) in zip(y, enumerate(evaluations), strict=True):
        o = ev.objective
        color = "black" if name == "planner" else f"C{k - 1}"
        error = None
        if not math.isnan(o.low):
            error = [[o.value - o.low], [o.high - o.value]]
        right.errorbar([o.value], [row], xerr=error, fmt="o", color=color, capsize=3)
    right.set_yticks(y, [name for name, _ in evaluations])
    right.set_xlabel(f"{INTERVAL_LEVEL:.0%} interval over bootstrap draws", fontsize=9)
    right.set_title(f"Predicted {objective_label(report)}".replace(" (", "\n("), fontsize=10)
    right.grid(True, axis="x", alpha=0.3)
    return figure


def marginal_value_figure(report: PlanReport) -> Figure:
    """Each language's marginal value at the planner's allocation (`plot_marginal_value`)."""
    return plot_marginal_value(report.problem, report.planner.allocation, report.objective)
