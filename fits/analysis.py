"""Tables and figures for the analysis notebook: a sweep's data, its fitted laws, their errors.

`notebooks/analysis.ipynb` calls these functions (and `fits.plots`); they read what `plan-fit`
wrote into a sweep folder and the `results.csv` beside it, and never fit. A sweep folder holds
`results.csv` and `fits/laws.json` (or one `fits/laws_<objective>_<model>.json` per group when
the table holds several objectives or models), as `plan-fit SWEEP_DIR/results.csv` writes them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fits.data import merge_duplicates, points_by_language, read_results, select_metric
from fits.report import LEVEL, chosen_error
from fits.result import read_laws
from muit_core import DataError, format_count

if TYPE_CHECKING:
    import os

    from fits.data import Points
    from fits.result import FitResult, LawsFile

RESULTS_NAME = "results.csv"
FITS_FOLDER = "fits"
PLAN_RANGE_FACTOR = 100.0  # plan-fit's default --plan-max: 100x the largest swept size
PREFERRED_OBJECTIVE = "sft"  # the plan's objective when a sweep holds several (MuIT is SFT)


@dataclass(frozen=True)
class FitGroup:
    """One laws file of a sweep, with the runs it was fitted to.

    Attributes:
        path: the laws file.
        laws: its content.
        points: the runs of its (objective, model) group per language, from `results.csv`
            (the untuned model's zero-data runs included).
        plan_max: right end of the plots' planning range, in examples (plan-fit's default).
    """

    path: Path
    laws: LawsFile
    points: dict[str, Points]
    plan_max: float

    @property
    def label(self) -> str:
        """The group's name: its objective, with the model when the file names one."""
        objective = self.laws.objective or "?"
        return objective if not self.laws.model else f"{objective}/{self.laws.model}"


def resolve_sweep(sweep_dir: str | os.PathLike[str]) -> Path:
    """The sweep folder: as given, or, for a relative path that is not there, from the parent
    of the working directory (Jupyter runs the notebook from `notebooks/`).

    Raises:
        DataError: neither folder exists.
    """
    folder = Path(sweep_dir)
    if folder.is_dir():
        return folder
    if not folder.is_absolute() and (Path.cwd().parent / folder).is_dir():
        return Path.cwd().parent / folder
    raise DataError(
        f"No sweep folder at {str(folder)!r} (working directory {str(Path.cwd())!r}); "
        "set SWEEP_DIR to the folder that holds results.csv."
    )


def load_groups(sweep_dir: str | os.PathLike[str]) -> tuple[FitGroup, ...]:
    """Every laws file in `SWEEP_DIR/fits/`, with its runs from `SWEEP_DIR/results.csv`.

    Rows with NaN or inf values are left out, as `plan-fit --drop-nonfinite` does.

    Raises:
        DataError: no results table, no laws file, or a laws file's metric is not in the table.
    """
    folder = resolve_sweep(sweep_dir)
    frame = read_results(folder / RESULTS_NAME)
    paths = sorted((folder / FITS_FOLDER).glob("laws*.json"))
    if not paths:
        raise DataError(
            f"No laws file in {str(folder / FITS_FOLDER)!r}; run `plan-fit "
            f"{folder / RESULTS_NAME}` or `notebooks/execute.py {folder}` first."
        )
    groups = []
    for path in paths:
        laws = read_laws(path)
        # A run given twice was averaged by `plan-fit --average-duplicates` (it refuses otherwise).
        rows = merge_duplicates(
            select_metric(frame, laws.metric, drop_nonfinite=True), average=True
        )
        objective = laws.objective
        if objective is None:  # a laws file from elsewhere: only unambiguous with one objective
            present = sorted(rows["objective"].astype(str).unique())
            if len(present) != 1:
                raise DataError(
                    f"The laws file {str(path)!r} names no objective and the table holds "
                    f"several ({', '.join(present)}); refit it with plan-fit."
                )
            objective = present[0]
        points = points_by_language(rows, objective, laws.model or "*")
        plan_max = PLAN_RANGE_FACTOR * float(rows["n_examples"].max())
        groups.append(FitGroup(path, laws, points, plan_max))
    return tuple(groups)


def primary_group(groups: Sequence[FitGroup]) -> FitGroup:
    """The group the plan is made from: the first `sft` group, else the first group."""
    if not groups:
        raise DataError("No laws files were loaded; run plan-fit on the sweep first.")
    preferred = [g for g in groups if g.laws.objective == PREFERRED_OBJECTIVE]
    return (preferred or list(groups))[0]


def describe(groups: Sequence[FitGroup]) -> str:
    """One line per laws file: its group, metric, languages and path; the primary is marked."""
    primary = primary_group(groups)
    lines = []
    for group in groups:
        laws = group.laws
        direction = "higher" if laws.higher_is_better else "lower"
        ok = sum(fit.success for fit in laws.fits.values())
        mark = "  <- planned" if group is primary else ""
        lines.append(
            f"{group.label}: {laws.metric} ({direction} is better), {len(laws.fits)} "
            f"language(s), {ok} fitted, {laws.settings.get('bootstrap', 0)} bootstrap draws; "
            f"{group.path}{mark}"
        )
    return "\n".join(lines)


def availability_table(points: Mapping[str, Points]) -> pd.DataFrame:
    """Per language: its training pool (pairs), tokens per example, corpus, and what was swept.

    Columns: `n_available` (unique training pairs; NaN when the table lacks it),
    `tokens_per_example`, `corpus`, `runs` (fine-tuned runs, d > 0), `seeds`, `sizes`
    (smallest to largest swept size) and `swept_share` (largest swept size / pool).
    """
    rows = []
    for code, pts in points.items():
        trained = pts.positive()
        pool = pts.data.get("n_available")
        largest = float(trained.d.max()) if len(trained) else math.nan
        rows.append(
            {
                "language": code,
                "n_available": float(pool) if pool else math.nan,
                "tokens_per_example": pts.data.get("tokens_per_example", math.nan),
                "corpus": pts.data.get("corpus", ""),
                "runs": len(trained),
                "seeds": int(np.unique(trained.seed).size),
                "sizes": (
                    f"{format_count(float(trained.d.min()))}-{format_count(largest)}"
                    if len(trained)
                    else "-"
                ),
                "swept_share": largest / float(pool) if pool else math.nan,
            }
        )
    return pd.DataFrame(rows).set_index("language")


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def plot_availability(points: Mapping[str, Points]) -> Figure:
    """Horizontal bars of each language's training pool, with the largest swept size marked."""
    table = availability_table(points).sort_values("n_available", na_position="first")
    figure = _figure(7.0, 0.45 * len(table) + 1.6)
    ax = figure.add_subplot()
    y = np.arange(len(table))
    pools = table["n_available"].to_numpy(dtype=float)
    ax.barh(y, np.nan_to_num(pools), color="#2a9d8f", label="training pool (unique pairs)")
    largest = [
        float(points[code].positive().d.max()) if len(points[code].positive()) else math.nan
        for code in table.index
    ]
    ax.scatter(
        largest, y, marker="|", s=250, color="#d1495b", label="largest swept size", zorder=3
    )
    for row, pool in zip(y, pools, strict=True):
        text = "unknown" if math.isnan(pool) else format_count(pool)
        ax.annotate(
            text,
            (0 if math.isnan(pool) else pool, row),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    ax.set_yticks(y, list(table.index))
    ax.set_xlabel("training examples (one epoch)")
    ax.set_title("Data available per language")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.margins(x=0.12)
    return figure


def _candidate_laws(laws: LawsFile) -> list[str]:
    seen: dict[str, None] = {}
    for fit in laws.fits.values():
        seen.update(dict.fromkeys(fit.diagnostics.get("extrapolation", {})))
    return list(seen)


def extrapolation_table(laws: LawsFile) -> pd.DataFrame:
    """Held-out extrapolation error per language and candidate law, in percent.

    Each candidate was fitted without the largest size(s) (`held_out`) and scored on them:
    mean |predicted - observed mean| / |observed mean|. `used` is the law the file keeps and
    `used_error_pct` its error (NaN when not measured, e.g. too few sizes).
    """
    candidates = _candidate_laws(laws)
    rows = []
    for code, fit in laws.fits.items():
        extrap = fit.diagnostics.get("extrapolation", {})
        held: list[float] = next((e["held_out"] for e in extrap.values() if e.get("held_out")), [])
        row: dict[str, object] = {
            "language": code,
            "held_out": ",".join(format_count(h) for h in held) or "-",
        }
        for law in candidates:
            row[f"{law}_pct"] = _pct(extrap.get(law, {}).get("error"))
        row["used"] = fit.law if fit.success else f"{fit.law} (failed)"
        row["used_error_pct"] = _pct(chosen_error(fit))
        rows.append(row)
    return pd.DataFrame(rows).set_index("language")


def _pct(value: float | None) -> float:
    return math.nan if value is None or not math.isfinite(value) else 100.0 * float(value)


def plot_extrapolation(laws: LawsFile) -> Figure:
    """Grouped bars: each language's held-out error per candidate law; the used law outlined."""
    table = extrapolation_table(laws)
    candidates = _candidate_laws(laws)
    figure = _figure(min(16.0, max(6.0, 0.45 * len(table) * max(1, len(candidates)) + 2.5)), 4.2)
    ax = figure.add_subplot()
    if not candidates:
        ax.text(0.5, 0.5, "no held-out errors in this laws file", ha="center", va="center")
        ax.set_axis_off()
        return figure
    width = 0.8 / len(candidates)
    x = np.arange(len(table))
    for k, law in enumerate(candidates):
        values = table[f"{law}_pct"].to_numpy(dtype=float)
        used = np.array([laws.fits[code].law == law for code in table.index])
        ax.bar(
            x + (k - (len(candidates) - 1) / 2) * width,
            np.nan_to_num(values),
            width,
            color=f"C{k}",
            label=law,
            edgecolor=np.where(used, "black", "none").tolist(),
            linewidth=1.6,
        )
    ax.set_xticks(x, list(table.index))
    ax.set_ylabel("held-out extrapolation error (%)")
    ax.set_title("Extrapolation error per law (outlined: the law used)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8, title="candidate law", title_fontsize=8)
    return figure


def by_objective(groups: Sequence[FitGroup]) -> dict[str, FitGroup]:
    """The groups of the primary group's model, keyed by objective, the primary's first."""
    primary = primary_group(groups)
    out: dict[str, FitGroup] = {}
    for group in [primary, *groups]:
        if (
            group.laws.model == primary.laws.model
            and group.laws.objective
            and group.laws.objective not in out
        ):
            out[group.laws.objective] = group
    return out


def common_language(groups: Mapping[str, FitGroup]) -> str:
    """The first language (in the first group's order) fitted successfully in every group.

    Raises:
        DataError: no language is fitted in all of them.
    """
    first, *others = groups.values()
    for code, fit in first.laws.fits.items():
        if fit.success and all(code in g.laws.fits and g.laws.fits[code].success for g in others):
            return code
    raise DataError(f"No language has a usable fit for every objective ({', '.join(groups)}).")


def objective_table(groups: Mapping[str, FitGroup]) -> pd.DataFrame:
    """Per language and objective: the measured mean at the largest swept size, and the law's
    prediction there and at the language's pool size (NaN where a fit failed)."""
    rows = []
    for objective, group in groups.items():
        for code, fit in group.laws.fits.items():
            pts = group.points.get(code)
            largest, measured = math.nan, math.nan
            if pts is not None and len(pts.positive()):
                trained = pts.positive()
                largest = float(trained.d.max())
                measured = float(trained.y[trained.d == largest].mean())
            pool = fit.data.get("n_available")
            rows.append(
                {
                    "language": code,
                    "objective": objective,
                    "law": fit.law,
                    "largest_size": largest,
                    "measured_at_largest": measured,
                    "predicted_at_largest": _predict(fit, largest),
                    "n_available": float(pool) if pool else math.nan,
                    "predicted_at_pool": _predict(fit, float(pool) if pool else math.nan),
                }
            )
    return pd.DataFrame(rows).set_index(["language", "objective"]).sort_index()


def _predict(fit: FitResult, d: float) -> float:
    if not fit.success or not math.isfinite(d):
        return math.nan
    return float(fit(np.array([d]))[0])


def plot_objectives(groups: Mapping[str, FitGroup], language: str | None = None) -> Figure:
    """One language's runs and fitted curves for each objective, overlaid on one log axis.

    Args:
        groups: groups keyed by objective, e.g. from `by_objective`.
        language: the language to show (default: `common_language(groups)`).

    Raises:
        DataError: the language is not fitted for every objective.
    """
    code = language or common_language(groups)
    fits: dict[str, FitResult] = {}
    for objective, group in groups.items():
        fit = group.laws.fits.get(code)
        if fit is None or not fit.success:
            raise DataError(f"No usable {objective} fit for {code!r}; pick another language.")
        fits[objective] = fit
    sizes = [
        float(pts.d[pts.d > 0].min())
        for pts in (g.points.get(code) for g in groups.values())
        if pts is not None and (pts.d > 0).any()
    ]
    smallest = min(sizes) if sizes else min(max(fit.d_min, 1.0) for fit in fits.values())
    grid = np.geomspace(max(smallest / 4.0, 0.5), max(g.plan_max for g in groups.values()), 300)
    figure = _figure(7.5, 4.8)
    ax = figure.add_subplot()
    for k, (objective, fit) in enumerate(fits.items()):
        color = f"C{k}"
        pts = groups[objective].points.get(code)
        if pts is not None and len(pts.positive()):
            run_sizes, means, stds = pts.positive().seed_summary()
            ax.errorbar(
                run_sizes,
                means,
                yerr=stds,
                fmt="o",
                ms=4,
                capsize=2,
                color=color,
                label=f"{objective} runs (mean ± sd)",
            )
        if pts is not None and (pts.d == 0).any():
            untuned = float(pts.y[pts.d == 0].mean())
            ax.axhline(untuned, color=color, ls=":", lw=1, label=f"{objective}: untuned model")
        ax.plot(grid, fit(grid), color=color, lw=1.8, label=f"{objective}: {fit.law} fit")
        if fit.n_draws:
            low, high = fit.interval(grid, LEVEL)
            ax.fill_between(grid, low, high, color=color, alpha=0.15, lw=0)
    values = [float(v) for g in groups.values() if code in g.points for v in g.points[code].y]
    if values:  # frame the runs; a wild extrapolation must not squash them
        y_min, y_max = min(values), max(values)
        span = max(y_max - y_min, 1e-9)
        ends = [float(fit(np.array([grid[-1]]))[0]) for fit in fits.values()]
        bottom = max(min([y_min, *ends]), y_min - 1.5 * span)
        top = min(max([y_max, *ends]), y_max + 1.5 * span)
        ax.set_ylim(bottom - 0.06 * (top - bottom), top + 0.06 * (top - bottom))
    pool = next(iter(fits.values())).data.get("n_available")
    if pool:
        ax.axvline(float(pool), color="#2a9d8f", ls="-.", lw=1, label="pool size")
    first = next(iter(groups.values())).laws
    direction = "higher" if first.higher_is_better else "lower"
    ax.set_xscale("log")
    ax.set_xlabel("training examples (log scale)")
    ax.set_ylabel(f"{first.metric} ({direction} is better)")
    ax.set_title(f"{code}: {' vs '.join(groups)} (bands: {LEVEL:.0%} bootstrap)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    return figure
