"""Per-language scaling laws for `plan-fit`: laws, robust fits, bootstrap, selection, plots.

The allocator reads the laws file this package writes (`read_laws`) and evaluates each language
entry through `FitResult.__call__`, `predict_draws` and `interval`. Importing `fits` loads
neither torch nor transformers; its public names load on first use (PEP 562), so that the
`plan-fit` command can configure BLAS threads before numpy loads (see `fits._blas`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fits.laws import LAW_INFO, LAWS, Law, LawInfo
    from fits.result import (
        LAWS_FORMAT,
        FitResult,
        LawsFile,
        laws_to_json,
        read_laws,
        write_laws,
    )

_HOMES = {
    "LAWS": "fits.laws",
    "LAW_INFO": "fits.laws",
    "Law": "fits.laws",
    "LawInfo": "fits.laws",
    "LAWS_FORMAT": "fits.result",
    "FitResult": "fits.result",
    "LawsFile": "fits.result",
    "laws_to_json": "fits.result",
    "read_laws": "fits.result",
    "write_laws": "fits.result",
}

__all__ = [
    "LAWS",
    "LAWS_FORMAT",
    "LAW_INFO",
    "FitResult",
    "Law",
    "LawInfo",
    "LawsFile",
    "laws_to_json",
    "read_laws",
    "write_laws",
]


def __getattr__(name: str) -> Any:
    """Load a public name from its module on first use."""
    if name not in _HOMES:
        raise AttributeError(f"module 'fits' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
