"""From one group of runs to a laws file: choose or apply laws, fit, bootstrap, record why.

`fit_all` is what `plan-fit` runs for each (objective, model) group of a results table. With
`law="auto"` it picks each language's law by held-out extrapolation error; with a named law it
fits that law, falling back to a simpler one for a language with too few sizes (saying so in
that language's message). No language is ever dropped: one that cannot be fitted at all is
recorded with `success=False` and the reason.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from fits.diagnostics import failed_result, unfit_reason
from fits.fitting import FitOptions, fit_languages
from fits.laws import AUTO, LAW_INFO, law_info
from fits.pooled import fit_pooled
from fits.result import FitResult, LawsFile
from fits.selection import (
    Extrapolation,
    auto_candidates,
    choose_law,
    extrapolation_errors,
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
    fit: FitResult, errors: dict[str, Extrapolation], selection: str, message: str = ""
) -> FitResult:
    """A copy of `fit` with the extrapolation errors and the selection reason recorded."""
    diagnostics = {
        **fit.diagnostics,
        "extrapolation": {law: e.to_dict() for law, e in errors.items()},
        "selection": selection,
    }
    joined = "; ".join(m for m in (fit.message, message) if m)
    return replace(fit, diagnostics=diagnostics, message=joined)


def _fit_auto(
    points: dict[str, Points], request: FitRequest, kw: dict[str, Any]
) -> tuple[dict[str, FitResult], dict[str, Any] | None]:
    candidates = auto_candidates(len(points))
    log.info("Held-out check of %s on %d language(s)", ", ".join(candidates), len(points))
    errors = extrapolation_errors(
        points,
        candidates,
        higher_is_better=kw["higher_is_better"],
        n_holdout=request.n_holdout,
        options=request.options,
    )
    chosen: dict[str, tuple[str, str]] = {}
    for lang, pts in points.items():
        law, why = choose_law(errors[lang])
        if law is None:
            law = _fallback_law(pts, len(points))
            why = f"{why}; chose {law}, the simplest law these points determine" if law else why
        chosen[lang] = (law or per_language_candidates()[-1], why)
    groups: dict[str, list[str]] = defaultdict(list)
    for lang, (law, _) in chosen.items():
        groups[law].append(lang)
    fits: dict[str, FitResult] = {}
    pooled_entry = None
    for law, langs in groups.items():
        if law_info(law).pooled:
            try:
                pooled = fit_pooled(points, law, options=request.options, **kw)
            except FitError as err:
                for lang in langs:
                    fits[lang] = failed_result(
                        language=lang, law=law, points=points[lang], message=str(err), **kw
                    )
                continue
            pooled_entry = pooled.entry
            fits.update({lang: pooled.fits[lang] for lang in langs})
            continue
        ready = {lang: points[lang] for lang in langs if unfit_reason(points[lang], law) is None}
        if ready:
            fits.update(fit_languages(ready, law, options=request.options, **kw))
        for lang in set(langs) - set(ready):
            reason = unfit_reason(points[lang], law) or ""
            fits[lang] = failed_result(
                language=lang, law=law, points=points[lang], message=reason, **kw
            )
    return {
        lang: _annotate(fits[lang], errors[lang], f"auto: {chosen[lang][1]}") for lang in points
    }, pooled_entry


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
    errors = extrapolation_errors(
        points,
        used,
        higher_is_better=kw["higher_is_better"],
        n_holdout=request.n_holdout,
        options=request.options,
    )
    fits: dict[str, FitResult] = {}
    for current in used:
        langs = {lang: points[lang] for lang, choice in plan.items() if choice == current}
        fits.update(fit_languages(langs, current, options=request.options, **kw))
    for lang, choice in plan.items():
        if choice is None:
            fits[lang] = failed_result(
                language=lang, law=law, points=points[lang], message=notes[lang], **kw
            )
    return {
        lang: _annotate(
            fits[lang],
            {k: v for k, v in errors[lang].items() if k == plan[lang]},
            f"requested {law}",
            notes.get(lang, "") if plan[lang] else "",
        )
        for lang in points
    }


def _fit_pooled_request(
    points: dict[str, Points], request: FitRequest, kw: dict[str, Any]
) -> tuple[dict[str, FitResult], dict[str, Any]]:
    errors = extrapolation_errors(
        points,
        (request.law,),
        higher_is_better=kw["higher_is_better"],
        n_holdout=request.n_holdout,
        share=request.share,
        options=request.options,
    )
    pooled = fit_pooled(points, request.law, share=request.share, options=request.options, **kw)
    fits = {
        lang: _annotate(pooled.fits[lang], errors[lang], f"requested pooled {request.law}")
        for lang in points
    }
    return fits, pooled.entry
