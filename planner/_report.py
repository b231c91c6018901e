"""The plan as the user sees it: the mixture config (contract 5) and the comparison table."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from muit_core import atomic_write_text, format_count
from planner._evaluate import INTERVAL_LEVEL, Estimate, Evaluation
from planner._planner import Objective, Robustness
from planner._problem import Problem

MIXTURE_FORMAT = "muit-mixture/1"
INTERLEAVE_USAGE = (
    "from datasets import interleave_datasets; "
    "mixed = interleave_datasets([pools[lang] for lang in languages], "
    "probabilities=probabilities, seed=0, stopping_strategy='all_exhausted'); "
    "mixed = mixed.select(range(min(len(mixed), total_examples)))  "
    "# pools: each language's training pairs as a Dataset, in `languages` order. "
    "Sampling hits the planned counts in expectation; --write-data writes them exactly."
)


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
        command: the command line that made the plan.
        laws_path: the laws file read.
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


def _estimate(estimate: Estimate) -> dict[str, float | None]:
    value, low, high = estimate.as_list()
    return {"value": value, "low": low, "high": high}


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


def mixture_dict(report: PlanReport) -> dict[str, Any]:
    """The mixture config (YAML and JSON carry the same content)."""
    p, c = report.problem, report.problem.constraints
    allocation = report.planner.allocation
    total = sum(allocation.examples)
    languages: dict[str, Any] = {}
    for i, lang in enumerate(p.languages):
        examples = allocation.examples[i]
        entry: dict[str, Any] = {
            "examples": examples,
            "probability": allocation.probabilities[i],
            "epochs": examples / c.n_available[i],
            "n_available": c.n_available[i],
            "floor": c.min_examples[i],
            "cap": c.max_examples[i],
            "weight": c.weights[i],
            "predicted": _estimate(report.planner.scores[i]),
            "law": p.laws[i],
            "corpus": p.corpora[i] or None,
            "pair_filter": p.pair_filters[i] or None,
        }
        if c.unit == "tokens":
            entry["tokens"] = examples * c.units_per_example[i]
        languages[lang] = entry
    baselines = {
        ev.allocation.allocator: {
            "examples": dict(zip(p.languages, ev.allocation.examples, strict=True)),
            "objective": _estimate(ev.objective),
            "robust_objective": ev.robust,
            "planner_gain": _estimate(g),
        }
        for ev, g in zip(report.baselines, report.gains, strict=True)
    }
    out: dict[str, Any] = {
        "format": MIXTURE_FORMAT,
        "command": report.command,
        "laws_file": report.laws_path,
        "budget": report.budget,
        "budget_unit": c.unit,
        "total_examples": total,
        "max_epochs": c.max_epochs,
        "objective": report.objective.value,
        "objective_label": objective_label(report),
        "robust": None
        if report.robust is None
        else {"mode": report.robust.label, "quantile": report.robust.quantile},
        "metric": p.metric,
        "higher_is_better": p.higher_is_better,
        "interval_level": INTERVAL_LEVEL,
        "method": allocation.method,
        "predicted_objective": _estimate(report.planner.objective),
        "robust_objective": report.planner.robust,
        "languages": languages,
        "interleave_datasets": {
            "languages": list(p.languages),
            "probabilities": list(allocation.probabilities),
            "total_examples": total,
            "usage": INTERLEAVE_USAGE,
        },
        "baselines": baselines,
    }
    out["gain_unit"] = c.unit if report.objective is Objective.TARGET else p.metric
    if report.targets is not None:
        out["targets"] = {
            lang: t
            for lang, t in zip(p.languages, report.targets, strict=True)
            if not math.isnan(t)
        }
        out["budget_to_targets"] = report.budgets_to_targets
    return out


def write_mixture(report: PlanReport, out_dir: Path) -> tuple[Path, Path]:
    """Write `mixture.yaml` and `mixture.json` (same content) atomically."""
    content = mixture_dict(report)
    header = f"# MuIT mixture written by: {report.command or 'plan-allocate'}\n"
    yaml_text = header + yaml.safe_dump(content, sort_keys=False, allow_unicode=True, width=99)
    json_text = json.dumps(content, indent=2, ensure_ascii=False) + "\n"
    return (
        atomic_write_text(out_dir / "mixture.yaml", yaml_text),
        atomic_write_text(out_dir / "mixture.json", json_text),
    )


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
    rows = [
        [
            lang,
            f"{allocation.examples[i]:,}",
            f"{allocation.probabilities[i]:.4f}",
            f"{allocation.examples[i] / c.n_available[i]:.2f}",
            _fmt(report.planner.scores[i]),
        ]
        for i, lang in enumerate(p.languages)
    ]
    per_language = _grid(
        ["language", "examples", "probability", "epochs", f"predicted {p.metric} [{level}]"], rows
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
    return "\n\n".join(
        [head, per_language, "Examples per language, side by side:\n" + side, summary]
    )
