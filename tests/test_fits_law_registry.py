"""A law is one registry entry: a law registered here, and nowhere else, works everywhere.

The fixture law `exp`, `S(d) = s_max - a * exp(-d / d0)`, is finite at d = 0 (so it uses the
untuned model's zero-data point). Registered in one `LawInfo` inside this file, it is fitted,
chosen by `--law auto`, bootstrapped, written to and read from a laws file, offered by
`plan-fit --law`, and allocated by `plan-allocate`. The fixture unregisters it afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.typing import ArrayLike, NDArray

from fits import (
    LAW_INFO,
    LAWS,
    Box,
    FitResult,
    LawData,
    LawInfo,
    LawsFile,
    read_laws,
    register_law,
    unregister_law,
    write_laws,
)
from fits.cli import build_parser
from fits.cli import main as plan_fit
from fits.data import Points
from fits.fitting import FitOptions, fit_languages, fit_law
from fits.pipeline import FitRequest, fit_all
from fits.report import format_table
from fits.space import asymptote_box, asymptote_grid, finite_rows, least_squares_scale
from muit_core import FitError
from planner.cli import main as plan_allocate


def exp_law(d: ArrayLike, s_max: ArrayLike, a: ArrayLike, d0: ArrayLike) -> NDArray[np.float64]:
    """Exponential approach to a ceiling: `S(d) = s_max - a * exp(-d / d0)`.

    Args:
        d: data size (training examples), `d >= 0`.
        s_max: ceiling the score approaches.
        a: gap to the ceiling at `d = 0` (`a > 0` for a score).
        d0: data scale of the approach, `d0 > 0`.
    """
    d, s_max, a, d0 = (np.asarray(x, dtype=np.float64) for x in (d, s_max, a, d0))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return s_max - a * np.exp(-d / d0)


def exp_boxes(data: LawData) -> dict[str, Box]:
    d_top = float(data.d.max()) if data.d.size else 1.0
    return {
        "s_max": asymptote_box(data.y, data.higher_is_better, data.ceiling),
        "a": Box.scale(not data.higher_is_better),
        "d0": Box.scale(False, 1e-2, 100.0 * max(d_top, 1.0)),
    }


def exp_starts(data: LawData) -> NDArray[np.float64]:
    d_top = float(data.d.max()) if data.d.size else 1.0
    rows = []
    for s_max, d0 in product(
        asymptote_grid(data.y, data.higher_is_better, data.ceiling),
        d_top * np.array([0.01, 0.05, 0.2, 1.0]),
    ):
        x = np.exp(-data.d / d0)
        rows.append([s_max, least_squares_scale(x, s_max - data.y, -data.down), d0])
    return finite_rows(rows)


EXP = LawInfo(
    "exp",
    exp_law,
    ("s_max", "a", "d0"),
    "S(d) = s_max - a * exp(-d / d0)",
    boxes=exp_boxes,
    start_grid=exp_starts,
    uses_zero_data=True,
    candidate=True,
    simpler="loglinear",
)
TRUTH = {
    "de": {"s_max": 60.0, "a": 40.0, "d0": 1500.0},
    "hi": {"s_max": 45.0, "a": 35.0, "d0": 2500.0},
}
SIZES = np.concatenate([[0.0], 2.0 ** np.arange(6, 14)])  # 0 (untuned), 64 .. 8192
SEEDS = 3
RTOL = {"s_max": 0.01, "a": 0.015, "d0": 0.02}  # about twice the worst error over 8 seeds


@pytest.fixture
def exp_registered() -> Iterator[LawInfo]:
    info = register_law(EXP)
    yield info
    unregister_law("exp")


def exp_points(language: str, seed: int = 0, noise: float = 0.003) -> Points:
    """Runs at `SIZES`, `SEEDS` per size, with multiplicative noise."""
    rng = np.random.default_rng(seed)
    d = np.repeat(SIZES, SEEDS)
    y = exp_law(d, **TRUTH[language]) * np.exp(rng.normal(0.0, noise, d.size))
    return Points(language, d, y, np.tile(np.arange(SEEDS), SIZES.size), np.full(d.size, 1.35e8))


def assert_recovers(fit: FitResult, truth: dict[str, float]) -> None:
    assert fit.success, fit.message
    for name, value in truth.items():
        assert fit.params[name] == pytest.approx(value, rel=RTOL[name]), name


def test_registering_makes_the_law_known_everywhere(exp_registered: LawInfo) -> None:
    assert LAWS["exp"] is exp_law and LAW_INFO["exp"] is exp_registered
    assert list(LAWS)[-1] == "exp"
    assert "exp" in build_parser().parse_args(["results.csv", "--law", "exp"]).law
    assert FitRequest(law="exp").law == "exp"


def test_a_duplicate_name_or_a_bad_entry_is_refused(exp_registered: LawInfo) -> None:
    with pytest.raises(FitError, match="A law named 'exp' is already registered"):
        register_law(EXP)
    with pytest.raises(FitError, match="func must accept d, s_max, a, d0, tau"):
        LawInfo("exp2", exp_law, ("s_max", "a", "d0", "tau"), "-", boxes=exp_boxes)
    with pytest.raises(FitError, match="needs a start_grid"):
        LawInfo("exp3", exp_law, ("s_max", "a", "d0"), "-", boxes=exp_boxes)


def test_views_are_read_only_and_the_fixture_cleans_up() -> None:
    assert "exp" not in LAWS and "exp" not in LAW_INFO
    with pytest.raises(TypeError):
        LAWS["exp"] = exp_law  # type: ignore[index]
    with pytest.raises(TypeError):
        LAW_INFO["exp"] = EXP  # type: ignore[index]
    with pytest.raises(FitError, match="No law named 'exp' is registered"):
        unregister_law("exp")


@pytest.mark.parametrize("seed", [0, 1])
def test_fit_law_recovers_known_parameters(exp_registered: LawInfo, seed: int) -> None:
    points = exp_points("de", seed=seed)
    fit = fit_law(points, "exp", higher_is_better=True, options=FitOptions(n_bootstrap=0))
    assert fit.n_points == len(points)  # the zero-data points are fitted too
    assert_recovers(fit, TRUTH["de"])


def test_fit_languages_recovers_every_language(exp_registered: LawInfo) -> None:
    points = {lang: exp_points(lang, seed=i) for i, lang in enumerate(TRUTH)}
    fits = fit_languages(points, "exp", higher_is_better=True, options=FitOptions(n_bootstrap=0))
    for lang, truth in TRUTH.items():
        assert_recovers(fits[lang], truth)


def test_bootstrap_draws_and_intervals_contain_the_truth(exp_registered: LawInfo) -> None:
    points = exp_points("de", seed=3)
    fit = fit_law(points, "exp", higher_is_better=True, options=FitOptions(n_bootstrap=200))
    assert fit.n_draws > 150
    for name, value in TRUTH["de"].items():
        low, high = fit.param_interval(name, 0.95)
        assert low <= value <= high, name
    sizes = np.array([100.0, 1000.0, 5000.0])
    low, high = fit.interval(sizes, 0.95)
    truth = exp_law(sizes, **TRUTH["de"])
    assert np.all(low <= truth) and np.all(truth <= high)


def test_auto_selects_it_on_data_generated_from_it(exp_registered: LawInfo) -> None:
    points = {lang: exp_points(lang, seed=i) for i, lang in enumerate(TRUTH)}
    laws = fit_all(
        points,
        FitRequest(law="auto", options=FitOptions(n_bootstrap=20)),
        metric="chrf",
        higher_is_better=True,
    )
    for fit in laws.fits.values():
        assert "exp" in fit.diagnostics["extrapolation"]
        assert fit.law == "exp", fit.diagnostics["extrapolation"]
        assert fit.success and fit.n_draws > 0


def test_report_and_laws_file_show_it(exp_registered: LawInfo, tmp_path: Path) -> None:
    fits = fit_languages(
        {lang: exp_points(lang, seed=i) for i, lang in enumerate(TRUTH)},
        "exp",
        higher_is_better=True,
        options=FitOptions(n_bootstrap=20),
    )
    path = write_laws(
        LawsFile(metric="chrf", higher_is_better=True, fits=fits), tmp_path / "l.json"
    )
    back = read_laws(path)
    for lang, fit in back.fits.items():
        assert fit.law == "exp" and fit.formula == EXP.formula
        assert fit.params == pytest.approx(fits[lang].params)
        assert fit(np.array([1000.0]))[0] == pytest.approx(fits[lang](np.array([1000.0]))[0])
    rows = [line.split()[:2] for line in format_table(back).splitlines()]
    assert all([lang, "exp"] in rows for lang in TRUTH)


def write_results_csv(path: Path) -> Path:
    """A results table (contract 3) of chrF runs from the `exp` law."""
    rows = []
    for i, lang in enumerate(TRUTH):
        points = exp_points(lang, seed=i)
        for d, y, seed in zip(points.d, points.y, points.seed, strict=True):
            rows.append(
                {
                    "language": lang,
                    "n_examples": int(d),
                    "seed": int(seed),
                    "model": "tiny",
                    "n_params": 1.35e8,
                    "objective": "sft",
                    "metric": "chrf",
                    "value": float(y),
                    "higher_is_better": True,
                    "train_tokens": int(d * 40),
                    "wall_s": 1.0,
                    "n_available": 40_000,
                }
            )
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_plan_fit_and_plan_allocate_use_it(
    exp_registered: LawInfo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = write_results_csv(tmp_path / "results.csv")
    argv = [str(csv), "--metric", "chrf", "--law", "exp", "--bootstrap", "30", "--no-plots"]
    assert plan_fit([*argv, "--out", str(tmp_path / "fits")]) == 0
    laws = read_laws(tmp_path / "fits" / "laws.json")
    assert {fit.law for fit in laws.fits.values()} == {"exp"}
    assert "exp" in capsys.readouterr().out

    budget = 20_000
    plan = tmp_path / "plan"
    argv = [str(tmp_path / "fits" / "laws.json"), "--budget", "20k", "--out", str(plan)]
    assert plan_allocate([*argv, "--no-plots"]) == 0
    mixture = json.loads((plan / "mixture.json").read_text())
    amounts = [entry["examples"] for entry in mixture["languages"].values()]
    assert set(mixture["languages"]) == set(TRUTH)
    assert sum(amounts) == budget and all(np.isfinite(amounts)) and min(amounts) >= 0
    for entry in mixture["languages"].values():
        assert np.isfinite(entry["predicted"]["value"])
