"""Per-language scaling laws for `plan-fit`: laws, robust fits, bootstrap, selection, plots.

The allocator reads the laws file this package writes (`read_laws`) and evaluates each language
entry through `FitResult.__call__`, `predict_draws` and `interval`, or its `Predictive`
(the law mixture, reach error and untuned anchor the bands come from). A law is one registry entry
(`LawInfo`); `register_law` adds one, and `LAWS` and `LAW_INFO` are live, read-only views of
the registry. Importing `fits` loads neither torch nor transformers.
"""

from __future__ import annotations

from fits.laws import (
    AUTO,
    LAW_INFO,
    LAWS,
    Law,
    LawInfo,
    Pooling,
    law_info,
    register_law,
    unregister_law,
)
from fits.predictive import (
    Anchor,
    Component,
    Predictive,
    anchor_line,
    never_worse_beyond,
    reach_factor,
)
from fits.result import (
    LAWS_FORMAT,
    FitResult,
    LawsFile,
    laws_to_json,
    read_laws,
    write_laws,
)
from fits.space import Box, LawData
from fits.transfer import TransferLaw, fit_transfer, transfer_of

__all__ = [
    "AUTO",
    "LAWS",
    "LAWS_FORMAT",
    "LAW_INFO",
    "Anchor",
    "Box",
    "Component",
    "FitResult",
    "Law",
    "LawData",
    "LawInfo",
    "LawsFile",
    "Pooling",
    "Predictive",
    "TransferLaw",
    "anchor_line",
    "fit_transfer",
    "law_info",
    "laws_to_json",
    "never_worse_beyond",
    "reach_factor",
    "read_laws",
    "register_law",
    "transfer_of",
    "unregister_law",
    "write_laws",
]
