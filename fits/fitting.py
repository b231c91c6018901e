"""Fit a law to each language's points: robust, multi-start, bounded, with a bootstrap.

`fit_languages` fits one law to many languages in one vectorised pass: every start of every
language's grid is solved at once, the best few starts per language are refined with scipy's
bounded L-BFGS-B, and every bootstrap draw of every language is refitted at once, warm-started
from its language's optimum. `fit_law` is the one-language form.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from fits._batch import FitBatch
from fits._solver import huber, minimize_batch, polish_lbfgsb
from fits.bootstrap import language_rng, resample_counts, solve_draws
from fits.diagnostics import assemble_result, size_keys, unfit_reason, usable_points
from fits.laws import LawInfo, law_info
from fits.space import LawData, to_internal, to_natural
from muit_core import FitError

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from fits.data import Points
    from fits.result import FitResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitOptions:
    """How fits are made.

    Attributes:
        n_bootstrap: bootstrap draws per fit (0 for none).
        seed: seed of the bootstrap; each language's draws depend on it and its code only.
        delta: Huber threshold on the log residuals (1e-3, as Epoch AI's replication).
        n_polish: best distinct starts per fit refined with L-BFGS-B.
        max_iter: iteration cap of the vectorised solver.
        model_size: the `n` a `chinchilla` fit predicts at (default: the largest fitted).
        ceiling: the highest value a higher-is-better metric can take (100 for chrF and
            BLEU); the fitted asymptote stays below it. None: unbounded.
    """

    n_bootstrap: int = 1000
    seed: int = 0
    delta: float = 1e-3
    n_polish: int = 2
    max_iter: int = 100
    model_size: float | None = None
    ceiling: float | None = None

    def __post_init__(self) -> None:
        if self.n_bootstrap < 0:
            raise FitError(f"Bootstrap draws must be >= 0; got n_bootstrap={self.n_bootstrap}.")
        if not self.delta > 0:
            raise FitError(f"The Huber delta must be positive; got delta={self.delta}.")


def fit_law(
    points: Points,
    law: str,
    *,
    higher_is_better: bool,
    metric: str = "value",
    options: FitOptions | None = None,
) -> FitResult:
    """Fit `law` to one language's points.

    Args:
        points: the language's runs.
        law: a per-language law name (not `similarity`, which is pooled).
        higher_is_better: the metric's direction.
        metric: the metric's name, recorded in the result.
        options: fit settings; defaults to `FitOptions()`.

    Returns:
        The fit, with bootstrap draws unless `options.n_bootstrap == 0`.

    Raises:
        FitError: the law is unknown or pooled, or there are too few distinct sizes.
    """
    fits = fit_languages(
        {points.language: points},
        law,
        higher_is_better=higher_is_better,
        metric=metric,
        options=options,
    )
    return fits[points.language]


def fit_languages(
    points_by_language: dict[str, Points],
    law: str,
    *,
    higher_is_better: bool,
    metric: str = "value",
    options: FitOptions | None = None,
) -> dict[str, FitResult]:
    """Fit `law` separately to every language, all languages in one vectorised pass.

    Raises:
        FitError: the law is unknown or pooled, or some language has too few distinct sizes
            (every such language is named).
    """
    opts = options or FitOptions()
    info = law_info(law)
    start_grid = info.start_grid
    if info.pooled or start_grid is None:
        raise FitError(f"The {law} law is fitted across languages; use fit_pooled.")
    if not points_by_language:
        return {}
    reasons = {lang: unfit_reason(pts, law) for lang, pts in points_by_language.items()}
    bad = {lang: why for lang, why in reasons.items() if why}
    if bad:
        listed = "; ".join(f"{lang}: {why}" for lang, why in bad.items())
        raise FitError(f"Cannot fit the {law} law ({listed}). Use --law auto to fall back.")
    languages = list(points_by_language)
    usable = {lang: usable_points(points_by_language[lang], law) for lang in languages}
    data = [law_data(info, usable[lang][0], higher_is_better, opts.ceiling) for lang in languages]
    batch = _build_batch(info, data)
    weights = batch.y * 0.0
    for row, lang in enumerate(languages):
        weights[row, : len(usable[lang][0])] = 1.0

    grids = [start_grid(one) for one in data]
    best_u, best_loss = _best_of_starts(batch, weights, grids, opts)
    draws_u, draw_rows = _bootstrap(batch, languages, usable, law, best_u, opts)
    results: dict[str, FitResult] = {}
    for row, lang in enumerate(languages):
        pts, notes = usable[lang]
        values = to_natural(best_u[row], batch.kinds)
        mine = draws_u[draw_rows == row]
        drawn = to_natural(mine, batch.kinds) if len(mine) else np.zeros((0, len(values)))
        results[lang] = assemble_result(
            language=lang,
            law=law,
            points=points_by_language[lang],
            usable=pts,
            params=dict(zip(info.params, values, strict=True)),
            draws={name: drawn[:, j] for j, name in enumerate(info.params)},
            metric=metric,
            higher_is_better=higher_is_better,
            loss=float(best_loss[row]),
            notes=notes,
            fixed=_prediction_inputs(info, pts, opts),
            extra=_diagnostics(batch, best_u[row], row, opts, len(grids[row]), len(mine)),
        )
    return results


def law_data(
    info: LawInfo, points: Points, higher_is_better: bool, ceiling: float | None = None
) -> LawData:
    """What the law's `boxes` and `start_grid` hooks see of one language's usable points."""
    inputs = {name: getattr(points, name) for name in info.fixed}
    return LawData(points.d, points.y, higher_is_better, ceiling, inputs)


def _prediction_inputs(info: LawInfo, points: Points, opts: FitOptions) -> dict[str, float]:
    """The fixed inputs a fit predicts at: `opts.model_size`, else the largest fitted `n`."""
    # `n` (the model size) is the only fixed input a law may take (`FIXED_INPUTS`).
    return {name: float(opts.model_size or getattr(points, name).max()) for name in info.fixed}


def _build_batch(info: LawInfo, data: list[LawData]) -> FitBatch:
    """One data row per language, padded to the longest; padding carries zero weight."""
    n_max = max(one.d.size for one in data)
    shape = (len(data), n_max)
    d, y, scale = np.ones(shape), np.ones(shape), np.ones((len(data), 1))
    inputs = {name: np.ones(shape) for name in info.fixed}
    lower, upper = (
        np.zeros((len(data), len(info.params))),
        np.zeros((len(data), len(info.params))),
    )
    kinds = np.zeros(len(info.params), dtype=np.int64)
    for row, one in enumerate(data):
        size = one.d.size
        d[row, :size], y[row, :size] = one.d, one.y
        for name, values in one.inputs.items():
            inputs[name][row, :size] = values
        scale[row, 0] = max(float(np.abs(one.y).max()), 1e-12)
        box = info.boxes(one)
        kinds = np.array([box[name].kind for name in info.params], dtype=np.int64)
        lower[row] = [box[name].lower for name in info.params]
        upper[row] = [box[name].upper for name in info.params]
    positive = all((one.y > 0).all() for one in data)
    return FitBatch(
        func=info.func,
        names=info.params,
        index=np.tile(np.arange(len(info.params)), (n_max, 1)),
        kinds=kinds,
        lower=lower,
        upper=upper,
        d=d,
        y=y,
        covariates=inputs,
        log_residuals=positive,
        scale=scale,
        partials=info.partials,
    )


def _best_of_starts(
    batch: FitBatch,
    weights: NDArray[np.float64],
    grids: list[NDArray[np.float64]],
    opts: FitOptions,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Solve every start of every language at once; refine the best few with L-BFGS-B.

    Args:
        batch: one data row per language.
        weights: per-point weights of each row (0 on padding).
        grids: each row's starting points, natural values.
        opts: fit settings.

    Returns:
        Each row's best internal coordinates (L, P) and loss (L,).
    """
    u0 = np.concatenate([to_internal(grid, batch.kinds) for grid in grids])
    rows = np.concatenate([np.full(len(grid), row) for row, grid in enumerate(grids)])
    solved = minimize_batch(
        batch, u0, weights[rows], rows=rows, delta=opts.delta, max_iter=opts.max_iter
    )
    candidates, candidate_rows = [], []
    for row in range(len(grids)):
        mine = np.nonzero(rows == row)[0]
        order = mine[np.argsort(solved.loss[mine])]
        for u in _distinct(solved.u[order], max(1, opts.n_polish)):
            candidates.append(u)
            candidate_rows.append(row)
    cand_u, cand_rows = np.asarray(candidates), np.asarray(candidate_rows)
    cand_w = weights[cand_rows]
    cand_loss = (cand_w * huber(batch.view(cand_rows).residuals(cand_u), opts.delta)).sum(axis=1)
    if opts.n_polish > 0:
        # One L-BFGS-B run refines the candidates of every language together.
        polished_u, polished_loss = polish_lbfgsb(
            batch, cand_u, cand_w, cand_rows, delta=opts.delta
        )
        better = polished_loss < cand_loss
        cand_u[better], cand_loss[better] = polished_u[better], polished_loss[better]
    best_u = np.zeros((len(grids), batch.n_free))
    best_loss = np.zeros(len(grids))
    for row in range(len(grids)):
        mine = np.nonzero(cand_rows == row)[0]
        pick = mine[np.argmin(cand_loss[mine])]
        best_u[row], best_loss[row] = cand_u[pick], cand_loss[pick]
    return best_u, best_loss


def _distinct(sorted_u: NDArray[np.float64], count: int) -> list[NDArray[np.float64]]:
    """Up to `count` solutions, best first, that differ from each other by more than 1e-3."""
    chosen: list[NDArray[np.float64]] = []
    for u in sorted_u:
        if len(chosen) >= count:
            break
        if all(np.abs(u - c).max() > 1e-3 for c in chosen):
            chosen.append(u)
    return chosen


def _bootstrap(
    batch: FitBatch,
    languages: list[str],
    usable: dict[str, tuple[Points, list[str]]],
    law: str,
    best_u: NDArray[np.float64],
    opts: FitOptions,
) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """Refit every bootstrap draw of every language; returns draws' coordinates and rows."""
    if opts.n_bootstrap == 0:
        return np.zeros((0, batch.n_free)), np.zeros(0, dtype=np.intp)
    weight_parts, row_parts = [], []
    n_params = len(law_info(law).params)
    for row, lang in enumerate(languages):
        pts = usable[lang][0]
        keys, min_keys = size_keys(pts, law, n_params)
        counts, usable_draws = resample_counts(
            keys, opts.n_bootstrap, language_rng(opts.seed, lang), min_keys
        )
        counts = counts[usable_draws]
        padded = np.zeros((len(counts), batch.d.shape[1]))
        padded[:, : len(pts)] = counts
        weight_parts.append(padded)
        row_parts.append(np.full(len(counts), row, dtype=np.intp))
    weights, rows = np.concatenate(weight_parts), np.concatenate(row_parts)
    solution = solve_draws(
        batch,
        best_u[rows],
        weights,
        rows,
        delta=opts.delta,
        max_iter=opts.max_iter,
        label=f"bootstrap of the {law} law",
    )
    finite = np.isfinite(solution.loss) & np.isfinite(solution.u).all(axis=1)
    return solution.u[finite], rows[finite]


def _diagnostics(
    batch: FitBatch,
    u: NDArray[np.float64],
    row: int,
    opts: FitOptions,
    n_starts: int,
    n_draws: int,
) -> dict[str, Any]:
    lower, upper = (b[0] for b in batch.bounds(np.array([row])))
    names = batch.names
    at_bound = [
        names[j] for j in range(len(names)) if min(u[j] - lower[j], upper[j] - u[j]) < 1e-6
    ]
    return {
        "residual_kind": "log" if batch.log_residuals else "scaled",
        "huber_delta": opts.delta,
        "n_starts": n_starts,
        "optimizer": "vectorised Levenberg-Marquardt (IRLS) + L-BFGS-B polish",
        "at_bound": at_bound,
        "bootstrap": {"requested": opts.n_bootstrap, "kept": n_draws, "seed": opts.seed},
    }
