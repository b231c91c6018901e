"""Analytic partial derivatives of each law, for the solver's Jacobians.

Each function returns the law's value and its partial derivative with respect to every fitted
parameter, in `LAW_INFO[law].params` order, from one evaluation of the costly power terms.
`fits.laws` puts each in its law's entry (`LawInfo.partials`); a law without one falls back to
finite differences.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray


def power_partials(
    d: NDArray[np.float64],
    e: NDArray[np.float64],
    b: NDArray[np.float64],
    beta: NDArray[np.float64],
) -> tuple[NDArray[np.float64], list[NDArray[np.float64]]]:
    log_d = np.log(d)
    x = np.exp(-beta * log_d)
    bx = b * x
    return e + bx, [np.ones_like(bx), x, -bx * log_d]


def saturating_partials(
    d: NDArray[np.float64],
    s_max: NDArray[np.float64],
    a: NDArray[np.float64],
    d0: NDArray[np.float64],
    alpha: NDArray[np.float64],
) -> tuple[NDArray[np.float64], list[NDArray[np.float64]]]:
    shifted = d + d0
    log_s = np.log(shifted)
    x = np.exp(-alpha * log_s)
    ax = a * x
    return s_max - ax, [np.ones_like(ax), -x, alpha * ax / shifted, ax * log_s]


def loglinear_partials(
    d: NDArray[np.float64], a: NDArray[np.float64], b: NDArray[np.float64]
) -> tuple[NDArray[np.float64], list[NDArray[np.float64]]]:
    log_d = np.log(d)
    pred = a + b * log_d
    return pred, [np.ones_like(pred), np.broadcast_to(log_d, pred.shape)]


def similarity_partials(
    d: NDArray[np.float64],
    s_max: NDArray[np.float64],
    a: NDArray[np.float64],
    alpha: NDArray[np.float64],
    gamma: NDArray[np.float64],
) -> tuple[NDArray[np.float64], list[NDArray[np.float64]]]:
    log_gd = np.log(gamma * d)
    x = np.exp(-alpha * log_gd)
    ax = a * x
    return s_max - ax, [np.ones_like(ax), -x, ax * log_gd, alpha * ax / gamma]


def chinchilla_partials(
    d: NDArray[np.float64],
    e: NDArray[np.float64],
    a: NDArray[np.float64],
    alpha: NDArray[np.float64],
    b: NDArray[np.float64],
    beta: NDArray[np.float64],
    n: NDArray[np.float64],
) -> tuple[NDArray[np.float64], list[NDArray[np.float64]]]:
    log_n, log_d = np.log(n), np.log(d)
    xn, xd = np.exp(-alpha * log_n), np.exp(-beta * log_d)
    axn, bxd = a * xn, b * xd
    pred = e + axn + bxd
    return pred, [
        np.ones_like(pred),
        np.broadcast_to(xn, pred.shape),
        -axn * log_n,
        xd,
        -bxd * log_d,
    ]
