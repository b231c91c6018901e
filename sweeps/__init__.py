"""The sweep runner: corpora, base models, instruction data, training, evaluation, ledger.

Importing this package loads neither torch nor transformers; only the model, training and
evaluation modules do, inside the functions that need them.
"""

from __future__ import annotations

from sweeps.corpus import LIBREOFFICE_SOURCE, load_pools
from sweeps.ledger import (
    Cell,
    CellOutcome,
    Ledger,
    LedgerConfig,
    MixtureCell,
    RunRecord,
    RunState,
)
from sweeps.mixture import Mixture, MixtureAllocation, read_mixture
from sweeps.model import DEFAULT_MODEL, TINY_MODEL, ModelSource, load_model, resolve_model
from sweeps.pairs import LanguagePools, Pair, PairFilter, split_pairs
from sweeps.slurm import submit_workers
from sweeps.spec import SweepSpec, load_spec
from sweeps.templates import Direction, language_name, render_translation
from sweeps.verdict import ClosedLoop, format_verdict, load_validation
from sweeps.worker import WorkerSummary, run_local_workers, run_worker, run_worker_process
from sweeps.write_data import write_training_data

__all__ = [
    "DEFAULT_MODEL",
    "LIBREOFFICE_SOURCE",
    "TINY_MODEL",
    "Cell",
    "CellOutcome",
    "ClosedLoop",
    "Direction",
    "LanguagePools",
    "Ledger",
    "LedgerConfig",
    "Mixture",
    "MixtureAllocation",
    "MixtureCell",
    "ModelSource",
    "Pair",
    "PairFilter",
    "RunRecord",
    "RunState",
    "SweepSpec",
    "WorkerSummary",
    "format_verdict",
    "language_name",
    "load_model",
    "load_pools",
    "load_spec",
    "load_validation",
    "read_mixture",
    "render_translation",
    "resolve_model",
    "run_local_workers",
    "run_worker",
    "run_worker_process",
    "split_pairs",
    "submit_workers",
    "write_training_data",
]
