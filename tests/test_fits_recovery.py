"""Fits recover known parameters from synthetic data, for every law, within stated tolerances.

Tolerances are relative (`rtol`) and were set at about twice the worst error seen over eight
noise seeds, so they test the fitting, not the luck of one draw.
"""

from __future__ import annotations

import numpy as np
import pytest

from fits import LAWS
from fits.data import Points
from fits.fitting import FitOptions, fit_law
from fits.pooled import fit_pooled

SIZES = 2.0 ** np.arange(5, 17)  # 32 .. 65536 examples
SEEDS = 3
NO_BOOTSTRAP = FitOptions(n_bootstrap=0)


def make_points(
    law: str,
    truth: dict[str, float],
    *,
    noise: float,
    seed: int,
    sizes: np.ndarray = SIZES,
    zero: bool = False,
    language: str = "xx",
) -> Points:
    """Runs at `sizes` (and 0 if `zero`), `SEEDS` per size, with multiplicative noise."""
    rng = np.random.default_rng(seed)
    grid = np.concatenate([[0.0], sizes]) if zero else sizes
    d = np.repeat(grid, SEEDS)
    y = LAWS[law](d, **truth) * np.exp(rng.normal(0.0, noise, d.size))
    return Points(language, d, y, np.tile(np.arange(SEEDS), grid.size), np.full(d.size, 1.35e8))


# law, truth, higher_is_better, uses the zero-data point, rtol per parameter
CASES = [
    (
        "power",
        {"e": 1.8, "b": 40.0, "beta": 0.45},
        False,
        False,
        {"e": 0.03, "b": 0.08, "beta": 0.04},
    ),
    (
        "saturating",
        {"s_max": 60.0, "a": 300.0, "d0": 50.0, "alpha": 0.5},
        True,
        True,
        {"s_max": 0.02, "a": 0.25, "d0": 0.2, "alpha": 0.1},
    ),
    (
        "saturating",
        {"s_max": 1.9, "a": -40.0, "d0": 80.0, "alpha": 0.4},
        False,
        True,
        {"s_max": 0.07, "a": 0.3, "d0": 0.3, "alpha": 0.12},
    ),
    ("loglinear", {"a": 10.0, "b": 5.0}, True, False, {"a": 0.08, "b": 0.02}),
]


@pytest.mark.parametrize(("law", "truth", "higher", "zero", "rtol"), CASES)
def test_recovers_parameters_from_noisy_runs(
    law: str, truth: dict[str, float], higher: bool, zero: bool, rtol: dict[str, float]
) -> None:
    points = make_points(law, truth, noise=0.01, seed=7, zero=zero)
    fit = fit_law(points, law, higher_is_better=higher, options=NO_BOOTSTRAP)
    assert fit.success, fit.message
    for name, value in truth.items():
        assert fit.params[name] == pytest.approx(value, rel=rtol[name]), name


@pytest.mark.parametrize(("law", "truth", "higher", "zero", "rtol"), CASES)
def test_noise_free_runs_give_the_exact_answer(
    law: str, truth: dict[str, float], higher: bool, zero: bool, rtol: dict[str, float]
) -> None:
    points = make_points(law, truth, noise=0.0, seed=0, zero=zero)
    fit = fit_law(points, law, higher_is_better=higher, options=NO_BOOTSTRAP)
    for name, value in truth.items():
        assert fit.params[name] == pytest.approx(value, rel=1e-4), name
    assert fit.diagnostics["residual_rms"] < 1e-6


def test_similarity_recovers_shared_exponent_and_each_gamma() -> None:
    truth = {"s_max": 60.0, "a": 400.0, "alpha": 0.4}
    gammas = {"de": 1.0, "fr": 0.6, "hi": 0.15, "km": 0.05, "zh": 0.3}
    points = {
        lang: make_points(
            "similarity", {**truth, "gamma": g}, noise=0.01, seed=i, sizes=SIZES[:8], language=lang
        )
        for i, (lang, g) in enumerate(gammas.items())
    }
    pooled = fit_pooled(points, "similarity", higher_is_better=True, options=NO_BOOTSTRAP)
    assert pooled.entry["reference_language"] == "de"
    for lang, gamma in gammas.items():
        fit = pooled.fits[lang]
        assert fit.success and fit.shared == ("s_max", "a", "alpha")
        assert fit.params["gamma"] == pytest.approx(gamma, rel=0.03), lang
        for name, value in truth.items():
            assert fit.params[name] == pytest.approx(value, rel=0.03), name


def test_similarity_lets_a_one_size_language_borrow_strength() -> None:
    truth = {"s_max": 60.0, "a": 400.0, "alpha": 0.4}
    points = {
        lang: make_points("similarity", {**truth, "gamma": g}, noise=0.005, seed=i, language=lang)
        for i, (lang, g) in enumerate({"de": 1.0, "fr": 0.5, "tr": 0.2}.items())
    }
    lone = make_points(
        "similarity", {**truth, "gamma": 0.3}, noise=0.005, seed=9, sizes=SIZES[3:4]
    )
    points["om"] = Points("om", lone.d, lone.y, lone.seed, lone.n)
    pooled = fit_pooled(points, "similarity", higher_is_better=True, options=NO_BOOTSTRAP)
    assert pooled.fits["om"].success
    assert pooled.fits["om"].params["gamma"] == pytest.approx(0.3, rel=0.05)
    assert pooled.fits["om"].n_points == 3


def test_shared_exponent_power_law_for_losses() -> None:
    floors = {"de": 1.7, "hi": 2.3, "tr": 2.0}
    points = {
        lang: make_points(
            "power", {"e": e, "b": 30.0 + 10 * i, "beta": 0.35}, noise=0.01, seed=i, language=lang
        )
        for i, (lang, e) in enumerate(floors.items())
    }
    pooled = fit_pooled(
        points, "power", share=("beta",), higher_is_better=False, options=NO_BOOTSTRAP
    )
    betas = {fit.params["beta"] for fit in pooled.fits.values()}
    assert len(betas) == 1 and betas.pop() == pytest.approx(0.35, rel=0.05)
    for lang, e in floors.items():
        assert pooled.fits[lang].params["e"] == pytest.approx(e, rel=0.03)


EPOCH = {"e": 1.817, "a": 482.0, "alpha": 0.348, "b": 2085.0, "beta": 0.366}


def test_chinchilla_recovers_the_epoch_ai_fit() -> None:
    """Epoch AI's replication of Chinchilla (Besiroglu et al. 2024), 240 runs as in their data.

    12 model sizes from 70M to 16B parameters, 20 data sizes each from 2 to 200 tokens per
    parameter, 0.5% multiplicative noise on the final loss (seed-to-seed scatter of such runs).
    """
    models = np.geomspace(7e7, 1.6e10, 12)
    n = np.repeat(models, 20)
    d = np.concatenate([np.geomspace(2 * m, 200 * m, 20) for m in models])
    rng = np.random.default_rng(0)
    y = LAWS["chinchilla"](d, n=n, **EPOCH) * np.exp(rng.normal(0.0, 0.005, d.size))
    points = Points("en", d, y, np.zeros(d.size, dtype=np.int64), n)
    fit = fit_law(points, "chinchilla", higher_is_better=False, options=NO_BOOTSTRAP)
    rtol = {"e": 0.02, "a": 0.35, "alpha": 0.07, "b": 0.1, "beta": 0.02}
    for name, value in EPOCH.items():
        assert fit.params[name] == pytest.approx(value, rel=rtol[name]), name
    assert fit.fixed == {"n": pytest.approx(1.6e10)}
    assert fit(np.array([1e12]))[0] == pytest.approx(
        float(LAWS["chinchilla"](1e12, n=1.6e10, **EPOCH)), rel=0.005
    )
