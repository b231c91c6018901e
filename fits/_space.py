"""Where each law's parameters may go (bounds, transforms) and where a fit starts (a grid).

Bounds depend on the data and the metric's direction: the asymptote (`e`, `s_max`) lies beyond
the best observed value, scales are positive for a loss that falls and negative for a score that
rises, exponents lie in (0, 3]. Start grids cover the nonlinear parameters (asymptote,
exponents, offsets) and solve the linear scale(s) for each grid point by least squares, which
is the log-log linear seed of the style guide made robust to the unknown asymptote.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from typing import TYPE_CHECKING

import numpy as np

from fits._problem import LIN, LOG, NEGLOG
from fits.laws import LAW_INFO
from muit_core import FitError

if TYPE_CHECKING:
    from numpy.typing import NDArray

EXPONENT_BOX = (1e-4, 3.0)  # exponents of data or model size; fine-tuning curves sit in 0.05-1
SCALE_BOX = (1e-15, 1e30)  # magnitude of a scale; a wide box costs nothing in log space
EXPONENT_GRID = (0.05, 0.15, 0.3, 0.5, 0.8, 1.2)


@dataclass(frozen=True)
class Box:
    """One parameter's transform and bounds in internal coordinates (logs for scales)."""

    kind: int
    lower: float
    upper: float

    @classmethod
    def linear(cls, lower: float, upper: float) -> Box:
        """A parameter fitted as is, within [lower, upper]."""
        return cls(LIN, float(lower), float(upper))

    @classmethod
    def scale(
        cls, negative: bool, lower: float = SCALE_BOX[0], upper: float = SCALE_BOX[1]
    ) -> Box:
        """A scale fitted as its log, magnitude within [lower, upper], of the given sign."""
        return cls(NEGLOG if negative else LOG, float(np.log(lower)), float(np.log(upper)))


def _span(y: NDArray[np.float64]) -> float:
    span = float(np.ptp(y)) if y.size else 0.0
    return span if span > 0 else max(abs(float(np.max(y))), 1.0) * 0.1


def asymptote_box(
    y: NDArray[np.float64], higher_is_better: bool, ceiling: float | None = None
) -> Box:
    """Bounds of the value approached with infinite data: beyond the best observed value.

    `ceiling` caps it for bounded scores (chrF and BLEU cannot exceed 100).
    """
    low, high, span = float(y.min()), float(y.max()), _span(y)
    if higher_is_better:
        top = high + 1e3 * span + abs(high)
        return Box.linear(low, top if ceiling is None else max(min(top, ceiling), high))
    return Box.linear(0.0 if low > 0 else low - 1e3 * span - abs(low), high)


def asymptote_grid(
    y: NDArray[np.float64], higher_is_better: bool, ceiling: float | None = None
) -> NDArray[np.float64]:
    """Starting values of the asymptote."""
    low, high, span = float(y.min()), float(y.max()), _span(y)
    if higher_is_better:
        grid = high + span * np.array([0.02, 0.1, 0.3, 1.0, 3.0, 10.0])
        return grid if ceiling is None else np.minimum(grid, max(ceiling, high))
    if low > 0:
        return low * np.array([0.0, 0.3, 0.6, 0.8, 0.9, 0.97])
    return low - span * np.array([0.02, 0.1, 0.3, 1.0, 3.0, 10.0])


def boxes(
    law: str,
    d: NDArray[np.float64],
    y: NDArray[np.float64],
    higher_is_better: bool,
    ceiling: float | None = None,
) -> dict[str, Box]:
    """Bounds of every parameter of `law` for one language's usable points."""
    rising = higher_is_better
    expo = Box.linear(*EXPONENT_BOX)
    if law == "power":
        return {"e": asymptote_box(y, rising, ceiling), "b": Box.scale(rising), "beta": expo}
    if law == "saturating":
        d_top = float(d.max()) if d.size else 1.0
        return {
            "s_max": asymptote_box(y, rising, ceiling),
            "a": Box.scale(not rising),
            "d0": Box.scale(False, 1e-2, 100.0 * max(d_top, 1.0)),
            "alpha": expo,
        }
    if law == "loglinear":
        reach = 1e3 * (float(np.abs(y).max()) + _span(y))
        return {"a": Box.linear(-reach, reach), "b": Box.linear(-reach, reach)}
    if law == "similarity":
        return {
            "s_max": asymptote_box(y, rising, ceiling),
            "a": Box.scale(not rising),
            "alpha": expo,
            "gamma": Box.scale(False, 1e-8, 1e8),
        }
    if law == "chinchilla":
        return {
            "e": asymptote_box(y, False),
            "a": Box.scale(False),
            "alpha": expo,
            "b": Box.scale(False),
            "beta": expo,
        }
    raise FitError(f"Unknown law {law!r}; known laws: {', '.join(LAW_INFO)}.")


def _ls_scale(basis: NDArray[np.float64], target: NDArray[np.float64], sign: float) -> float:
    """Least-squares `c` in `target ~ c * basis`, forced to `sign` and a non-zero size."""
    denom = float(np.dot(basis, basis))
    c = float(np.dot(basis, target)) / denom if denom > 0 else 0.0
    return sign * max(abs(c) if c * sign > 0 else 0.0, 1e-12)


def start_grid(
    law: str,
    d: NDArray[np.float64],
    y: NDArray[np.float64],
    higher_is_better: bool,
    n: NDArray[np.float64] | None = None,
    ceiling: float | None = None,
) -> NDArray[np.float64]:
    """Starting points of a fit, shape (starts, parameters) in `LAW_INFO[law].params` order.

    Args:
        law: a per-language law (`similarity` is seeded by the pooled fit).
        d: usable data sizes of one language.
        y: values at those sizes.
        higher_is_better: the metric's direction.
        n: model sizes, for `chinchilla`.
        ceiling: the highest value a higher-is-better metric can take, if bounded.
    """
    down = -1.0 if higher_is_better else 1.0  # sign of the scale of a d**(-x) term
    rows: list[list[float]] = []
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if law == "power":
            for e, beta in product(asymptote_grid(y, higher_is_better, ceiling), EXPONENT_GRID):
                x = d**-beta
                rows.append([e, _ls_scale(x, y - e, down), beta])
            if not higher_is_better and y.min() > 0 and np.unique(d).size > 1:
                e = 0.9 * float(y.min())  # a log-log linear regression seed
                slope, icept = np.polyfit(np.log(d), np.log(y - e), 1)
                rows.append([e, float(np.exp(icept)), float(np.clip(-slope, *EXPONENT_BOX))])
        elif law == "saturating":
            d_low = float(d[d > 0].min()) if (d > 0).any() else 1.0
            grid = product(
                asymptote_grid(y, higher_is_better, ceiling),
                (0.1, 0.3, 0.6, 1.0),
                d_low * np.array([0.1, 1.0, 10.0, 100.0]),
            )
            for s_max, alpha, d0 in grid:
                x = (d + d0) ** -alpha
                rows.append([s_max, _ls_scale(x, s_max - y, -down), d0, alpha])
        elif law == "loglinear":
            slope, icept = (
                np.polyfit(np.log(d), y, 1) if np.unique(d).size > 1 else (0.0, y.mean())
            )
            rows.append([float(icept), float(slope)])
        elif law == "chinchilla":
            if n is None:
                raise FitError("The chinchilla law needs model sizes n; none were given.")
            for e, alpha, beta in product(
                asymptote_grid(y, False), EXPONENT_GRID[1:5], EXPONENT_GRID[1:5]
            ):
                basis = np.stack([n**-alpha, d**-beta], axis=1)
                coef = np.linalg.lstsq(basis, y - e, rcond=None)[0]
                rows.append([e, max(coef[0], 1e-12), alpha, max(coef[1], 1e-12), beta])
        else:
            raise FitError(f"The {law!r} law has no per-language start grid.")
    grid_array = np.asarray(rows, dtype=np.float64)
    return grid_array[np.isfinite(grid_array).all(axis=1)]
