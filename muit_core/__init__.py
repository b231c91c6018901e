"""Small shared pieces every stage uses: the error hierarchy, number parsing, safe file writes,
the cache folder and the command-line wrapper.

It imports nothing heavy (no torch, transformers, optuna, scipy), so `plan-fit` and
`plan-allocate` stay light. `sweeps`, `fits` and `planner` may all import it; it imports none
of them.
"""

from __future__ import annotations

from muit_core.atomic import OutputSet, atomic_write_bytes, atomic_write_text, figure_png
from muit_core.cli import configure_logging, run_main
from muit_core.errors import (
    AllocationError,
    ConfigError,
    DataError,
    FitError,
    LedgerError,
    ModelError,
    PlannerError,
)
from muit_core.metrics import METRICS, MetricInfo
from muit_core.numbers import format_count, parse_count
from muit_core.paths import cache_dir

__all__ = [
    "METRICS",
    "AllocationError",
    "ConfigError",
    "DataError",
    "FitError",
    "LedgerError",
    "MetricInfo",
    "ModelError",
    "OutputSet",
    "PlannerError",
    "atomic_write_bytes",
    "atomic_write_text",
    "cache_dir",
    "configure_logging",
    "figure_png",
    "format_count",
    "parse_count",
    "run_main",
]
