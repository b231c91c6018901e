"""The two plots of a plan: the budget frontier and the marginal value at the allocation.

Each function builds a matplotlib `Figure` (no pyplot, so no GUI backend and no global state)
from numbers already computed; `plan-allocate` saves them through `muit_core.OutputSet`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from muit_core import format_count
from planner.allocation import Allocation
from planner.evaluation import Estimate
from planner.optimiser import Objective
from planner.problem import Problem
from planner.values import FloatArray

MAX_BARS = 40  # languages shown in the marginal-value plot (those given the most)
_DASHES = ("-", "--", "-.", ":")


def plot_frontier(
    budgets: Sequence[float] | FloatArray,
    curves: Mapping[str, Sequence[Estimate]],
    chosen_budget: float,
    unit: str,
    objective_label: str,
    sign: float = 1.0,
) -> Figure:
    """Predicted objective against budget (log x) for the planner and every baseline.

    `sign` is +1 when higher is better and -1 for losses, so the bottom panel's gain is
    positive whenever the planner is better.

    Top: the objectives, with the planner's interval over bootstrap draws shaded. Bottom: the
    planner's gain over each baseline, which the top panel's scale can hide. The chosen
    budget is marked on both. `curves` must hold a "planner" entry.
    """
    figure = Figure(figsize=(8.0, 7.0), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[2.2, 1.0])
    x = np.asarray(budgets, dtype=float)
    planner = np.array([p.value for p in curves["planner"]])
    for index, (name, points) in enumerate(curves.items()):
        y = np.array([p.value for p in points])
        if name == "planner":
            top.plot(x, y, marker="o", markersize=4, linewidth=2.6, color="black", label=name)
            low, high = np.array([p.low for p in points]), np.array([p.high for p in points])
            if np.isfinite(low).any():
                top.fill_between(x, low, high, color="black", alpha=0.12, label="planner 90%")
            continue
        # Distinct dashes too: uniform and UniMax coincide without floors, and both must show.
        style = {"color": f"C{index % 10}", "linestyle": _DASHES[index % len(_DASHES)]}
        top.plot(x, y, marker="o", markersize=3, linewidth=1.3, label=name, **style)
        bottom.plot(x, sign * (planner - y), marker="o", markersize=3, linewidth=1.3, **style)
    for ax in (top, bottom):
        ax.axvline(chosen_budget, color="tab:red", linestyle=":", linewidth=1.2)
        ax.set_xscale("log")
        ax.grid(True, which="both", alpha=0.3)
    top.annotate(
        f"budget {format_count(chosen_budget)}",
        (chosen_budget, 0.03),
        xycoords=("data", "axes fraction"),
        rotation=90,
        color="tab:red",
        ha="right",
        va="bottom",
        fontsize=9,
    )
    bottom.axhline(0.0, color="black", linewidth=0.8)
    top.set_ylabel(f"predicted {objective_label}", fontsize=9)
    top.set_title("Budget frontier: planner and baselines")
    top.legend(fontsize=8)
    bottom.set_ylabel("planner gain over baseline", fontsize=9)
    bottom.set_xlabel(f"budget ({unit}, log scale)")
    return figure


def plot_marginal_value(problem: Problem, allocation: Allocation, objective: Objective) -> Figure:
    """Per-language marginal value at the allocation: objective gain per 1,000 more examples.

    For the mean (and target) objective this is w_i / sum(w) * du_i/dx; at the optimum every
    language not held at a floor or cap shares the same value (the KKT multiplier, dashed).
    For max-min it is each language's own score gain. Gains are in the metric's good
    direction (positive = better).
    """
    c = problem.constraints
    amounts = np.array(allocation.amounts)
    per_example = problem.values.marginal(amounts) * np.array(c.units_per_example)
    weights = np.array(c.weights)
    if objective is not Objective.MAXMIN:
        per_example = per_example * weights / weights.sum()
    value = 1000.0 * per_example
    at_cap = amounts >= c.upper * (1 - 1e-9)
    at_floor = (amounts <= c.lower * (1 + 1e-9)) & ~at_cap
    order = np.argsort(-amounts, kind="stable")[:MAX_BARS]
    order = order[np.argsort(order, kind="stable")]  # back to plan order
    labels = [problem.languages[i] for i in order]
    colors = [
        "tab:orange" if at_cap[i] else "tab:gray" if at_floor[i] else "tab:blue" for i in order
    ]
    figure = Figure(figsize=(max(6.0, 0.45 * len(order) + 2.5), 4.8), layout="constrained")
    ax = figure.add_subplot()
    ax.bar(range(len(order)), value[order], color=colors)
    ax.set_xticks(
        range(len(order)),
        labels,
        rotation=45 if len(order) > 12 else 0,
        ha="right" if len(order) > 12 else "center",
    )
    free = ~at_cap & ~at_floor
    if free.any() and objective is not Objective.MAXMIN:
        level = float(np.median(value[free]))
        ax.axhline(level, color="black", linestyle="--", linewidth=1, label="KKT multiplier")
    positive = value[order] > 0
    if positive.all() and value[order].max() / value[order].min() > 100:
        ax.set_yscale("log")
    for color, label, present in (
        ("tab:blue", "free", free),
        ("tab:orange", "at cap", at_cap),
        ("tab:gray", "at floor", at_floor),
    ):
        if present[order].any():
            ax.bar([0], [math.nan], color=color, label=label)
    measure = (
        problem.metric if objective is Objective.MAXMIN else f"weighted mean {problem.metric}"
    )
    ax.set_ylabel(f"gain in {measure}\nper 1,000 more examples")
    shown = "" if len(order) == len(amounts) else f" ({len(order)} largest of {len(amounts)})"
    ax.set_title(f"Marginal value at the planner's allocation{shown}")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=9)
    return figure
