"""A transfer law: in a MuIT run, each language also learns from the other languages' examples.

Effective data per language, for a mixture that trains x_k examples of every language k:

    D_l = x_l + sum_{k != l} T_lk * x_k,        T_lk >= 0,

and the metric of language l is its own law (the single-language sweep's fit, `FitResult`)
at D_l. With x_k = 0 for k != l this is the single-language law itself, so the sweep's runs
are fitted exactly as before; T is fitted on the mixture runs (`fits.transfer_runs`) in one
of the forms of `fits.transfer_fit` (one shared tau; tau times a script-and-family prior;
one tau per receiving language; a shared tau on top of a constant in-mixture level factor per
language), with the laws' own robust loss and a bootstrap over mixture runs for the intervals.

Two models without transfer are its yardsticks: `independent` (T = 0, the planner's
assumption) and `level` (each language's own law times a constant factor whenever it is
trained in a mixture: a bonus that no split of the budget changes). Leave-one-mixture-out
errors (every run of one allocation left out, every model fitted on the rest) score them all;
`--form auto` keeps the transfer form with the smallest error, and the law is `selected` only
when that error is smaller than both yardsticks': only then does transfer say more than
"mixtures do better".

The fitted law is stored in the laws file under `transfer` (`TransferLaw.to_dict`), which
`plan-allocate` reads (`transfer_of`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fits.language_similarity import SOURCE as SIMILARITY_SOURCE
from fits.result import LawsFile
from fits.transfer_fit import (
    FORMS,
    FORMULAS,
    HUBER_DELTA,
    INDEPENDENT,
    INTERVAL_LEVEL,
    LEVEL,
    HeldOutMixture,
    base_matrix,
    bootstrap_intervals,
    errors,
    fit_model,
    improvement,
    leave_one_mixture_out,
    n_params,
)
from fits.transfer_runs import MixtureRuns, check_runs_match_laws
from muit_core import DataError, FitError

FloatArray = NDArray[np.float64]

TRANSFER_FORMAT = "muit-transfer/2"
SELECTION_SE = 2.0  # the kept form must beat each yardstick by this many standard errors


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
        levels: per language, the log level factor c_l its metric is multiplied by (exp) when
            trained in a mixture (a level form; zeros otherwise).
        metric: the metric fitted; higher_is_better: its direction.
        n_runs, n_mixtures: mixture runs (allocator, seed) and distinct allocations fitted.
        n_bootstrap, seed: bootstrap draws and their seed.
        held_out: leave-one-mixture-out results per allocation (empty with one allocation).
        lomo_mae: per model (yardsticks and the transfer forms tried), the pooled
            leave-one-mixture-out mean absolute error, metric units (NaN with one allocation).
        in_sample_mae: per model, the same on the fitted runs themselves.
        selected: whether the kept form predicted left-out mixtures better than both
            yardsticks (`independent`, `level`), each by more than SELECTION_SE standard
            errors of the paired difference of their errors.
        improvements: per yardstick, the kept form's mean paired error reduction over it
            (metric units) and its standard error.
        notes: forms not tried and why.
        laws_file, source: the laws file and the validation table used.
    """

    form: str
    params: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    level: float
    languages: tuple[str, ...]
    matrix: FloatArray
    levels: FloatArray
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
    improvements: dict[str, tuple[float, float]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    laws_file: str = ""
    source: str = ""

    def matrix_for(self, languages: Sequence[str]) -> FloatArray:
        """T restricted to `languages` (each must be one of the law's), in their order."""
        index = [self.languages.index(code) for code in languages]
        return np.asarray(self.matrix[np.ix_(index, index)], dtype=float)

    def factors_for(self, languages: Sequence[str]) -> FloatArray:
        """exp(c_l) for `languages`, in their order (ones unless a level form)."""
        index = [self.languages.index(code) for code in languages]
        return np.asarray(np.exp(self.levels[index]), dtype=float)

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
            "levels": {a: float(self.levels[i]) for i, a in enumerate(self.languages)},
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
            "improvements": {
                k: {"mean": num(m), "stderr": num(e)} for k, (m, e) in self.improvements.items()
            },
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
        levels = np.array([float(raw.get("levels", {}).get(a, 0.0)) for a in languages])
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
            levels=levels,
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
            improvements={
                str(k): (num(v["mean"]), num(v["stderr"]))
                for k, v in raw.get("improvements", {}).items()
            },
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
        count = n_params(name, runs.languages)
        if len(runs.runs) < count:
            message = (
                f"the {name} form has {count} parameter(s) but there are "
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
    held, cells = leave_one_mixture_out(laws, runs, models)
    lomo = {m: float(e.mean()) if e.size else math.nan for m, e in cells.items()}
    kept = min(forms, key=lambda m: lomo[m]) if held else forms[0]
    gains = {y: improvement(cells, kept, y) for y in (INDEPENDENT, LEVEL)} if held else {}
    fitted = {m: fit_model(laws, runs, m) for m in models}  # on every run
    best = fitted[kept]
    assert best.matrix is not None  # a transfer form always has one
    params = best.params
    intervals = (
        bootstrap_intervals(laws, runs, kept, n_bootstrap, seed)
        if n_bootstrap > 0
        else {k: (v, v) for k, v in params.items()}
    )
    intervals = {k: (min(lo, params[k]), max(hi, params[k])) for k, (lo, hi) in intervals.items()}
    in_sample = {m: float(errors(model, laws, runs).mean()) for m, model in fitted.items()}
    selected = bool(gains) and all(
        math.isfinite(se) and mean > SELECTION_SE * se for mean, se in gains.values()
    )
    return TransferLaw(
        form=kept,
        params=params,
        intervals=intervals,
        level=INTERVAL_LEVEL,
        languages=runs.languages,
        matrix=best.matrix,
        levels=np.zeros(len(runs.languages)) if best.shift is None else best.shift,
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
        improvements=gains,
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
    versus = "; ".join(
        f"{y} {mean:+.4f} (se {se:.4f})" for y, (mean, se) in law.improvements.items()
    )
    if versus:
        lines.append(f"Error reduction of the {law.form} form over each yardstick: {versus}.")
    lines.append(
        f"Selected: yes: the {law.form} form predicts left-out mixtures better than the "
        "independent laws and a constant in-mixture level shift, each by more than "
        f"{SELECTION_SE:g} standard errors."
        if law.selected
        else f"Selected: no: the {law.form} form does not predict left-out mixtures better than "
        "both the independent laws and a constant in-mixture level shift by more than "
        f"{SELECTION_SE:g} standard errors; plan-allocate plans without it."
    )
    lines.extend(f"Note: {n}." for n in law.notes)
    return "\n".join(lines)
