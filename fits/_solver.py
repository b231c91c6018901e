"""A vectorised robust least-squares solver for many small fits at once.

The objective of every fit is the Huber loss of its residuals, summed over points (Epoch AI's
Chinchilla replication: summing rather than averaging keeps L-BFGS from stopping early), with
per-point weights (bootstrap multiplicities). Residuals are log residuals
`log(pred) - log(y)` when every value is positive, else residuals scaled by the values' size.

Parameters live in an internal space where scale parameters are logarithms (`log`, or
`neglog` for a negative scale), so one step size suits values from 1e-3 to 1e9, and bounds are
boxes there. `minimize_batch` runs a projected, damped Gauss-Newton (Levenberg-Marquardt)
iteration on the Huber loss for a whole batch of problems in numpy at once: every start of a
grid, every bootstrap draw, every language. Each iteration tries a reweighted-least-squares
step, two longer ones along it, and a Newton step, and keeps the best that lowers the loss.
`polish_lbfgsb` then refines the best starts with scipy's bounded L-BFGS-B on the same loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import minimize

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from fits._batch import FitBatch

_TINY = 1e-300
_STRETCH = 4.0  # the longer trial step along the majoriser's direction


def huber(r: NDArray[np.float64], delta: float) -> NDArray[np.float64]:
    """Huber loss, elementwise: r**2/2 within delta, linear beyond."""
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


@dataclass(frozen=True)
class BatchSolution:
    """Where `minimize_batch` stopped: internal coordinates, summed loss, convergence."""

    u: NDArray[np.float64]
    loss: NDArray[np.float64]
    converged: NDArray[np.bool_]
    iterations: int


def minimize_batch(
    batch: FitBatch,
    u0: NDArray[np.float64],
    weights: NDArray[np.float64],
    *,
    delta: float = 1e-3,
    max_iter: int = 200,
    rows: NDArray[np.intp] | None = None,
    tol: float = 1e-8,
    xtol: float = 1e-9,
) -> BatchSolution:
    """Minimise the weighted, summed Huber loss for every row of `u0` at once.

    Args:
        batch: the layout and data.
        u0: starting internal coordinates, shape (K, P); clipped into the bounds.
        weights: per-point weights, shape (K, n) or (1, n); bootstrap draws use counts.
        delta: Huber threshold on the residuals.
        max_iter: iteration cap.
        rows: which data row of `batch` each start uses (default: row i, or row 0).
        tol: stop when an accepted step improves the loss by less than this, relatively.
        xtol: stop when a step moves every internal coordinate by less than this, relative
            to the coordinates' size (log parameters: a relative change of the value).

    Returns:
        The solution of every start (row of `u0`).
    """
    count, n_free = np.shape(u0)
    rows_all = np.arange(count) if rows is None else np.asarray(rows)
    lower, upper = (np.broadcast_to(b, (count, n_free)) for b in batch.bounds(rows_all))
    u = np.clip(np.array(u0, dtype=np.float64), lower, upper)
    w_all = np.broadcast_to(weights, (count, weights.shape[1]))
    r = batch.view(rows_all).residuals(u)
    loss = (w_all * huber(r, delta)).sum(axis=1)
    damping = np.full(count, 1e-3)
    converged = np.zeros(count, dtype=bool)
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 - reported after the loop
        active = np.nonzero(~converged)[0]
        if active.size == 0:
            break
        ua, ra, wa, rows_a = u[active], r[active], w_all[active], rows_all[active]
        lo, hi = lower[active], upper[active]
        view = batch.view(rows_a)
        jac = view.jacobian(ua, ra)
        steps = _damped_steps(batch, jac, ra, wa, ua, lo, hi, damping[active], delta)
        best_u, best_r, best_loss = ua, ra, np.full(len(active), np.inf)
        # Along a flat valley a full majoriser step undershoots: also try a longer one, and
        # going on to where the next residual reaches zero (a kink of the near-L1 loss).
        kink = _kink_length(batch, jac, ra, wa, steps[0], delta)[:, None]
        for step in (steps[0], _STRETCH * steps[0], kink * steps[0], steps[1]):
            u_try = np.clip(ua + step, lo, hi)
            r_try = view.residuals(u_try)
            loss_try = (wa * huber(r_try, delta)).sum(axis=1)
            take = np.isfinite(loss_try) & (loss_try < best_loss)
            best_u = np.where(take[:, None], u_try, best_u)
            best_r = np.where(take[:, None], r_try, best_r)
            best_loss = np.where(take, loss_try, best_loss)
        u_new, r_new, loss_new = best_u, best_r, best_loss
        old = loss[active]
        better = np.isfinite(loss_new) & (loss_new < old)
        gain = np.where(better, old - loss_new, 0.0)
        moved = np.abs(u_new - ua).max(axis=1)
        accepted = active[better]
        u[accepted], r[accepted], loss[accepted] = u_new[better], r_new[better], loss_new[better]
        damping[active] = np.where(
            better, np.maximum(damping[active] * 0.3, 1e-12), damping[active] * 10.0
        )
        # Done when an accepted step gains almost nothing, or when even a tiny step fails:
        # near a kink of the loss the damping would otherwise climb for many iterations.
        tiny = moved < xtol * (1.0 + np.abs(ua).max(axis=1))
        done = (better & ((gain <= tol * (1e-12 + old)) | tiny)) | (~better & tiny)
        done |= damping[active] > 1e12
        converged[active[done]] = True
    return BatchSolution(u=u, loss=loss, converged=converged, iterations=iterations)


def _kink_length(
    batch: FitBatch,
    jac: NDArray[np.float64],
    r: NDArray[np.float64],
    w: NDArray[np.float64],
    step: NDArray[np.float64],
    delta: float,
) -> NDArray[np.float64]:
    """How far along `step` (in step lengths, > 1) the first residual beyond delta hits zero.

    Reweighted least squares approaches such a point only geometrically; jumping to it (in
    the linearised model) often ends the crawl in one trial. `_STRETCH` where no residual
    heads to zero.
    """
    change = batch.directional(jac, step)  # d residual / d (step length)
    with np.errstate(divide="ignore", invalid="ignore"):
        length = -r / change
    heading = (np.abs(r) > delta) & (w > 0) & (length > 1.0) & np.isfinite(length)
    first = np.where(heading, length, np.inf).min(axis=1)
    return np.where(np.isfinite(first), np.minimum(first, 1e3), _STRETCH)


def _damped_steps(
    batch: FitBatch,
    jac: NDArray[np.float64],
    r: NDArray[np.float64],
    w: NDArray[np.float64],
    u: NDArray[np.float64],
    lower: NDArray[np.float64],
    upper: NDArray[np.float64],
    damping: NDArray[np.float64],
    delta: float,
) -> list[NDArray[np.float64]]:
    """Two Levenberg-Marquardt steps on the Huber loss: majoriser curvature, then Newton's.

    The first uses the IRLS weights (1 within delta, delta/|r| beyond), whose quadratic bounds
    the Huber loss from above, so a short enough step always descends. The second uses the
    Huber loss's own curvature (points within delta only), which lands on the optimum once the
    points it interpolates are known. Both are damped by `damping * diag(majoriser)`.
    """
    absr = np.abs(r)
    inside = absr <= delta
    irls = w * np.where(inside, 1.0, delta / np.maximum(absr, _TINY))
    psi = irls * r  # the Huber loss's derivative, weighted
    grad = batch.gradient(jac, psi)
    # Coordinates on a bound whose gradient points outwards stay put this step.
    keep = ~(((u <= lower + 1e-12) & (grad > 0)) | ((u >= upper - 1e-12) & (grad < 0)))
    lam = damping[:, None]
    curvatures = [irls, w * inside]
    if batch.blocks is not None:
        return batch.blocks.newton_steps(jac, psi, curvatures, lam, keep)
    mask2 = keep[:, :, None] * keep[:, None, :]
    hessians = [batch.normal_matrix(jac, c) * mask2 for c in curvatures]
    diag = np.einsum("kpp->kp", hessians[0])
    ridge = lam * (diag + 1e-12 * (1.0 + diag.max(axis=1, keepdims=True))) + ~keep
    eye = np.eye(u.shape[1])
    rhs = (grad * keep)[..., None]
    return [-np.linalg.solve(h + ridge[:, :, None] * eye, rhs)[..., 0] for h in hessians]


def polish_lbfgsb(
    batch: FitBatch,
    u0: NDArray[np.float64],
    weights: NDArray[np.float64],
    rows: NDArray[np.intp],
    *,
    delta: float = 1e-3,
    max_iter: int = 500,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Refine many problems at once with scipy's bounded L-BFGS-B on the summed Huber loss.

    The problems are independent, so their losses are summed into one objective over the
    stacked coordinates: one L-BFGS-B run refines every start of every language, instead of
    one run (and one Python-level loop) each.

    Args:
        batch: the layout and data.
        u0: starting internal coordinates, (K, P).
        weights: per-point weights, (K, n) or (1, n).
        rows: data row of `batch` for each start.
        delta: Huber threshold.
        max_iter: L-BFGS-B iteration cap.

    Returns:
        `(u, loss)`: each start's coordinates (K, P) and loss (K,) where it stopped.
    """
    count, n_free = np.shape(u0)
    view = batch.view(np.asarray(rows))
    w = np.broadcast_to(weights, (count, weights.shape[-1]))
    lower, upper = (np.broadcast_to(b, (count, n_free)) for b in batch.bounds(rows))

    start = np.clip(u0, lower, upper)
    # L-BFGS-B's stopping rule is relative to max(|f|, 1); scale the loss to start at 1.
    scale = 1.0 / max(float((w * huber(view.residuals(start), delta)).sum()), 1e-300)

    def objective(x: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        ux = x.reshape(count, n_free)
        r = view.residuals(ux)
        psi = np.clip(r, -delta, delta)  # the Huber loss's derivative
        grad = batch.gradient(view.jacobian(ux, r), w * psi)
        return scale * float((w * huber(r, delta)).sum()), scale * grad.ravel()

    result = minimize(
        objective,
        start.ravel(),
        jac=True,
        method="L-BFGS-B",
        bounds=list(zip(lower.ravel(), upper.ravel(), strict=True)),
        options={"maxiter": max_iter, "ftol": 1e-12, "gtol": 1e-10},
    )
    u = np.asarray(result.x, dtype=np.float64).reshape(count, n_free)
    return u, (w * huber(view.residuals(u), delta)).sum(axis=1)
