"""A finished plan (`PlanReport`) and the comparison table `plan-allocate` prints."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from muit_core import format_count
from planner.evaluation import INTERVAL_LEVEL, Estimate, Evaluation
from planner.guard import GuardDecision, GuardSettings
from planner.optimiser import Objective, Robustness
from planner.problem import Problem


@dataclass(frozen=True)
class PlanReport:
    """A finished plan: the planner's allocation, the baselines', and how they compare.

    Attributes:
        problem: the problem solved.
        objective: the objective.
        robust: robustness over draws, or None.
        budget: the budget, in the budget's unit.
        planner: the planner's evaluation.
        baselines: each baseline's evaluation, in table order.
        gains: the planner's gain over each baseline (metric units, positive = better); for
            the target objective, the budget it saves (budget units; NaN where the baseline
            never reaches the targets).
        targets: metric targets per language (NaN: none) for the target objective, else None.
        budgets_to_targets: least budget each allocator needs for the targets (None: never).
        command: the command line that made the plan (for people; nothing parses it).
        laws_path: the laws file read.
        seed: the planner's search seed; what-if plans and the frontier reuse it.
        guard: the baseline the plan had to beat and how surely (None: not guarded).
        decision: what the guard decided (None: not guarded, or recorded without it).
    """

    problem: Problem
    objective: Objective
    robust: Robustness | None
    budget: float
    planner: Evaluation
    baselines: tuple[Evaluation, ...]
    gains: tuple[Estimate, ...]
    targets: tuple[float, ...] | None = None
    budgets_to_targets: dict[str, float | None] | None = None
    command: str = ""
    laws_path: str = ""
    seed: int = 0
    guard: GuardSettings | None = None
    decision: GuardDecision | None = None


def _direction(problem: Problem) -> str:
    return "higher is better" if problem.higher_is_better else "lower is better"


def objective_label(report: PlanReport) -> str:
    """E.g. 'weighted mean chrf (higher is better)'."""
    p = report.problem
    worst = "highest" if not p.higher_is_better else "lowest"
    kind = (
        f"{worst} {p.metric} of any language"
        if report.objective is Objective.MAXMIN
        else (f"weighted mean {p.metric}")
    )
    return f"{kind} ({_direction(p)})"


def _fmt(estimate: Estimate) -> str:
    if math.isnan(estimate.value):
        return "n/a"
    if math.isnan(estimate.low):
        return f"{estimate.value:.4g}"
    return f"{estimate.value:.4g} [{estimate.low:.4g}, {estimate.high:.4g}]"


def _grid(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-align the first column, right-align the rest."""
    widths = [max(len(str(r[j])) for r in [headers, *rows]) for j in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        first = str(cells[0]).ljust(widths[0])
        rest = (str(v).rjust(w) for v, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def format_reach(ratio: float) -> str:
    """An extrapolation ratio for a table: `0.5x`, `12x`; `-` when unknown."""
    if math.isnan(ratio):
        return "-"
    if math.isinf(ratio):
        return "inf"
    return f"{ratio:.1f}x" if ratio < 10 else f"{ratio:.0f}x"


def suggested_sizes(amount: int, largest: float) -> list[str]:
    """Sizes to add to a sweep whose largest size is `largest` so it reaches `amount`: a
    factor 4 apart from 4x `largest`, then `amount` itself (a step within 25% of it is
    skipped)."""
    if not largest > 0:
        return [format_count(amount)]
    sizes, size = [], largest * 4
    while size < amount * 0.75:
        sizes.append(format_count(round(size)))
        size *= 4
    return [*sizes, format_count(amount)]


def decision_text(report: PlanReport) -> str | None:
    """The guard's decision in a sentence or two, with the sizes that would settle it."""
    decision = report.decision
    if decision is None:
        return None
    text = "Decision: " + decision.summary()
    if decision.verdict not in ("shrunk", "reference") or not report.problem.largest_swept:
        return text
    adds = []
    for lang, amount, largest in zip(
        report.problem.languages,
        decision.optimum_examples,
        report.problem.largest_swept,
        strict=False,
    ):
        if largest > 0 and amount > 1.5 * largest:
            adds.append(f"{lang} {', '.join(suggested_sizes(amount, largest))}")
    if adds:
        text += " To decide, add these sizes to the sweep: " + "; ".join(adds) + "."
    return text


def format_table(report: PlanReport) -> str:
    """The plan as text: per language, then each allocator's objective and the gain over it."""
    p, c = report.problem, report.problem.constraints
    allocation = report.planner.allocation
    level = f"{INTERVAL_LEVEL:.0%}"
    head = (
        f"Budget {format_count(report.budget)} {c.unit} over {len(p.languages)} languages, "
        f"max {c.max_epochs:g} epochs; objective: {objective_label(report)}"
        + (f", robust {report.robust.label}" if report.robust else "")
        + f"; solved by {allocation.method}."
    )
    reach = p.reach(allocation.examples)
    rows = [
        [
            lang,
            f"{allocation.examples[i]:,}",
            f"{allocation.probabilities[i]:.4f}",
            f"{allocation.examples[i] / c.n_available[i]:.2f}",
            format_reach(reach[i]),
            _fmt(report.planner.scores[i]),
        ]
        for i, lang in enumerate(p.languages)
    ]
    per_language = _grid(
        [
            "language",
            "examples",
            "probability",
            "epochs",
            "reach",
            f"predicted {p.metric} [{level}]",
        ],
        rows,
    )
    names = [ev.allocation.allocator for ev in report.baselines]
    side = _grid(
        ["language", "planner", *names],
        [
            [lang, f"{allocation.examples[i]:,}"]
            + [f"{ev.allocation.examples[i]:,}" for ev in report.baselines]
            for i, lang in enumerate(p.languages)
        ],
    )
    robust = report.robust is not None
    summary_rows = []
    for ev, g in [(report.planner, None), *zip(report.baselines, report.gains, strict=True)]:
        row = [ev.allocation.allocator, _fmt(ev.objective)]
        if robust:
            row.append("n/a" if ev.robust is None else f"{ev.robust:.4g}")
        if g is None:
            row.append("-")
        elif report.objective is Objective.TARGET:
            row.append("never reaches" if math.isnan(g.value) else format_count(g.value))
        else:
            row.append(_fmt(g))
        if report.budgets_to_targets is not None:
            need = report.budgets_to_targets.get(ev.allocation.allocator)
            row.append("unreachable" if need is None else format_count(need))
        summary_rows.append(row)
    summary_head = ["allocator", f"objective [{level}]"]
    if robust:
        summary_head.append(f"robust ({report.robust.label if report.robust else ''})")
    if report.objective is Objective.TARGET:
        summary_head[1] = f"mean {p.metric} [{level}]"
        summary_head.append(f"planner saves ({c.unit})")
    else:
        summary_head.append(f"planner gain [{level}]")
    if report.budgets_to_targets is not None:
        summary_head.append(f"{c.unit} to reach targets")
    summary = _grid(summary_head, summary_rows)
    decided = decision_text(report)
    return "\n\n".join(
        [
            head,
            *([decided] if decided else []),
            per_language,
            "Examples per language, side by side:\n" + side,
            summary,
        ]
    )
