"""The candidates `--law auto` tries, and hold-out fits: fit the smaller sizes, predict the
larger ones.

`holdout_fits` fits one law to every language's sizes below its largest `n_holdout` (no
bootstrap); `fits.reach` runs it at several depths to backtest each candidate at several
reaches, and chooses and weights the laws by those backtests. `Extrapolation` is how one law's
error at the `n_holdout` backtest is reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from fits.diagnostics import unfit_reason
from fits.fitting import FitOptions, fit_languages
from fits.laws import LAW_INFO, law_info
from fits.pooled import fit_pooled
from muit_core import FitError

if TYPE_CHECKING:
    from fits.data import Points
    from fits.result import FitResult


def per_language_candidates() -> tuple[str, ...]:
    """The per-language laws `--law auto` tries (`LawInfo.candidate`), richest first.

    Richest means most parameters; laws with as many keep their registration order.
    """
    laws = [info for info in LAW_INFO.values() if info.candidate and not info.pooled]
    return tuple(info.name for info in sorted(laws, key=lambda info: -len(info.params)))


def pooled_candidates(n_languages: int) -> tuple[str, ...]:
    """The pooled laws `--law auto` tries: every pooled candidate, given two or more languages."""
    if n_languages < 2:
        return ()
    return tuple(info.name for info in LAW_INFO.values() if info.candidate and info.pooled)


def auto_candidates(n_languages: int) -> tuple[str, ...]:
    """Every law `--law auto` tries for a group of `n_languages`: per-language, then pooled."""
    return per_language_candidates() + pooled_candidates(n_languages)


@dataclass(frozen=True)
class Extrapolation:
    """One law's held-out error for one language.

    Attributes:
        law: the candidate law.
        error: mean relative error at the held-out sizes (NaN when there is none).
        held_out: the held-out data sizes.
        message: why there is no error, when there is none.
    """

    law: str
    error: float
    held_out: tuple[float, ...]
    message: str = ""

    def to_dict(self) -> dict[str, object]:
        """JSON-safe form."""
        return {
            "error": self.error if math.isfinite(self.error) else None,
            "held_out": list(self.held_out),
            "message": self.message,
        }


def holdout_split(points: Points, n_holdout: int) -> tuple[Points | None, tuple[float, ...]]:
    """The points below the largest `n_holdout` positive sizes, and those sizes.

    Returns `(None, held_out)` when no positive size would be left to fit.
    """
    sizes = points.sizes[points.sizes > 0]
    if sizes.size <= n_holdout:
        return None, tuple(float(s) for s in sizes)
    held = sizes[-n_holdout:]
    return points.below(float(held[0])), tuple(float(s) for s in held)


HeldOut = tuple["FitResult | None", tuple[float, ...], str]
"""One language's hold-out fit: the fit of the smaller sizes (None when there is none), the
held-out sizes, and why there is no fit."""


def holdout_fits(
    points_by_language: dict[str, Points],
    law: str,
    *,
    higher_is_better: bool,
    n_holdout: int,
    share: tuple[str, ...] = (),
    options: FitOptions | None = None,
) -> dict[str, HeldOut]:
    """Fit `law` to every language's sizes below its largest `n_holdout` (no bootstrap).

    Returns:
        `held[language] = (fit or None, held-out sizes, why there is no fit)`.
    """
    base = options or FitOptions()
    opts = replace(base, n_bootstrap=0, n_polish=1)
    splits = {lang: holdout_split(pts, n_holdout) for lang, pts in points_by_language.items()}
    fitted: dict[str, FitResult] = {}
    reasons: dict[str, str] = {}
    trains = {lang: split[0] for lang, split in splits.items() if split[0] is not None}
    for lang, split in splits.items():
        if split[0] is None:
            reasons[lang] = (
                f"{len(split[1])} positive size(s): none left to fit after holding out "
                f"the largest {n_holdout}"
            )
    if law_info(law).pooled or share:
        fitted, pooled_reasons = _pooled_train(trains, law, higher_is_better, share, opts)
        reasons.update(pooled_reasons)
    else:
        ready = {}
        for lang, train in trains.items():
            why = unfit_reason(train, law)
            if why:
                reasons[lang] = f"after holding out the largest size(s): {why}"
            else:
                ready[lang] = train
        if ready:
            fitted = fit_languages(ready, law, higher_is_better=higher_is_better, options=opts)
    out: dict[str, HeldOut] = {}
    for lang, (_, held) in splits.items():
        fit = fitted.get(lang)
        if fit is not None and fit.success:
            out[lang] = (fit, held, "")
        else:
            out[lang] = (None, held, reasons.get(lang) or (fit.message if fit else "not fitted"))
    return out


def _pooled_train(
    trains: dict[str, Points],
    law: str,
    higher_is_better: bool,
    share: tuple[str, ...],
    opts: FitOptions,
) -> tuple[dict[str, FitResult], dict[str, str]]:
    try:
        pooled = fit_pooled(
            trains, law, higher_is_better=higher_is_better, share=share, options=opts
        )
    except FitError as err:
        return {}, dict.fromkeys(trains, f"the pooled fit of the smaller sizes failed: {err}")
    return pooled.fits, {lang: fit.message for lang, fit in pooled.fits.items() if not fit.success}
