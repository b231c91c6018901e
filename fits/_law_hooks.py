"""The built-in laws' hooks: parameter boxes, start grids, fittability and pooled seeding.

`fits.laws` puts each of these in its law's entry (`LawInfo`); the fitting code only calls
them through the entry. Each start grid returns shape (starts, parameters) in the law's
`params` order, built as `fits.space` describes.
"""

from __future__ import annotations

from itertools import product
from typing import TYPE_CHECKING

import numpy as np

from fits.space import (
    EXPONENT_BOX,
    EXPONENT_GRID,
    Box,
    LawData,
    asymptote_box,
    asymptote_grid,
    finite_rows,
    least_squares_scale,
    value_span,
)
from muit_core import FitError

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from fits.data import Points


def power_boxes(data: LawData) -> dict[str, Box]:
    """`e` beyond the best value, `b` of the direction's sign, `beta` an exponent."""
    rising = data.higher_is_better
    return {
        "e": asymptote_box(data.y, rising, data.ceiling),
        "b": Box.scale(rising),
        "beta": Box.exponent(),
    }


def power_starts(data: LawData) -> NDArray[np.float64]:
    """A grid over (`e`, `beta`), plus a log-log linear regression seed for a positive loss."""
    d, y, rising = data.d, data.y, data.higher_is_better
    rows: list[list[float]] = []
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for e, beta in product(asymptote_grid(y, rising, data.ceiling), EXPONENT_GRID):
            x = d**-beta
            rows.append([e, least_squares_scale(x, y - e, data.down), beta])
        if not rising and y.min() > 0 and np.unique(d).size > 1:
            e = 0.9 * float(y.min())  # a log-log linear regression seed
            slope, icept = np.polyfit(np.log(d), np.log(y - e), 1)
            rows.append([e, float(np.exp(icept)), float(np.clip(-slope, *EXPONENT_BOX))])
    return finite_rows(rows)


def saturating_boxes(data: LawData) -> dict[str, Box]:
    """As `power_boxes`, with `d0` between 0.01 and 100 times the largest size."""
    rising = data.higher_is_better
    d_top = float(data.d.max()) if data.d.size else 1.0
    return {
        "s_max": asymptote_box(data.y, rising, data.ceiling),
        "a": Box.scale(not rising),
        "d0": Box.scale(False, 1e-2, 100.0 * max(d_top, 1.0)),
        "alpha": Box.exponent(),
    }


def saturating_starts(data: LawData) -> NDArray[np.float64]:
    """A grid over (`s_max`, `alpha`, `d0`), `d0` around the smallest positive size."""
    d, y = data.d, data.y
    rows: list[list[float]] = []
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        d_low = float(d[d > 0].min()) if (d > 0).any() else 1.0
        grid = product(
            asymptote_grid(y, data.higher_is_better, data.ceiling),
            (0.1, 0.3, 0.6, 1.0),
            d_low * np.array([0.1, 1.0, 10.0, 100.0]),
        )
        for s_max, alpha, d0 in grid:
            x = (d + d0) ** -alpha
            rows.append([s_max, least_squares_scale(x, s_max - y, -data.down), d0, alpha])
    return finite_rows(rows)


def loglinear_boxes(data: LawData) -> dict[str, Box]:
    """Both coefficients within a thousand times the values' size."""
    reach = 1e3 * (float(np.abs(data.y).max()) + value_span(data.y))
    return {"a": Box.linear(-reach, reach), "b": Box.linear(-reach, reach)}


def loglinear_starts(data: LawData) -> NDArray[np.float64]:
    """The linear regression on `log(d)` (a flat line with one size)."""
    d, y = data.d, data.y
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        slope, icept = np.polyfit(np.log(d), y, 1) if np.unique(d).size > 1 else (0.0, y.mean())
    return finite_rows([[float(icept), float(slope)]])


def similarity_boxes(data: LawData) -> dict[str, Box]:
    """As `power_boxes` for `s_max`, `a` and `alpha`; `gamma` within 1e-8 to 1e8."""
    rising = data.higher_is_better
    return {
        "s_max": asymptote_box(data.y, rising, data.ceiling),
        "a": Box.scale(not rising),
        "alpha": Box.exponent(),
        "gamma": Box.scale(False, 1e-8, 1e8),
    }


def similarity_shared(higher_is_better: bool) -> tuple[str, ...]:
    """Every language shares `a` and `alpha`, and for scores the ceiling `s_max`."""
    return ("s_max", "a", "alpha") if higher_is_better else ("a", "alpha")


def similarity_starts(
    points: list[Points], own: tuple[str, ...], higher_is_better: bool, ceiling: float | None
) -> list[dict[tuple[str, str], float]]:
    """A grid over (asymptote, alpha); each language's scale by least squares, as a gamma.

    The first language is the reference (its gamma is 1); the others' gammas make their scale
    match: `a_ref * (gamma * d)**(-alpha) = a_lang * d**(-alpha)`.
    """
    sign = 1.0 if higher_is_better else -1.0
    all_y = np.concatenate([p.y for p in points])
    own_ceiling = "s_max" in own
    starts = []
    for which, alpha in product(range(6), EXPONENT_GRID):
        start: dict[tuple[str, str], float] = {("*", "alpha"): alpha}
        scales = []
        for pts in points:
            values = pts.y if own_ceiling else all_y
            s_max = float(asymptote_grid(values, higher_is_better, ceiling)[which])
            x = pts.d**-alpha
            c = float(np.dot(x, s_max - pts.y) / np.dot(x, x))
            scales.append(sign * max(c * sign, 1e-12))
            start[(pts.language, "s_max") if own_ceiling else ("*", "s_max")] = s_max
        a_ref = scales[0]
        start[("*", "a")] = a_ref
        start[(points[0].language, "gamma")] = 1.0
        for pts, a_lang in zip(points[1:], scales[1:], strict=True):
            gamma = (a_ref / a_lang) ** (1.0 / alpha)
            start[(pts.language, "gamma")] = float(np.clip(gamma, 1e-8, 1e8))
        starts.append(start)
    return starts


def similarity_rebase(
    values: dict[str, NDArray[np.float64]], factor: NDArray[np.float64]
) -> dict[str, NDArray[np.float64]]:
    """Divide gamma by `factor`, keeping every prediction unchanged.

    `a * (gamma * d)**(-alpha) = a * g**(-alpha) * (gamma / g * d)**(-alpha)`.
    """
    return {
        **values,
        "gamma": values["gamma"] / factor,
        "a": values["a"] * factor ** (-values["alpha"]),
    }


def chinchilla_boxes(data: LawData) -> dict[str, Box]:
    """A loss law: `e` below the lowest loss, positive scales, two exponents."""
    return {
        "e": asymptote_box(data.y, False),
        "a": Box.scale(False),
        "alpha": Box.exponent(),
        "b": Box.scale(False),
        "beta": Box.exponent(),
    }


def chinchilla_starts(data: LawData) -> NDArray[np.float64]:
    """A grid over (`e`, `alpha`, `beta`); both scales by least squares for each point.

    Raises:
        FitError: `data.inputs` holds no model sizes `n`.
    """
    n = data.inputs.get("n")
    if n is None:
        raise FitError("The chinchilla law needs model sizes n; none were given.")
    d, y = data.d, data.y
    rows: list[list[float]] = []
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for e, alpha, beta in product(
            asymptote_grid(y, False), EXPONENT_GRID[1:5], EXPONENT_GRID[1:5]
        ):
            basis = np.stack([n**-alpha, d**-beta], axis=1)
            coef = np.linalg.lstsq(basis, y - e, rcond=None)[0]
            rows.append([e, max(coef[0], 1e-12), alpha, max(coef[1], 1e-12), beta])
    return finite_rows(rows)


def chinchilla_needs(points: Points) -> str | None:
    """Why the points cannot determine both axes: fewer than 2 model sizes or data sizes."""
    n_models, n_sizes = np.unique(points.n).size, np.unique(points.d).size
    if n_models < 2:
        return (
            f"the chinchilla law needs runs at 2 or more model sizes (n_params); there is "
            f"{n_models}"
        )
    if n_sizes < 2:
        return f"the chinchilla law needs 2 or more data sizes; there is {n_sizes}"
    return None
