"""Backtests at several reaches, the reach error they calibrate, and the laws' weights.

A backtest fits a law to a language's sizes below its `k` largest (k = 1, 2, 3; no bootstrap)
and predicts each held-out size `h`. Its reach is `r = h / f`, with `f` the largest size it
fitted, and its error the signed relative error `e = (prediction - observed mean) /
|observed mean|`. A doubling grid (16, 32, 64, 128) gives backtests at 2x, 4x and 8x.

- **Error per unit of growth.** `e / g(r)` is the error scaled by how far the backtest
  reached (`g(r) = log2(r) ** REACH_POWER`, `fits.predictive.reach_growth`: 1 at 2x); its
  root mean square, weighting each backtest by `g(r)` (the far ones count most), is a law's
  `score` for a language. The relative error a prediction carries at reach `R` beyond the
  sweep is then modelled as normal with sd `reach_sd * g(R)` (`fits.predictive`).
- **Calibration.** A law's `reach_sd` for a language is its own backtests shrunk toward every
  language's (`PRIOR_BACKTESTS` pseudo-backtests at the pooled value), so one lucky backtest
  does not make a band zero-width. A law no language could backtest takes the largest pooled
  value of the laws that could; with no backtest at all `DEFAULT_REACH_SD` stands in, and the
  calibration says so.
- **Weights.** Every candidate law with a score gets weight proportional to `score**-2`
  (inverse variance); weights under `MIN_WEIGHT` are dropped and the rest renormalised. The
  law with the largest weight is the point law `--law auto` reports.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from fits.bootstrap import language_rng
from fits.predictive import Anchor, Component, Predictive, antithetic_normals, reach_growth
from fits.selection import holdout_fits

if TYPE_CHECKING:
    from fits.data import Points
    from fits.fitting import FitOptions
    from fits.result import FitResult

DEPTHS = (1, 2, 3)  # how many of the largest sizes each backtest holds out
PRIOR_BACKTESTS = 2.0  # pseudo-backtests at the pooled error a language's own are shrunk toward
DEFAULT_REACH_SD = 0.02  # relative error at 2x reach when nothing could be backtested
MIN_WEIGHT = 0.05  # mixture weights below this are dropped
_MIN_GROWTH = 0.25  # floor of g(r) in the scaling, so a backtest at 1.1x is not blown up


@dataclass(frozen=True)
class Backtest:
    """One law's prediction of one held-out size from the sizes below it.

    Attributes:
        law: the law backtested.
        depth: how many of the largest sizes were held out.
        fitted_max: the largest size fitted, in examples.
        held: the held-out size predicted, in examples.
        error: signed relative error (prediction - observed mean) / |observed mean|.
    """

    law: str
    depth: int
    fitted_max: float
    held: float
    error: float

    @property
    def reach(self) -> float:
        """Held-out size / largest fitted size."""
        return self.held / self.fitted_max

    @property
    def growth(self) -> float:
        """`g(reach)` (`fits.predictive.reach_growth`), floored at `_MIN_GROWTH`."""
        return max(float(reach_growth(self.reach)), _MIN_GROWTH)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "depth": self.depth,
            "fitted_max": self.fitted_max,
            "held": self.held,
            "reach": round(self.reach, 4),
            "error": self.error,
        }


def run_backtests(
    points_by_language: dict[str, Points],
    laws: tuple[str, ...],
    *,
    higher_is_better: bool,
    share: tuple[str, ...] = (),
    options: FitOptions | None = None,
    depths: tuple[int, ...] = DEPTHS,
) -> dict[str, dict[str, list[Backtest]]]:
    """Every law's backtests for every language: `backtests[language][law]`."""
    out: dict[str, dict[str, list[Backtest]]] = {
        lang: {law: [] for law in laws} for lang in points_by_language
    }
    for law in laws:
        for depth in depths:
            held = holdout_fits(
                points_by_language,
                law,
                higher_is_better=higher_is_better,
                n_holdout=depth,
                share=share,
                options=options,
            )
            for lang, (fit, sizes, _) in held.items():
                if fit is None:
                    continue
                pts = points_by_language[lang]
                for size in sizes:
                    observed = float(pts.y[pts.d == size].mean())
                    predicted = float(fit(np.array([size]))[0])
                    error = (predicted - observed) / max(abs(observed), 1e-12)
                    if math.isfinite(error):
                        out[lang][law].append(Backtest(law, depth, fit.d_max, size, error))
    return out


def _squared_scaled(tests: list[Backtest]) -> tuple[float, float]:
    """Sum of g(r)-weighted squared scaled errors, and the sum of the weights."""
    num = sum(t.growth * (t.error / t.growth) ** 2 for t in tests)
    return num, sum(t.growth for t in tests)


def score(tests: list[Backtest]) -> float:
    """Root mean square scaled error `e / g(r)`, weighting each backtest by `g(r)`."""
    num, den = _squared_scaled(tests)
    return math.sqrt(num / den) if den > 0 else math.nan


@dataclass(frozen=True)
class ReachCalibration:
    """What the backtests say: per-law pooled errors and per-language scores and weights.

    Attributes:
        backtests: `backtests[language][law]`.
        pooled_sd: each law's scaled error (at 2x) over every language's backtests (NaN: none).
    """

    backtests: dict[str, dict[str, list[Backtest]]]
    pooled_sd: dict[str, float]

    @classmethod
    def from_backtests(cls, backtests: dict[str, dict[str, list[Backtest]]]) -> ReachCalibration:
        by_law: dict[str, list[Backtest]] = defaultdict(list)
        for per_law in backtests.values():
            for law, tests in per_law.items():
                by_law[law].extend(tests)
        return cls(backtests, {law: score(tests) for law, tests in by_law.items()})

    def scores(self, language: str) -> dict[str, float]:
        """Each law's score for a language (NaN: no backtest)."""
        return {law: score(tests) for law, tests in self.backtests[language].items()}

    def weights(self, language: str, usable: tuple[str, ...] | None = None) -> dict[str, float]:
        """Mixture weights over the laws with a score (and in `usable`, when given), largest
        first; empty when no law has one."""
        scores = {
            law: s
            for law, s in self.scores(language).items()
            if math.isfinite(s) and (usable is None or law in usable)
        }
        if not scores:
            return {}
        best = min(scores.values())
        floor = max(best, 1e-6) * 1e-3  # a perfect backtest must not take every weight alone
        raw = {law: 1.0 / max(s, floor) ** 2 for law, s in scores.items()}
        total = sum(raw.values())
        kept = {law: w / total for law, w in raw.items() if w / total >= MIN_WEIGHT}
        total = sum(kept.values())
        return dict(sorted(((law, w / total) for law, w in kept.items()), key=lambda x: -x[1]))

    def reach_sd(self, language: str, law: str) -> tuple[float, str]:
        """The relative error (sd at 2x reach) a law's predictions carry for a language, and
        where it comes from."""
        pooled = self.pooled_sd.get(law, math.nan)
        source = "pooled over languages"
        if not math.isfinite(pooled):
            known = [s for s in self.pooled_sd.values() if math.isfinite(s)]
            if not known:
                return DEFAULT_REACH_SD, (
                    "default: the sweep has too few sizes to backtest any law; add sizes "
                    "to calibrate the bands"
                )
            pooled, source = max(known), "the largest of the other laws' backtests"
        own = self.backtests.get(language, {}).get(law, [])
        num, den = _squared_scaled(own)
        sd = math.sqrt((num + PRIOR_BACKTESTS * pooled**2) / (den + PRIOR_BACKTESTS))
        if own:
            source = f"{len(own)} own backtest(s) shrunk toward {source}"
        return sd, source


def anchor_of(points: Points) -> Anchor | None:
    """The untuned anchor of a language's runs, or None without a zero-data run."""
    zero = points.d == 0
    positive = points.d[points.d > 0]
    if not zero.any() or positive.size == 0:
        return None
    return Anchor(float(positive.min()), float(points.y[zero].mean()))


def build_predictive(
    points: Points,
    fits_by_law: dict[str, FitResult],
    weights: dict[str, float],
    calibration: ReachCalibration,
    *,
    n_draws: int,
    seed: int,
    higher_is_better: bool,
) -> Predictive:
    """One language's predictive mixture from its full fits (each with bootstrap draws).

    Args:
        points: the language's runs (for the anchor and the largest size).
        fits_by_law: a successful full fit per law of the mixture.
        weights: the mixture weights (`ReachCalibration.weights`), over `fits_by_law`'s laws.
        calibration: the backtests' reach errors.
        n_draws: draws in all (even; each component's share rounded to whole pairs).
        seed: the fit's seed (the reach normals depend on it and the language only).
        higher_is_better: the metric's direction.
    """
    language = points.language
    pairs = _pair_counts(weights, n_draws // 2)
    rng = language_rng(seed + 7919, language)
    components, notes = [], {}
    for law, weight in weights.items():
        fit = fits_by_law[law]
        reach_sd, source = calibration.reach_sd(language, law)
        notes[law] = {
            "reach_sd_at_2x": reach_sd,
            "source": source,
            "backtests": [
                t.to_dict() for t in calibration.backtests.get(language, {}).get(law, [])
            ],
        }
        n_pairs = min(pairs[law], fit.n_draws)
        draws = {k: tuple(x for x in v[:n_pairs] for _ in range(2)) for k, v in fit.draws.items()}
        components.append(
            Component(
                law=law,
                weight=weight,
                draws=draws,
                fixed=dict(fit.fixed),
                reach_sd=reach_sd,
                z=antithetic_normals(n_pairs, rng),
            )
        )
    positive = points.d[points.d > 0]
    d_max = float(positive.max()) if positive.size else 1.0
    return Predictive(
        tuple(components),
        d_max,
        anchor_of(points),
        higher_is_better=higher_is_better,
        calibration={"laws": notes},
    )


def _pair_counts(weights: dict[str, float], n_pairs: int) -> dict[str, int]:
    """Whole pairs per law in proportion to the weights, summing to `n_pairs` (largest
    remainder)."""
    if not weights:
        return {}
    exact = {law: w * n_pairs for law, w in weights.items()}
    counts = {law: math.floor(x) for law, x in exact.items()}
    order = sorted(exact, key=lambda law: counts[law] - exact[law])
    for law in order[: n_pairs - sum(counts.values())]:
        counts[law] += 1
    return counts
