"""A transfer law: in a MuIT run, each language also learns from the other languages' examples.

Effective data per language, for a mixture that trains x_k examples of every language k:

    D_l = x_l + tau * sum_{k != l} x_k,        tau >= 0, one tau shared by every language,

and the metric of language l is its own law (the single-language sweep's fit, `FitResult`)
at D_l. With x_k = 0 for k != l this is the single-language law itself, so the sweep's runs
are fitted exactly as before; tau is fitted on the mixture runs alone (`validation.csv`, as
`plan-sweep validate` writes it: one row per run, language and metric), with the laws' own
robust loss (Huber, delta 1e-3, on log residuals, summed) and a bootstrap over mixture runs
for its interval. Leave-one-mixture-out errors (every run of one allocation left out, tau
fitted on the rest) say whether the law predicts unseen mixtures better than the independent
laws (tau = 0); the law is `selected` only when it does.

The validation table is read here with pandas (`fits` never imports `sweeps`); its columns
are `allocator, seed, language, examples, metric, value` plus whatever else `sweeps/verdict.py`
documents (`model`, `objective` are checked against the laws file when present).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.optimize import minimize_scalar

from fits._solver import huber
from fits.result import LawsFile
from muit_core import DataError, FitError

FloatArray = NDArray[np.float64]

TRANSFER_FORMAT = "muit-transfer/1"
FORMULA = "D_l = x_l + tau * sum_{k != l} x_k; metric_l = law_l(D_l)"
N_PARAMS = 1  # tau
HUBER_DELTA = 1e-3  # on log residuals, summed: the laws' own loss (DESIGN.md, Epoch AI)
TAU_MAX = 4.0  # a language's example worth 4 of another's own: far beyond any published tau
INTERVAL_LEVEL = 0.9
_TAU_GRID = np.unique(np.concatenate([np.linspace(0.0, TAU_MAX, 801), np.geomspace(1e-4, 1, 81)]))
REQUIRED_COLUMNS = ("allocator", "seed", "language", "examples", "metric", "value")


@dataclass(frozen=True)
class MixtureRuns:
    """Mixture runs of one metric: one row per run (allocator, seed), one column per language.

    Attributes:
        metric: the metric.
        runs: (allocator, seed) of each row.
        languages: language codes, the columns.
        examples: examples each run trained per language (0 where a run lacks the language).
        actual: the measured metric (NaN where a run lacks the language).
    """

    metric: str
    runs: tuple[tuple[str, int], ...]
    languages: tuple[str, ...]
    examples: FloatArray
    actual: FloatArray

    @property
    def mixtures(self) -> tuple[str, ...]:
        """The distinct allocations (allocator names), in order of appearance."""
        return tuple(dict.fromkeys(name for name, _ in self.runs))

    def subset(self, keep: NDArray[np.bool_]) -> MixtureRuns:
        """The runs where `keep` is true."""
        return MixtureRuns(
            self.metric,
            tuple(r for r, k in zip(self.runs, keep, strict=True) if k),
            self.languages,
            self.examples[keep],
            self.actual[keep],
        )


def mixed_data(examples: FloatArray, tau: float | FloatArray) -> FloatArray:
    """Effective data D_l = x_l + tau * sum_{k != l} x_k along the last axis of `examples`.

    `tau` broadcasts against `examples[..., :1]` (a column of taus gives one row each).
    """
    x = np.asarray(examples, dtype=float)
    t = np.asarray(tau, dtype=float)
    return np.asarray(x + t * (x.sum(axis=-1, keepdims=True) - x), dtype=float)


def read_mixture_runs(path: str | Path, metric: str) -> MixtureRuns:
    """The mixture runs of `metric` in a validation table.

    Raises:
        DataError: the file cannot be read, lacks a column or the metric, repeats a (run,
            language), or holds a non-finite or negative number.
    """
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as err:
        raise DataError(
            f"Cannot read the validation table {str(path)!r} ({err}); give the "
            "validation.csv that plan-sweep validate wrote."
        ) from None
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"The validation table {str(path)!r} lacks the column(s) {', '.join(missing)}; "
            "give the validation.csv that plan-sweep validate wrote."
        )
    rows = frame[frame["metric"] == metric]
    if rows.empty:
        present = ", ".join(sorted(map(str, frame["metric"].unique()))) or "none"
        raise DataError(
            f"The validation table {str(path)!r} has no {metric!r} rows (it has: {present}); "
            "fit the laws on a metric the mixture runs measured."
        )
    numbers = rows[["examples", "value"]].to_numpy(dtype=float)
    if not np.isfinite(numbers).all() or (numbers < 0).any():
        raise DataError(
            f"The validation table {str(path)!r} holds a non-finite or negative examples or "
            f"value in its {metric!r} rows; drop those runs or rerun them."
        )
    keys = rows[["allocator", "seed", "language"]].astype(str)
    if keys.duplicated().any():
        first = keys[keys.duplicated()].iloc[0].tolist()
        raise DataError(
            f"The validation table {str(path)!r} lists run {first[0]!r} seed {first[1]} "
            f"language {first[2]!r} twice for {metric!r}; keep one row per run and language."
        )
    languages = tuple(dict.fromkeys(rows["language"].astype(str)))
    pairs = zip(rows["allocator"].astype(str), rows["seed"].astype(int), strict=True)
    runs = tuple(dict.fromkeys(pairs))
    index = {run: i for i, run in enumerate(runs)}
    column = {code: j for j, code in enumerate(languages)}
    examples = np.zeros((len(runs), len(languages)))
    actual = np.full((len(runs), len(languages)), np.nan)
    for alloc, seed, lang, n, v in zip(
        rows["allocator"].astype(str),
        rows["seed"].astype(int),
        rows["language"].astype(str),
        rows["examples"].astype(float),
        rows["value"].astype(float),
        strict=True,
    ):
        examples[index[(alloc, seed)], column[lang]] = n
        actual[index[(alloc, seed)], column[lang]] = v
    return MixtureRuns(metric, runs, languages, examples, actual)


def check_runs_match_laws(runs: MixtureRuns, laws: LawsFile, source: str = "") -> None:
    """Refuse mixture runs the laws cannot predict.

    Raises:
        DataError: a run trains a language the laws file lacks or could not fit, or the runs'
            model or objective (when the table says) differs from the laws' sweep.
        FitError: fewer mixture runs than the transfer law's parameters.
    """
    absent = [code for code in runs.languages if code not in laws.fits]
    if absent:
        raise DataError(
            f"The mixture runs train {', '.join(absent)}, which the laws file "
            f"(languages {', '.join(laws.fits) or 'none'}) lacks; fit laws on a sweep that "
            "includes every language of the mixtures, then fit the transfer law again."
        )
    failed = [code for code in runs.languages if not laws.fits[code].success]
    if failed:
        raise DataError(
            f"The laws file's fit failed for {', '.join(failed)}, which the mixture runs "
            "train; refit those languages with plan-fit, then fit the transfer law again."
        )
    if len(runs.runs) < N_PARAMS:
        raise FitError(
            f"The transfer law has {N_PARAMS} parameter (tau) but {source or 'the table'} "
            f"holds {len(runs.runs)} mixture run(s); run plan-sweep validate first."
        )


def check_settings_match(frame: pd.DataFrame, laws: LawsFile, source: str) -> None:
    """Refuse runs of another base model or training objective than the laws' sweep.

    Raises:
        DataError: the table's `model` or `objective` column names another one.
    """
    for column, wanted in (("model", laws.model), ("objective", laws.objective)):
        if wanted is None or column not in frame.columns:
            continue
        found = sorted(set(map(str, frame[column].dropna().unique())) - {str(wanted)})
        if found:
            raise DataError(
                f"The mixture runs in {source!r} have {column} {found[0]!r} but the laws "
                f"were fitted on {column} {wanted!r}; fit laws on the same sweep settings "
                "as the mixture runs, or give their validation table."
            )


def predict(laws: LawsFile, runs: MixtureRuns, tau: float | FloatArray) -> FloatArray:
    """Each run's metric per language, by each language's own law at D_l.

    With a scalar `tau` the result has shape (n_runs, n_languages); with a 1-D array of taus,
    (n_taus, n_runs, n_languages).
    """
    t = np.asarray(tau, dtype=float)
    d = mixed_data(runs.examples, t.reshape(-1, 1, 1)) if t.ndim else mixed_data(runs.examples, t)
    out = np.empty_like(d)
    for j, code in enumerate(runs.languages):
        out[..., j] = laws.fits[code](d[..., j])
    return out


def _run_losses(laws: LawsFile, runs: MixtureRuns, taus: FloatArray) -> FloatArray:
    """Summed Huber loss of each run's log residuals at each tau: shape (n_taus, n_runs)."""
    predicted = predict(laws, runs, taus)
    present = np.isfinite(runs.actual)
    if (predicted[:, present] <= 0).any() or (runs.actual[present] <= 0).any():
        raise DataError(
            f"The transfer law is fitted on log residuals, but a measured or predicted "
            f"{runs.metric!r} is not above 0; fit it on heldout_ce (or another positive metric)."
        )
    actual = np.where(present, runs.actual, 1.0)
    residual = np.where(present, np.log(predicted) - np.log(actual), 0.0)
    return np.asarray(huber(residual, HUBER_DELTA).sum(axis=-1), dtype=float)


def fit_tau(laws: LawsFile, runs: MixtureRuns, counts: FloatArray | None = None) -> float:
    """The tau in [0, TAU_MAX] minimising the summed loss (each run weighted by `counts`)."""
    weights = np.ones(len(runs.runs)) if counts is None else np.asarray(counts, dtype=float)
    grid_loss = _run_losses(laws, runs, _TAU_GRID) @ weights
    best = int(np.argmin(grid_loss))
    low, high = _TAU_GRID[max(best - 1, 0)], _TAU_GRID[min(best + 1, _TAU_GRID.size - 1)]
    if high <= low:
        return float(_TAU_GRID[best])

    def loss(t: float) -> float:
        return float(_run_losses(laws, runs, np.array([t]))[0] @ weights)

    found = minimize_scalar(loss, bounds=(low, high), method="bounded", options={"xatol": 1e-7})
    refined = float(found.x)
    return refined if loss(refined) <= grid_loss[best] else float(_TAU_GRID[best])


@dataclass(frozen=True)
class HeldOutMixture:
    """One allocation's runs left out: tau fitted on the others, its runs predicted.

    Attributes:
        mixture: the allocator whose runs were left out.
        n_runs: its runs (seeds).
        tau: tau fitted on the other mixtures' runs.
        mae_independent: mean absolute error of its per-language predictions at tau = 0.
        mae_transfer: the same at the fitted tau.
    """

    mixture: str
    n_runs: int
    tau: float
    mae_independent: float
    mae_transfer: float


@dataclass(frozen=True)
class TransferLaw:
    """The fitted transfer law and its evidence (the `transfer.json` contract).

    Attributes:
        tau: the fitted transfer coefficient (effective examples per other-language example).
        low, high: its bootstrap interval over mixture runs (`level`; equal to tau without draws).
        level: the interval's level.
        languages: the languages of the mixture runs.
        metric: the metric fitted; higher_is_better: its direction.
        n_runs, n_mixtures: mixture runs (allocator, seed) and distinct allocations fitted.
        n_bootstrap, seed: bootstrap draws and their seed.
        held_out: leave-one-mixture-out results (empty with one allocation).
        mae_independent, mae_transfer: their pooled mean absolute errors over every left-out
            (run, language), in metric units (NaN with one allocation).
        in_sample_independent, in_sample_transfer: the same on the fitted runs themselves.
        selected: whether the transfer law predicted left-out mixtures better than tau = 0.
        laws_file, source: the laws file and the validation table used.
    """

    tau: float
    low: float
    high: float
    level: float
    languages: tuple[str, ...]
    metric: str
    higher_is_better: bool
    n_runs: int
    n_mixtures: int
    n_bootstrap: int
    seed: int
    held_out: tuple[HeldOutMixture, ...]
    mae_independent: float
    mae_transfer: float
    in_sample_independent: float
    in_sample_transfer: float
    selected: bool
    laws_file: str = ""
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (NaN as null); inverse of `from_dict`."""

        def num(v: float) -> float | None:
            return None if math.isnan(v) else v

        return {
            "format": TRANSFER_FORMAT,
            "formula": FORMULA,
            "tau": self.tau,
            "interval": [self.low, self.high],
            "interval_level": self.level,
            "loss": f"huber(delta={HUBER_DELTA:g}) on log residuals, summed over runs",
            "languages": list(self.languages),
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "n_runs": self.n_runs,
            "n_mixtures": self.n_mixtures,
            "n_params": N_PARAMS,
            "bootstrap": {"n": self.n_bootstrap, "seed": self.seed, "over": "mixture runs"},
            "leave_one_mixture_out": {
                "mae_independent": num(self.mae_independent),
                "mae_transfer": num(self.mae_transfer),
                "held_out": [vars(h) for h in self.held_out],
            },
            "in_sample": {
                "mae_independent": self.in_sample_independent,
                "mae_transfer": self.in_sample_transfer,
            },
            "selected": self.selected,
            "laws_file": self.laws_file,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> TransferLaw:
        """Read `to_dict`'s output.

        Raises:
            KeyError, TypeError, ValueError: a field is missing or malformed.
        """
        lomo = raw["leave_one_mixture_out"]

        def num(v: float | None) -> float:
            return math.nan if v is None else float(v)

        low, high = (float(v) for v in raw["interval"])
        return cls(
            tau=float(raw["tau"]),
            low=low,
            high=high,
            level=float(raw["interval_level"]),
            languages=tuple(str(c) for c in raw["languages"]),
            metric=str(raw["metric"]),
            higher_is_better=bool(raw["higher_is_better"]),
            n_runs=int(raw["n_runs"]),
            n_mixtures=int(raw["n_mixtures"]),
            n_bootstrap=int(raw["bootstrap"]["n"]),
            seed=int(raw["bootstrap"]["seed"]),
            held_out=tuple(HeldOutMixture(**h) for h in lomo["held_out"]),
            mae_independent=num(lomo["mae_independent"]),
            mae_transfer=num(lomo["mae_transfer"]),
            in_sample_independent=float(raw["in_sample"]["mae_independent"]),
            in_sample_transfer=float(raw["in_sample"]["mae_transfer"]),
            selected=bool(raw["selected"]),
            laws_file=str(raw.get("laws_file", "")),
            source=str(raw.get("source", "")),
        )


def _errors(laws: LawsFile, runs: MixtureRuns, tau: float) -> FloatArray:
    """Absolute errors of every measured (run, language), in metric units."""
    err = np.abs(runs.actual - predict(laws, runs, tau))
    return np.asarray(err[np.isfinite(err)], dtype=float)


def _mae(laws: LawsFile, runs: MixtureRuns, tau: float) -> float:
    return float(_errors(laws, runs, tau).mean())


def leave_one_mixture_out(laws: LawsFile, runs: MixtureRuns) -> tuple[HeldOutMixture, ...]:
    """For each allocation: fit tau on the other allocations' runs, predict its runs."""
    names = np.array([name for name, _ in runs.runs])
    out = []
    for mixture in runs.mixtures if len(runs.mixtures) > 1 else ():
        left = names == mixture
        tau = fit_tau(laws, runs.subset(~left))
        held = runs.subset(left)
        out.append(
            HeldOutMixture(
                mixture, int(left.sum()), tau, _mae(laws, held, 0.0), _mae(laws, held, tau)
            )
        )
    return tuple(out)


def fit_transfer(
    laws: LawsFile,
    runs: MixtureRuns,
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
    laws_file: str = "",
    source: str = "",
) -> TransferLaw:
    """Fit tau on mixture runs, with a bootstrap over runs and leave-one-mixture-out errors.

    Raises:
        DataError, FitError: the runs do not match the laws (`check_runs_match_laws`).
    """
    check_runs_match_laws(runs, laws, source)
    tau = fit_tau(laws, runs)
    low = high = tau
    if n_bootstrap > 0:
        rng = np.random.default_rng(seed)
        n = len(runs.runs)
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_bootstrap).astype(float)
        losses = _run_losses(laws, runs, _TAU_GRID)  # (n_taus, n_runs), once for every draw
        draws = _TAU_GRID[np.argmin(counts @ losses.T, axis=1)]
        tail = (1.0 - INTERVAL_LEVEL) / 2.0
        low, high = (float(q) for q in np.quantile(draws, [tail, 1.0 - tail]))
    held = leave_one_mixture_out(laws, runs)
    mae_ind = mae_tr = math.nan
    if held:
        names = np.array([name for name, _ in runs.runs])
        ind, tr = [], []
        for h in held:
            left = runs.subset(names == h.mixture)
            ind.append(_errors(laws, left, 0.0))
            tr.append(_errors(laws, left, h.tau))
        mae_ind, mae_tr = float(np.concatenate(ind).mean()), float(np.concatenate(tr).mean())
    return TransferLaw(
        tau=tau,
        low=min(low, tau),
        high=max(high, tau),
        level=INTERVAL_LEVEL,
        languages=runs.languages,
        metric=runs.metric,
        higher_is_better=laws.higher_is_better,
        n_runs=len(runs.runs),
        n_mixtures=len(runs.mixtures),
        n_bootstrap=n_bootstrap,
        seed=seed,
        held_out=held,
        mae_independent=mae_ind,
        mae_transfer=mae_tr,
        in_sample_independent=_mae(laws, runs, 0.0),
        in_sample_transfer=_mae(laws, runs, tau),
        selected=bool(held) and mae_tr < mae_ind,
        laws_file=laws_file,
        source=source,
    )


def transfer_to_json(law: TransferLaw) -> str:
    """The `transfer.json` text."""
    return json.dumps(law.to_dict(), indent=2) + "\n"


def read_transfer(path: str | Path) -> TransferLaw:
    """Read a `transfer.json` that `plan-fit transfer` wrote.

    Raises:
        DataError: the file is missing, not JSON, or not a transfer law.
    """
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DataError(
            f"Cannot read the transfer law {str(path)!r} ({err}); write it with "
            "plan-fit transfer VALIDATION_CSV --laws LAWS --out DIR."
        ) from None
    if not isinstance(raw, dict) or raw.get("format") != TRANSFER_FORMAT:
        raise DataError(
            f"{str(path)!r} is not a transfer law (format {TRANSFER_FORMAT!r}); write it with "
            "plan-fit transfer VALIDATION_CSV --laws LAWS --out DIR."
        )
    try:
        law = TransferLaw.from_dict(raw)
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(
            f"The transfer law {str(path)!r} is malformed ({err!r}); write it again with "
            "plan-fit transfer."
        ) from None
    if not (math.isfinite(law.tau) and law.tau >= 0):
        raise DataError(
            f"The transfer law {str(path)!r} has tau={law.tau}; it must be 0 or more, so "
            "write it again with plan-fit transfer."
        )
    return law


def describe(law: TransferLaw, *, extra: Sequence[str] = ()) -> str:
    """The fit as a few lines of text, for the command's stdout."""
    head = (
        f"Transfer law {FORMULA}\n"
        f"tau = {law.tau:.4g} [{law.low:.4g}, {law.high:.4g}] ({law.level:.0%}, bootstrap "
        f"over {law.n_runs} mixture runs of {law.n_mixtures} allocations, {law.metric})"
    )
    lines = [head, "", "Leave-one-mixture-out (mean absolute error, metric units):"]
    lines.append(f"{'left out':<14}{'runs':>5}{'tau':>9}{'independent':>13}{'transfer':>10}")
    for h in law.held_out:
        lines.append(
            f"{h.mixture:<14}{h.n_runs:>5}{h.tau:>9.4g}{h.mae_independent:>13.4f}"
            f"{h.mae_transfer:>10.4f}"
        )
    if law.held_out:
        lines.append(
            f"{'pooled':<14}{law.n_runs:>5}{'':>9}{law.mae_independent:>13.4f}"
            f"{law.mae_transfer:>10.4f}"
        )
    else:
        lines.append("(one allocation only: nothing to leave out)")
    lines.append(
        f"In sample: independent {law.in_sample_independent:.4f}, transfer "
        f"{law.in_sample_transfer:.4f}. Selected: "
        + ("yes (it predicts left-out mixtures better)." if law.selected else "no.")
    )
    return "\n".join([*lines, *extra])
