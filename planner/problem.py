"""The allocation problem: the inputs of an allocation (curves and bounds), from a laws file.

`build_problem` makes it from a laws file and the command's options; `recorded_problem` makes
it again from a laws file and the bounds a mixture config recorded (`planner.mixture`). This
is the only module that reads `fits`' records; the allocators see a `LawValue` and
`Constraints`.
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import fits
from muit_core import ConfigError, DataError, PlannerError, format_count, parse_count
from planner.allocation import Constraints
from planner.values import LawCurve, LawValue

if TYPE_CHECKING:
    from fits import FitResult, LawsFile


log = logging.getLogger(__name__)


class Unit(enum.Enum):
    """The budget's unit."""

    EXAMPLES = "examples"
    TOKENS = "tokens"  # each language's mean tokens per example, from the sweep


@dataclass(frozen=True)
class Problem:
    """Everything an allocation needs, for the languages being planned.

    Attributes:
        values: the languages' predicted utilities (metric, negated when lower is better).
        constraints: floors, caps, weights and units.
        metric: the metric's name.
        higher_is_better: its direction.
        corpora: where each language's pairs come from ('' when the laws file does not say).
        laws: each language's law name.
        pair_filters: the sweep's pair filter per language, as `sweeps.corpus.PairFilter`
            text ('' when the laws file does not say: the corpus defaults apply).
        sweep: the sweep the laws came from (study, resolved spec, model, objective), as the
            laws file carries it, for the mixture file; None when the laws file does not say.
        largest_swept: each language's largest swept size (examples), what `reach` divides by.
        max_extrapolation: the `--max-extrapolation` cap the bounds include, or None.
    """

    values: LawValue
    constraints: Constraints
    metric: str
    higher_is_better: bool
    corpora: tuple[str, ...]
    laws: tuple[str, ...]
    pair_filters: tuple[str, ...]
    sweep: Mapping[str, Any] | None = None
    largest_swept: tuple[float, ...] = ()
    max_extrapolation: float | None = None

    def reach(self, examples: Sequence[float]) -> tuple[float, ...]:
        """Each language's extrapolation ratio: `examples` / its largest swept size (inf when
        the sweep has no size above 0 for it; NaN when the laws file does not say)."""
        if not self.largest_swept:
            return tuple(math.nan for _ in examples)
        return tuple(
            x / d if d > 0 else math.inf for x, d in zip(examples, self.largest_swept, strict=True)
        )

    @property
    def languages(self) -> tuple[str, ...]:
        """Language codes, in plan order."""
        return self.constraints.languages

    @property
    def sign(self) -> float:
        """+1 when higher is better, else -1: utility = sign * metric."""
        return 1.0 if self.higher_is_better else -1.0


def parse_assignments(
    text: str | None, what: str, known: Sequence[str], *, counts: bool = False
) -> dict[str, float]:
    """Read `el=2,hi=1` into {"el": 2.0, "hi": 1.0}.

    Args:
        text: what the user typed (None or '' for nothing).
        what: the option's name, for messages.
        known: the language codes that may appear.
        counts: read values with `parse_count` (so `30k` works) instead of `float`.

    Raises:
        ConfigError: a malformed item or a repeated language; or every unknown language and
            bad number, in one error.
    """
    out: dict[str, float] = {}
    problems: list[PlannerError] = []
    for item in (text or "").split(","):
        if not item.strip():
            continue
        lang, sep, value = item.partition("=")
        lang = lang.strip()
        if not sep or not lang:
            raise ConfigError(f"Cannot read {what}={text!r}; write it like el=2,hi=1.")
        if lang in out:
            raise ConfigError(f"Language {lang!r} appears twice in {what}={text!r}.")
        try:
            if lang not in known:
                raise ConfigError(
                    f"Unknown language {lang!r} in {what}. Known: {', '.join(known)}."
                )
            out[lang] = _assigned_number(value, what, lang, counts)
        except ConfigError as err:
            problems.append(err)
    raise_all(problems)
    return out


def _assigned_number(value: str, what: str, lang: str, counts: bool) -> float:
    if counts:
        return parse_count(value.strip(), what=f"{what} {lang}")
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(
            f"Cannot read {what} {lang}={value!r} as a number; write it like {lang}=2."
        ) from None
    if not math.isfinite(number):
        raise ConfigError(f"{what} {lang}={value!r} is not finite.")
    return number


def select_languages(laws: LawsFile, languages: str | None) -> tuple[str, ...]:
    """The languages to plan: `--languages` in the given order, else the file's order."""
    known = tuple(laws.fits)
    if not known:
        raise DataError("The laws file has no languages; run plan-fit on a results table.")
    if not languages:
        return known
    chosen = tuple(code.strip() for code in languages.split(",") if code.strip())
    unknown = [code for code in chosen if code not in known]
    if unknown:
        named = ", ".join(repr(code) for code in unknown)
        raise ConfigError(
            f"Unknown language{'s' if len(unknown) > 1 else ''} {named} in --languages. "
            f"Known: {', '.join(known)}."
        )
    if len(set(chosen)) != len(chosen):
        raise ConfigError(f"--languages={languages!r} names a language twice.")
    return chosen


def usable_fit(laws: LawsFile, code: str) -> FitResult:
    """The fit of `code` in `laws`, which the planner can use.

    Raises:
        DataError: the fit failed (the message says to refit or leave the language out).
    """
    fit = laws.fits[code]
    if not fit.success:
        raise DataError(
            f"The {fit.law} fit for {code!r} failed ({fit.message.rstrip('.')}); refit it, "
            f"or leave it out with --languages."
        )
    return fit


def law_curve(fit: FitResult, n_available: float, units_per_example: float) -> LawCurve:
    """One language's `LawCurve`: the fit's law and parameters, with its predictive
    distribution (or, for a laws file written before it, its bootstrap draws).

    A parameter the draws lack keeps its fitted value in every draw.

    Raises:
        DataError: a parameter is missing or not finite.
    """
    params = {**fit.params, **fit.fixed}
    info = fits.law_info(fit.law)
    missing = [name for name in (*info.params, *info.fixed) if name not in params]
    if missing:
        raise DataError(
            f"The {fit.law} fit for {fit.language!r} lacks the parameter(s) "
            f"{', '.join(missing)} of {info.formula}; rewrite the laws file with plan-fit, or "
            "leave the language out with --languages."
        )
    bad = [name for name, v in params.items() if not math.isfinite(v)]
    if bad:
        raise DataError(
            f"The {fit.law} fit for {fit.language!r} has non-finite parameters "
            f"({', '.join(bad)}); refit it, or leave the language out with --languages."
        )
    n_draws = fit.n_draws
    draws = {name: fit.draws.get(name, (params[name],) * n_draws) for name in params}
    return LawCurve(
        language=fit.language,
        law=fits.LAWS[fit.law],  # looked up when used: the registry can grow
        params=params,
        draws=draws if n_draws else {},
        higher_is_better=fit.higher_is_better,
        n_available=n_available,
        units_per_example=units_per_example,
        predictive=fit.predictive,
        law_name=fit.law,
    )


def build_problem(
    laws: LawsFile,
    languages: Sequence[str],
    *,
    unit: Unit = Unit.EXAMPLES,
    max_epochs: float = 1.0,
    floors: Mapping[str, float] | None = None,
    weights: Mapping[str, float] | None = None,
    available: Mapping[str, float] | None = None,
    corpora: Mapping[str, str] | None = None,
    max_extrapolation: float | None = None,
) -> Problem:
    """The allocation problem for `languages` of a laws file.

    Args:
        laws: the laws file.
        languages: the languages to plan, all present in `laws`.
        unit: the budget's unit.
        max_epochs: passes over each language's available pairs allowed (caps).
        floors: least examples per language (missing: 0).
        weights: objective weight per language (missing: 1).
        available: training-pool sizes overriding the laws file's `n_available`.
        corpora: corpus sources overriding the laws file's `corpus`.
        max_extrapolation: cap each language at this many times its largest swept size
            (`--max-extrapolation`), beside its pool cap; None for no such cap.

    Raises:
        DataError: a fit failed, or a pool size or tokens-per-example figure is missing.
        ConfigError: a weight, floor, pool size or epoch cap is not a positive number; when
            several languages have problems, one `ConfigError` names them all.
    """
    floors, weights = floors or {}, weights or {}
    available, corpora = available or {}, corpora or {}
    if not (math.isfinite(max_epochs) and max_epochs > 0):
        raise ConfigError(
            f"--max-epochs must be a positive number such as 1 or 4; got {max_epochs}."
        )
    curves, lows, highs, pools, units = [], [], [], [], []
    problems: list[PlannerError] = []
    for code in languages:
        try:
            fit = usable_fit(laws, code)
            pool, per_example = _pool_and_units(fit, code, available, unit)
            if weights.get(code, 1.0) <= 0:
                raise ConfigError(f"--weights {code}={weights[code]:g} must be positive.")
            cap = math.floor(pool * max_epochs + 1e-9)
            if max_extrapolation is not None and fit.d_max > 0:
                cap = min(cap, math.floor(max_extrapolation * fit.d_max + 1e-9))
            floor = math.ceil(floors.get(code, 0.0) - 1e-9)
            if floor > cap:
                raise ConfigError(
                    f"--min-per-language {code}={format_count(floor)} is above its cap of "
                    f"{format_count(cap)} examples ({format_count(pool)} pairs x --max-epochs "
                    f"{max_epochs:g}); lower the floor, raise --max-epochs or add data."
                )
            curves.append(law_curve(fit, float(pool), per_example))
        except PlannerError as err:
            problems.append(err)
            continue
        lows.append(floor)
        highs.append(cap)
        pools.append(pool)
        units.append(per_example)
    raise_all(problems)
    old = [c.language for c in curves if c.predictive is None and c.n_draws]
    if old:
        log.warning(
            "The laws for %s carry no predictive mixture (a laws file from before it): their "
            "bands and the plan's guard weigh parameter noise only, not the law's form or the "
            "reach; re-run plan-fit on the results table to rewrite the laws file.",
            ", ".join(old),
        )
    constraints = Constraints(
        languages=tuple(languages),
        min_examples=tuple(lows),
        max_examples=tuple(highs),
        n_available=tuple(pools),
        weights=tuple(float(weights.get(code, 1.0)) for code in languages),
        units_per_example=tuple(units),
        unit=unit.value,
        max_epochs=max_epochs,
    )
    return Problem(
        values=LawValue(curves),
        constraints=constraints,
        metric=laws.metric,
        higher_is_better=laws.higher_is_better,
        corpora=tuple(
            str(corpora.get(c, laws.fits[c].data.get("corpus") or "")) for c in languages
        ),
        laws=tuple(laws.fits[c].law for c in languages),
        pair_filters=tuple(str(laws.fits[c].data.get("pair_filter") or "") for c in languages),
        sweep=sweep_of(laws),
        largest_swept=tuple(float(laws.fits[c].d_max) for c in languages),
        max_extrapolation=max_extrapolation,
    )


def _pool_and_units(
    fit: FitResult, code: str, available: Mapping[str, float], unit: Unit
) -> tuple[int, float]:
    """A language's training-pool size (pairs) and budget units per example."""
    if code in available and not available[code] >= 1:
        raise ConfigError(
            f"--available {code}={available[code]:g} is not a pool size; give the number of "
            f"training pairs, at least 1 (e.g. {code}=30k)."
        )
    n_avail = available.get(code, fit.data.get("n_available"))
    if n_avail is None or not float(n_avail) > 0:
        raise DataError(
            f"The laws file gives no training-pool size for {code!r}; pass it with "
            f"--available {code}=N (pairs)."
        )
    per_example = 1.0
    if unit is Unit.TOKENS:
        per_example = float(fit.data.get("tokens_per_example") or 0.0)
        if not per_example > 0:
            raise DataError(
                f"The laws file has no tokens_per_example for {code!r}; use --unit examples."
            )
    return int(n_avail), per_example


def raise_all(problems: Sequence[PlannerError]) -> None:
    """Raise nothing for no problems, the one problem, or one `ConfigError` saying them all.

    Every problem is a full sentence; several are joined in the order found, so a user fixes
    them in one go.
    """
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ConfigError(" ".join(str(p) for p in problems)) from problems[0]


def sweep_of(laws: LawsFile) -> dict[str, Any] | None:
    """The laws file's sweep record with the group's model and objective, or None."""
    if laws.sweep is None:
        return None
    return {**laws.sweep, "model": laws.model, "objective": laws.objective}


def recorded_problem(
    laws: LawsFile,
    constraints: Constraints,
    corpora: Sequence[str],
    pair_filters: Sequence[str],
) -> Problem:
    """The problem of a plan whose bounds were recorded (in a mixture config): curves from `laws`.

    Nothing is re-derived from options: floors, caps, pools, weights, units and the epoch cap
    are `constraints` as given, corpora and pair filters as given (in `constraints.languages`
    order, '' for none). The metric, its direction and the law names come from `laws`.

    Raises:
        DataError: `laws` lacks a language, or its fit failed or has non-finite parameters.
    """
    codes = constraints.languages
    missing = [code for code in codes if code not in laws.fits]
    if missing:
        raise DataError(
            f"The plan covers {', '.join(missing)}, which the laws file lacks; re-run "
            "plan-allocate on this laws file."
        )
    language_fits = [usable_fit(laws, code) for code in codes]
    curves = [
        law_curve(fit, float(pool), per_example)
        for fit, pool, per_example in zip(
            language_fits, constraints.n_available, constraints.units_per_example, strict=True
        )
    ]
    return Problem(
        values=LawValue(curves),
        constraints=constraints,
        metric=laws.metric,
        higher_is_better=laws.higher_is_better,
        corpora=tuple(corpora),
        laws=tuple(fit.law for fit in language_fits),
        pair_filters=tuple(pair_filters),
        sweep=sweep_of(laws),
        largest_swept=tuple(float(fit.d_max) for fit in language_fits),
    )
