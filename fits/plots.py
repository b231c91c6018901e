"""PNG plots of fitted laws: one per language and one overview grid.

Each panel shows the runs (faint dots per seed, mean and standard deviation over seeds as error
bars), the untuned model's zero-data level, the fitted curve over the fitted sizes (solid) and
its extrapolation over the planning range (dashed) on a log axis, the bootstrap band, and the
language's pool size when known. Plotting never fits: it draws `FitResult`s.

Figures are built with matplotlib's object API (no pyplot state), so plotting is safe inside a
library and needs no display.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fits.report import chosen_error
from muit_core import format_count

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from fits.data import Points
    from fits.result import FitResult, LawsFile

LEVEL = 0.9
_POINTS, _CURVE, _BASE, _POOL = "#1f4e99", "#d1495b", "#6c757d", "#2a9d8f"


def _x_range(fit: FitResult, points: Points | None, plan_max: float) -> tuple[float, float]:
    sizes = points.d[points.d > 0] if points is not None else np.array([])
    low = float(sizes.min()) if sizes.size else (fit.d_min if fit.d_min > 0 else 1.0)
    # Room on the left shows where the curve meets the untuned level (the d = 0 line).
    return max(low / 8.0, 0.5), max(plan_max, low * 10.0)


def draw_fit(
    ax: Axes,
    fit: FitResult,
    points: Points | None,
    *,
    plan_max: float,
    compact: bool = False,
) -> None:
    """Draw one language's runs, curve, band and extrapolation on `ax`."""
    left, right = _x_range(fit, points, plan_max)
    if points is not None:
        shown = points
        if "n" in fit.fixed:
            ax.scatter(points.d[points.d > 0], points.y[points.d > 0], s=6, color="#bbbbbb")
            shown = points.select(points.n == fit.fixed["n"])
        positive = shown.positive()
        ax.scatter(positive.d, positive.y, s=8, color=_POINTS, alpha=0.35, linewidths=0)
        if len(positive):
            sizes, means, stds = positive.seed_summary()
            ax.errorbar(
                sizes,
                means,
                yerr=stds,
                fmt="o",
                ms=4,
                color=_POINTS,
                capsize=2,
                lw=1,
                label="runs: mean ± sd over seeds",
            )
        base = shown.y[shown.d == 0]
        if base.size:
            ax.axhline(
                base.mean(), color=_BASE, ls=":", lw=1.2, label="untuned model (0 examples)"
            )
    if fit.success:
        grid = np.geomspace(left, right, 300)
        inside = grid <= fit.d_max
        pred = fit(grid)
        ax.plot(
            grid[inside],
            pred[inside],
            color=_CURVE,
            lw=1.8,
            label="fitted law" if compact else f"{fit.law} fit",
        )
        ax.plot(grid[~inside], pred[~inside], color=_CURVE, lw=1.5, ls="--", label="extrapolation")
        if fit.n_draws:
            low, high = fit.interval(grid, LEVEL)
            ax.fill_between(
                grid,
                low,
                high,
                color=_CURVE,
                alpha=0.18,
                lw=0,
                label=f"{LEVEL:.0%} bootstrap band",
            )
    else:
        ax.text(
            0.5,
            0.5,
            f"fit failed:\n{fit.message[:80]}",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=7 if compact else 9,
            wrap=True,
        )
    pool = fit.data.get("n_available")
    if pool:
        ax.axvline(
            float(pool),
            color=_POOL,
            ls="-.",
            lw=1,
            label="pool size (data cap)"
            if compact
            else f"pool: {format_count(float(pool))} examples",
        )
    ax.set_xscale("log")
    ax.set_xlim(left, right)
    _set_y_limits(ax, fit, points, right)
    error = chosen_error(fit)
    error_text = "" if error is None else f", extrap. err {error:.1%}"
    ax.set_title(f"{fit.language}: {fit.law}{error_text}", fontsize=9 if compact else 11)
    ax.grid(True, which="major", alpha=0.3)
    if not compact:
        direction = "higher" if fit.higher_is_better else "lower"
        ax.set_xlabel("training examples (log scale)")
        ax.set_ylabel(f"{fit.metric} ({direction} is better)")
        ax.legend(fontsize=8, loc="best")
    else:
        ax.tick_params(labelsize=7)


def _set_y_limits(ax: Axes, fit: FitResult, points: Points | None, right: float) -> None:
    """Frame the data and the curve, without letting a wild extrapolation dominate."""
    if points is None or not len(points):
        return
    low, high = float(points.y.min()), float(points.y.max())
    span = max(high - low, 1e-9)
    values = [low, high]
    if fit.success:
        values.extend(float(v) for v in fit(np.array([right])) if math.isfinite(v))
    bottom = max(min(values), low - 1.5 * span)
    top = min(max(values), high + 1.5 * span)
    pad = 0.06 * (top - bottom)
    ax.set_ylim(bottom - pad, top + pad)


def plot_language(fit: FitResult, points: Points | None, *, plan_max: float) -> Figure:
    """One language's figure."""
    fig = Figure(figsize=(7.0, 4.6), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    draw_fit(ax, fit, points, plan_max=plan_max)
    params = "  ".join(
        f"{name}={value:.3g}" for name, value in fit.params.items() if math.isfinite(value)
    )
    fig.suptitle(f"{fit.formula}    {params}", fontsize=8, color="#444444")
    return fig


def plot_overview(
    laws_file: LawsFile, points_by_language: dict[str, Points], *, plan_max: float
) -> Figure:
    """Every language of a laws file as a grid of small panels with one shared legend."""
    codes = list(laws_file.fits)
    cols = max(1, math.ceil(math.sqrt(len(codes))))
    rows = max(1, math.ceil(len(codes) / cols))
    fig = Figure(figsize=(3.2 * cols, 2.6 * rows + 0.8), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, code in zip(axes.flat, codes, strict=False):
        draw_fit(
            ax, laws_file.fits[code], points_by_language.get(code), plan_max=plan_max, compact=True
        )
    for ax in list(axes.flat)[len(codes) :]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4), fontsize=8)
    direction = "higher" if laws_file.higher_is_better else "lower"
    fig.suptitle(
        f"{laws_file.metric} ({direction} is better) vs training examples, log scale",
        fontsize=11,
    )
    return fig
