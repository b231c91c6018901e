"""Model selection by extrapolation: fit the smaller sizes, predict the largest.

For each language the largest `n_holdout` distinct sizes are held out, every candidate law is
fitted to the rest (no bootstrap), and its error is the mean, over the held-out sizes, of
`|prediction - mean over seeds| / |mean over seeds|`. `--law auto` picks, per language, the law
with the smallest such error; every candidate's error (or why it has none) is reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

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


def relative_error(fit: FitResult, points: Points, held_out: tuple[float, ...]) -> float:
    """Mean relative error of `fit` at the held-out sizes, against the mean over seeds."""
    errors = []
    for size in held_out:
        observed = float(points.y[points.d == size].mean())
        predicted = float(fit(np.array([size]))[0])
        errors.append(abs(predicted - observed) / max(abs(observed), 1e-12))
    return float(np.mean(errors))


def extrapolation_errors(
    points_by_language: dict[str, Points],
    laws: tuple[str, ...],
    *,
    higher_is_better: bool,
    n_holdout: int = 1,
    share: tuple[str, ...] = (),
    options: FitOptions | None = None,
) -> dict[str, dict[str, Extrapolation]]:
    """Every candidate law's held-out error for every language.

    Args:
        points_by_language: all runs of each language.
        laws: candidate laws; a pooled law (or any law with `share`) is fitted pooled.
        higher_is_better: the metric's direction.
        n_holdout: how many of the largest distinct sizes to hold out.
        share: parameters shared across languages for per-language laws.
        options: fit settings (the bootstrap is skipped here).

    Returns:
        `errors[language][law]`.
    """
    if n_holdout < 1:
        raise FitError(f"Hold out at least one size; got n_holdout={n_holdout}.")
    base = options or FitOptions()
    opts = replace(base, n_bootstrap=0, n_polish=1)
    splits = {lang: holdout_split(pts, n_holdout) for lang, pts in points_by_language.items()}
    out: dict[str, dict[str, Extrapolation]] = {lang: {} for lang in points_by_language}
    for law in laws:
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
        for lang, (_, held) in splits.items():
            fit = fitted.get(lang)
            if fit is not None and fit.success:
                error = relative_error(fit, points_by_language[lang], held)
                out[lang][law] = Extrapolation(law, error, held)
            else:
                message = reasons.get(lang) or (fit.message if fit else "not fitted")
                out[lang][law] = Extrapolation(law, math.nan, held, message)
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


def choose_law(errors: dict[str, Extrapolation]) -> tuple[str | None, str]:
    """The candidate with the smallest held-out error, and a sentence saying why.

    Returns `(None, reason)` when no candidate has an error.
    """
    finite = {law: e.error for law, e in errors.items() if math.isfinite(e.error)}
    if not finite:
        return None, "no candidate law could be checked on held-out sizes"
    law = min(finite, key=lambda name: (finite[name], len(law_info(name).params)))
    return law, f"smallest held-out error ({finite[law]:.2%}) of {len(finite)} candidate(s)"
