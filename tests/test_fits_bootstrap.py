"""Bootstrap over runs: seeded, per-language reproducible, aligned across a pooled fit."""

from __future__ import annotations

import numpy as np
import pytest

from fits import LAWS
from fits.bootstrap import language_rng, resample_counts
from fits.data import Points
from fits.fitting import FitOptions, fit_languages, fit_law
from fits.pooled import fit_pooled

SIZES = np.repeat(2.0 ** np.arange(6, 13), 3)  # 64 .. 4096, three seeds each


def power_points(language: str, seed: int, noise: float = 0.01) -> Points:
    y = LAWS["power"](SIZES, e=1.8, b=40.0, beta=0.45)
    y = y * np.exp(np.random.default_rng(seed).normal(0.0, noise, SIZES.size))
    return Points(language, SIZES, y, np.tile([0, 1, 2], 7), np.full(SIZES.size, 1e8))


def test_resample_counts_keep_enough_sizes() -> None:
    counts, usable = resample_counts(SIZES, 500, language_rng(0, "de"), min_sizes=3)
    assert counts.shape == (500, SIZES.size) and usable.all()
    np.testing.assert_array_equal(counts.sum(axis=1), SIZES.size)
    few = np.array([1.0, 2.0, 3.0])
    counts, usable = resample_counts(few, 200, language_rng(0, "de"), min_sizes=3)
    # Only the identity draw keeps 3 sizes; a few draws miss it even after redrawing.
    assert usable.mean() > 0.9 and (counts[usable] == 1).all()


def test_draws_are_seeded_and_independent_of_other_languages() -> None:
    options = FitOptions(n_bootstrap=100, seed=3)
    alone = fit_law(power_points("de", 1), "power", higher_is_better=False, options=options)
    again = fit_law(power_points("de", 1), "power", higher_is_better=False, options=options)
    both = fit_languages(
        {"de": power_points("de", 1), "hi": power_points("hi", 2)},
        "power",
        higher_is_better=False,
        options=options,
    )
    assert alone.draws == again.draws
    # Same resamples; the optimiser's stopping point may differ in the last digits.
    np.testing.assert_allclose(alone.draws["beta"], both["de"].draws["beta"], rtol=1e-6)
    other_seed = fit_law(
        power_points("de", 1),
        "power",
        higher_is_better=False,
        options=FitOptions(n_bootstrap=100, seed=4),
    )
    assert other_seed.draws["beta"] != alone.draws["beta"]


def test_intervals_cover_the_truth_and_stderr_is_finite() -> None:
    fit = fit_law(
        power_points("de", 5), "power", higher_is_better=False, options=FitOptions(n_bootstrap=300)
    )
    assert fit.n_draws == 300 and fit.diagnostics["bootstrap"]["kept"] == 300
    for name, value in {"e": 1.8, "b": 40.0, "beta": 0.45}.items():
        low, high = fit.param_interval(name, level=0.95)
        assert low <= value <= high, name
        assert 0 < fit.stderr[name] < abs(value)
    low, high = fit.interval([1e5], level=0.9)
    truth = float(LAWS["power"](1e5, e=1.8, b=40.0, beta=0.45))
    assert low[0] <= truth <= high[0]


def test_pooled_draws_are_aligned_across_languages() -> None:
    truth = {"s_max": 60.0, "a": 400.0, "alpha": 0.4}
    points = {}
    for i, (lang, gamma) in enumerate({"de": 1.0, "hi": 0.2, "tr": 0.5}.items()):
        y = LAWS["similarity"](SIZES, gamma=gamma, **truth)
        y = y * np.exp(np.random.default_rng(i).normal(0.0, 0.01, SIZES.size))
        points[lang] = Points(lang, SIZES, y, np.tile([0, 1, 2], 7), np.full(SIZES.size, 1e8))
    pooled = fit_pooled(
        points, "similarity", higher_is_better=True, options=FitOptions(n_bootstrap=60)
    )
    fits = pooled.fits
    assert {fit.n_draws for fit in fits.values()} == {60}
    for name in ("s_max", "a", "alpha"):
        np.testing.assert_allclose(fits["de"].draws[name], fits["hi"].draws[name])
        np.testing.assert_allclose(fits["de"].draws[name], fits["tr"].draws[name])
    assert set(fits["de"].draws["gamma"]) == {1.0}  # the reference language
    assert pooled.entry["n_draws"] == 60
    low, high = fits["hi"].param_interval("gamma", level=0.95)
    assert low <= 0.2 <= high


@pytest.mark.slow
def test_full_default_bootstrap_of_fifty_languages_is_fast() -> None:
    import time

    points = {f"l{i}": power_points(f"l{i}", i) for i in range(50)}
    start = time.perf_counter()
    fits = fit_languages(points, "power", higher_is_better=False, options=FitOptions())
    assert time.perf_counter() - start < 30
    assert all(fit.n_draws == 1000 for fit in fits.values())
