"""What a law can be fitted to, what the data look like, and how a fit becomes a `FitResult`.

Shared by the per-language and the pooled fits. Flags never stop a fit: noisy or non-monotone
points still fit, and a fine-tuned size that scores below the untuned model is real (small
fine-tuning sets can hurt), so it is flagged, not removed.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from fits.laws import law_info
from fits.result import FitResult
from muit_core import METRICS

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from fits.data import Points

NOISY_RMS = 0.05  # a fit whose RMS log residual tops 5% is flagged noisy


def usable_points(points: Points, law: str) -> tuple[Points, list[str]]:
    """The points `law` can use, and notes on what was left out.

    Laws that take `log(d)` or `d**(-x)` cannot use the untuned model's zero-data points; they
    are excluded and the note says so. A law whose entry has `uses_zero_data` keeps them
    (`saturating`, through its `d0` term).
    """
    if law_info(law).uses_zero_data:
        return points, []
    n_zero = int((points.d == 0).sum())
    if n_zero == 0:
        return points, []
    note = (
        f"excluded {n_zero} zero-data (untuned model) run(s): the {law} law is undefined at d = 0"
    )
    return points.positive(), [note]


def size_keys(points: Points, law: str, n_params: int) -> tuple[NDArray[np.float64], int]:
    """Key per point whose distinct values a fit needs, and how many distinct keys it needs.

    Data sizes for one-variable laws (as many as parameters); (fixed inputs, data size) tuples,
    e.g. (model size, data size) pairs, for a law with fixed inputs (`chinchilla`).
    """
    fixed = law_info(law).fixed
    if fixed:
        pairs = np.stack([*(getattr(points, name) for name in fixed), points.d], axis=1)
        _, keys = np.unique(pairs, axis=0, return_inverse=True)
        return keys.astype(np.float64).ravel(), n_params
    return points.d, n_params


def unfit_reason(points: Points, law: str) -> str | None:
    """Why `law` cannot be fitted to these points, or None when it can.

    The law's own `needs` are checked first, then that there are as many distinct sizes (or
    (model, data) size pairs) as parameters.
    """
    usable, _ = usable_points(points, law)
    info = law_info(law)
    if info.needs is not None:
        why = info.needs(usable)
        if why:
            return why
    keys, needed = size_keys(usable, law, len(info.params))
    have = np.unique(keys).size
    if have < needed:
        what = "(model, data) size pairs" if info.across_models else "distinct sizes"
        listed = ", ".join(f"{s:g}" for s in np.unique(usable.d))
        return (
            f"{have} {what} ({listed or 'none'}) is fewer than the {needed} parameters of "
            f"the {law} law"
        )
    return None


def data_flags(points: Points, higher_is_better: bool) -> list[str]:
    """Flags on the raw points: `non_monotone` seed means, `below_base` sizes."""
    sizes, means, _ = points.seed_summary()
    better = 1.0 if higher_is_better else -1.0
    flags = []
    positive = sizes > 0
    if positive.sum() > 1 and (np.diff(means[positive]) * better < 0).any():
        flags.append("non_monotone")
    if (~positive).any() and positive.any():
        base = means[~positive][0]
        if ((means[positive] - base) * better < 0).any():
            flags.append("below_base")
    return flags


def assemble_result(
    *,
    language: str,
    law: str,
    points: Points,
    usable: Points,
    params: dict[str, float],
    draws: dict[str, NDArray[np.float64]],
    metric: str,
    higher_is_better: bool,
    loss: float,
    notes: list[str],
    fixed: dict[str, float] | None = None,
    shared: tuple[str, ...] = (),
    extra: dict[str, Any] | None = None,
    message: str = "",
) -> FitResult:
    """Build a `FitResult` with residual diagnostics and flags.

    The fit succeeds when every parameter and every fitted prediction is finite and the
    parameters make sense for the metric (`LawInfo.impossible_reason`: positive exponents,
    the metric never worse with more data over the fitted sizes, predictions within its
    bounds there); otherwise it is recorded as failed, with the reason.
    """
    fixed = fixed or {}
    info = law_info(law)
    covariates = {name: getattr(usable, name) for name in info.fixed}
    with np.errstate(all="ignore"):
        pred = np.asarray(info.func(usable.d, **params, **covariates), dtype=np.float64)
        if (usable.y > 0).all() and (pred > 0).all():
            residuals = np.log(pred) - np.log(usable.y)
        else:
            residuals = (pred - usable.y) / max(float(np.abs(usable.y).max()), 1e-12)
    rms = float(np.sqrt(np.mean(residuals**2))) if residuals.size else math.nan
    finite = all(math.isfinite(v) for v in params.values()) and bool(np.isfinite(pred).all())
    why = None
    if finite and usable.d.size:
        known = METRICS.get(metric)
        why = info.impossible_reason(
            params,
            fixed,
            higher_is_better=higher_is_better,
            d_range=(float(usable.d.min()), float(usable.d.max())),
            bounds=(known.lowest, known.highest) if known is not None else (None, None),
            metric=metric,
        )
    if why:
        message = "; ".join(m for m in (message, f"rejected: {why}") if m)
    flags = data_flags(points, higher_is_better)
    if rms > NOISY_RMS:
        flags.append("noisy")
    diagnostics: dict[str, Any] = dict(extra or {})
    flags.extend(f"at_bound:{name}" for name in diagnostics.get("at_bound", ()))
    n_draws = min((len(v) for v in draws.values()), default=0)
    kept = {k: np.asarray(v, dtype=np.float64)[:n_draws] for k, v in draws.items()}
    stderr = {k: float(np.std(kept[k], ddof=1)) if n_draws > 1 else math.nan for k in params}
    diagnostics.update(
        {
            "loss": loss,
            "residual_rms": rms,
            "flags": flags,
            "notes": list(notes),
            "points": {
                "d": usable.d.tolist(),
                "y": usable.y.tolist(),
                "seed": usable.seed.tolist(),
                "pred": pred.tolist(),
            },
        }
    )
    usable_d = usable.d if usable.d.size else np.array([math.nan])
    return FitResult(
        language=language,
        law=law,
        params=params,
        stderr=stderr,
        metric=metric,
        higher_is_better=higher_is_better,
        n_points=len(usable),
        d_min=float(usable_d.min()),
        d_max=float(usable_d.max()),
        success=finite and not why,
        message=message if finite else (message or "the fit did not produce finite values"),
        draws={k: tuple(v.tolist()) for k, v in kept.items()},
        data=points.data,
        fixed=fixed,
        shared=shared,
        diagnostics=diagnostics,
    )


def failed_result(
    *,
    language: str,
    law: str,
    points: Points,
    metric: str,
    higher_is_better: bool,
    message: str,
    extra: dict[str, Any] | None = None,
) -> FitResult:
    """A `FitResult` with `success=False`, NaN parameters and the reason."""
    usable, notes = usable_points(points, law)
    sizes = usable.d if usable.d.size else np.array([math.nan])
    diagnostics = dict(extra or {})
    diagnostics.update({"flags": data_flags(points, higher_is_better), "notes": notes})
    return FitResult(
        language=language,
        law=law,
        params=dict.fromkeys(law_info(law).params, math.nan),
        stderr=dict.fromkeys(law_info(law).params, math.nan),
        metric=metric,
        higher_is_better=higher_is_better,
        n_points=len(usable),
        d_min=float(sizes.min()),
        d_max=float(sizes.max()),
        success=False,
        message=message,
        data=points.data,
        diagnostics=diagnostics,
    )
