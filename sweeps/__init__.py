"""The sweep runner: corpora, base models, instruction data, training, evaluation, ledger.

Importing this package loads neither torch nor transformers; only the model, training and
evaluation modules do, inside the functions that need them.
"""

from __future__ import annotations

from sweeps.corpus import LIBREOFFICE_SOURCE, load_pools
from sweeps.ledger import Cell, CellOutcome, Ledger, LedgerConfig, RunRecord, RunState
from sweeps.model import DEFAULT_MODEL, TINY_MODEL, ModelSource, load_model, resolve_model
from sweeps.pairs import LanguagePools, Pair, PairFilter, split_pairs
from sweeps.slurm import submit_workers
from sweeps.spec import SweepSpec, load_spec
from sweeps.templates import Direction, language_name, render_translation
from sweeps.worker import WorkerSummary, run_local_workers, run_worker, run_worker_process

__all__ = [
    "DEFAULT_MODEL",
    "LIBREOFFICE_SOURCE",
    "TINY_MODEL",
    "Cell",
    "CellOutcome",
    "Direction",
    "LanguagePools",
    "Ledger",
    "LedgerConfig",
    "ModelSource",
    "Pair",
    "PairFilter",
    "RunRecord",
    "RunState",
    "SweepSpec",
    "WorkerSummary",
    "language_name",
    "load_model",
    "load_pools",
    "load_spec",
    "render_translation",
    "resolve_model",
    "run_local_workers",
    "run_worker",
    "run_worker_process",
    "split_pairs",
    "submit_workers",
]
