"""Fitting the transfer forms and their yardsticks on mixture runs (`fits.transfer` keeps the
law; this module holds the models and the leave-one-mixture-out scoring).

Effective data per language, for a mixture that trains x_k examples of every language k:

    D_l = x_l + sum_{k != l} T_lk * x_k,        T_lk >= 0,

and the metric of language l is its own law (`FitResult`) at D_l, optionally times a constant
factor exp(c_l) whenever l is trained beside other languages. The forms (`FORMS`):

- `shared`: T_lk = tau;
- `similarity`: T_lk = tau * s(l, k), s the prior of `fits.language_similarity`;
- `receiver`: T_lk = tau_l, one tau per receiving language;
- `shared-level`: T_lk = tau and a level factor exp(c_l) per language: transfer on top of a
  constant in-mixture bonus, so tau measures only what grows with the others' examples.

The yardsticks: `independent` (T = 0, no factor) and `level` (T = 0, the factor alone). Each
level factor c_l is the median log(actual / law at D_l) over the runs that train l beside
other languages. Parameters are fitted on a grid (then a bounded scalar search) with the laws'
loss, Huber (delta 1e-3) on log residuals, summed over runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize_scalar

from fits._solver import huber
from fits.language_similarity import similarity_matrix
from fits.result import LawsFile
from fits.transfer_runs import MixtureRuns
from muit_core import DataError

FloatArray = NDArray[np.float64]

FORMS = ("shared", "similarity", "receiver", "shared-level")
FORMULAS = {
    "shared": "D_l = x_l + tau * sum_{k != l} x_k",
    "similarity": "D_l = x_l + tau * sum_{k != l} s(l, k) x_k",
    "receiver": "D_l = x_l + tau_l * sum_{k != l} x_k",
    "shared-level": "D_l = x_l + tau * sum_{k != l} x_k, metric times exp(c_l) in a mixture",
}
LEVEL_FORMS = frozenset({"shared-level"})
INDEPENDENT, LEVEL = "independent", "level"
HUBER_DELTA = 1e-3  # on log residuals, summed: the laws' own loss (DESIGN.md, Epoch AI)
TAU_MAX = 4.0  # a language's example worth 4 of another's own: far beyond any published tau
INTERVAL_LEVEL = 0.9
TAU_GRID = np.unique(np.concatenate([np.linspace(0.0, TAU_MAX, 801), np.geomspace(1e-4, 1, 81)]))
_DRAW_CHUNK = 50  # bootstrap draws per block when level factors are refitted per draw


def effective_examples(examples: FloatArray, matrix: FloatArray) -> FloatArray:
    """D = x + x T^T along the last axis of `examples` (T: receiver x donor, zero diagonal)."""
    x = np.asarray(examples, dtype=float)
    return np.asarray(x + x @ np.asarray(matrix, dtype=float).T, dtype=float)


def base_matrix(form: str, languages: Sequence[str]) -> FloatArray:
    """T at tau = 1 (every tau_l = 1 for `receiver`).

    Raises:
        DataError: `similarity` with a language the similarity table lacks.
        ValueError: an unknown form.
    """
    if form not in FORMS:
        raise ValueError(f"unknown transfer form {form!r}; choose one of {', '.join(FORMS)}")
    if form == "similarity":
        return similarity_matrix(languages)
    n = len(languages)
    return np.ones((n, n)) - np.eye(n)


def param_names(form: str, languages: Sequence[str]) -> tuple[str, ...]:
    """The form's transfer parameters: `tau`, or `tau_<code>` per receiving language (the
    level factors of a level form are fitted alongside, one per language, and counted by
    `n_params`)."""
    return tuple(f"tau_{c}" for c in languages) if form == "receiver" else ("tau",)


def n_params(form: str, languages: Sequence[str]) -> int:
    """Every parameter the form fits: its taus, plus a level factor per language."""
    return len(param_names(form, languages)) + (len(languages) if form in LEVEL_FORMS else 0)


def transfer_matrix(
    form: str, languages: Sequence[str], params: Mapping[str, float]
) -> FloatArray:
    """T (receiver x donor) of `form` with `params`."""
    taus = np.array(
        [params[f"tau_{c}"] for c in languages]
        if form == "receiver"
        else [params["tau"]] * len(languages)
    )
    return np.asarray(taus[:, None] * base_matrix(form, languages), dtype=float)


def _groups(form: str, n: int) -> list[list[int]]:
    """The language columns each parameter drives (the loss is separable over them)."""
    return [[j] for j in range(n)] if form == "receiver" else [list(range(n))]


def _beside_others(runs: MixtureRuns) -> NDArray[np.bool_]:
    """(run, language) where the run trained other languages beside it."""
    others = runs.examples.sum(axis=1, keepdims=True) - runs.examples
    return np.asarray(others > 0)


def _mixed(runs: MixtureRuns) -> NDArray[np.bool_]:
    """(run, language) measured while other languages were trained beside it."""
    return np.asarray(np.isfinite(runs.actual) & _beside_others(runs))


def _law_values(laws: LawsFile, languages: Sequence[str], d: FloatArray) -> FloatArray:
    """Each language's own law at effective data `d` (languages along the last axis)."""
    out = np.empty_like(d)
    for j, code in enumerate(languages):
        out[..., j] = laws.fits[code](d[..., j])
    return out


def _log_ratios(
    laws: LawsFile, runs: MixtureRuns, base: FloatArray, taus: FloatArray
) -> FloatArray:
    """log(actual / law at D) for every (tau, run, language), NaN where not measured."""
    x = runs.examples
    d = x[None] + np.asarray(taus, dtype=float)[:, None, None] * (x @ base.T)[None]
    predicted = _law_values(laws, runs.languages, d)
    present = np.isfinite(runs.actual)
    if (predicted[:, present] <= 0).any() or (runs.actual[present] <= 0).any():
        raise DataError(
            f"The transfer law is fitted on log residuals, but a measured or predicted "
            f"{runs.metric!r} is not above 0; fit it on heldout_ce (or another positive metric)."
        )
    actual = np.where(present, runs.actual, 1.0)
    return np.asarray(np.where(present, np.log(actual) - np.log(predicted), np.nan), dtype=float)


def _weighted_median(values: FloatArray, weights: FloatArray) -> FloatArray:
    """Weighted median over the runs axis (-2) of `values` (..., n_runs, n_langs), NaNs and
    zero weights ignored; 0 where a column has no weight. `weights`: (..., n_runs)."""
    w = np.where(np.isfinite(values), weights[..., None], 0.0)
    v = np.where(np.isfinite(values), values, np.inf)
    order = np.argsort(v, axis=-2)
    v_sorted = np.take_along_axis(v, order, axis=-2)
    cum = np.cumsum(np.take_along_axis(w, order, axis=-2), axis=-2)
    total = cum[..., -1:, :]
    first = np.argmax(cum >= 0.5 * total, axis=-2)[..., None, :]
    out = np.take_along_axis(v_sorted, first, axis=-2)[..., 0, :]
    return np.asarray(np.where(total[..., 0, :] > 0, out, 0.0), dtype=float)


def _losses(ratios: FloatArray, shift: FloatArray | None, mixed: NDArray[np.bool_]) -> FloatArray:
    """Huber loss of every log residual after the level factors `shift` (per tau and
    language, or None): same shape as `ratios`, 0 where not measured."""
    residual = ratios if shift is None else ratios - np.where(mixed, shift[..., None, :], 0.0)
    return np.asarray(huber(np.nan_to_num(residual, nan=0.0), HUBER_DELTA), dtype=float)


def _shifts(ratios: FloatArray, mixed: NDArray[np.bool_], weights: FloatArray) -> FloatArray:
    """Level factors per (tau, language): the weighted median of the mixed runs' log ratios."""
    return _weighted_median(np.where(mixed, ratios, np.nan), weights)


def fit_form(
    laws: LawsFile, runs: MixtureRuns, form: str, weights: FloatArray | None = None
) -> tuple[dict[str, float], FloatArray | None]:
    """The parameters of `form` in [0, TAU_MAX] minimising the summed loss (runs weighted by
    `weights`), a grid then a bounded scalar search per parameter; and, for a level form, the
    level factors (log, per language) at them (None otherwise)."""
    base = base_matrix(form, runs.languages)
    w = np.ones(len(runs.runs)) if weights is None else np.asarray(weights, dtype=float)
    mixed = _mixed(runs)
    level = form in LEVEL_FORMS

    def column_losses(taus: FloatArray) -> FloatArray:
        ratios = _log_ratios(laws, runs, base, taus)
        return _losses(ratios, _shifts(ratios, mixed, w) if level else None, mixed)

    grid = column_losses(TAU_GRID)  # (n_taus, n_runs, n_langs)
    out: list[float] = []
    for columns in _groups(form, len(runs.languages)):
        grid_loss = np.einsum("trj,r->t", grid[:, :, columns], w)
        best = int(np.argmin(grid_loss))
        low, high = TAU_GRID[max(best - 1, 0)], TAU_GRID[min(best + 1, TAU_GRID.size - 1)]

        def loss(t: float, columns: list[int] = columns) -> float:
            return float(w @ column_losses(np.array([t]))[0][:, columns].sum(axis=1))

        found = minimize_scalar(
            loss, bounds=(low, high), method="bounded", options={"xatol": 1e-7}
        )
        refined = float(found.x)
        out.append(refined if loss(refined) <= grid_loss[best] else float(TAU_GRID[best]))
    params = dict(zip(param_names(form, runs.languages), out, strict=True))
    if not level:
        return params, None
    ratios = _log_ratios(laws, runs, base, np.array([params["tau"]]))
    return params, _shifts(ratios, mixed, w)[0]


def bootstrap_intervals(
    laws: LawsFile, runs: MixtureRuns, form: str, n_draws: int, seed: int
) -> dict[str, tuple[float, float]]:
    """Per parameter, the INTERVAL_LEVEL interval of its grid optimum over run resamples (a
    level form's factors are refitted in every draw)."""
    base = base_matrix(form, runs.languages)
    ratios = _log_ratios(laws, runs, base, TAU_GRID)
    mixed = _mixed(runs)
    n = len(runs.runs)
    counts = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=n_draws)
    names = param_names(form, runs.languages)
    groups = _groups(form, len(runs.languages))
    draws: dict[str, list[FloatArray]] = {name: [] for name in names}
    if form in LEVEL_FORMS:
        for start in range(0, n_draws, _DRAW_CHUNK):
            c = counts[start : start + _DRAW_CHUNK].astype(float)  # (b, n_runs)
            shift = _shifts(ratios[None], mixed, c[:, None, :])  # (b, n_taus, n_langs)
            losses = _losses(ratios[None], shift, mixed)  # (b, n_taus, n_runs, n_langs)
            total = np.einsum("btrj,br->bt", losses, c)
            draws[names[0]].append(TAU_GRID[np.argmin(total, axis=1)])
    else:
        losses = _losses(ratios, None, mixed)
        for name, columns in zip(names, groups, strict=True):
            per_run = losses[:, :, columns].sum(axis=2)  # (n_taus, n_runs)
            draws[name].append(TAU_GRID[np.argmin(counts.astype(float) @ per_run.T, axis=1)])
    tail = (1.0 - INTERVAL_LEVEL) / 2.0
    out = {}
    for name, parts in draws.items():
        low, high = np.quantile(np.concatenate(parts), [tail, 1.0 - tail])
        out[name] = (float(low), float(high))
    return out


@dataclass(frozen=True)
class Model:
    """One way of predicting mixture runs, fitted: a transfer form's T (and level factors), or
    a yardstick."""

    name: str
    matrix: FloatArray | None = None  # None: no transfer
    shift: FloatArray | None = None  # log level factor per language, None: none
    params: dict[str, float] = field(default_factory=dict)  # a transfer form's taus

    def predict(self, laws: LawsFile, runs: MixtureRuns) -> FloatArray:
        """Each run's metric per language, shape (n_runs, n_languages)."""
        x = runs.examples
        d = x if self.matrix is None else effective_examples(x, self.matrix)
        out = _law_values(laws, runs.languages, d)
        if self.shift is not None:
            out = out * np.where(_beside_others(runs), np.exp(self.shift)[None, :], 1.0)
        return out


def fit_model(laws: LawsFile, runs: MixtureRuns, name: str) -> Model:
    """Fit model `name` (`independent`, `level` or a transfer form) on `runs`."""
    if name == INDEPENDENT:
        return Model(name)
    if name == LEVEL:
        ratios = _log_ratios(laws, runs, np.zeros((len(runs.languages),) * 2), np.zeros(1))
        return Model(name, shift=_shifts(ratios, _mixed(runs), np.ones(len(runs.runs)))[0])
    params, shift = fit_form(laws, runs, name)
    matrix = transfer_matrix(name, runs.languages, params)
    return Model(name, matrix=matrix, shift=shift, params=params)


def errors(model: Model, laws: LawsFile, runs: MixtureRuns) -> FloatArray:
    """Absolute errors of every measured (run, language), in metric units."""
    err = np.abs(runs.actual - model.predict(laws, runs))
    return np.asarray(err[np.isfinite(err)], dtype=float)


@dataclass(frozen=True)
class HeldOutMixture:
    """One allocation's runs left out, every model fitted on the others.

    Attributes:
        mixture: the allocator whose runs were left out.
        n_runs: its runs (seeds).
        mae: per model, the mean absolute error of its per-language predictions.
    """

    mixture: str
    n_runs: int
    mae: dict[str, float]


def leave_one_mixture_out(
    laws: LawsFile, runs: MixtureRuns, models: Sequence[str]
) -> tuple[tuple[HeldOutMixture, ...], dict[str, FloatArray]]:
    """Per allocation, every model fitted on the other allocations' runs predicts its runs;
    with, per model, the absolute error of every left-out (run, language), in the same order
    for every model (empty with one allocation)."""
    names = np.array([name for name, _ in runs.runs])
    held: list[HeldOutMixture] = []
    pooled: dict[str, list[FloatArray]] = {m: [] for m in models}
    for mixture in runs.mixtures if len(runs.mixtures) > 1 else ():
        left = names == mixture
        rest, out = runs.subset(~left), runs.subset(left)
        mae = {}
        for m in models:
            found = errors(fit_model(laws, rest, m), laws, out)
            pooled[m].append(found)
            mae[m] = float(found.mean())
        held.append(HeldOutMixture(mixture, int(left.sum()), mae))
    cells = {m: np.concatenate(e) if e else np.zeros(0) for m, e in pooled.items()}
    return tuple(held), cells


def improvement(
    cells: Mapping[str, FloatArray], model: str, yardstick: str
) -> tuple[float, float]:
    """How much smaller `model`'s left-out errors are than `yardstick`'s: the mean paired
    difference (yardstick - model) and its standard error (NaN without two cells)."""
    diff = np.asarray(cells[yardstick] - cells[model], dtype=float)
    if diff.size < 2:
        return math.nan, math.nan
    return float(diff.mean()), float(diff.std(ddof=1) / math.sqrt(diff.size))
