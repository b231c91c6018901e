"""Pooled fits: one law across languages, some parameters shared, the rest per language.

A pooled law (one whose entry has `pooling`, e.g. `similarity`) is always pooled: every
language shares the parameters its `pooling.shared` names (`alpha` and `a`, and for scores
`s_max`), and has its own reference multiplier (`gamma`, its "effective data" multiplier).
Any per-language law can be pooled too by sharing named parameters (`--share beta`). Pooling
lets a language with one or two runs borrow strength from the others: it only has to determine
its own parameters.

Each language's `FitResult` holds the shared values plus its own, so it predicts on its own,
and its bootstrap draws are aligned with every other language's (draw `i` of every language
comes from the same pooled refit).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from fits._batch import FitBatch
from fits._solver import minimize_batch, polish_lbfgsb
from fits.bootstrap import language_rng, resample_counts, solve_draws
from fits.diagnostics import assemble_result, failed_result, usable_points
from fits.fitting import FitOptions, law_data
from fits.laws import LawInfo, law_info
from fits.space import LawData, to_internal, to_natural
from muit_core import FitError

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from fits.data import Points
    from fits.result import FitResult

log = logging.getLogger(__name__)


def shared_names(law: str, higher_is_better: bool, share: Iterable[str] = ()) -> tuple[str, ...]:
    """The parameters a pooled fit of `law` shares, in the law's parameter order.

    Raises:
        FitError: a name is not a parameter of the law, a pooled law's reference multiplier
            (`gamma`) is shared, or nothing is.
    """
    info = law_info(law)
    params = info.params
    wanted = set(share)
    unknown = wanted - set(params)
    if unknown:
        raise FitError(
            f"Cannot share {', '.join(sorted(unknown))}: the {law} law's parameters are "
            f"{', '.join(params)}."
        )
    if info.pooling is not None:
        reference = info.pooling.reference
        if reference in wanted:
            raise FitError(f"{reference} is each language's own multiplier in the {law} law.")
        wanted |= set(info.pooling.shared(higher_is_better))
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
    info = law_info(law)
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
    layout = _Layout.build(info, shared, own, [usable[lang][0] for lang in languages])
    batch = layout.fit_batch(higher_is_better, opts.ceiling)
    weights = np.ones((1, layout.n_points))
    starts = layout.starts(higher_is_better, opts.ceiling)
    starts = to_internal(starts, batch.kinds[: batch.n_free])
    solution = minimize_batch(batch, starts, weights, delta=opts.delta, max_iter=opts.max_iter)
    order = np.argsort(solution.loss)
    best_u, best_loss = solution.u[order[0]], float(solution.loss[order[0]])
    if opts.n_polish > 0:
        top = order[: opts.n_polish]
        polished_u, polished_loss = polish_lbfgsb(
            batch, solution.u[top], weights, np.zeros(len(top), dtype=np.intp), delta=opts.delta
        )
        if polished_loss.min() < best_loss:
            best_u, best_loss = polished_u[np.argmin(polished_loss)], float(polished_loss.min())

    draws_u = _bootstrap(batch, layout, languages, best_u, opts, law)
    point = layout.values(best_u[None], batch)
    drawn = layout.values(draws_u, batch)
    reference = languages[0]
    if info.pooling is not None:
        multiplier = info.pooling.reference
        reference = languages[int(np.argmax([point[lang][multiplier][0] for lang in languages]))]
        point = _rebase(info, point, reference)
        drawn = _rebase(info, drawn, reference)
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
                "residual_kind": "log" if batch.log_residuals else "scaled",
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
        "reference_language": reference if info.pooled else None,
        "own": {lang: {name: float(point[lang][name][0]) for name in own} for lang in languages},
        "excluded": excluded,
        "n_points": layout.n_points,
        "loss": best_loss,
        "n_draws": len(draws_u),
        "success": all(fits[lang].success for lang in languages),
    }
    return PooledFit(fits=fits, entry=entry)


def _rebase(
    info: LawInfo, values: dict[str, dict[str, NDArray[np.float64]]], reference: str
) -> dict[str, dict[str, NDArray[np.float64]]]:
    """Every language's values rescaled so `reference` has multiplier 1, predictions unchanged."""
    assert info.pooling is not None
    factor = values[reference][info.pooling.reference].copy()
    return {lang: info.pooling.rebase(own, factor) for lang, own in values.items()}


def _bootstrap(
    batch: FitBatch,
    layout: _Layout,
    languages: list[str],
    best_u: NDArray[np.float64],
    opts: FitOptions,
    law: str,
) -> NDArray[np.float64]:
    """Draws resampled within each language, aligned across languages; returns coordinates."""
    if opts.n_bootstrap == 0:
        return np.zeros((0, batch.n_free))
    parts, keep = [], np.ones(opts.n_bootstrap, dtype=bool)
    for lang, pts in zip(languages, layout.points, strict=True):
        counts, usable = resample_counts(pts.d, opts.n_bootstrap, language_rng(opts.seed, lang), 1)
        parts.append(counts)
        keep &= usable
    weights = np.concatenate(parts, axis=1)[keep]
    solution = solve_draws(
        batch,
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

    info: LawInfo
    shared: tuple[str, ...]
    own: tuple[str, ...]
    points: list[Points]
    slots: dict[tuple[str, str], int]  # (language or "*", name) -> slot; constants >= n_free
    n_free: int

    @classmethod
    def build(
        cls, info: LawInfo, shared: tuple[str, ...], own: tuple[str, ...], points: list[Points]
    ) -> _Layout:
        slots: dict[tuple[str, str], int] = {("*", name): i for i, name in enumerate(shared)}
        reference = info.pooling.reference if info.pooling is not None else None
        constants = []
        for i, pts in enumerate(points):
            for name in own:
                if name == reference and i == 0:
                    constants.append((pts.language, name))  # the reference: fixed at 1
                    continue
                slots[(pts.language, name)] = len(slots)
        n_free = len(slots)
        for offset, key in enumerate(constants):
            slots[key] = n_free + offset
        return cls(info, shared, own, points, slots, n_free)

    @property
    def n_points(self) -> int:
        return sum(len(p) for p in self.points)

    def slot(self, language: str, name: str) -> int:
        return self.slots[("*", name)] if name in self.shared else self.slots[(language, name)]

    def inputs(self) -> dict[str, NDArray[np.float64]]:
        """The law's fixed inputs (model sizes) of every point, language after language."""
        return {
            name: np.concatenate([getattr(p, name) for p in self.points])
            for name in self.info.fixed
        }

    def fit_batch(self, higher_is_better: bool, ceiling: float | None = None) -> FitBatch:
        """The pooled fit's batch: one data row holding every language's points in turn."""
        info = self.info
        all_d = np.concatenate([p.d for p in self.points])
        all_y = np.concatenate([p.y for p in self.points])
        lower, upper = np.zeros(self.n_free), np.zeros(self.n_free)
        kinds = np.zeros(len(self.slots), dtype=np.int64)
        pooled_box = info.boxes(LawData(all_d, all_y, higher_is_better, ceiling, self.inputs()))
        for (lang, name), slot in self.slots.items():
            pts = next((p for p in self.points if p.language == lang), None)
            box = (
                pooled_box[name]
                if pts is None
                else info.boxes(law_data(info, pts, higher_is_better, ceiling))[name]
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
        return FitBatch(
            func=info.func,
            names=info.params,
            index=index,
            kinds=kinds,
            lower=lower[None],
            upper=upper[None],
            d=all_d[None],
            y=all_y[None],
            covariates={name: values[None] for name, values in self.inputs().items()},
            constants=np.ones(len(self.slots) - self.n_free),
            log_residuals=bool((all_y > 0).all()),
            scale=np.array([[max(float(np.abs(all_y).max()), 1e-12)]]),
            partials=info.partials,
            groups=np.concatenate([np.full(len(p), i) for i, p in enumerate(self.points)]),
        )

    def values(
        self, u: NDArray[np.float64], batch: FitBatch
    ) -> dict[str, dict[str, NDArray[np.float64]]]:
        """Per language and law parameter, the natural values of every row of `u`."""
        full = np.concatenate(
            [
                to_natural(u, batch.kinds[: self.n_free]),
                np.ones((len(u), batch.constants.size)),
            ],
            axis=1,
        )
        return {
            p.language: {name: full[:, self.slot(p.language, name)] for name in self.info.params}
            for p in self.points
        }

    def starts(self, higher_is_better: bool, ceiling: float | None = None) -> NDArray[np.float64]:
        """Starting points in natural values, (starts, n_free)."""
        info = self.info
        if info.pooling is not None:
            named = info.pooling.starts(self.points, self.own, higher_is_better, ceiling)
        else:
            assert info.start_grid is not None  # a per-language law has one (LawInfo checks)
            all_d = np.concatenate([p.d for p in self.points])
            all_y = np.concatenate([p.y for p in self.points])
            grid = info.start_grid(LawData(all_d, all_y, higher_is_better, ceiling))
            named = [
                {key: float(start[info.params.index(key[1])]) for key in self.slots}
                for start in grid
            ]
        rows = []
        for start in named:
            row = np.zeros(self.n_free)
            for key, slot in self.slots.items():
                if slot < self.n_free:
                    row[slot] = start[key]
            rows.append(row)
        return np.asarray(rows)
