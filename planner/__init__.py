"""Allocation of a translation-data budget across languages: `plan-allocate`.

The solver works on per-language value functions (`ValueModel`) and bounds (`Constraints`);
`build_problem` makes both from the laws file `fits` writes. Importing `planner` loads
neither torch nor transformers.
"""

from __future__ import annotations

from planner._allocation import (
    Allocation,
    BaseAllocator,
    Constraints,
    make_allocation,
    round_examples,
    split_capped,
)
from planner._baselines import (
    ProportionalAllocator,
    TemperatureAllocator,
    UniformAllocator,
    UniMaxAllocator,
    baseline_allocators,
    temperature_shares,
    unimax,
)
from planner._evaluate import INTERVAL_LEVEL, Estimate, Evaluation, evaluate, frontier, gain
from planner._plan import frontier_figure, minimum_budget, run_plan, write_outputs
from planner._planner import Objective, PlannerAllocator, Robustness
from planner._problem import Problem, Unit, build_problem, parse_assignments, select_languages
from planner._report import PlanReport, format_table, mixture_dict, write_mixture
from planner._search import global_search
from planner._solvers import (
    fill_to_budget,
    is_concave,
    is_monotone,
    level_fill,
    minimal_amounts,
    water_fill,
)
from planner._values import (
    R_STAR,
    Aggregate,
    CallableValue,
    LawCurve,
    LawValue,
    ValueModel,
    effective_data,
    effective_data_slope,
)
from planner._write_data import DataRequest, choose_pairs, write_training_data

__all__ = [
    "INTERVAL_LEVEL",
    "R_STAR",
    "Aggregate",
    "Allocation",
    "BaseAllocator",
    "CallableValue",
    "Constraints",
    "DataRequest",
    "Estimate",
    "Evaluation",
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
    "baseline_allocators",
    "build_problem",
    "choose_pairs",
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
    "level_fill",
    "make_allocation",
    "minimal_amounts",
    "minimum_budget",
    "mixture_dict",
    "parse_assignments",
    "round_examples",
    "run_plan",
    "select_languages",
    "split_capped",
    "temperature_shares",
    "unimax",
    "water_fill",
    "write_mixture",
    "write_outputs",
    "write_training_data",
]
