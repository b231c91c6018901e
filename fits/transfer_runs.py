"""Mixture runs as the transfer law reads them: the validation table `plan-sweep validate`
writes (one row per run, language and metric), read with pandas (`fits` never imports
`sweeps`). Its columns are `allocator, seed, language, examples, metric, value` plus whatever
else `sweeps/verdict.py` documents (`model`, `objective` are checked against the laws file
when present).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from fits.result import LawsFile
from muit_core import DataError

FloatArray = NDArray[np.float64]
REQUIRED_COLUMNS = ("allocator", "seed", "language", "examples", "metric", "value")


@dataclass(frozen=True)
class MixtureRuns:
    """Mixture runs of one metric: one row per run (allocator, seed), one column per language.

    Attributes:
        metric: the metric.
        runs: (allocator, seed) of each row.
        languages: language codes, the columns.
        examples: examples each run trained per language (0 where a run lacks the language).
        actual: the measured metric (NaN where a run lacks the language).
    """

    metric: str
    runs: tuple[tuple[str, int], ...]
    languages: tuple[str, ...]
    examples: FloatArray
    actual: FloatArray

    @property
    def mixtures(self) -> tuple[str, ...]:
        """The distinct allocations (allocator names), in order of appearance."""
        return tuple(dict.fromkeys(name for name, _ in self.runs))

    def subset(self, keep: NDArray[np.bool_]) -> MixtureRuns:
        """The runs where `keep` is true."""
        return MixtureRuns(
            self.metric,
            tuple(r for r, k in zip(self.runs, keep, strict=True) if k),
            self.languages,
            self.examples[keep],
            self.actual[keep],
        )


def read_mixture_runs(path: str | Path, metric: str) -> MixtureRuns:
    """The mixture runs of `metric` in a validation table.

    Raises:
        DataError: the file cannot be read, lacks a column or the metric, repeats a (run,
            language), or holds a non-finite or negative number.
    """
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as err:
        raise DataError(
            f"Cannot read the validation table {str(path)!r} ({err}); give the "
            "validation.csv that plan-sweep validate wrote."
        ) from None
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"The validation table {str(path)!r} lacks the column(s) {', '.join(missing)}; "
            "give the validation.csv that plan-sweep validate wrote."
        )
    rows = frame[frame["metric"] == metric]
    if rows.empty:
        present = ", ".join(sorted(map(str, frame["metric"].unique()))) or "none"
        raise DataError(
            f"The validation table {str(path)!r} has no {metric!r} rows (it has: {present}); "
            "fit the laws on a metric the mixture runs measured."
        )
    numbers = rows[["examples", "value"]].to_numpy(dtype=float)
    if not np.isfinite(numbers).all() or (numbers < 0).any():
        raise DataError(
            f"The validation table {str(path)!r} holds a non-finite or negative examples or "
            f"value in its {metric!r} rows; drop those runs or rerun them."
        )
    keys = rows[["allocator", "seed", "language"]].astype(str)
    if keys.duplicated().any():
        first = keys[keys.duplicated()].iloc[0].tolist()
        raise DataError(
            f"The validation table {str(path)!r} lists run {first[0]!r} seed {first[1]} "
            f"language {first[2]!r} twice for {metric!r}; keep one row per run and language."
        )
    languages = tuple(dict.fromkeys(rows["language"].astype(str)))
    pairs = zip(rows["allocator"].astype(str), rows["seed"].astype(int), strict=True)
    runs = tuple(dict.fromkeys(pairs))
    index = {run: i for i, run in enumerate(runs)}
    column = {code: j for j, code in enumerate(languages)}
    examples = np.zeros((len(runs), len(languages)))
    actual = np.full((len(runs), len(languages)), np.nan)
    for alloc, seed, lang, n, v in zip(
        rows["allocator"].astype(str),
        rows["seed"].astype(int),
        rows["language"].astype(str),
        rows["examples"].astype(float),
        rows["value"].astype(float),
        strict=True,
    ):
        examples[index[(alloc, seed)], column[lang]] = n
        actual[index[(alloc, seed)], column[lang]] = v
    return MixtureRuns(metric, runs, languages, examples, actual)


def check_runs_match_laws(runs: MixtureRuns, laws: LawsFile) -> None:
    """Refuse mixture runs the laws cannot predict.

    Raises:
        DataError: a run trains a language the laws file lacks or could not fit, or the runs'
            model or objective (when the table says) differs from the laws' sweep.
    """
    absent = [code for code in runs.languages if code not in laws.fits]
    if absent:
        raise DataError(
            f"The mixture runs train {', '.join(absent)}, which the laws file "
            f"(languages {', '.join(laws.fits) or 'none'}) lacks; fit laws on a sweep that "
            "includes every language of the mixtures, then fit the transfer law again."
        )
    failed = [code for code in runs.languages if not laws.fits[code].success]
    if failed:
        raise DataError(
            f"The laws file's fit failed for {', '.join(failed)}, which the mixture runs "
            "train; refit those languages with plan-fit, then fit the transfer law again."
        )


def check_settings_match(frame: pd.DataFrame, laws: LawsFile, source: str) -> None:
    """Refuse runs of another base model or training objective than the laws' sweep.

    Raises:
        DataError: the table's `model` or `objective` column names another one.
    """
    for column, wanted in (("model", laws.model), ("objective", laws.objective)):
        if wanted is None or column not in frame.columns:
            continue
        found = sorted(set(map(str, frame[column].dropna().unique())) - {str(wanted)})
        if found:
            raise DataError(
                f"The mixture runs in {source!r} have {column} {found[0]!r} but the laws "
                f"were fitted on {column} {wanted!r}; fit laws on the same sweep settings "
                "as the mixture runs, or give their validation table."
            )
