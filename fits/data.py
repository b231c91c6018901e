"""Read a results table (contract 3) and turn it into per-language points to fit.

The table is tidy: one row per (finished run, metric). Any CSV with the required columns works,
so results from other tools can be planned on too.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from muit_core import METRICS, ConfigError, DataError

if TYPE_CHECKING:
    import os

    from numpy.typing import NDArray

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = (
    "language",
    "n_examples",
    "seed",
    "model",
    "n_params",
    "objective",
    "metric",
    "value",
    "higher_is_better",
    "train_tokens",
    "wall_s",
)
DATA_COLUMNS = ("n_available", "tokens_per_example", "corpus", "pair_filter")
"""Optional per-language columns carried into the laws file."""


def metric_ceiling(metric: str) -> float | None:
    """The highest value a bounded score can take (`muit_core.METRICS`); fitted ceilings stay
    at or below it. None for unbounded or unknown metrics."""
    info = METRICS.get(metric)
    return info.highest if info is not None and info.higher_is_better else None


def _frozen(values: NDArray[Any]) -> NDArray[Any]:
    values = np.array(values)
    values.setflags(write=False)
    return values


@dataclass(frozen=True)
class Points:
    """One language's runs for one metric: the data a law is fitted to.

    Attributes:
        language: language code.
        d: data size of each run, in training examples (0 for the untuned model).
        y: metric value of each run.
        seed: seed of each run.
        n: model size of each run, in parameters.
        data: the language's pool facts (`n_available`, `tokens_per_example`, `corpus`).
    """

    language: str
    d: NDArray[np.float64]
    y: NDArray[np.float64]
    seed: NDArray[np.int64]
    n: NDArray[np.float64]
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        d = np.asarray(self.d, dtype=np.float64)
        shapes = {d.shape, np.shape(self.y), np.shape(self.seed), np.shape(self.n)}
        if len(shapes) != 1 or d.ndim != 1:
            raise DataError(f"Points for {self.language!r} have mismatched lengths: {shapes}.")
        object.__setattr__(self, "d", _frozen(d))
        object.__setattr__(self, "y", _frozen(np.asarray(self.y, dtype=np.float64)))
        object.__setattr__(self, "seed", _frozen(np.asarray(self.seed, dtype=np.int64)))
        object.__setattr__(self, "n", _frozen(np.asarray(self.n, dtype=np.float64)))
        object.__setattr__(self, "data", dict(self.data))

    def __len__(self) -> int:
        return int(self.d.size)

    @property
    def sizes(self) -> NDArray[np.float64]:
        """Distinct data sizes, ascending."""
        return np.unique(self.d)

    def select(self, mask: NDArray[np.bool_]) -> Points:
        """A copy holding only the runs where `mask` is true."""
        return Points(
            self.language, self.d[mask], self.y[mask], self.seed[mask], self.n[mask], self.data
        )

    def positive(self) -> Points:
        """The runs with `d > 0` (drops the untuned model's zero-data points)."""
        return self.select(self.d > 0)

    def below(self, d_limit: float) -> Points:
        """The runs with `d < d_limit`."""
        return self.select(self.d < d_limit)

    def seed_summary(self) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Per distinct size: `(sizes, mean over seeds, standard deviation over seeds)`.

        The standard deviation is 0 where a size has a single run.
        """
        sizes = self.sizes
        means = np.array([self.y[self.d == s].mean() for s in sizes])
        stds = np.array(
            [self.y[self.d == s].std(ddof=1) if (self.d == s).sum() > 1 else 0.0 for s in sizes]
        )
        return sizes, means, stds


def read_results(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a results table and check that it has every required column.

    Raises:
        DataError: the file is missing or unreadable, or columns are missing (they are named).
    """
    target = Path(path)
    if not target.is_file():
        raise DataError(f"No results table at {str(target)!r}; give the sweep's results.csv.")
    try:
        frame = pd.read_csv(target, dtype={"language": str, "model": str, "objective": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"Cannot read {str(target)!r} as CSV: {err}.") from err
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"The results table {str(target)!r} lacks the column(s) {', '.join(missing)}; "
            f"required: {', '.join(REQUIRED_COLUMNS)}."
        )
    if frame.empty:
        raise DataError(f"The results table {str(target)!r} has no rows.")
    return frame


def metric_direction(frame: pd.DataFrame, metric: str) -> bool:
    """Whether higher is better for `metric`: known for the sweep's metrics, else the CSV's."""
    rows = frame.loc[frame["metric"] == metric, "higher_is_better"]
    from_csv = {_as_bool(v) for v in rows.dropna().unique()}
    if metric in METRICS:
        known = METRICS[metric].higher_is_better
        if from_csv and from_csv != {known}:
            log.warning("The table's higher_is_better for %s disagrees; using %s.", metric, known)
        return known
    if len(from_csv) != 1:
        raise DataError(
            f"The table's higher_is_better column for metric {metric!r} is "
            f"{'missing' if not from_csv else 'inconsistent'}; set it to true or false."
        )
    return from_csv.pop()


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in {"true", "1", "yes"}:
            return True
        if lowered in {"false", "0", "no"}:
            return False
        raise DataError(f"Cannot read higher_is_better={value!r} as true or false.")
    return bool(value)


def select_metric(
    frame: pd.DataFrame, metric: str, *, drop_nonfinite: bool = False
) -> pd.DataFrame:
    """The rows of one metric, checked: numbers, finite, sizes >= 0, whole seeds, in range.

    Rows are named by their CSV line (`read_results` keeps the file's order; line 1 is the
    header), with their language, size and seed.

    Args:
        frame: a table from `read_results`.
        metric: the metric to fit.
        drop_nonfinite: drop rows with NaN or inf values (logged) instead of raising.

    Raises:
        DataError: the metric is absent (the present ones are listed), or a numeric column
            holds text (the cells are named), or values are not finite and `drop_nonfinite`
            is false, or sizes are negative, or seeds are not whole numbers, or values lie
            outside what the metric can take (`muit_core.METRICS`: a negative cross-entropy,
            a chrF above 100).
    """
    present = sorted(str(m) for m in frame["metric"].dropna().unique())
    if metric not in present:
        raise DataError(
            f"Metric {metric!r} is not in the results table; it has: {', '.join(present)}. "
            "Pick one with --metric."
        )
    rows = frame.loc[frame["metric"] == metric].copy()
    for column in NUMERIC_COLUMNS:
        if column in rows.columns:
            _refuse_text(rows, column)
    for column in ("value", "n_examples", "n_params", "seed"):
        rows[column] = pd.to_numeric(rows[column], errors="coerce")
    bad = ~np.isfinite(rows[["value", "n_examples", "n_params"]].to_numpy(dtype=float)).all(axis=1)
    if bad.any():
        where = ", ".join(
            f"{r.language}@{r.n_examples}/seed {r.seed}"
            for r in rows.loc[bad].head(5).itertuples()
        )
        if not drop_nonfinite:
            raise DataError(
                f"{int(bad.sum())} row(s) of {metric!r} hold NaN or inf in value, n_examples "
                f"or n_params ({where}); fix them, or pass --drop-nonfinite to skip them."
            )
        log.warning("Dropping %d non-finite row(s) of %s: %s", int(bad.sum()), metric, where)
        rows = rows.loc[~bad]
    if (rows["n_examples"] < 0).any():
        raise DataError(
            f"Metric {metric!r} has rows with negative n_examples; sizes must be >= 0."
        )
    seeds = rows["seed"]
    if not (np.isfinite(seeds) & (seeds == seeds.round())).all():
        odd = rows.loc[~(np.isfinite(seeds) & (seeds == seeds.round()))]
        raise DataError(
            f"{len(odd)} row(s) of {metric!r} have a seed that is not a whole number "
            f"({_named(odd, 'seed')}); give each run's integer seed."
        )
    _refuse_out_of_range(rows, metric)
    if rows.empty:
        raise DataError(f"No usable rows of metric {metric!r} remain.")
    return rows


NUMERIC_COLUMNS = ("value", "n_examples", "n_params", "seed", "n_available", "tokens_per_example")
"""Columns that hold numbers; text in one of them is refused, naming the cell."""

RUN_KEY = ("language", "objective", "model", "n_examples", "seed")
"""What identifies one run within a metric: a results table holds each at most once."""


def _line(index: Any) -> str:
    """The CSV line of a row read by `read_results` (line 1 is the header)."""
    return f"line {int(index) + 2}" if isinstance(index, int | np.integer) else f"row {index!r}"


def _named(rows: pd.DataFrame, column: str, limit: int = 5) -> str:
    """`de@64/seed 0: value -0.5 (line 9), ...` for the first `limit` rows."""
    named = [
        f"{row['language']}@{row['n_examples']}/seed {row['seed']}: {column} "
        f"{_cell(row[column])} ({_line(index)})"
        for index, row in rows.head(limit).iterrows()
    ]
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return ", ".join(named) + more


def _cell(value: Any) -> str:
    """A cell as the user typed it: text quoted, numbers plain."""
    if isinstance(value, str):
        return repr(value)
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return repr(value)


def _refuse_text(rows: pd.DataFrame, column: str) -> None:
    """Raise when a numeric column holds text (pandas reads NaN, inf and blanks as numbers)."""
    raw = rows[column]
    if pd.api.types.is_numeric_dtype(raw):
        return
    text = raw.notna() & pd.to_numeric(raw, errors="coerce").isna()
    if text.any():
        raise DataError(
            f"The column {column!r} holds text that is not a number in {int(text.sum())} "
            f"row(s) ({_named(rows.loc[text], column)}); write a number there."
        )


def _refuse_out_of_range(rows: pd.DataFrame, metric: str) -> None:
    """Raise when values lie outside what the metric can take (`muit_core.METRICS`)."""
    info = METRICS.get(metric)
    if info is None:
        return
    outside = rows["value"].map(info.out_of_range).astype(bool)
    if outside.any():
        low = "-inf" if info.lowest is None else f"{info.lowest:g}"
        high = "inf" if info.highest is None else f"{info.highest:g}"
        raise DataError(
            f"{int(outside.sum())} row(s) of {metric!r} lie outside the range it can take "
            f"({low} to {high} {info.unit}): {_named(rows.loc[outside], 'value')}; fix or "
            "remove them."
        )


def merge_duplicates(rows: pd.DataFrame, *, average: bool = False) -> pd.DataFrame:
    """The rows of one metric with each run once: duplicates refused, or averaged if asked.

    A run is its `RUN_KEY` (language, objective, model, size, seed). Two rows of the same run,
    with equal or different values, would weigh that run twice in the fit.

    Args:
        rows: the rows of one metric, from `select_metric`.
        average: replace each repeated run by one row holding the mean of its values (the
            first row's other columns), instead of refusing them.

    Raises:
        DataError: a run appears more than once and `average` is false (they are named, with
            their CSV lines and values).
    """
    keys = rows[list(RUN_KEY)].astype(str)
    repeated = keys.duplicated(keep=False)
    if not repeated.any():
        return rows
    groups = rows.loc[repeated].groupby([keys.loc[repeated, k] for k in RUN_KEY], sort=False)
    if not average:
        named = []
        for _, group in list(groups)[:5]:
            first = group.iloc[0]
            lines = ", ".join(_line(i) for i in group.index)
            values = ", ".join(f"{v:g}" for v in group["value"])
            named.append(
                f"{first['language']}@{first['n_examples']}/seed {first['seed']} of "
                f"{first['objective']}/{first['model']} ({lines}: values {values})"
            )
        more = f" and {groups.ngroups - 5} more" if groups.ngroups > 5 else ""
        metric = rows["metric"].iloc[0]
        raise DataError(
            f"{groups.ngroups} run(s) of {metric!r} appear more than once: "
            f"{'; '.join(named)}{more}; remove the extra rows, or pass --average-duplicates "
            "to fit each run's mean value."
        )
    log.warning("Averaging %d repeated run(s) (--average-duplicates)", groups.ngroups)
    means = rows.groupby([keys[k] for k in RUN_KEY], sort=False)["value"].transform("mean")
    return rows.assign(value=means).loc[~keys.duplicated(keep="first")]


def group_keys(rows: pd.DataFrame, *, by_model: bool = True) -> list[tuple[str, str]]:
    """The (objective, model) groups present, sorted; model is `*` when not grouping by it."""
    if by_model:
        pairs = rows[["objective", "model"]].astype(str).drop_duplicates()
        return sorted((str(o), str(m)) for o, m in pairs.itertuples(index=False))
    return sorted((str(o), "*") for o in rows["objective"].astype(str).unique())


def group_rows(rows: pd.DataFrame, objective: str, model: str = "*") -> pd.DataFrame:
    """The rows of one (objective, model) group; `model="*"` keeps every model."""
    mask = rows["objective"].astype(str) == objective
    if model != "*":
        mask &= rows["model"].astype(str) == model
    return rows.loc[mask]


def points_by_language(rows: pd.DataFrame, objective: str, model: str = "*") -> dict[str, Points]:
    """Split one (objective, model) group into per-language `Points`, sorted by code.

    `model="*"` keeps every model (for `chinchilla`, which uses `n_params` as its `n`).
    """
    group = group_rows(rows, objective, model)
    out: dict[str, Points] = {}
    for language, part in sorted(group.groupby(group["language"].astype(str))):
        out[str(language)] = Points(
            language=str(language),
            d=part["n_examples"].to_numpy(dtype=float),
            y=part["value"].to_numpy(dtype=float),
            seed=part["seed"].to_numpy(dtype=np.int64),
            n=part["n_params"].to_numpy(dtype=float),
            data=_language_data(part),
        )
    return out


def _language_data(part: pd.DataFrame) -> dict[str, Any]:
    """The optional pool facts of one language, from its first non-empty value each."""
    facts: dict[str, Any] = {}
    for column in DATA_COLUMNS:
        if column not in part.columns:
            continue
        values = part[column].dropna()
        if values.empty:
            continue
        value = values.iloc[0]
        if column == "n_available":
            facts[column] = int(value)
        elif column == "tokens_per_example":
            number = float(value)
            if math.isfinite(number):
                facts[column] = number
        else:
            facts[column] = str(value)
    return facts


SWEEP_RECORD = "sweep.json"
"""What `plan-sweep export` writes beside results.csv: each study's resolved sweep spec."""


def sweep_record(results_csv: Path, rows: pd.DataFrame) -> dict[str, Any] | None:
    """The sweep behind one group of runs: `{"study", "spec"}` from the `sweep.json` beside
    the results table, when the group's rows name exactly one study recorded there; else None
    (results from other tools, or a table that mixes studies)."""
    if "study" not in rows.columns:
        return None
    studies = sorted({str(s) for s in rows["study"].dropna().unique()})
    record_path = Path(results_csv).parent / SWEEP_RECORD
    if len(studies) != 1 or not record_path.is_file():
        return None
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        log.warning("Ignoring %s (%s): the laws will not name their sweep spec.", record_path, err)
        return None
    spec = (record.get("studies") or {}).get(studies[0]) if isinstance(record, dict) else None
    return {"study": studies[0], "spec": spec} if isinstance(spec, dict) else None


def select_study(frame: pd.DataFrame, study: str | None) -> pd.DataFrame:
    """The rows of one sweep study (`--study`), or all rows when that is unambiguous.

    A table `plan-sweep export` wrote holds every study of its sweep folder (one per spec
    setting, e.g. two directions). Runs of different studies with the same objective and model
    are different experiments, not repeats: fitting them together needs `--study`.

    Raises:
        ConfigError: `study` is not in the table, or it is needed and missing.
    """
    if "study" not in frame.columns:
        if study is not None:
            raise ConfigError(f"--study {study!r}: the table has no study column; drop --study.")
        return frame
    studies = frame["study"].astype(str)
    if study is not None:
        if study not in set(studies):
            known = ", ".join(sorted(set(studies)))
            raise ConfigError(f"No runs of --study {study!r} in the table; it has: {known}.")
        return frame[studies == study]
    per_group = frame.assign(_study=studies).groupby(["objective", "model"])["_study"].unique()
    for key, names in per_group.items():
        if len(names) > 1:
            listed = ", ".join(sorted(map(str, names)))
            group = "/".join(map(str, key)) if isinstance(key, tuple) else str(key)
            raise ConfigError(
                f"The table holds {len(names)} sweep studies for {group} ({listed}), "
                "different settings of the sweep; fit one with --study NAME."
            )
    return frame
