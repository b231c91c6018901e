"""Pooled fits: one law across languages, some parameters shared, the rest per language.

`similarity` is always pooled: every language shares `alpha` and `a` (and, for scores,
`s_max`), and has its own `gamma`, its "effective data" multiplier. Any per-language law can be
pooled too by sharing named parameters (`--share beta`). Pooling lets a language with one or
two runs borrow strength from the others: it only has to determine its own parameters.

Each language's `FitResult` holds the shared values plus its own, so it predicts on its own,
and its bootstrap draws are aligned with every other language's (draw `i` of every language
comes from the same pooled refit).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import product
from typing import TYPE_CHECKING, Any

import numpy as np

from fits._partials import PARTIALS
from fits._problem import Problem, to_internal, to_natural
from fits._solver import minimize_batch, polish_lbfgsb
from fits._space import EXPONENT_GRID, asymptote_grid, boxes, start_grid
from fits.bootstrap import language_rng, resample_counts, solve_draws
from fits.diagnostics import assemble_result, failed_result, usable_points
from fits.fitting import FitOptions
from fits.laws import LAW_INFO
from muit_core import FitError

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from fits.data import Points
    from fits.result import FitResult

log = logging.getLogger(__name__)


def shared_names(law: str, higher_is_better: bool, share: Iterable[str] = ()) -> tuple[str, ...]:
    """The parameters a pooled fit of `law` shares, in the law's parameter order.

    Raises:
        FitError: a name is not a parameter of the law, `gamma` is shared, or nothing is.
    """
    params = LAW_INFO[law].params
    wanted = set(share)
    unknown = wanted - set(params)
    if unknown:
        raise FitError(
            f"Cannot share {', '.join(sorted(unknown))}: the {law} law's parameters are "
            f"{', '.join(params)}."
        )
    if law == "similarity":
        if "gamma" in wanted:
            raise FitError("gamma is each language's own multiplier in the similarity law.")
        wanted |= {"a", "alpha"} | ({"s_max"} if higher_is_better else set())
    if not wanted:
        raise FitError(f"A pooled {law} fit needs a parameter to share, e.g. --share alpha.")
    return tuple(name for name in params if name in wanted)


@dataclass(frozen=True)
class PooledFit:
    """A pooled fit: one `FitResult` per language and the pooled entry of the laws file."""

    fits: dict[str, FitResult]
    entry: dict[str, Any]


def fit_pooled(
    points_by_language: dict[str, Points],
    law: str,
    *,
    higher_is_better: bool,
    share: Iterable[str] = (),
    metric: str = "value",
    options: FitOptions | None = None,
) -> PooledFit:
    """Fit `law` to all languages at once, sharing the parameters named by `shared_names`.

    A language with fewer distinct sizes than its own parameters gets `success=False` and the
    reason; the others are fitted without it.

    Raises:
        FitError: the names to share are invalid, or fewer than two languages can be fitted.
    """
    opts = options or FitOptions()
    info = LAW_INFO[law]
    shared = shared_names(law, higher_is_better, share)
    own = tuple(name for name in info.params if name not in shared)
    usable = {lang: usable_points(pts, law) for lang, pts in points_by_language.items()}
    excluded: dict[str, str] = {}
    for lang, (pts, _) in usable.items():
        needed = max(1, len(own))
        if np.unique(pts.d).size < needed:
            excluded[lang] = (
                f"{np.unique(pts.d).size} distinct size(s) cannot determine this language's own "
                f"parameters ({', '.join(own)}) in the pooled {law} fit"
            )
    languages = [lang for lang in points_by_language if lang not in excluded]
    if len(languages) < 2:
        raise FitError(
            f"A pooled {law} fit needs two or more languages with data; fittable: "
            f"{', '.join(languages) or 'none'}."
        )
    layout = _Layout.build(law, shared, own, [usable[lang][0] for lang in languages])
    problem = layout.problem(higher_is_better, opts.ceiling)
    weights = np.ones((1, layout.n_points))
    starts = layout.starts(higher_is_better, opts.ceiling)
    starts = to_internal(starts, problem.kinds[: problem.n_free])
    solution = minimize_batch(problem, starts, weights, delta=opts.delta, max_iter=opts.max_iter)
    order = np.argsort(solution.loss)
    best_u, best_loss = solution.u[order[0]], float(solution.loss[order[0]])
    if opts.n_polish > 0:
        top = order[: opts.n_polish]
        polished_u, polished_loss = polish_lbfgsb(
            problem, solution.u[top], weights, np.zeros(len(top), dtype=np.intp), delta=opts.delta
        )
        if polished_loss.min() < best_loss:
            best_u, best_loss = polished_u[np.argmin(polished_loss)], float(polished_loss.min())

    draws_u = _bootstrap(problem, layout, languages, best_u, opts, law)
    point = layout.values(best_u[None], problem)
    drawn = layout.values(draws_u, problem)
    reference = languages[0]
    if law == "similarity":
        reference = languages[int(np.argmax([point[lang]["gamma"][0] for lang in languages]))]
        _normalise_gamma(point, reference)
        _normalise_gamma(drawn, reference)
    fits: dict[str, FitResult] = {}
    for lang in points_by_language:
        if lang in excluded:
            fits[lang] = failed_result(
                language=lang,
                law=law,
                points=points_by_language[lang],
                metric=metric,
                higher_is_better=higher_is_better,
                message=excluded[lang],
            )
            continue
        pts, notes = usable[lang]
        fits[lang] = assemble_result(
            language=lang,
            law=law,
            points=points_by_language[lang],
            usable=pts,
            params={name: float(point[lang][name][0]) for name in info.params},
            draws={name: drawn[lang][name] for name in info.params},
            metric=metric,
            higher_is_better=higher_is_better,
            loss=best_loss,
            notes=notes,
            shared=shared,
            extra={
                "pooled": True,
                "residual_kind": "log" if problem.log_residuals else "scaled",
                "huber_delta": opts.delta,
                "bootstrap": {"requested": opts.n_bootstrap, "kept": len(draws_u)},
            },
        )
    entry = {
        "law": law,
        "formula": info.formula,
        "shared": list(shared),
        "params": {name: float(point[reference][name][0]) for name in shared},
        "languages": languages,
        "reference_language": reference if law == "similarity" else None,
        "own": {lang: {name: float(point[lang][name][0]) for name in own} for lang in languages},
        "excluded": excluded,
        "n_points": layout.n_points,
        "loss": best_loss,
        "n_draws": len(draws_u),
        "success": all(fits[lang].success for lang in languages),
    }
    return PooledFit(fits=fits, entry=entry)


def _normalise_gamma(values: dict[str, dict[str, NDArray[np.float64]]], reference: str) -> None:
    """Rescale gammas so `reference` has gamma 1, keeping every prediction unchanged.

    `a * (gamma * d)**(-alpha) = a * g**(-alpha) * (gamma / g * d)**(-alpha)`.
    """
    ref = values[reference]["gamma"].copy()
    for lang_values in values.values():
        lang_values["gamma"] = lang_values["gamma"] / ref
        lang_values["a"] = lang_values["a"] * ref ** (-lang_values["alpha"])


def _bootstrap(
    problem: Problem,
    layout: _Layout,
    languages: list[str],
    best_u: NDArray[np.float64],
    opts: FitOptions,
    law: str,
) -> NDArray[np.float64]:
    """Draws resampled within each language, aligned across languages; returns coordinates."""
    if opts.n_bootstrap == 0:
        return np.zeros((0, problem.n_free))
    parts, keep = [], np.ones(opts.n_bootstrap, dtype=bool)
    for lang, pts in zip(languages, layout.points, strict=True):
        counts, usable = resample_counts(pts.d, opts.n_bootstrap, language_rng(opts.seed, lang), 1)
        parts.append(counts)
        keep &= usable
    weights = np.concatenate(parts, axis=1)[keep]
    solution = solve_draws(
        problem,
        np.repeat(best_u[None], len(weights), axis=0),
        weights,
        np.zeros(len(weights), dtype=np.intp),
        delta=opts.delta,
        max_iter=opts.max_iter,
        label=f"bootstrap of the pooled {law} law",
    )
    finite = np.isfinite(solution.loss) & np.isfinite(solution.u).all(axis=1)
    return solution.u[finite]


@dataclass(frozen=True)
class _Layout:
    """Which fitted slot (or constant) each law parameter of each language reads."""

    law: str
    shared: tuple[str, ...]
    own: tuple[str, ...]
    points: list[Points]
    slots: dict[tuple[str, str], int]  # (language or "*", name) -> slot; constants >= n_free
    n_free: int

    @classmethod
    def build(
        cls, law: str, shared: tuple[str, ...], own: tuple[str, ...], points: list[Points]
    ) -> _Layout:
        slots: dict[tuple[str, str], int] = {("*", name): i for i, name in enumerate(shared)}
        constants = []
        for i, pts in enumerate(points):
            for name in own:
                if law == "similarity" and name == "gamma" and i == 0:
                    constants.append((pts.language, name))  # the reference: gamma fixed at 1
                    continue
                slots[(pts.language, name)] = len(slots)
        n_free = len(slots)
        for offset, key in enumerate(constants):
            slots[key] = n_free + offset
        return cls(law, shared, own, points, slots, n_free)

    @property
    def n_points(self) -> int:
        return sum(len(p) for p in self.points)

    def slot(self, language: str, name: str) -> int:
        return self.slots[("*", name)] if name in self.shared else self.slots[(language, name)]

    def problem(self, higher_is_better: bool, ceiling: float | None = None) -> Problem:
        info = LAW_INFO[self.law]
        all_d = np.concatenate([p.d for p in self.points])
        all_y = np.concatenate([p.y for p in self.points])
        lower, upper = np.zeros(self.n_free), np.zeros(self.n_free)
        kinds = np.zeros(len(self.slots), dtype=np.int64)
        pooled_box = boxes(self.law, all_d, all_y, higher_is_better, ceiling)
        for (lang, name), slot in self.slots.items():
            pts = next((p for p in self.points if p.language == lang), None)
            box = (
                pooled_box[name]
                if pts is None
                else boxes(self.law, pts.d, pts.y, higher_is_better, ceiling)[name]
            )
            kinds[slot] = box.kind
            if slot < self.n_free:
                lower[slot], upper[slot] = box.lower, box.upper
        index = np.concatenate(
            [
                np.tile([self.slot(p.language, name) for name in info.params], (len(p), 1))
                for p in self.points
            ]
        )
        return Problem(
            func=info.func,
            names=info.params,
            index=index,
            kinds=kinds,
            lower=lower[None],
            upper=upper[None],
            d=all_d[None],
            y=all_y[None],
            covariates={"n": np.concatenate([p.n for p in self.points])[None]}
            if info.fixed
            else {},
            constants=np.ones(len(self.slots) - self.n_free),
            log_residuals=bool((all_y > 0).all()),
            scale=np.array([[max(float(np.abs(all_y).max()), 1e-12)]]),
            partials=PARTIALS.get(self.law),
            groups=np.concatenate([np.full(len(p), i) for i, p in enumerate(self.points)]),
        )

    def values(
        self, u: NDArray[np.float64], problem: Problem
    ) -> dict[str, dict[str, NDArray[np.float64]]]:
        """Per language and law parameter, the natural values of every row of `u`."""
        full = np.concatenate(
            [
                to_natural(u, problem.kinds[: self.n_free]),
                np.ones((len(u), problem.constants.size)),
            ],
            axis=1,
        )
        return {
            p.language: {
                name: full[:, self.slot(p.language, name)] for name in LAW_INFO[self.law].params
            }
            for p in self.points
        }

    def starts(self, higher_is_better: bool, ceiling: float | None = None) -> NDArray[np.float64]:
        """Starting points in natural values, (starts, n_free)."""
        rows = []
        if self.law == "similarity":
            rows = self._similarity_starts(higher_is_better, ceiling)
        else:
            all_d = np.concatenate([p.d for p in self.points])
            all_y = np.concatenate([p.y for p in self.points])
            names = LAW_INFO[self.law].params
            for start in start_grid(self.law, all_d, all_y, higher_is_better, ceiling=ceiling):
                row = np.zeros(self.n_free)
                for (_, name), slot in self.slots.items():
                    if slot < self.n_free:
                        row[slot] = start[names.index(name)]
                rows.append(row)
        return np.asarray(rows)

    def _similarity_starts(
        self, higher_is_better: bool, ceiling: float | None
    ) -> list[NDArray[np.float64]]:
        """Grid over (asymptote, alpha); each language's scale by least squares, as a gamma."""
        sign = 1.0 if higher_is_better else -1.0
        all_y = np.concatenate([p.y for p in self.points])
        rows = []
        for which, alpha in product(range(6), EXPONENT_GRID):
            row = np.zeros(self.n_free)
            scales = []
            for pts in self.points:
                values = pts.y if "s_max" in self.own else all_y
                grid = asymptote_grid(values, higher_is_better, ceiling)
                s_max = grid[which]
                x = pts.d**-alpha
                c = float(np.dot(x, s_max - pts.y) / np.dot(x, x))
                scales.append(sign * max(c * sign, 1e-12))
                if "s_max" in self.own:
                    row[self.slots[(pts.language, "s_max")]] = s_max
                else:
                    row[self.slots[("*", "s_max")]] = s_max
            a_ref = scales[0]
            row[self.slots[("*", "a")]] = a_ref
            row[self.slots[("*", "alpha")]] = alpha
            for pts, a_lang in zip(self.points[1:], scales[1:], strict=True):
                gamma = (a_ref / a_lang) ** (1.0 / alpha)
                row[self.slots[(pts.language, "gamma")]] = float(np.clip(gamma, 1e-8, 1e8))
            rows.append(row)
        return rows
