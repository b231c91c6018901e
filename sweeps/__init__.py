"""The sweep runner: corpora, base models, instruction data, training, evaluation, ledger.

Importing this package loads neither torch nor transformers; only the model, training and
evaluation modules do, inside the functions that need them.
"""

from __future__ import annotations

from sweeps.corpus import (
    LIBREOFFICE_SOURCE,
    LanguagePools,
    Pair,
    PairFilter,
    load_pools,
    split_pairs,
)
from sweeps.model import DEFAULT_MODEL, TINY_MODEL, ModelSource, load_model, resolve_model
from sweeps.templates import Direction, language_name, render_translation

__all__ = [
    "DEFAULT_MODEL",
    "LIBREOFFICE_SOURCE",
    "TINY_MODEL",
    "Direction",
    "LanguagePools",
    "ModelSource",
    "Pair",
    "PairFilter",
    "language_name",
    "load_model",
    "load_pools",
    "render_translation",
    "resolve_model",
    "split_pairs",
]
