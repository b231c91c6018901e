"""The closed loop's verdict: what each mixture run reached against what the plan predicted.

Input is the validation table (`validation.csv`, one row per mixture run, language and metric:
`allocator, seed, language, examples, metric, value, predicted, low, high, weight,
higher_is_better`). Everything here is pure pandas on that table, so the notebook, the command
and the tests read the same numbers.

Conventions:
- A language's *error* is actual minus predicted, in the metric's units; it is *inside* when
  the actual value lies in the predicted interval (the mixture's 90% band).
- An allocator's *objective* in one run is the weighted mean of its languages' values (the
  planner's objective, with the mixture's weights); its *spread* is the standard deviation of
  that objective over seeds (0 with one seed).
- The planner's *gain* over a baseline is signed so that positive means the planner did better
  (lower loss, higher score), as `plan-allocate` reports it; it is the mean over the seeds both
  ran of the per-seed difference. It is *beyond noise* when its size exceeds the seed noise,
  the larger of the two allocators' spreads (never, with one seed: there is no noise estimate).
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from muit_core import DataError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

VALIDATION_COLUMNS = (
    "allocator", "seed", "language", "examples", "metric", "value", "predicted", "low", "high",
    "weight", "higher_is_better",
)  # fmt: skip


@dataclass(frozen=True)
class GainVerdict:
    """The planner against one baseline on the primary metric.

    Attributes:
        baseline: the baseline's name.
        actual: mean per-seed gain of the planner (positive: the planner did better).
        actual_sd: standard deviation of the per-seed gains (nan with one shared seed).
        predicted: the gain `plan-allocate` predicted, or nan when the file had none.
        noise: the seed noise the gain is compared with (nan with one seed).
        n_seeds: seeds both ran.
    """

    baseline: str
    actual: float
    actual_sd: float
    predicted: float
    noise: float
    n_seeds: int

    @property
    def beyond_noise(self) -> bool:
        """Whether the gain is larger than the seed noise (False when noise is unknown)."""
        return not math.isnan(self.noise) and abs(self.actual) > self.noise


def primary(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The rows of one metric."""
    return table[table["metric"] == metric]


def per_language(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Predicted vs actual per (allocator, language), averaged over seeds.

    Columns: allocator, language, examples, predicted, low, high, actual, actual_sd, error,
    inside (share of seeds whose value fell in the band).
    """
    rows = primary(table, metric).copy()
    rows["inside"] = (rows["value"] >= rows["low"]) & (rows["value"] <= rows["high"])
    grouped = rows.groupby(["allocator", "language"], sort=False)
    out = grouped.agg(
        examples=("examples", "first"),
        predicted=("predicted", "first"),
        low=("low", "first"),
        high=("high", "first"),
        actual=("value", "mean"),
        actual_sd=("value", lambda v: float(np.std(v, ddof=1)) if len(v) > 1 else math.nan),
        inside=("inside", "mean"),
    ).reset_index()
    out["error"] = out["actual"] - out["predicted"]
    return out


def objectives(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Each run's objective: one row per (allocator, seed), column `objective`."""
    rows = primary(table, metric)
    weighted = rows.assign(wv=rows["value"] * rows["weight"])
    sums = weighted.groupby(["allocator", "seed"], sort=False)[["wv", "weight"]].sum()
    return (sums["wv"] / sums["weight"]).rename("objective").reset_index()


def objective_summary(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per allocator: mean objective over seeds, its spread, the number of seeds."""
    runs = objectives(table, metric)
    return (
        runs.groupby("allocator", sort=False)["objective"]
        .agg(
            objective="mean",
            spread=lambda v: float(np.std(v, ddof=1)) if len(v) > 1 else math.nan,
            n_seeds="count",
        )
        .reset_index()
    )


def gains(
    table: pd.DataFrame,
    metric: str,
    higher_is_better: bool,
    predicted_gains: dict[str, float],
    planner: str = "planner",
    skip: Collection[str] = (),
) -> list[GainVerdict]:
    """The planner's actual gain over each baseline in the table, beside the predicted gain;
    the allocators in `skip` (mixtures drawn around the plan, not baselines) are left out."""
    runs = objectives(table, metric).pivot(index="seed", columns="allocator", values="objective")
    summary = objective_summary(table, metric).set_index("allocator")
    if planner not in runs:
        return []
    sign = 1.0 if higher_is_better else -1.0
    out = []
    for baseline in runs.columns:
        if baseline == planner or baseline in skip:
            continue
        paired = runs[[planner, baseline]].dropna()
        diff = sign * (paired[planner] - paired[baseline])
        spreads = summary.loc[[planner, baseline], "spread"]
        noise = float(spreads.max()) if spreads.notna().all() else math.nan
        out.append(
            GainVerdict(
                baseline=str(baseline),
                actual=float(diff.mean()) if len(diff) else math.nan,
                actual_sd=float(np.std(diff, ddof=1)) if len(diff) > 1 else math.nan,
                predicted=predicted_gains.get(str(baseline), math.nan),
                noise=noise,
                n_seeds=len(diff),
            )
        )
    return out


def band_coverage(table: pd.DataFrame, metric: str) -> tuple[int, int]:
    """(runs whose actual value fell in the predicted band, runs with a band), over all
    (allocator, language, seed) rows of the metric."""
    rows = primary(table, metric).dropna(subset=["low", "high"])
    inside = (rows["value"] >= rows["low"]) & (rows["value"] <= rows["high"])
    return int(inside.sum()), len(rows)


def independence_gap(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per language: how far the MuIT runs landed from what the language's own law predicts
    for its own examples (actual - predicted, mean over allocators and seeds), against the
    seed noise (the standard deviation over seeds, pooled over allocators; NaN with one seed).

    The laws are fitted on runs that train one language alone, so a gap beyond the noise is
    what the other languages in the mixture did to this one (transfer when it is in the good
    direction, interference otherwise). Columns: language, gap, seed_sd, beyond_noise.
    """
    rows = primary(table, metric).dropna(subset=["predicted"])
    rows = rows.assign(error=rows["value"] - rows["predicted"])
    out = []
    for language, mine in rows.groupby("language", sort=False):
        spreads = mine.groupby("allocator")["value"].std(ddof=1).dropna()
        seed_sd = float(np.sqrt((spreads**2).mean())) if len(spreads) else math.nan
        gap = float(mine["error"].mean())
        beyond = not math.isnan(seed_sd) and abs(gap) > 2 * seed_sd
        out.append({"language": language, "gap": gap, "seed_sd": seed_sd, "beyond_noise": beyond})
    return pd.DataFrame(out, columns=["language", "gap", "seed_sd", "beyond_noise"])


def _gap_line(table: pd.DataFrame, metric: str, higher_is_better: bool) -> str:
    gaps = independence_gap(table, metric)
    if gaps.empty:
        return "Independence gap: no predictions to compare."
    better = gaps["gap"] > 0 if higher_is_better else gaps["gap"] < 0
    parts = ", ".join(
        f"{r['language']} {r['gap']:+.3f}"
        + ("" if math.isnan(r["seed_sd"]) else f" (sd {r['seed_sd']:.3f})")
        for r in _records(gaps)
    )
    n_beyond = int(gaps["beyond_noise"].sum())
    noise = (
        f"beyond twice the seed noise in {n_beyond} of {len(gaps)}"
        if gaps["seed_sd"].notna().any()
        else "no seed noise to compare with (one seed)"
    )
    return (
        "Independence gap (actual minus each language's own law at its own examples; the "
        f"laws know nothing of the other languages in the mixture): {parts}. "
        f"{int(better.sum())} of {len(gaps)} languages did better than their own law "
        f"predicts; {noise}."
    )


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]


def _fmt(x: float, digits: int = 3) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _grid(headers: list[str], rows: list[list[str]]) -> str:
    """A plain text table: first column left-aligned, the others right-aligned."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.rjust(w) if i else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def format_verdict(
    table: pd.DataFrame,
    metric: str,
    higher_is_better: bool,
    predicted_gains: dict[str, float],
    skip: Collection[str] = (),
) -> str:
    """The verdict as text: per language, per allocator, the gains (none over the allocators
    in `skip`), the band coverage."""
    langs = per_language(table, metric)
    lang_rows = [
        [
            str(r["allocator"]),
            str(r["language"]),
            str(int(r["examples"])),
            f"{_fmt(r['predicted'])} [{_fmt(r['low'])}, {_fmt(r['high'])}]",
            _fmt(r["actual"])
            + ("" if math.isnan(r["actual_sd"]) else f" ±{_fmt(r['actual_sd'])}"),
            "-" if math.isnan(r["error"]) else f"{r['error']:+.3f}",
            "-" if math.isnan(r["predicted"]) else f"{r['inside']:.0%}",
        ]
        for r in _records(langs)
    ]
    summary = objective_summary(table, metric)
    obj_rows = [
        [str(r["allocator"]), _fmt(r["objective"], 4), _fmt(r["spread"], 4), str(r["n_seeds"])]
        for r in _records(summary)
    ]
    verdicts = gains(table, metric, higher_is_better, predicted_gains, skip=skip)
    gain_rows = [
        [
            v.baseline,
            f"{v.actual:+.4f}",
            _fmt(v.predicted, 4) if math.isnan(v.predicted) else f"{v.predicted:+.4f}",
            _fmt(v.noise, 4),
            "yes" if v.beyond_noise else ("no" if not math.isnan(v.noise) else "n/a (1 seed)"),
        ]
        for v in verdicts
    ]
    inside, total = band_coverage(table, metric)
    better = "higher" if higher_is_better else "lower"
    parts = [
        f"Closed loop on {metric} ({better} is better): each row is one MuIT model per "
        "allocator and seed, scored on every language's held-out pairs.",
        "",
        _grid(
            ["allocator", "language", "examples", "predicted [90%]", "actual", "error", "in band"],
            lang_rows,
        ),
        "",
        _grid(["allocator", "objective", "seed spread", "seeds"], obj_rows),
        "",
        _grid(
            ["planner vs", "actual gain", "predicted gain", "seed noise", "beyond noise"],
            gain_rows,
        ),
        "",
        f"Band coverage: {inside} of {total} (allocator, language, seed) values inside their "
        f"predicted 90% band ({inside / total:.0%})."
        if total
        else "Band coverage: no bands.",
        "",
        _gap_line(table, metric, higher_is_better),
    ]
    return "\n".join(parts)


def plot_predicted_vs_actual(table: pd.DataFrame, metric: str) -> Figure:
    """Per language: each allocator's predicted value with its band, and the actual values."""
    import matplotlib.pyplot as plt

    rows = primary(table, metric)
    languages = list(dict.fromkeys(rows["language"]))
    allocators = list(dict.fromkeys(rows["allocator"]))
    n = len(languages)
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n + 1, 3.4), squeeze=False)
    for ax, lang in zip(axes[0], languages, strict=True):
        mine = rows[rows["language"] == lang]
        for i, allocator in enumerate(allocators):
            sub = mine[mine["allocator"] == allocator]
            if sub.empty:
                continue
            first = sub.iloc[0]
            ax.errorbar(
                [i],
                [first["predicted"]],
                yerr=[[first["predicted"] - first["low"]], [first["high"] - first["predicted"]]],
                fmt="o",
                color="0.5",
                capsize=4,
                label="predicted, 90% band" if i == 0 else None,
            )
            ax.scatter(
                np.full(len(sub), i + 0.15), sub["value"], color="C3", marker="x", zorder=3,
                label="actual (each seed)" if i == 0 else None,
            )  # fmt: skip
        ax.set_xticks(range(len(allocators)), allocators, rotation=45, ha="right", fontsize=8)
        ax.set_title(lang, fontsize=10)
    axes[0][0].set_ylabel(metric)
    axes[0][0].legend(fontsize=7, loc="best")
    fig.suptitle("MuIT runs: predicted vs actual per language", fontsize=11)
    fig.tight_layout()
    return fig


def plot_objectives(table: pd.DataFrame, metric: str, higher_is_better: bool) -> Figure:
    """Each allocator's actual objective per seed, with the mean and its spread."""
    import matplotlib.pyplot as plt

    runs = objectives(table, metric)
    summary = objective_summary(table, metric)
    fig, ax = plt.subplots(figsize=(1.3 * len(summary) + 2.5, 3.6))
    for i, r in enumerate(_records(summary)):
        mine = runs[runs["allocator"] == r["allocator"]]
        ax.scatter(np.full(len(mine), i), mine["objective"], color="C0", zorder=3)
        spread = 0.0 if math.isnan(r["spread"]) else float(r["spread"])
        ax.errorbar(
            [i + 0.12], [float(r["objective"])], yerr=[spread], fmt="_", color="k", capsize=6
        )
    ax.set_xticks(range(len(summary)), list(summary["allocator"]), rotation=30, ha="right")
    better = "higher" if higher_is_better else "lower"
    ax.set_ylabel(f"weighted mean {metric} ({better} is better)")
    ax.set_title("Objective per allocator (dots: seeds; bar: mean ± seed spread)", fontsize=10)
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class ClosedLoop:
    """A finished validation, as the analysis notebook reads it back.

    Attributes:
        table: `validation.csv`.
        metric: the primary metric (the one with predictions).
        higher_is_better: its direction.
        verdict: the verdict text `plan-sweep validate` printed (`verdict.txt`).
    """

    table: pd.DataFrame
    metric: str
    higher_is_better: bool
    verdict: str


def load_validation(folder: str | Path) -> ClosedLoop | None:
    """Read `validation.csv` and `verdict.txt` from a validate folder; None when there is none.

    Raises:
        DataError: the table has no predicted values (it is not a validate table).
    """
    path = Path(folder) / "validation.csv"
    if not path.is_file():
        return None
    table = pd.read_csv(path)
    predicted = table.dropna(subset=["predicted"])
    if predicted.empty:
        raise DataError(f"{path} has no predicted values; rewrite it with plan-sweep validate.")
    metric = str(predicted["metric"].iloc[0])
    higher = bool(predicted["higher_is_better"].iloc[0])
    text_path = Path(folder) / "verdict.txt"
    text = (
        text_path.read_text(encoding="utf-8")
        if text_path.is_file()
        else format_verdict(table, metric, higher, {})
    )
    return ClosedLoop(table, metric, higher, text)
