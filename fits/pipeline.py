"""From one group of runs to a laws file: choose or apply laws, fit, bootstrap, record why.

`fit_all` is what `plan-fit` runs for each (objective, model) group of a results table. With
`law="auto"` it picks each language's law by held-out extrapolation error; with a named law it
fits that law, falling back to a simpler one for a language with too few sizes (saying so in
that language's message). No language is ever dropped: one that cannot be fitted at all is
recorded with `success=False` and the reason.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from fits.diagnostics import failed_result, unfit_reason
from fits.fitting import FitOptions, fit_languages
from fits.laws import AUTO, LAW_INFO, law_info
from fits.pooled import fit_pooled
from fits.reach import DEPTHS, ReachCalibration, build_predictive, run_backtests
from fits.result import FitResult, LawsFile
from fits.selection import (
    Extrapolation,
    auto_candidates,
    holdout_split,
    per_language_candidates,
    pooled_candidates,
)
from muit_core import FitError

if TYPE_CHECKING:
    from fits.data import Points

log = logging.getLogger(__name__)


def law_choices() -> tuple[str, ...]:
    """What `--law` accepts: `auto` and every registered law, in registration order."""
    return (AUTO, *LAW_INFO)


@dataclass(frozen=True)
class FitRequest:
    """What to fit.

    Attributes:
        law: `auto` or a law name.
        share: parameters shared across languages (pools the fit); a pooled law always pools.
        n_holdout: largest distinct sizes held out to measure extrapolation error.
        options: fit settings.
    """

    law: str = AUTO
    share: tuple[str, ...] = ()
    n_holdout: int = 1
    options: FitOptions = field(default_factory=FitOptions)

    def __post_init__(self) -> None:
        choices = law_choices()
        if self.law not in choices:
            raise FitError(f"Unknown law {self.law!r}; choose one of {', '.join(choices)}.")
        if self.law != AUTO and self.share and not law_info(self.law).shareable:
            raise FitError(f"The {self.law} law is fitted per language; drop --share.")

    @property
    def across_models(self) -> bool:
        """Whether the law takes the model size, so runs of every model are fitted together."""
        return self.law != AUTO and law_info(self.law).across_models


def fit_all(
    points_by_language: dict[str, Points],
    request: FitRequest,
    *,
    metric: str,
    higher_is_better: bool,
    source: str = "",
    objective: str | None = None,
    model: str | None = None,
) -> LawsFile:
    """Fit every language of one group and return the laws file's content.

    Raises:
        FitError: the request is invalid, or no language has enough sizes for a named law.
    """
    if not points_by_language:
        raise FitError("There are no runs to fit.")
    kw: dict[str, Any] = {"higher_is_better": higher_is_better, "metric": metric}
    pooled_entry = None
    if request.law == AUTO:
        fits, pooled_entry = _fit_auto(points_by_language, request, kw)
    elif law_info(request.law).pooled or request.share:
        fits, pooled_entry = _fit_pooled_request(points_by_language, request, kw)
    else:
        fits = _fit_named(points_by_language, request, kw)
    settings = {
        "law": request.law,
        "share": list(request.share),
        "n_holdout": request.n_holdout,
        "bootstrap": request.options.n_bootstrap,
        "seed": request.options.seed,
        "huber_delta": request.options.delta,
        "ceiling": request.options.ceiling,
        "extrapolation_error": "mean |predicted - observed mean| / |observed mean| at the "
        "held-out largest size(s), fitting the smaller ones",
    }
    return LawsFile(
        metric=metric,
        higher_is_better=higher_is_better,
        fits={lang: fits[lang] for lang in points_by_language},
        source=source,
        pooled=pooled_entry,
        objective=objective,
        model=model,
        settings=settings,
    )


def _annotate(
    fit: FitResult,
    errors: dict[str, Extrapolation],
    selection: str,
    message: str = "",
    calibration: ReachCalibration | None = None,
) -> FitResult:
    """A copy of `fit` with the extrapolation errors, the backtest scores and weights, and the
    selection reason recorded."""
    diagnostics = {
        **fit.diagnostics,
        "extrapolation": {law: e.to_dict() for law, e in errors.items()},
        "selection": selection,
    }
    if calibration is not None:
        scores = calibration.scores(fit.language)
        diagnostics["backtest_error_at_2x"] = {
            law: s if math.isfinite(s) else None for law, s in scores.items()
        }
        if fit.predictive is not None:
            diagnostics["mixture_weights"] = {c.law: c.weight for c in fit.predictive.components}
    joined = "; ".join(m for m in (fit.message, message) if m)
    return replace(fit, diagnostics=diagnostics, message=joined)


def _fit_auto(
    points: dict[str, Points], request: FitRequest, kw: dict[str, Any]
) -> tuple[dict[str, FitResult], dict[str, Any] | None]:
    """Backtest every candidate at several reaches, fit those the backtests keep, and make
    each language's predictive mixture of them (`fits.reach`)."""
    candidates = auto_candidates(len(points))
    log.info("Backtests of %s on %d language(s)", ", ".join(candidates), len(points))
    calibration = _calibrate(points, candidates, request, kw)
    errors = _extrapolation(calibration, points, candidates, request.n_holdout)
    weights = {lang: calibration.weights(lang) for lang in points}
    chosen: dict[str, tuple[str, str]] = {}
    for lang, pts in points.items():
        if weights[lang]:
            best = next(iter(weights[lang]))
            scores = calibration.scores(lang)
            why = (
                f"smallest backtest error, scaled to 2x reach ({scores[best]:.2%}), of "
                f"{sum(math.isfinite(s) for s in scores.values())} candidate(s)"
            )
        else:
            fallback = _fallback_law(pts, len(points))
            why = "no candidate law could be checked on held-out sizes"
            if fallback:
                why += f"; chose {fallback}, the simplest law these points determine"
            best = fallback or per_language_candidates()[-1]
        chosen[lang] = (best, why)
    needed: dict[str, list[str]] = defaultdict(list)
    for lang in points:
        for law in dict.fromkeys([chosen[lang][0], *weights[lang]]):
            needed[law].append(lang)
    full: dict[str, dict[str, FitResult]] = {}
    pooled_entries: dict[str, dict[str, Any]] = {}
    for law, langs in needed.items():
        full[law], entry = _fit_law(points, law, langs, request, kw)
        if entry is not None:
            pooled_entries[law] = entry
    fits: dict[str, FitResult] = {}
    for lang in points:
        law, why = chosen[lang]
        fit = full[law][lang]
        usable = {w: full[w][lang] for w in weights[lang] if full[w][lang].success}
        mixture = {w: x for w, x in weights[lang].items() if w in usable}
        if fit.success and law not in mixture:
            usable, mixture = {law: fit}, {law: 1.0}
        total = sum(mixture.values())
        fit = _with_predictive(
            fit,
            points[lang],
            usable,
            {w: x / total for w, x in mixture.items()},
            calibration,
            request,
        )
        fits[lang] = _annotate(fit, errors[lang], f"auto: {why}", calibration=calibration)
    used_pooled = {chosen[lang][0] for lang in points} & set(pooled_entries)
    pooled_entry = pooled_entries[next(iter(used_pooled))] if used_pooled else None
    return fits, pooled_entry


def _calibrate(
    points: dict[str, Points],
    laws: tuple[str, ...],
    request: FitRequest,
    kw: dict[str, Any],
    share: tuple[str, ...] = (),
) -> ReachCalibration:
    depths = tuple(sorted({*DEPTHS, request.n_holdout}))
    backtests = run_backtests(
        points,
        laws,
        higher_is_better=kw["higher_is_better"],
        share=share,
        options=request.options,
        depths=depths,
    )
    return ReachCalibration.from_backtests(backtests)


def _extrapolation(
    calibration: ReachCalibration,
    points: dict[str, Points],
    laws: tuple[str, ...],
    n_holdout: int,
) -> dict[str, dict[str, Extrapolation]]:
    """The `n_holdout` backtest of each law, in the form the reports read."""
    out: dict[str, dict[str, Extrapolation]] = {}
    for lang, pts in points.items():
        out[lang] = {}
        _, held = holdout_split(pts, n_holdout)
        for law in laws:
            tests = [t for t in calibration.backtests[lang][law] if t.depth == n_holdout]
            if tests:
                error = sum(abs(t.error) for t in tests) / len(tests)
                out[lang][law] = Extrapolation(law, error, held)
            else:
                message = (
                    f"could not be fitted below the largest {n_holdout} size(s) "
                    f"({', '.join(f'{h:g}' for h in held) or 'none'})"
                )
                out[lang][law] = Extrapolation(law, math.nan, held, message)
    return out


def _fit_law(
    points: dict[str, Points],
    law: str,
    langs: list[str],
    request: FitRequest,
    kw: dict[str, Any],
) -> tuple[dict[str, FitResult], dict[str, Any] | None]:
    """Full fits (with bootstrap) of one law for `langs`; failures are recorded, not raised.

    A pooled law is fitted on every language (its shared parameters need them all)."""
    if law_info(law).pooled:
        try:
            pooled = fit_pooled(points, law, options=request.options, **kw)
        except FitError as err:
            return {
                lang: failed_result(
                    language=lang, law=law, points=points[lang], message=str(err), **kw
                )
                for lang in langs
            }, None
        return {lang: pooled.fits[lang] for lang in langs}, pooled.entry
    out: dict[str, FitResult] = {}
    ready = {lang: points[lang] for lang in langs if unfit_reason(points[lang], law) is None}
    if ready:
        out.update(fit_languages(ready, law, options=request.options, **kw))
    for lang in set(langs) - set(ready):
        reason = unfit_reason(points[lang], law) or ""
        out[lang] = failed_result(
            language=lang, law=law, points=points[lang], message=reason, **kw
        )
    return out, None


def _with_predictive(
    fit: FitResult,
    points: Points,
    fits_by_law: dict[str, FitResult],
    weights: dict[str, float],
    calibration: ReachCalibration,
    request: FitRequest,
) -> FitResult:
    """`fit` with its predictive mixture attached (unchanged when the fit failed)."""
    if not fit.success:
        return fit
    predictive = build_predictive(
        points,
        fits_by_law,
        weights,
        calibration,
        n_draws=request.options.n_bootstrap,
        seed=request.options.seed,
        higher_is_better=fit.higher_is_better,
    )
    return replace(fit, predictive=predictive)


def _fallback_law(points: Points, n_languages: int) -> str | None:
    """When no law could be checked: a pooled law if there are others, else the simplest."""
    pooled = pooled_candidates(n_languages)
    if pooled and points.sizes[points.sizes > 0].size >= 1:
        return pooled[0]
    for law in reversed(per_language_candidates()):
        if unfit_reason(points, law) is None:
            return law
    return None


def _fit_named(
    points: dict[str, Points], request: FitRequest, kw: dict[str, Any]
) -> dict[str, FitResult]:
    law = request.law
    plan: dict[str, str | None] = {}
    notes: dict[str, str] = {}
    for lang, pts in points.items():
        current: str | None = law
        first_why = unfit_reason(pts, law)
        while current is not None and unfit_reason(pts, current) is not None:
            current = law_info(current).simpler
        if first_why:
            notes[lang] = (
                f"fell back from {law} to {current}: {first_why}" if current else first_why
            )
        plan[lang] = current
    if all(choice != law for choice in plan.values()):
        details = "; ".join(f"{lang}: {notes[lang]}" for lang in points)
        raise FitError(
            f"No language has enough data for the {law} law ({details}). "
            "Add sizes or pick a simpler law, or use --law auto."
        )
    for lang, note in notes.items():
        log.warning("%s: %s", lang, note)
    used = tuple(dict.fromkeys(choice for choice in plan.values() if choice))
    calibration = _calibrate(points, used, request, kw)
    errors = _extrapolation(calibration, points, used, request.n_holdout)
    fits: dict[str, FitResult] = {}
    for current in used:
        langs = {lang: points[lang] for lang, choice in plan.items() if choice == current}
        fits.update(fit_languages(langs, current, options=request.options, **kw))
    for lang, choice in plan.items():
        if choice is None:
            fits[lang] = failed_result(
                language=lang, law=law, points=points[lang], message=notes[lang], **kw
            )
    out = {}
    for lang in points:
        fit = fits[lang]
        if plan[lang] is not None:
            fit = _with_predictive(
                fit, points[lang], {fit.law: fit}, {fit.law: 1.0}, calibration, request
            )
        out[lang] = _annotate(
            fit,
            {k: v for k, v in errors[lang].items() if k == plan[lang]},
            f"requested {law}",
            notes.get(lang, "") if plan[lang] else "",
            calibration=calibration,
        )
    return out


def _fit_pooled_request(
    points: dict[str, Points], request: FitRequest, kw: dict[str, Any]
) -> tuple[dict[str, FitResult], dict[str, Any]]:
    law = request.law
    calibration = _calibrate(points, (law,), request, kw, share=request.share)
    errors = _extrapolation(calibration, points, (law,), request.n_holdout)
    pooled = fit_pooled(points, law, share=request.share, options=request.options, **kw)
    fits = {}
    for lang in points:
        fit = pooled.fits[lang]
        fit = _with_predictive(fit, points[lang], {law: fit}, {law: 1.0}, calibration, request)
        fits[lang] = _annotate(
            fit, errors[lang], f"requested pooled {law}", calibration=calibration
        )
    return fits, pooled.entry
