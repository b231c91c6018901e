"""The mixture config (contract 5): `plan-allocate` writes it, the analysis reads the plan back.

`mixture_dict` is the whole record of a plan: per language the planner's examples (and the
continuous `amount`, in budget units, they were rounded from), the bounds and inputs the plan
was made with (floors, caps, pools, weights, tokens per example in the tokens unit, corpus,
pair filter, law), the seed, the objective and its options, and each baseline's examples,
predictions and objective beside the planner's. `report_from_mixture` turns such a record and
the laws it was made with back into the `PlanReport`, without solving anything: the laws only
give the curves that what-if plans, the frontier and the marginal-value plot need.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from muit_core import DataError, OutputSet
from planner.allocation import Allocation, Constraints
from planner.evaluation import INTERVAL_LEVEL, Estimate, Evaluation, evaluate
from planner.guard import GuardSettings, decision_from_dict
from planner.optimiser import Objective, PlannerAllocator, Robustness
from planner.problem import Unit, recorded_problem
from planner.report import PlanReport, objective_label

if TYPE_CHECKING:
    import os

    from fits import LawsFile

log = logging.getLogger(__name__)

MIXTURE_FORMAT = "muit-mixture/1"
INTERLEAVE_USAGE = (
    "Prefer `plan-sweep write-data MIXTURE --out DIR`: its per-language files hold exactly the "
    "planned examples (repeated epochs included), to concatenate and shuffle. Sampling instead: "
    "from datasets import interleave_datasets; "
    "mixed = interleave_datasets([pools[lang] for lang in languages], "
    "probabilities=probabilities, seed=0, stopping_strategy='first_exhausted'); "
    "mixed = mixed.select(range(min(len(mixed), total_examples)))  "
    "# pools: each language's training pairs as a Dataset, in `languages` order, each repeated "
    "to at least its planned epochs. This hits the planned counts only in expectation, and "
    "stopping_strategy='all_exhausted' would oversample small languages until every pool is "
    "used up, whatever the probabilities say."
)
REWRITE_COMMAND = "plan-allocate LAWS_JSON --budget N --out DIR"  # when none is recorded
_PREDICTION_RTOL = 1e-6  # recorded and recomputed predictions this close come from the same laws


def _estimate(estimate: Estimate) -> dict[str, float | None]:
    value, low, high = estimate.as_list()
    return {"value": value, "low": low, "high": high}


def _read_estimate(recorded: Mapping[str, float | None]) -> Estimate:
    """The `Estimate` that `_estimate` wrote (None back to NaN)."""
    value, low, high = (recorded.get(k) for k in ("value", "low", "high"))
    return Estimate(*(math.nan if v is None else float(v) for v in (value, low, high)))


def mixture_dict(report: PlanReport) -> dict[str, Any]:
    """The mixture config (YAML and JSON carry the same content)."""
    p, c = report.problem, report.problem.constraints
    allocation = report.planner.allocation
    total = sum(allocation.examples)
    reach = p.reach(allocation.examples)
    languages: dict[str, Any] = {}
    for i, lang in enumerate(p.languages):
        examples = allocation.examples[i]
        entry: dict[str, Any] = {
            "examples": examples,
            "amount": allocation.amounts[i],
            "probability": allocation.probabilities[i],
            "epochs": examples / c.n_available[i],
            "n_available": c.n_available[i],
            "floor": c.min_examples[i],
            "cap": c.max_examples[i],
            "weight": c.weights[i],
            "predicted": _estimate(report.planner.scores[i]),
            "law": p.laws[i],
            "largest_swept": p.largest_swept[i] if p.largest_swept else None,
            "reach": _ratio(reach[i]),
            "corpus": p.corpora[i] or None,
            "pair_filter": p.pair_filters[i] or None,
        }
        if c.unit == Unit.TOKENS.value:
            entry["tokens"] = examples * c.units_per_example[i]
            entry["tokens_per_example"] = c.units_per_example[i]
        languages[lang] = entry
    baselines = {
        ev.allocation.allocator: {
            "method": ev.allocation.method,
            "examples": dict(zip(p.languages, ev.allocation.examples, strict=True)),
            "reach": dict(
                zip(p.languages, map(_ratio, p.reach(ev.allocation.examples)), strict=True)
            ),
            "predicted": {
                lang: _estimate(score) for lang, score in zip(p.languages, ev.scores, strict=True)
            },
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
        "seed": report.seed,
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
        "max_extrapolation": p.max_extrapolation,
        "general_data": general_data(p.sweep, total),
        "guard": None
        if report.guard is None
        else {
            "reference": report.guard.reference,
            "confidence": report.guard.confidence,
            "decision": None if report.decision is None else report.decision.to_dict(),
        },
        # What the sweep stage needs to train this mixture (plan-sweep write-data, validate).
        "sweep": None if p.sweep is None else dict(p.sweep),
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


def general_data(sweep: Mapping[str, Any] | None, translation_examples: int) -> dict[str, Any]:
    """The general instruction data the sweep trained with, as the MuIT run should too.

    Read from the sweep's resolved spec (`data.general_data` / `general_ratio` per language,
    `general_data_en` / `general_ratio_en` for English): general examples are added on top of
    the plan's translation examples, about `ratio` per translation example; `plan-sweep
    write-data` draws them and states the exact counts in its manifest. Empty ratios: none.
    """
    data = dict(((sweep or {}).get("spec") or {}).get("data") or {})
    ratio = float(data.get("general_ratio") or 0.0)
    ratio_en = float(data.get("general_ratio_en") or 0.0)
    added = (ratio + ratio_en) * translation_examples
    return {
        "per_language": {"path": data.get("general_data") or None, "ratio": ratio},
        "english": {"path": data.get("general_data_en") or None, "ratio": ratio_en},
        "approximate_share_of_run": added / (added + translation_examples)
        if translation_examples
        else 0.0,
        "exact_counts": "plan-sweep write-data's manifest.json",
    }


def _ratio(value: float) -> float | None:
    """A reach for JSON: None when unknown or infinite (no swept size above 0)."""
    return None if math.isnan(value) or math.isinf(value) else value


def mixture_texts(report: PlanReport) -> dict[str, str]:
    """The text of `mixture.yaml` and `mixture.json` (same content), by file name."""
    content = mixture_dict(report)
    header = f"# MuIT mixture written by: {report.command or 'plan-allocate'}\n"
    yaml_text = header + yaml.safe_dump(content, sort_keys=False, allow_unicode=True, width=99)
    json_text = json.dumps(content, indent=2, ensure_ascii=False) + "\n"
    return {"mixture.yaml": yaml_text, "mixture.json": json_text}


def write_mixture(report: PlanReport, out_dir: Path) -> tuple[Path, Path]:
    """Write `mixture.yaml` and `mixture.json` into `out_dir`, both or neither.

    Raises:
        ConfigError: `out_dir` is a file or cannot be written.
    """
    with OutputSet(out_dir, "--out") as out:
        yaml_path, json_path = (out.write_text(n, t) for n, t in mixture_texts(report).items())
    return yaml_path, json_path


def read_mixture(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The content of a `mixture.json`, checked with `check_mixture`.

    Raises:
        DataError: the file cannot be read, is not JSON, or is not a complete mixture config
            (the message names the command that rewrites it).
    """
    try:
        mixture = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"Cannot read the mixture config {str(path)!r}: {err}.") from err
    check_mixture(mixture, f"The mixture config {str(path)!r}")
    return mixture


def _missing_fields(mixture: Mapping[str, Any]) -> list[str]:
    """The fields `report_from_mixture` needs that the mixture lacks (an older writer's)."""
    missing = [key for key in ("seed", "languages", "baselines") if key not in mixture]
    tokens = mixture.get("budget_unit") == Unit.TOKENS.value
    for code, entry in dict(mixture.get("languages") or {}).items():
        wanted = ("amount", "tokens_per_example") if tokens else ("amount",)
        missing += [f"languages.{code}.{key}" for key in wanted if key not in entry]
    for name, entry in dict(mixture.get("baselines") or {}).items():
        wanted = ("method", "predicted")
        missing += [f"baselines.{name}.{key}" for key in wanted if key not in entry]
    return missing


def check_mixture(mixture: Any, source: str = "The mixture config") -> None:
    """Check that `mixture` is a `muit-mixture/1` config with everything a plan is read from.

    Args:
        mixture: the parsed file.
        source: how messages name it, e.g. "The mixture config 'runs/demo/allocate/mixture.json'".

    Raises:
        DataError: another format, or fields an older plan-allocate did not write (the message
            gives the command that rewrites it).
    """
    found = mixture.get("format") if isinstance(mixture, dict) else type(mixture).__name__
    if found != MIXTURE_FORMAT:
        raise DataError(
            f"{source} is not a mixture config: expected format {MIXTURE_FORMAT!r}, found "
            f"{found!r}; write one with `{REWRITE_COMMAND}`."
        )
    missing = _missing_fields(mixture)
    if missing:
        command = str(mixture.get("command") or REWRITE_COMMAND)
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        shown = ", ".join(missing[:3]) + more
        raise DataError(
            f"{source} was written by an older plan-allocate and lacks {shown}; re-run "
            f"plan-allocate to rewrite it: `{command}`."
        )


def _recorded_constraints(mixture: Mapping[str, Any]) -> Constraints:
    entries: dict[str, dict[str, Any]] = dict(mixture["languages"])
    tokens = mixture["budget_unit"] == Unit.TOKENS.value
    return Constraints(
        languages=tuple(entries),
        min_examples=tuple(int(e["floor"]) for e in entries.values()),
        max_examples=tuple(int(e["cap"]) for e in entries.values()),
        n_available=tuple(int(e["n_available"]) for e in entries.values()),
        weights=tuple(float(e["weight"]) for e in entries.values()),
        units_per_example=tuple(
            float(e["tokens_per_example"]) if tokens else 1.0 for e in entries.values()
        ),
        unit=Unit(mixture["budget_unit"]).value,
        max_epochs=float(mixture["max_epochs"]),
    )


def _recorded_evaluation(
    allocation: Allocation,
    predicted: Mapping[str, Mapping[str, float | None]],
    objective: Mapping[str, float | None],
    robust: float | None,
) -> Evaluation:
    scores = tuple(_read_estimate(predicted[code]) for code in allocation.languages)
    return Evaluation(
        allocation, scores, _read_estimate(objective), None if robust is None else float(robust)
    )


def report_from_mixture(
    mixture: Mapping[str, Any],
    laws: LawsFile,
    laws_path: str = "",
    source: str = "The mixture config",
) -> PlanReport:
    """The plan a mixture config records, as a `PlanReport`, with the curves of `laws`.

    Every number (allocations, predictions, objectives, gains, budgets to targets) and every
    setting (bounds, objective, robustness, targets, seed, budget) is the mixture's; nothing
    is solved again. A baseline's `amounts` are its whole examples in budget units (only the
    planner's continuous amounts are recorded). A warning is logged when `laws` is not the
    laws file the plan was made from (other law names, metric or predictions).

    Args:
        mixture: a mixture config, as `mixture_dict` writes it.
        laws: the laws file the plan was made from.
        laws_path: its path, for the report (default: the one the mixture records).
        source: how messages name the mixture.

    Raises:
        DataError: not a complete mixture config (`check_mixture`), or `laws` lacks a language
            of the plan or its fit failed.
    """
    check_mixture(mixture, source)
    entries: dict[str, dict[str, Any]] = dict(mixture["languages"])
    constraints = _recorded_constraints(mixture)
    problem = dataclasses.replace(
        recorded_problem(
            laws,
            constraints,
            corpora=[str(e.get("corpus") or "") for e in entries.values()],
            pair_filters=[str(e.get("pair_filter") or "") for e in entries.values()],
        ),
        max_extrapolation=mixture.get("max_extrapolation"),
    )
    budget = float(mixture["budget"])
    languages = constraints.languages
    planned = Allocation(
        allocator=PlannerAllocator.name,
        method=str(mixture["method"]),
        languages=languages,
        amounts=tuple(float(e["amount"]) for e in entries.values()),
        examples=tuple(int(e["examples"]) for e in entries.values()),
        budget=budget,
    )
    units = np.array(constraints.units_per_example)
    baselines, gains = [], []
    for name, entry in dict(mixture["baselines"]).items():
        examples = tuple(int(entry["examples"][code]) for code in languages)
        allocation = Allocation(
            allocator=name,
            method=str(entry["method"]),
            languages=languages,
            amounts=tuple(float(v) for v in np.array(examples, dtype=float) * units),
            examples=examples,
            budget=budget,
        )
        baselines.append(
            _recorded_evaluation(
                allocation, entry["predicted"], entry["objective"], entry["robust_objective"]
            )
        )
        gains.append(_read_estimate(entry["planner_gain"]))
    recorded_robust = mixture.get("robust")
    robust = None if not recorded_robust else Robustness(recorded_robust.get("quantile"))
    targets = None
    if mixture.get("targets") is not None:
        targets = tuple(float(mixture["targets"].get(code, math.nan)) for code in languages)
    need = mixture.get("budget_to_targets")
    recorded_guard = mixture.get("guard")
    report = PlanReport(
        problem=problem,
        objective=Objective(mixture["objective"]),
        robust=robust,
        budget=budget,
        planner=_recorded_evaluation(
            planned,
            {code: e["predicted"] for code, e in entries.items()},
            mixture["predicted_objective"],
            mixture.get("robust_objective"),
        ),
        baselines=tuple(baselines),
        gains=tuple(gains),
        targets=targets,
        budgets_to_targets=None
        if need is None
        else {name: None if v is None else float(v) for name, v in need.items()},
        command=str(mixture.get("command") or ""),
        laws_path=laws_path or str(mixture.get("laws_file") or ""),
        seed=int(mixture["seed"]),
        guard=None
        if not recorded_guard
        else GuardSettings(str(recorded_guard["reference"]), float(recorded_guard["confidence"])),
        decision=None
        if not recorded_guard or not recorded_guard.get("decision")
        else decision_from_dict(recorded_guard["decision"]),
    )
    _warn_unless_same_laws(report, mixture)
    return report


def _warn_unless_same_laws(report: PlanReport, mixture: Mapping[str, Any]) -> None:
    """Log a warning when the report's laws are not the ones the mixture was made from."""
    problem = report.problem
    recorded_laws = tuple(str(e["law"]) for e in dict(mixture["languages"]).values())
    differences = []
    if (mixture.get("metric"), mixture.get("higher_is_better")) != (
        problem.metric,
        problem.higher_is_better,
    ):
        differences.append(f"metric {mixture.get('metric')!r} vs {problem.metric!r}")
    if recorded_laws != problem.laws:
        differences.append(f"laws {recorded_laws} vs {problem.laws}")
    now = evaluate(problem, report.planner.allocation, report.objective, report.robust)
    recorded = np.array([s.as_list() for s in report.planner.scores], dtype=float)
    predicted = np.array([s.as_list() for s in now.scores], dtype=float)
    if not np.allclose(predicted, recorded, rtol=_PREDICTION_RTOL, atol=0.0, equal_nan=True):
        differences.append(
            f"predicted {problem.metric} and intervals {predicted[:, 0].round(4)} vs "
            f"{recorded[:, 0].round(4)}"
        )
    if differences:
        log.warning(
            "The laws file is not the one this mixture was made from (%s); the tables show the "
            "mixture's numbers, the frontier and what-if plans the laws'. Re-run plan-allocate "
            "on this laws file to refresh the mixture.",
            "; ".join(differences),
        )
