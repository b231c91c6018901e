"""Model selection by held-out extrapolation error, fallbacks, and never dropping a language."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fits import LAWS
from fits.data import Points
from fits.fitting import FitOptions
from fits.pipeline import FitRequest, fit_all
from fits.reach import run_backtests
from fits.selection import holdout_split
from muit_core import FitError

FAST = FitOptions(n_bootstrap=20)
SIZES = 2.0 ** np.arange(6, 14)  # 64 .. 8192


def points_from(
    law: str, truth: dict[str, float], language: str, sizes: np.ndarray = SIZES, seed: int = 0
) -> Points:
    d = np.repeat(sizes, 3)
    y = LAWS[law](d, **truth) * np.exp(np.random.default_rng(seed).normal(0.0, 0.005, d.size))
    return Points(language, d, y, np.tile([0, 1, 2], sizes.size), np.full(d.size, 1e8))


def test_holdout_split_keeps_the_smaller_sizes() -> None:
    pts = points_from("power", {"e": 1.8, "b": 40.0, "beta": 0.45}, "de")
    train, held = holdout_split(pts, 2)
    assert held == (4096.0, 8192.0)
    assert train is not None and train.d.max() == 2048.0
    none_left, held = holdout_split(pts.select(pts.d <= 128), 2)
    assert none_left is None and held == (64.0, 128.0)


def test_auto_reports_every_candidate_and_picks_the_smallest_error() -> None:
    points = {
        "de": points_from("power", {"e": 1.8, "b": 40.0, "beta": 0.45}, "de", seed=1),
        "hi": points_from("power", {"e": 2.2, "b": 60.0, "beta": 0.35}, "hi", seed=2),
    }
    laws = fit_all(
        points, FitRequest(law="auto", options=FAST), metric="heldout_ce", higher_is_better=False
    )
    for fit in laws.fits.values():
        extrap = fit.diagnostics["extrapolation"]
        assert set(extrap) == {"power", "saturating", "loglinear", "similarity"}
        errors = {law: e["error"] for law, e in extrap.items()}
        assert all(e is not None for e in errors.values())
        per_doubling = fit.diagnostics["backtest_error_at_2x"]
        assert fit.law == min(per_doubling, key=lambda law: per_doubling[law])
        assert per_doubling["loglinear"] > per_doubling["power"]  # log-linear misses the floor
        assert fit.diagnostics["selection"].startswith("auto: smallest backtest error")
        assert fit.success and fit.n_draws == 20


def test_auto_falls_back_and_never_drops_a_language() -> None:
    points = {
        "de": points_from("power", {"e": 1.8, "b": 40.0, "beta": 0.45}, "de"),
        "om": points_from("power", {"e": 2.0, "b": 50.0, "beta": 0.4}, "om", sizes=SIZES[:2]),
    }
    laws = fit_all(points, FitRequest(options=FAST), metric="heldout_ce", higher_is_better=False)
    assert set(laws.fits) == {"de", "om"}
    om = laws.fits["om"]
    assert om.success and om.law == "similarity"
    assert "no candidate law could be checked" in om.diagnostics["selection"]
    assert all(
        e["error"] is None and e["message"] for e in om.diagnostics["extrapolation"].values()
    )


def test_single_language_with_one_size_is_reported_as_failed() -> None:
    points = {
        "om": points_from("power", {"e": 2.0, "b": 50.0, "beta": 0.4}, "om", sizes=SIZES[:1])
    }
    laws = fit_all(points, FitRequest(options=FAST), metric="heldout_ce", higher_is_better=False)
    fit = laws.fits["om"]
    assert not fit.success
    assert "1 distinct size" in fit.message
    assert math.isnan(fit.params["a"])


def test_named_law_falls_back_to_a_simpler_one_with_a_message() -> None:
    points = {
        "de": points_from(
            "saturating", {"s_max": 1.7, "a": -40.0, "d0": 50.0, "alpha": 0.5}, "de"
        ),
        "hi": points_from("power", {"e": 2.0, "b": 50.0, "beta": 0.4}, "hi", sizes=SIZES[:3]),
    }
    laws = fit_all(
        points,
        FitRequest(law="saturating", options=FAST),
        metric="heldout_ce",
        higher_is_better=False,
    )
    assert laws.fits["de"].law == "saturating"
    hi = laws.fits["hi"]
    assert hi.law == "power" and hi.success
    assert hi.message.startswith("fell back from saturating to power: 3 distinct sizes")


def test_named_law_with_too_few_sizes_everywhere_is_an_error() -> None:
    points = {
        "de": points_from("power", {"e": 2.0, "b": 50.0, "beta": 0.4}, "de", sizes=SIZES[:3])
    }
    with pytest.raises(FitError, match="No language has enough data for the saturating law"):
        fit_all(
            points,
            FitRequest(law="saturating", options=FAST),
            metric="heldout_ce",
            higher_is_better=False,
        )


def test_backtest_error_is_signed_relative_error_at_the_held_out_size() -> None:
    truth = {"a": 10.0, "b": 5.0}
    d = np.repeat(SIZES, 2)
    y = LAWS["loglinear"](d, **truth)
    y[d == SIZES[-1]] *= 1.1  # the largest size sits 10% above the law
    pts = Points("de", d, y, np.tile([0, 1], SIZES.size), np.full(d.size, 1e8))
    tests = run_backtests({"de": pts}, ("loglinear",), higher_is_better=True, depths=(1,))
    (only,) = tests["de"]["loglinear"]
    assert only.held == SIZES[-1] and only.fitted_max == SIZES[-2]
    assert only.error == pytest.approx(-0.1 / 1.1, rel=1e-4)  # signed: the law is below
