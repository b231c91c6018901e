"""The closed loop's verdict on a small validation table with known answers."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from sweeps.verdict import (
    VALIDATION_COLUMNS,
    band_coverage,
    format_verdict,
    gains,
    independence_gap,
    objective_summary,
    per_language,
    plot_objectives,
    plot_predicted_vs_actual,
)


def table() -> pd.DataFrame:
    """Two allocators x two seeds x two languages of a loss (lower is better).

    planner: el 2.0 / 2.2, hi 3.0 / 3.2 -> objectives 2.5, 2.7 (weights 1, 1)
    uniform: el 2.3 / 2.3, hi 3.1 / 3.3 -> objectives 2.7, 2.8
    """
    rows = []
    values = {
        ("planner", 0): {"el": 2.0, "hi": 3.0},
        ("planner", 1): {"el": 2.2, "hi": 3.2},
        ("uniform", 0): {"el": 2.3, "hi": 3.1},
        ("uniform", 1): {"el": 2.3, "hi": 3.3},
    }
    for (allocator, seed), by_lang in values.items():
        for lang, value in by_lang.items():
            rows.append(
                {
                    "allocator": allocator,
                    "seed": seed,
                    "language": lang,
                    "examples": 100,
                    "metric": "heldout_ce",
                    "value": value,
                    "predicted": 2.1 if lang == "el" else 3.0,
                    "low": 2.05 if lang == "el" else 2.9,
                    "high": 2.25 if lang == "el" else 3.15,
                    "weight": 1.0,
                    "higher_is_better": False,
                }
            )
    return pd.DataFrame(rows, columns=list(VALIDATION_COLUMNS))


def test_objectives_spread_and_gain() -> None:
    summary = objective_summary(table(), "heldout_ce").set_index("allocator")
    assert summary.loc["planner", "objective"] == pytest.approx(2.6)
    assert summary.loc["uniform", "objective"] == pytest.approx(2.75)
    assert summary.loc["planner", "spread"] == pytest.approx(math.sqrt(0.02))
    (verdict,) = gains(table(), "heldout_ce", False, {"uniform": 0.01})
    # Per seed: 2.7 - 2.5 = 0.2 and 2.8 - 2.7 = 0.1; positive = the planner's loss is lower.
    assert verdict.actual == pytest.approx(0.15)
    assert verdict.predicted == 0.01 and verdict.n_seeds == 2
    assert verdict.noise == pytest.approx(math.sqrt(0.02))  # the larger spread
    assert verdict.beyond_noise  # 0.15 > 0.141


def test_per_language_error_and_band() -> None:
    langs = per_language(table(), "heldout_ce").set_index(["allocator", "language"])
    el = langs.loc[("planner", "el")]
    assert el["actual"] == pytest.approx(2.1) and el["error"] == pytest.approx(0.0)
    assert el["inside"] == pytest.approx(0.5)  # 2.0 is below the band, 2.2 inside
    # Inside: planner el 2.2, hi 3.0; uniform hi 3.1 -> 3 of 8.
    assert band_coverage(table(), "heldout_ce") == (3, 8)


def test_independence_gap_per_language() -> None:
    gaps = independence_gap(table(), "heldout_ce").set_index("language")
    # el: values 2.0, 2.2, 2.3, 2.3 against 2.1 -> mean error +0.1; seed sd: planner 0.141,
    # uniform 0 -> pooled sqrt((0.02 + 0) / 2) = 0.1.
    assert gaps.loc["el", "gap"] == pytest.approx(0.1)
    assert gaps.loc["el", "seed_sd"] == pytest.approx(0.1)
    assert not gaps.loc["el", "beyond_noise"]
    text = format_verdict(table(), "heldout_ce", False, {})
    assert "Independence gap" in text and "el +0.100 (sd 0.100)" in text


def test_one_seed_has_no_noise_estimate() -> None:
    one = table()[table()["seed"] == 0]
    (verdict,) = gains(one, "heldout_ce", False, {})
    assert math.isnan(verdict.noise) and not verdict.beyond_noise
    assert math.isnan(verdict.predicted)
    text = format_verdict(one, "heldout_ce", False, {})
    assert "n/a (1 seed)" in text


def test_report_and_plots() -> None:
    text = format_verdict(table(), "heldout_ce", False, {"uniform": 0.01})
    assert "Band coverage: 3 of 8" in text and "+0.1500" in text and "+0.0100" in text
    assert plot_predicted_vs_actual(table(), "heldout_ce").axes
    assert plot_objectives(table(), "heldout_ce", False).axes


def test_a_run_without_a_prediction_shows_dashes_not_nan() -> None:
    """A drawn mixture (`--random-mixtures`) has no predicted value: its rows say '-' for the
    error and the band instead of `+nan` and `0%`."""
    drawn = table()[table()["allocator"] == "uniform"].assign(
        allocator="dirichlet-1", predicted=math.nan, low=math.nan, high=math.nan
    )
    text = format_verdict(
        pd.concat([table(), drawn]), "heldout_ce", False, {}, skip=["dirichlet-1"]
    )
    rows = [line.split() for line in text.splitlines() if line.startswith("dirichlet-1 ")]
    rows = [row for row in rows if row[1] in ("el", "hi")]  # not its objective row
    assert len(rows) == 2 and all(row[-2:] == ["-", "-"] for row in rows)
    assert "+nan" not in text
