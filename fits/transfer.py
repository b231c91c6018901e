"""A transfer law: in a MuIT run, each language also learns from the other languages' examples.

Effective data per language, for a mixture that trains x_k examples of every language k:

    D_l = x_l + sum_{k != l} T_lk * x_k,        T_lk >= 0,

and the metric of language l is its own law (the single-language sweep's fit, `FitResult`)
at D_l. With x_k = 0 for k != l this is the single-language law itself, so the sweep's runs
are fitted exactly as before; T is fitted on the mixture runs (`fits.transfer_runs`) in one
of three forms (`FORMS`):

- `shared`: T_lk = tau, one tau for every pair;
- `similarity`: T_lk = tau * s(l, k), s the script-and-family prior of
  `fits.language_similarity`;
- `receiver`: T_lk = tau_l, one tau per receiving language (as many parameters as languages).

Each is fitted with the laws' own robust loss (Huber, delta 1e-3, on log residuals, summed
over runs), with a bootstrap over mixture runs for the intervals. Two models without transfer
are its yardsticks: `independent` (T = 0, the planner's assumption) and `level` (each
language's own law shifted by a constant factor whenever it is trained in a mixture: a bonus
that no split of the budget changes). Leave-one-mixture-out errors (every run of one
allocation left out, every model fitted on the rest) score them all; `--form auto` keeps the
transfer form with the smallest error, and the law is `selected` only when that error is
smaller than both yardsticks': only then does transfer say more than "mixtures do better".

The fitted law is stored in the laws file under `transfer` (`TransferLaw.to_dict`), which
`plan-allocate` reads.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize_scalar

from fits._solver import huber
from fits.language_similarity import SOURCE as SIMILARITY_SOURCE
from fits.language_similarity import similarity_matrix
from fits.result import LawsFile
from fits.transfer_runs import MixtureRuns, check_runs_match_laws
from muit_core import DataError, FitError

FloatArray = NDArray[np.float64]

TRANSFER_FORMAT = "muit-transfer/2"
FORMS = ("shared", "similarity", "receiver")
FORMULAS = {
    "shared": "D_l = x_l + tau * sum_{k != l} x_k",
    "similarity": "D_l = x_l + tau * sum_{k != l} s(l, k) x_k",
    "receiver": "D_l = x_l + tau_l * sum_{k != l} x_k",
}
INDEPENDENT, LEVEL = "independent", "level"
HUBER_DELTA = 1e-3  # on log residuals, summed: the laws' own loss (DESIGN.md, Epoch AI)
TAU_MAX = 4.0  # a language's example worth 4 of another's own: far beyond any published tau
INTERVAL_LEVEL = 0.9
_TAU_GRID = np.unique(np.concatenate([np.linspace(0.0, TAU_MAX, 801), np.geomspace(1e-4, 1, 81)]))


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
    """The form's parameters: `tau`, or `tau_<code>` per receiving language."""
    return tuple(f"tau_{c}" for c in languages) if form == "receiver" else ("tau",)


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


def _column_losses(
    laws: LawsFile, runs: MixtureRuns, base: FloatArray, taus: FloatArray
) -> FloatArray:
    """Huber loss of every (tau, run, language) log residual: shape (n_taus, n_runs, n_langs)."""
    x = runs.examples
    d = x[None] + np.asarray(taus, dtype=float)[:, None, None] * (x @ base.T)[None]
    predicted = np.empty_like(d)
    for j, code in enumerate(runs.languages):
        predicted[..., j] = laws.fits[code](d[..., j])
    present = np.isfinite(runs.actual)
    if (predicted[:, present] <= 0).any() or (runs.actual[present] <= 0).any():
        raise DataError(
            f"The transfer law is fitted on log residuals, but a measured or predicted "
            f"{runs.metric!r} is not above 0; fit it on heldout_ce (or another positive metric)."
        )
    actual = np.where(present, runs.actual, 1.0)
    residual = np.where(present, np.log(predicted) - np.log(actual), 0.0)
    return np.asarray(huber(residual, HUBER_DELTA), dtype=float)


def fit_form(
    laws: LawsFile, runs: MixtureRuns, form: str, weights: FloatArray | None = None
) -> dict[str, float]:
    """The parameters of `form` in [0, TAU_MAX] minimising the summed loss (runs weighted by
    `weights`): a grid, then a bounded scalar search around its best point, per parameter."""
    base = base_matrix(form, runs.languages)
    w = np.ones(len(runs.runs)) if weights is None else np.asarray(weights, dtype=float)
    grid = _column_losses(laws, runs, base, _TAU_GRID)  # (n_taus, n_runs, n_langs)
    out: list[float] = []
    for columns in _groups(form, len(runs.languages)):
        grid_loss = np.einsum("trj,r->t", grid[:, :, columns], w)
        best = int(np.argmin(grid_loss))
        low, high = _TAU_GRID[max(best - 1, 0)], _TAU_GRID[min(best + 1, _TAU_GRID.size - 1)]

        def loss(t: float, columns: list[int] = columns) -> float:
            at = _column_losses(laws, runs, base, np.array([t]))[0][:, columns]
            return float(w @ at.sum(axis=1))

        found = minimize_scalar(
            loss, bounds=(low, high), method="bounded", options={"xatol": 1e-7}
        )
        refined = float(found.x)
        out.append(refined if loss(refined) <= grid_loss[best] else float(_TAU_GRID[best]))
    return dict(zip(param_names(form, runs.languages), out, strict=True))


def _bootstrap(
    laws: LawsFile, runs: MixtureRuns, form: str, n_draws: int, seed: int
) -> dict[str, tuple[float, float]]:
    """Per parameter, the INTERVAL_LEVEL interval of its grid optimum over run resamples."""
    base = base_matrix(form, runs.languages)
    grid = _column_losses(laws, runs, base, _TAU_GRID)
    n = len(runs.runs)
    counts = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=n_draws)
    tail = (1.0 - INTERVAL_LEVEL) / 2.0
    out = {}
    names = param_names(form, runs.languages)
    for name, columns in zip(names, _groups(form, len(runs.languages)), strict=True):
        per_run = grid[:, :, columns].sum(axis=2)  # (n_taus, n_runs)
        draws = _TAU_GRID[np.argmin(counts.astype(float) @ per_run.T, axis=1)]
        low, high = np.quantile(draws, [tail, 1.0 - tail])
        out[name] = (float(low), float(high))
    return out


def _level_shift(laws: LawsFile, runs: MixtureRuns) -> FloatArray:
    """The `level` model's log factor per language: the median log(actual / own law) over the
    runs that train it beside other languages (0 where there are none)."""
    ratio = np.log(runs.actual) - np.log(_predict_matrix(laws, runs, None))
    mixed = (runs.examples.sum(axis=1, keepdims=True) - runs.examples) > 0
    keep = np.isfinite(ratio) & mixed
    return np.array(
        [
            float(np.median(ratio[keep[:, j], j])) if keep[:, j].any() else 0.0
            for j in range(ratio.shape[1])
        ]
    )


def _predict_matrix(laws: LawsFile, runs: MixtureRuns, matrix: FloatArray | None) -> FloatArray:
    d = runs.examples if matrix is None else effective_examples(runs.examples, matrix)
    out = np.empty_like(d)
    for j, code in enumerate(runs.languages):
        out[:, j] = laws.fits[code](d[:, j])
    return out


@dataclass(frozen=True)
class Model:
    """One way of predicting mixture runs, fitted: a transfer form's T, or a yardstick."""

    name: str
    matrix: FloatArray | None = None  # None: no transfer
    shift: FloatArray | None = None  # the level model's log factor per language

    def predict(self, laws: LawsFile, runs: MixtureRuns) -> FloatArray:
        """Each run's metric per language, shape (n_runs, n_languages)."""
        out = _predict_matrix(laws, runs, self.matrix)
        if self.shift is not None:
            mixed = (runs.examples.sum(axis=1, keepdims=True) - runs.examples) > 0
            out = out * np.where(mixed, np.exp(self.shift)[None, :], 1.0)
        return out


def fit_model(laws: LawsFile, runs: MixtureRuns, name: str) -> Model:
    """Fit model `name` (`independent`, `level` or a transfer form) on `runs`."""
    if name == INDEPENDENT:
        return Model(name)
    if name == LEVEL:
        return Model(name, shift=_level_shift(laws, runs))
    params = fit_form(laws, runs, name)
    return Model(name, matrix=transfer_matrix(name, runs.languages, params))


def _errors(model: Model, laws: LawsFile, runs: MixtureRuns) -> FloatArray:
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
) -> tuple[tuple[HeldOutMixture, ...], dict[str, float]]:
    """Per allocation, every model fitted on the other allocations' runs predicts its runs;
    with the pooled mean absolute error per model over every left-out (run, language)."""
    names = np.array([name for name, _ in runs.runs])
    held: list[HeldOutMixture] = []
    pooled: dict[str, list[FloatArray]] = {m: [] for m in models}
    for mixture in runs.mixtures if len(runs.mixtures) > 1 else ():
        left = names == mixture
        rest, out = runs.subset(~left), runs.subset(left)
        mae = {}
        for m in models:
            errors = _errors(fit_model(laws, rest, m), laws, out)
            pooled[m].append(errors)
            mae[m] = float(errors.mean())
        held.append(HeldOutMixture(mixture, int(left.sum()), mae))
    totals = {m: float(np.concatenate(e).mean()) if e else math.nan for m, e in pooled.items()}
    return tuple(held), totals


@dataclass(frozen=True)
class TransferLaw:
    """The fitted transfer law and its evidence (the laws file's `transfer` entry).

    Attributes:
        form: the transfer form kept (`FORMS`).
        params: its fitted parameters (`tau`, or `tau_<code>`).
        intervals: per parameter, its bootstrap interval over mixture runs (`level`).
        level: the intervals' level.
        languages: the languages of the mixture runs (the order of `matrix`).
        matrix: T, receiver x donor: effective examples of l per example of k.
        metric: the metric fitted; higher_is_better: its direction.
        n_runs, n_mixtures: mixture runs (allocator, seed) and distinct allocations fitted.
        n_bootstrap, seed: bootstrap draws and their seed.
        held_out: leave-one-mixture-out results per allocation (empty with one allocation).
        lomo_mae: per model (yardsticks and the transfer forms tried), the pooled
            leave-one-mixture-out mean absolute error, metric units (NaN with one allocation).
        in_sample_mae: per model, the same on the fitted runs themselves.
        selected: whether the kept form predicted left-out mixtures better than both
            yardsticks (`independent`, `level`).
        notes: forms not tried and why.
        laws_file, source: the laws file and the validation table used.
    """

    form: str
    params: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    level: float
    languages: tuple[str, ...]
    matrix: FloatArray
    metric: str
    higher_is_better: bool
    n_runs: int
    n_mixtures: int
    n_bootstrap: int
    seed: int
    held_out: tuple[HeldOutMixture, ...]
    lomo_mae: dict[str, float]
    in_sample_mae: dict[str, float]
    selected: bool
    notes: tuple[str, ...] = ()
    laws_file: str = ""
    source: str = ""

    def matrix_for(self, languages: Sequence[str]) -> FloatArray:
        """T restricted to `languages` (each must be one of the law's), in their order."""
        index = [self.languages.index(code) for code in languages]
        return np.asarray(self.matrix[np.ix_(index, index)], dtype=float)

    def summary(self) -> str:
        """The kept form and its parameters in one line, e.g. `shared tau = 0.245 [0.24, 0.26]`."""
        parts = [
            f"{name} = {value:.3g} [{self.intervals[name][0]:.3g}, {self.intervals[name][1]:.3g}]"
            for name, value in self.params.items()
        ]
        return f"{self.form}: " + ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (NaN as null); inverse of `from_dict`."""

        def num(v: float) -> float | None:
            return None if math.isnan(v) else v

        return {
            "format": TRANSFER_FORMAT,
            "form": self.form,
            "formula": FORMULAS[self.form] + "; metric_l = law_l(D_l)",
            "params": dict(self.params),
            "intervals": {k: list(v) for k, v in self.intervals.items()},
            "interval_level": self.level,
            "matrix": {
                a: {b: float(self.matrix[i, j]) for j, b in enumerate(self.languages) if i != j}
                for i, a in enumerate(self.languages)
            },
            "similarity_source": SIMILARITY_SOURCE if self.form == "similarity" else None,
            "loss": f"huber(delta={HUBER_DELTA:g}) on log residuals, summed over runs",
            "languages": list(self.languages),
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "n_runs": self.n_runs,
            "n_mixtures": self.n_mixtures,
            "bootstrap": {"n": self.n_bootstrap, "seed": self.seed, "over": "mixture runs"},
            "leave_one_mixture_out": {
                "mae": {k: num(v) for k, v in self.lomo_mae.items()},
                "held_out": [
                    {"mixture": h.mixture, "n_runs": h.n_runs, "mae": h.mae} for h in self.held_out
                ],
            },
            "in_sample_mae": dict(self.in_sample_mae),
            "selected": self.selected,
            "notes": list(self.notes),
            "laws_file": self.laws_file,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> TransferLaw:
        """Read `to_dict`'s output.

        Raises:
            DataError: the entry is not a `muit-transfer/2` law.
            KeyError, TypeError, ValueError: a field is missing or malformed.
        """
        if raw.get("format") != TRANSFER_FORMAT:
            raise DataError(
                f"The transfer entry has format {raw.get('format')!r}, not {TRANSFER_FORMAT!r}; "
                "fit it again with plan-fit transfer VALIDATION_CSV --laws LAWS."
            )
        lomo = raw["leave_one_mixture_out"]

        def num(v: float | None) -> float:
            return math.nan if v is None else float(v)

        languages = tuple(str(c) for c in raw["languages"])
        matrix = np.zeros((len(languages), len(languages)))
        for i, a in enumerate(languages):
            for j, b in enumerate(languages):
                if i != j:
                    matrix[i, j] = float(raw["matrix"][a][b])
        form = str(raw["form"])
        if form not in FORMS or not (np.isfinite(matrix).all() and (matrix >= 0).all()):
            raise ValueError(f"form {form!r} or a negative or non-finite transfer coefficient")
        return cls(
            form=form,
            params={str(k): float(v) for k, v in raw["params"].items()},
            intervals={str(k): (float(v[0]), float(v[1])) for k, v in raw["intervals"].items()},
            level=float(raw["interval_level"]),
            languages=languages,
            matrix=matrix,
            metric=str(raw["metric"]),
            higher_is_better=bool(raw["higher_is_better"]),
            n_runs=int(raw["n_runs"]),
            n_mixtures=int(raw["n_mixtures"]),
            n_bootstrap=int(raw["bootstrap"]["n"]),
            seed=int(raw["bootstrap"]["seed"]),
            held_out=tuple(
                HeldOutMixture(
                    str(h["mixture"]), int(h["n_runs"]), {k: float(v) for k, v in h["mae"].items()}
                )
                for h in lomo["held_out"]
            ),
            lomo_mae={str(k): num(v) for k, v in lomo["mae"].items()},
            in_sample_mae={str(k): float(v) for k, v in raw["in_sample_mae"].items()},
            selected=bool(raw["selected"]),
            notes=tuple(str(n) for n in raw.get("notes", ())),
            laws_file=str(raw.get("laws_file", "")),
            source=str(raw.get("source", "")),
        )


def _forms_to_try(form: str, runs: MixtureRuns) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The forms `fit_transfer` fits for `--form form`, and notes on those it skips.

    Raises:
        DataError: `similarity` asked for with a language the table lacks.
        FitError: a form asked for has more parameters than there are mixture runs.
    """
    wanted = FORMS if form == "auto" else (form,)
    kept, notes = [], []
    for name in wanted:
        n_params = len(param_names(name, runs.languages))
        if len(runs.runs) < n_params:
            message = (
                f"the {name} form has {n_params} parameter(s) but there are "
                f"{len(runs.runs)} mixture run(s)"
            )
            if form != "auto":
                raise FitError(
                    f"The transfer law cannot be fitted: {message}; train more mixtures with "
                    "plan-sweep validate --random-mixtures K --leave-one-out, or use --form "
                    "shared."
                )
            notes.append(f"{message}: not tried")
            continue
        if name == "similarity":
            try:
                base_matrix(name, runs.languages)
            except DataError as err:
                if form != "auto":
                    raise
                notes.append(f"similarity form not tried: {err}")
                continue
        kept.append(name)
    return tuple(kept), tuple(notes)


def fit_transfer(
    laws: LawsFile,
    runs: MixtureRuns,
    *,
    form: str = "auto",
    n_bootstrap: int = 1000,
    seed: int = 0,
    laws_file: str = "",
    source: str = "",
) -> TransferLaw:
    """Fit the transfer forms (`form`, or every one for `auto`) on mixture runs, score them and
    the yardsticks by leaving each allocation out, keep the best form and bootstrap it.

    Raises:
        DataError: the runs do not match the laws (`check_runs_match_laws`), or `similarity`
            with a language its table lacks.
        FitError: no mixture run, or an asked-for form with more parameters than runs.
        ValueError: an unknown form.
    """
    if form != "auto" and form not in FORMS:
        raise ValueError(f"unknown transfer form {form!r}; choose auto or {', '.join(FORMS)}")
    check_runs_match_laws(runs, laws)
    if not runs.runs:
        raise FitError("The validation table holds no mixture run; run plan-sweep validate first.")
    forms, notes = _forms_to_try(form, runs)
    models = (INDEPENDENT, LEVEL, *forms)
    held, lomo = leave_one_mixture_out(laws, runs, models)
    kept = min(forms, key=lambda m: lomo[m]) if held else forms[0]
    params = fit_form(laws, runs, kept)
    intervals = (
        _bootstrap(laws, runs, kept, n_bootstrap, seed)
        if n_bootstrap > 0
        else {k: (v, v) for k, v in params.items()}
    )
    intervals = {k: (min(lo, params[k]), max(hi, params[k])) for k, (lo, hi) in intervals.items()}
    in_sample = {m: float(_errors(fit_model(laws, runs, m), laws, runs).mean()) for m in models}
    selected = bool(held) and lomo[kept] < min(lomo[INDEPENDENT], lomo[LEVEL])
    return TransferLaw(
        form=kept,
        params=params,
        intervals=intervals,
        level=INTERVAL_LEVEL,
        languages=runs.languages,
        matrix=transfer_matrix(kept, runs.languages, params),
        metric=runs.metric,
        higher_is_better=laws.higher_is_better,
        n_runs=len(runs.runs),
        n_mixtures=len(runs.mixtures),
        n_bootstrap=n_bootstrap,
        seed=seed,
        held_out=held,
        lomo_mae=lomo,
        in_sample_mae=in_sample,
        selected=selected,
        notes=notes,
        laws_file=laws_file,
        source=source,
    )


def transfer_of(laws: LawsFile) -> TransferLaw | None:
    """The laws file's transfer law, or None when it has none.

    Raises:
        DataError: the entry is malformed or of an older format (the message says how to refit).
    """
    if laws.transfer is None:
        return None
    try:
        return TransferLaw.from_dict(laws.transfer)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise DataError(
            f"The laws file's transfer entry is malformed ({err!r}); fit it again with "
            "plan-fit transfer VALIDATION_CSV --laws LAWS."
        ) from None


def describe(law: TransferLaw) -> str:
    """The fit as a few lines of text, for the command's stdout."""
    models = list(law.lomo_mae)
    lines = [
        f"Transfer law ({FORMULAS[law.form]}): {law.summary()} ({law.level:.0%}, bootstrap over "
        f"{law.n_runs} mixture runs of {law.n_mixtures} allocations, {law.metric})",
        "",
        "Leave-one-mixture-out (mean absolute error, metric units):",
        f"{'left out':<16}{'runs':>5}" + "".join(f"{m:>13}" for m in models),
    ]
    for h in law.held_out:
        lines.append(
            f"{h.mixture:<16}{h.n_runs:>5}" + "".join(f"{h.mae[m]:>13.4f}" for m in models)
        )
    if law.held_out:
        lines.append(
            f"{'pooled':<16}{law.n_runs:>5}" + "".join(f"{law.lomo_mae[m]:>13.4f}" for m in models)
        )
    else:
        lines.append("(one allocation only: nothing to leave out)")
    lines.append(
        "In sample: " + ", ".join(f"{m} {v:.4f}" for m, v in law.in_sample_mae.items()) + "."
    )
    lines.append(
        f"Selected: yes: the {law.form} form predicts left-out mixtures better than the "
        "independent laws and a constant in-mixture level shift."
        if law.selected
        else f"Selected: no: the {law.form} form does not predict left-out mixtures better than "
        "both the independent laws and a constant in-mixture level shift; plan-allocate plans "
        "without it."
    )
    lines.extend(f"Note: {n}." for n in law.notes)
    return "\n".join(lines)
