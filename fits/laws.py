"""Scaling laws: pure, vectorised numpy functions of the data size, formula in each docstring.

Every law is called as `LAWS[name](d, **params)` and broadcasts like a numpy ufunc, so
`d` may be a scalar, a vector of sizes, or an array that broadcasts against array-valued
parameters (one row per bootstrap draw). Parameter names match the formulas exactly.

Sign convention. `saturating` and `similarity` are written for scores that rise with data
(`a > 0`, `s_max` the ceiling). For a metric where lower is better (a loss) the same formula
holds with `a < 0`, and `s_max` is then the floor the loss falls towards. `power` is written
for losses (`b > 0`); fitted to a score it has `b < 0`.

`d` is a count of training examples. Laws that take `log(d)` or `d**(-beta)` are defined for
`d > 0` only (they return inf or nan at `d = 0`); `saturating` is finite at `d = 0` through
its `d0` term, which lets the untuned model's zero-data point sit on the curve.

Each law is registered with its entry (`LawInfo`, see `fits._registry`): formula, parameter
names, boxes, start grid, partial derivatives, fixed inputs, zero-data behaviour, pooling,
whether `--law auto` tries it, its simpler fallback, what it needs to be fittable and which
parameters must be positive (`LawInfo.impossible_reason` checks fits and laws files). This
module is where the rest of `fits` reads the registry from (`LAW_INFO`, `LAWS`, `law_info`),
and where a plug-in adds a law (`register_law`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from fits import _law_hooks as hooks
from fits import _partials as derivatives
from fits._registry import (
    AUTO,
    LAW_INFO,
    LAWS,
    Law,
    LawInfo,
    Pooling,
    law_info,
    register_law,
    unregister_law,
)

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

__all__ = [
    "AUTO",
    "BUILTIN_LAWS",
    "LAWS",
    "LAW_INFO",
    "Law",
    "LawInfo",
    "Pooling",
    "chinchilla",
    "law_info",
    "loglinear",
    "power",
    "register_law",
    "saturating",
    "similarity",
    "unregister_law",
]


def _f64(x: ArrayLike) -> NDArray[np.float64]:
    return np.asarray(x, dtype=np.float64)


def power(d: ArrayLike, e: ArrayLike, b: ArrayLike, beta: ArrayLike) -> NDArray[np.float64]:
    """Power law for losses: `L(d) = e + b * d**(-beta)`.

    Args:
        d: data size (training examples), `d > 0`.
        e: irreducible loss, the value approached as `d -> inf`.
        b: scale of the reducible part (`b > 0` for a loss that falls with data).
        beta: data exponent, `beta > 0`.

    Returns:
        The predicted metric, broadcast over the inputs.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return _f64(e) + _f64(b) * np.power(_f64(d), -_f64(beta))


def saturating(
    d: ArrayLike, s_max: ArrayLike, a: ArrayLike, d0: ArrayLike, alpha: ArrayLike
) -> NDArray[np.float64]:
    """Saturating law for bounded scores: `S(d) = s_max - a * (d + d0)**(-alpha)`.

    The `d0 > 0` offset makes the law finite at `d = 0`, so the untuned model (zero
    fine-tuning examples) is a point on the curve: `S(0) = s_max - a * d0**(-alpha)`.

    Args:
        d: data size (training examples), `d >= 0`.
        s_max: ceiling the score approaches (the floor, for a loss with `a < 0`).
        a: scale of the gap to the ceiling (`a > 0` for a score, `a < 0` for a loss).
        d0: data-equivalent of what the untuned model already knows, `d0 > 0`.
        alpha: data exponent, `alpha > 0`.

    Returns:
        The predicted metric, broadcast over the inputs.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return _f64(s_max) - _f64(a) * np.power(_f64(d) + _f64(d0), -_f64(alpha))


def loglinear(d: ArrayLike, a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    """Log-linear law, the baseline many papers report: `S(d) = a + b * log(d)`.

    Args:
        d: data size (training examples), `d > 0`; `log` is the natural logarithm.
        a: value at `d = 1`.
        b: change per e-fold of data (`b > 0` for a score, `b < 0` for a loss).

    Returns:
        The predicted metric, broadcast over the inputs. It never saturates, so it
        over-predicts far beyond the fitted range.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return _f64(a) + _f64(b) * np.log(_f64(d))


def similarity(
    d: ArrayLike, s_max: ArrayLike, a: ArrayLike, alpha: ArrayLike, gamma: ArrayLike
) -> NDArray[np.float64]:
    """Pooled cross-language law: `S_l(d) = s_max - a * (gamma * d)**(-alpha)`.

    In a pooled fit every language shares `alpha` and `a` (and, for scores, `s_max`); each
    language has its own `gamma`, a multiplier on data: its "effective data" per example.
    Gammas are normalised so the most data-efficient language has `gamma = 1`, and a language
    with `gamma = 0.25` needs four times the examples to reach the same score.

    Args:
        d: data size (training examples), `d > 0`.
        s_max: ceiling the score approaches (the floor, for a loss with `a < 0`).
        a: scale of the gap to the ceiling at one effective example.
        alpha: shared data exponent, `alpha > 0`.
        gamma: the language's data multiplier, `gamma > 0`.

    Returns:
        The predicted metric, broadcast over the inputs.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return _f64(s_max) - _f64(a) * np.power(_f64(gamma) * _f64(d), -_f64(alpha))


def chinchilla(
    d: ArrayLike,
    e: ArrayLike,
    a: ArrayLike,
    alpha: ArrayLike,
    b: ArrayLike,
    beta: ArrayLike,
    n: ArrayLike,
) -> NDArray[np.float64]:
    """Two-variable law for sweeps with a model-size axis: `L(n, d) = e + a/n**alpha + b/d**beta`.

    Hoffmann et al. (2022), as refitted by Epoch AI (Besiroglu et al., 2024): `e 1.817,
    a 482, alpha 0.348, b 2085, beta 0.366` with `n` in parameters and `d` in tokens.

    Args:
        d: data size, `d > 0`.
        e: irreducible loss.
        a: model-size scale, `a > 0`.
        alpha: model-size exponent, `alpha > 0`.
        b: data scale, `b > 0`.
        beta: data exponent, `beta > 0`.
        n: model size in parameters, `n > 0`. A fitted language entry stores the size it
            predicts at under `fixed`, and `FitResult.__call__` passes it in.

    Returns:
        The predicted loss, broadcast over the inputs.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return (
            _f64(e)
            + _f64(a) * np.power(_f64(n), -_f64(alpha))
            + _f64(b) * np.power(_f64(d), -_f64(beta))
        )


BUILTIN_LAWS = (
    LawInfo(
        "power",
        power,
        ("e", "b", "beta"),
        "L(d) = e + b * d**(-beta)",
        boxes=hooks.power_boxes,
        start_grid=hooks.power_starts,
        partials=derivatives.power_partials,
        candidate=True,
        simpler="loglinear",
        positive=("beta",),
    ),
    LawInfo(
        "saturating",
        saturating,
        ("s_max", "a", "d0", "alpha"),
        "S(d) = s_max - a * (d + d0)**(-alpha)",
        boxes=hooks.saturating_boxes,
        start_grid=hooks.saturating_starts,
        partials=derivatives.saturating_partials,
        uses_zero_data=True,
        candidate=True,
        simpler="power",
        positive=("d0", "alpha"),
    ),
    LawInfo(
        "loglinear",
        loglinear,
        ("a", "b"),
        "S(d) = a + b * log(d)",
        boxes=hooks.loglinear_boxes,
        start_grid=hooks.loglinear_starts,
        partials=derivatives.loglinear_partials,
        candidate=True,
    ),
    LawInfo(
        "similarity",
        similarity,
        ("s_max", "a", "alpha", "gamma"),
        "S_l(d) = s_max - a * (gamma_l * d)**(-alpha)",
        boxes=hooks.similarity_boxes,
        partials=derivatives.similarity_partials,
        candidate=True,
        pooling=Pooling(
            reference="gamma",
            shared=hooks.similarity_shared,
            starts=hooks.similarity_starts,
            rebase=hooks.similarity_rebase,
        ),
        positive=("alpha", "gamma"),
    ),
    LawInfo(
        "chinchilla",
        chinchilla,
        ("e", "a", "alpha", "b", "beta"),
        "L(n, d) = e + a / n**alpha + b / d**beta",
        boxes=hooks.chinchilla_boxes,
        start_grid=hooks.chinchilla_starts,
        partials=derivatives.chinchilla_partials,
        fixed=("n",),
        # Fitted across models: falling back to a one-variable law would mix model sizes.
        simpler=None,
        needs=hooks.chinchilla_needs,
        shareable=False,
        positive=("a", "alpha", "b", "beta"),
    ),
)
"""The built-in laws, registered in this order (the order of the `--law` choices)."""

for _info in BUILTIN_LAWS:
    register_law(_info)
