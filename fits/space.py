"""Where a law's parameters may go (bounds, transforms) and the data its start grid is built from.

A law's entry (`fits.laws.LawInfo`) gives, for one language's usable points (a `LawData`), the
box of every parameter (`Box`) and a grid of starting points. This module holds the pieces
those hooks are written with. Bounds depend on the data and the metric's direction: the
asymptote (`e`, `s_max`) lies beyond the best observed value, scales are positive for a loss
that falls and negative for a score that rises, exponents lie in (0, 3]. Start grids cover the
nonlinear parameters (asymptote, exponents, offsets) and solve the linear scale(s) for each grid
point by least squares, which is the log-log linear seed of the style guide made robust to the
unknown asymptote.

The solver works in internal coordinates: a `LIN` parameter as is, a `LOG` scale as its
logarithm and a `NEGLOG` scale (a negative one) as the logarithm of its magnitude, so one step
size suits values from 1e-3 to 1e9.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

LIN, LOG, NEGLOG = 0, 1, 2
"""Transforms of a parameter to internal coordinates: none, log, log of minus the value."""

EXPONENT_BOX = (1e-4, 3.0)  # exponents of data or model size; fine-tuning curves sit in 0.05-1
SCALE_BOX = (1e-15, 1e30)  # magnitude of a scale; a wide box costs nothing in log space
EXPONENT_GRID = (0.05, 0.15, 0.3, 0.5, 0.8, 1.2)


def to_natural(u: NDArray[np.float64], kinds: NDArray[np.int64]) -> NDArray[np.float64]:
    """Internal coordinates to parameter values (broadcast over leading axes)."""
    with np.errstate(over="ignore"):
        return np.where(kinds == LIN, u, np.where(kinds == LOG, 1.0, -1.0) * np.exp(u))


def to_internal(v: NDArray[np.float64], kinds: NDArray[np.int64]) -> NDArray[np.float64]:
    """Parameter values to internal coordinates (values of the wrong sign map to -inf)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(np.where(kinds == NEGLOG, -v, v))
    return np.where(kinds == LIN, v, np.nan_to_num(logs, nan=-np.inf))


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

    @classmethod
    def exponent(cls) -> Box:
        """An exponent of data or model size, within `EXPONENT_BOX`."""
        return cls.linear(*EXPONENT_BOX)


@dataclass(frozen=True)
class LawData:
    """What a law's `boxes` and `start_grid` hooks see: one language's usable points.

    In a pooled fit the hooks also see every language's points at once.

    Attributes:
        d: data sizes, in training examples (no zero unless the law uses zero-data points).
        y: the metric's value at each size.
        higher_is_better: the metric's direction.
        ceiling: the highest value a higher-is-better metric can take, if bounded.
        inputs: the law's fixed inputs per point (`n`, the model size, for `chinchilla`);
            empty where the caller has none (the pooled fit's start grid).
    """

    d: NDArray[np.float64]
    y: NDArray[np.float64]
    higher_is_better: bool
    ceiling: float | None = None
    inputs: dict[str, NDArray[np.float64]] = field(default_factory=dict)

    @property
    def down(self) -> float:
        """Sign of the scale of a `d**(-x)` term: -1 for a score that rises, +1 for a loss."""
        return -1.0 if self.higher_is_better else 1.0


def value_span(y: NDArray[np.float64]) -> float:
    """The range of the values, or a tenth of their size when they are all equal."""
    span = float(np.ptp(y)) if y.size else 0.0
    return span if span > 0 else max(abs(float(np.max(y))), 1.0) * 0.1


def asymptote_box(
    y: NDArray[np.float64], higher_is_better: bool, ceiling: float | None = None
) -> Box:
    """Bounds of the value approached with infinite data: beyond the best observed value.

    `ceiling` caps it for bounded scores (chrF and BLEU cannot exceed 100).
    """
    low, high, span = float(y.min()), float(y.max()), value_span(y)
    if higher_is_better:
        top = high + 1e3 * span + abs(high)
        return Box.linear(low, top if ceiling is None else max(min(top, ceiling), high))
    return Box.linear(0.0 if low > 0 else low - 1e3 * span - abs(low), high)


def asymptote_grid(
    y: NDArray[np.float64], higher_is_better: bool, ceiling: float | None = None
) -> NDArray[np.float64]:
    """Starting values of the asymptote (six of them)."""
    low, high, span = float(y.min()), float(y.max()), value_span(y)
    if higher_is_better:
        grid = high + span * np.array([0.02, 0.1, 0.3, 1.0, 3.0, 10.0])
        return grid if ceiling is None else np.minimum(grid, max(ceiling, high))
    if low > 0:
        return low * np.array([0.0, 0.3, 0.6, 0.8, 0.9, 0.97])
    return low - span * np.array([0.02, 0.1, 0.3, 1.0, 3.0, 10.0])


def least_squares_scale(
    basis: NDArray[np.float64], target: NDArray[np.float64], sign: float
) -> float:
    """Least-squares `c` in `target ~ c * basis`, forced to `sign` and a non-zero size."""
    denom = float(np.dot(basis, basis))
    c = float(np.dot(basis, target)) / denom if denom > 0 else 0.0
    return sign * max(abs(c) if c * sign > 0 else 0.0, 1e-12)


def finite_rows(rows: list[list[float]]) -> NDArray[np.float64]:
    """Starting points as an array (starts, parameters), without rows holding NaN or inf."""
    grid = np.asarray(rows, dtype=np.float64)
    return grid[np.isfinite(grid).all(axis=1)] if grid.ndim == 2 else grid.reshape(0, 0)
