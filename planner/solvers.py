"""Exact solvers for monotone, concave problems: KKT water-filling and its relatives.

All three work on a per-language function h_i that decreases in the amount x_i and look for
one level L shared by every language not held at a bound:

- water-filling (`water_fill`, the weighted mean objective): h_i = w_i * u_i'(x_i), the
  weighted marginal utility; at the optimum every free language's marginal equals the KKT
  multiplier L, a language whose marginal at its floor is already below L stays at the floor
  and one whose marginal at its cap is still above L sits at the cap;
- level-filling (`level_fill`, the max-min objective): h_i = -u_i(x_i); every free language
  reaches the same utility -L, so the worst language is as good as it can be (and, with caps,
  the next worst after it, and so on);
- `minimal_amounts` (the target objective): the least amount that reaches a utility.

The level is found by bisection on the multiplier (in log space when it is positive),
accelerated with Illinois regula-falsi steps and interleaved plain halvings, and each
language's x_i(L) by the same bracketed search in log x. The last bracket's two allocations
are interpolated so the amounts sum to the budget exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from planner.values import FloatArray, ValueModel

Levels = Callable[[FloatArray], FloatArray]

_TINY_SHARE = 1e-15  # amounts below this fraction of a cap count as zero in log-x searches
# Marginals come from central differences with a relative rounding noise near 1e-10, so the
# searches stop at about that level: each x_i to ~1e-10 relative, the outer bracket's totals to
# 1e-9 of the budget (the final interpolation then makes the sum exact). Objectives are then
# exact to ~1e-15 relative, since they are flat at the optimum.
_LOG_X_TOL = 1e-10  # inner bracket width in log x
_GAP_TOL = 1e-10  # |log(h / level)| at which an inner search has converged
_TOTAL_TOL = 1e-9  # outer: the bracket's totals this close, relative to the budget
_MAX_ITER = 300


def _gap(h_value: FloatArray | float, level: float, logarithmic: bool) -> FloatArray:
    """Signed distance of h from the level; in log space power laws become straight lines."""
    if logarithmic:
        return np.log(np.maximum(h_value, 1e-300)) - np.log(level)
    return np.asarray(h_value, dtype=float) - level


def _amounts_at_level(
    h: Levels,
    level: float,
    bounds: tuple[FloatArray, FloatArray, FloatArray, FloatArray],
    x_small: FloatArray,
    x_large: FloatArray,
) -> FloatArray:
    """x_i(level): the amount where the decreasing h_i crosses `level`, clipped to bounds.

    `bounds` is (lo, hi, h(lo), h(hi)); `x_small`/`x_large` bracket the answer (h >= level at
    x_small, h <= level at x_large).
    """
    lo, hi, h_lo, h_hi = bounds
    x = np.where(h_lo <= level, lo, np.where(h_hi >= level, hi, np.nan))
    active = np.isnan(x)
    if not active.any():
        return x
    logarithmic = level > 0
    floor = np.maximum(lo, hi * _TINY_SHARE)
    sa = np.log(np.clip(x_small, floor, hi))
    sb = np.log(np.clip(x_large, floor, hi))
    trial = np.where(active, 0.0, x)
    ga = _gap(h(np.where(active, np.exp(sa), trial)), level, logarithmic)
    gb = _gap(h(np.where(active, np.exp(sb), trial)), level, logarithmic)
    # Monotonicity puts the root inside the bracket; where h at an end is already on the far
    # side of the level (ties, or rounding in h), that end is the answer. At the tiny floor
    # that means a root under _TINY_SHARE of the cap, which counts as the floor.
    small_end = np.where(sa <= np.log(floor), lo, np.exp(sa))
    x = np.where(active & (ga <= 0), small_end, np.where(active & (gb >= 0), np.exp(sb), x))
    active &= (ga > 0) & (gb < 0)
    root = 0.5 * (sa + sb)
    last = np.zeros_like(sa)  # +1: the small end moved last, -1: the large end
    for it in range(_MAX_ITER):
        active &= (sb - sa) > _LOG_X_TOL
        if not active.any():
            break
        denominator = np.where(gb != ga, gb - ga, -1.0)
        secant = sb - gb * (sb - sa) / denominator
        use_secant = (it % 4 != 3) & np.isfinite(secant) & (secant > sa) & (secant < sb)
        sc = np.where(use_secant, secant, 0.5 * (sa + sb))
        gc = _gap(h(np.where(active, np.exp(sc), trial)), level, logarithmic)
        root = np.where(active, sc, root)
        active &= np.abs(gc) > _GAP_TOL
        move_small = active & (gc > 0)
        move_large = active & (gc < 0)
        gb = np.where(move_small & (last > 0), 0.5 * gb, gb)  # Illinois: halve the kept end
        ga = np.where(move_large & (last < 0), 0.5 * ga, ga)
        sa, ga = np.where(move_small, sc, sa), np.where(move_small, gc, ga)
        sb, gb = np.where(move_large, sc, sb), np.where(move_large, gc, gb)
        last = np.where(move_small, 1.0, np.where(move_large, -1.0, last))
        root = np.where(active, 0.5 * (sa + sb), root)
    return np.where(np.isnan(x), np.clip(np.exp(root), lo, hi), x)


def fill_to_budget(h: Levels, lo: FloatArray, hi: FloatArray, budget: float) -> FloatArray:
    """Amounts x_i(L) that sum to `budget`, for the shared level L of the decreasing h_i.

    Args:
        h: maps amounts (n,) to per-language values, each non-increasing in its amount.
        lo: floors (n,); hi: caps (n,); sum(lo) <= budget <= sum(hi).
        budget: total amount.

    Returns:
        The amounts, summing to `budget` within floating-point rounding.
    """
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    if budget <= lo.sum():
        return lo.copy()
    if budget >= hi.sum():
        return hi.copy()
    bounds = (lo, hi, h(lo), h(hi))
    level_a, level_b = float(np.max(bounds[2])), float(np.min(bounds[3]))  # x(a)=lo, x(b)=hi
    if level_b >= level_a:  # every h is flat between its bounds: any split is optimal
        return lo + (hi - lo) * (budget - lo.sum()) / (hi - lo).sum()
    logarithmic = level_b > 0
    s_a = np.log(level_a) if logarithmic else level_a
    s_b = np.log(level_b) if logarithmic else level_b
    x_a, x_b = lo.copy(), hi.copy()  # allocations at the bracket's ends: total_a < budget

    def gap(x: FloatArray) -> float:  # log total - log budget: near-linear in log level
        return float(np.log(max(float(x.sum()), 1e-300) / budget))

    g_a, g_b = gap(x_a), gap(x_b)  # Illinois steps halve these; the totals stay exact
    last = 0
    for it in range(_MAX_ITER):
        if x_b.sum() - x_a.sum() <= _TOTAL_TOL * budget or abs(s_a - s_b) <= 1e-14 * abs(s_a):
            break
        secant = s_b - g_b * (s_b - s_a) / (g_b - g_a) if g_b != g_a else np.nan
        between = min(s_a, s_b) < secant < max(s_a, s_b)
        # Halve on the first steps too: an empty floor makes the first secant meaningless.
        s_c = secant if it > 1 and it % 4 != 3 and between else 0.5 * (s_a + s_b)
        level = float(np.exp(s_c)) if logarithmic else float(s_c)
        x_c = _amounts_at_level(h, level, bounds, x_a, x_b)
        g_c = gap(x_c)
        if g_c == 0:
            return x_c
        if g_c < 0:
            g_b = 0.5 * g_b if last < 0 else g_b
            s_a, x_a, g_a, last = s_c, x_c, g_c, -1
        else:
            g_a = 0.5 * g_a if last > 0 else g_a
            s_b, x_b, g_b, last = s_c, x_c, g_c, 1
    total_a, total_b = float(x_a.sum()), float(x_b.sum())
    t = (budget - total_a) / (total_b - total_a) if total_b > total_a else 0.0
    return np.clip(x_a + t * (x_b - x_a), lo, hi)


def water_fill(
    values: ValueModel, weights: FloatArray, lo: FloatArray, hi: FloatArray, budget: float
) -> FloatArray:
    """Maximise sum_i w_i u_i(x_i) subject to sum x = budget and lo <= x <= hi, exactly.

    Exact when every u_i is concave between its bounds (see `is_concave`).
    """
    w = np.asarray(weights, dtype=float)
    return fill_to_budget(lambda x: w * values.marginal(x), lo, hi, budget)


def level_fill(values: ValueModel, lo: FloatArray, hi: FloatArray, budget: float) -> FloatArray:
    """Maximise min_i u_i(x_i) (then the next worst, ...) subject to the budget and bounds.

    Exact when every u_i is non-decreasing between its bounds (see `is_monotone`).
    """
    return fill_to_budget(lambda x: -values.value(x), lo, hi, budget)


def minimal_amounts(
    values: ValueModel, targets: FloatArray, lo: FloatArray, hi: FloatArray, grid: int = 64
) -> FloatArray:
    """The least amount in [lo_i, hi_i] at which u_i reaches `targets[i]` (NaN where none).

    A language without a target (NaN) gets its floor. The first crossing is found on a
    geometric grid and refined by bisection, so u_i need not be monotone.
    """
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    t = np.asarray(targets, dtype=float)
    out = lo.copy()
    wanted = ~np.isnan(t) & (values.value(lo) < t)
    if not wanted.any():
        return out
    start = np.maximum(lo, hi * 1e-9)
    ratios = np.linspace(0.0, 1.0, max(grid, 2))
    points = start[None, :] * (hi / start)[None, :] ** ratios[:, None]  # (grid, n)
    reached = np.array([values.value(p) >= t for p in points])  # (grid, n)
    first = np.where(reached.any(axis=0), reached.argmax(axis=0), -1)
    out = np.where(wanted & (first < 0), np.nan, out)
    refine = wanted & (first >= 0)
    if not refine.any():
        return out
    idx = np.arange(len(lo))
    right = points[np.maximum(first, 0), idx]
    left = np.where(first > 0, points[np.maximum(first - 1, 0), idx], lo)
    for _ in range(_MAX_ITER):
        if np.all(~refine | (right - left <= 1e-13 * np.maximum(right, 1.0))):
            break
        mid = 0.5 * (left + right)
        ok = values.value(np.where(refine, mid, lo)) >= t
        right = np.where(refine & ok, mid, right)
        left = np.where(refine & ~ok, mid, left)
    return np.where(refine, right, out)


def _marginal_grid(values: ValueModel, lo: FloatArray, hi: FloatArray, n_grid: int) -> FloatArray:
    start = np.maximum(np.asarray(lo, dtype=float), np.asarray(hi, dtype=float) * 1e-9)
    ratios = np.linspace(0.0, 1.0, n_grid)
    points = start[None, :] * (hi / start)[None, :] ** ratios[:, None]
    return np.array([values.marginal(p) for p in points])  # (n_grid, n)


def is_concave(values: ValueModel, lo: FloatArray, hi: FloatArray, n_grid: int = 33) -> bool:
    """Whether every u_i looks concave between its bounds: marginals never rise on a grid."""
    grid = _marginal_grid(values, lo, hi, n_grid)
    if not np.all(np.isfinite(grid)):
        return False
    scale = np.max(np.abs(grid), axis=0) + 1e-300
    return bool(np.all(np.diff(grid, axis=0) <= 1e-6 * scale))


def is_monotone(values: ValueModel, lo: FloatArray, hi: FloatArray, n_grid: int = 33) -> bool:
    """Whether every u_i looks non-decreasing between its bounds (marginals >= 0 on a grid)."""
    grid = _marginal_grid(values, lo, hi, n_grid)
    scale = np.max(np.abs(grid), axis=0) + 1e-300
    return bool(np.all(np.isfinite(grid)) and np.all(grid >= -1e-6 * scale))
