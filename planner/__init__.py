"""Allocation of a translation-data budget across languages: `plan-allocate`.

Modules, from the inside out: `values` (per-language value curves), `allocation` (the
allocator interface, its bounds and result), `solvers` and `search` (exact and global
optimisation), `optimiser` (the planner: the optimising allocator and its objectives),
`baselines` (the heuristics it is compared with), `problem` (an allocation's inputs, built
from a laws file), `evaluation` (predicted outcomes and gains), `report` (a finished plan and
its table), `mixture` (the mixture config a plan is written to and read back from), `plots`,
`pipeline` (the end-to-end run of `plan-allocate` and its outputs), `cli` and `analysis` (the
notebook's tables and what-if plans). Everything below is re-exported here. Importing `planner`
loads neither torch nor transformers, and `planner` imports no `sweeps` module.
"""

from __future__ import annotations

from planner.allocation import (
    Allocation,
    BaseAllocator,
    Constraints,
    make_allocation,
    round_examples,
    split_capped,
)
from planner.baselines import (
    ProportionalAllocator,
    TemperatureAllocator,
    UniformAllocator,
    UniMaxAllocator,
    baseline_allocators,
    temperature_shares,
    unimax,
)
from planner.evaluation import (
    INTERVAL_LEVEL,
    Estimate,
    Evaluation,
    check_predictions,
    evaluate,
    frontier,
    gain,
)
from planner.guard import GuardDecision, GuardedPlanner
from planner.mixture import (
    MIXTURE_FORMAT,
    check_mixture,
    mixture_dict,
    mixture_texts,
    read_mixture,
    report_from_mixture,
    write_mixture,
)
from planner.optimiser import (
    Objective,
    PlannerAllocator,
    Robustness,
    aggregate_draws,
    objective_per_draw,
)
from planner.pipeline import (
    OUTPUT_NAMES,
    check_out_dir,
    frontier_figure,
    make_planner,
    minimum_budget,
    render_outputs,
    run_plan,
    write_outputs,
)
from planner.problem import (
    Problem,
    Unit,
    build_problem,
    law_curve,
    parse_assignments,
    recorded_problem,
    select_languages,
    usable_fit,
)
from planner.report import PlanReport, format_table, objective_label
from planner.search import global_search
from planner.solvers import (
    fill_to_budget,
    is_concave,
    is_monotone,
    level_fill,
    minimal_amounts,
    water_fill,
)
from planner.values import (
    R_STAR,
    Aggregate,
    CallableValue,
    LawCurve,
    LawValue,
    ValueModel,
    effective_data,
    effective_data_slope,
)

__all__ = [
    "INTERVAL_LEVEL",
    "MIXTURE_FORMAT",
    "OUTPUT_NAMES",
    "R_STAR",
    "Aggregate",
    "Allocation",
    "BaseAllocator",
    "CallableValue",
    "Constraints",
    "Estimate",
    "Evaluation",
    "GuardDecision",
    "GuardedPlanner",
    "LawCurve",
    "LawValue",
    "Objective",
    "PlanReport",
    "PlannerAllocator",
    "Problem",
    "ProportionalAllocator",
    "Robustness",
    "TemperatureAllocator",
    "UniMaxAllocator",
    "UniformAllocator",
    "Unit",
    "ValueModel",
    "aggregate_draws",
    "baseline_allocators",
    "build_problem",
    "check_mixture",
    "check_out_dir",
    "check_predictions",
    "effective_data",
    "effective_data_slope",
    "evaluate",
    "fill_to_budget",
    "format_table",
    "frontier",
    "frontier_figure",
    "gain",
    "global_search",
    "is_concave",
    "is_monotone",
    "law_curve",
    "level_fill",
    "make_allocation",
    "make_planner",
    "minimal_amounts",
    "minimum_budget",
    "mixture_dict",
    "mixture_texts",
    "objective_label",
    "objective_per_draw",
    "parse_assignments",
    "read_mixture",
    "recorded_problem",
    "render_outputs",
    "report_from_mixture",
    "round_examples",
    "run_plan",
    "select_languages",
    "split_capped",
    "temperature_shares",
    "unimax",
    "usable_fit",
    "water_fill",
    "write_mixture",
    "write_outputs",
]
