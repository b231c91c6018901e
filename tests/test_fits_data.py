"""Bad input gets a clear error; noisy, non-monotone and below-base points still fit, flagged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fits.data import (
    REQUIRED_COLUMNS,
    metric_direction,
    points_by_language,
    read_results,
    select_metric,
)
from fits.fitting import FitOptions, fit_languages, fit_law
from fits.synthetic import synthetic_results
from muit_core import DataError, FitError


@pytest.fixture
def frame() -> pd.DataFrame:
    return synthetic_results(languages=("de", "km"), metrics=("heldout_ce", "chrf"))


def write(frame: pd.DataFrame, tmp_path: Path) -> Path:
    path = tmp_path / "results.csv"
    frame.to_csv(path, index=False)
    return path


def test_reads_a_synthetic_table_and_carries_pool_facts(
    frame: pd.DataFrame, tmp_path: Path
) -> None:
    table = read_results(write(frame, tmp_path))
    rows = select_metric(table, "heldout_ce")
    points = points_by_language(rows, "sft", "SmolLM2-135M-Instruct")
    assert list(points) == ["de", "km"]
    assert len(points["de"]) == 8 * 3
    assert points["de"].data == {
        "n_available": 33_900,
        "tokens_per_example": pytest.approx(points["de"].data["tokens_per_example"]),
        "corpus": "libreoffice",
        "pair_filter": "min_words=4,max_words=80,heldout_fraction=0.1",
    }


def test_missing_columns_are_named(frame: pd.DataFrame, tmp_path: Path) -> None:
    path = write(frame.drop(columns=["seed", "value"]), tmp_path)
    with pytest.raises(DataError, match="lacks the column\\(s\\) seed, value"):
        read_results(path)


def test_missing_file_and_empty_table(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="No results table"):
        read_results(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text(",".join(REQUIRED_COLUMNS) + "\n")
    with pytest.raises(DataError, match="has no rows"):
        read_results(tmp_path / "empty.csv")


def test_metric_not_in_file_lists_the_present_ones(frame: pd.DataFrame) -> None:
    with pytest.raises(
        DataError, match="Metric 'bleu' is not in the results table; it has: chrf, heldout_ce"
    ):
        select_metric(frame, "bleu")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_raise_unless_dropped(frame: pd.DataFrame, bad: float) -> None:
    broken = frame.copy()
    broken.loc[3, "value"] = bad
    metric = broken.loc[3, "metric"]
    with pytest.raises(DataError, match=r"NaN or inf .* --drop-nonfinite"):
        select_metric(broken, metric)
    kept = select_metric(broken, metric, drop_nonfinite=True)
    assert len(kept) == (frame["metric"] == metric).sum() - 1


def test_direction_known_for_sweep_metrics_and_read_for_others(frame: pd.DataFrame) -> None:
    assert metric_direction(frame, "heldout_ce") is False
    assert metric_direction(frame, "chrf") is True
    other = frame.assign(metric="comet", higher_is_better="true")
    assert metric_direction(other, "comet") is True


def test_too_few_distinct_sizes_is_a_clear_error(frame: pd.DataFrame) -> None:
    rows = select_metric(frame, "heldout_ce")
    rows = rows[rows["n_examples"].isin([0, 64, 128])]
    points = points_by_language(rows, "sft")
    with pytest.raises(
        FitError,
        match=r"2 distinct sizes \(64, 128\) is fewer than the 3 parameters of the power law",
    ):
        fit_languages(points, "power", higher_is_better=False)
    with pytest.raises(FitError, match=r"3 distinct sizes .* fewer than the 4 parameters"):
        fit_law(points["de"], "saturating", higher_is_better=False)


def test_zero_data_runs_are_excluded_from_log_laws_with_a_note(frame: pd.DataFrame) -> None:
    points = points_by_language(select_metric(frame, "heldout_ce"), "sft")
    fit = fit_law(points["de"], "power", higher_is_better=False, options=FitOptions(n_bootstrap=0))
    assert fit.n_points == 7 * 3 and fit.d_min == 64
    assert "excluded 3 zero-data (untuned model) run(s)" in fit.diagnostics["notes"][0]
    kept = fit_law(
        points["de"], "saturating", higher_is_better=False, options=FitOptions(n_bootstrap=0)
    )
    assert kept.n_points == 8 * 3 and kept.d_min == 0


def test_noisy_non_monotone_and_below_base_points_still_fit_with_flags(
    frame: pd.DataFrame,
) -> None:
    points = points_by_language(select_metric(frame, "chrf"), "sft")
    km = points["km"]  # the synthetic table makes km's smallest size score below the base model
    rng = np.random.default_rng(0)
    noisy_y = km.y * np.exp(rng.normal(0.0, 0.08, km.y.size))
    noisy_y[km.d == 2048] = noisy_y[km.d == 512]  # a larger size scoring lower: non-monotone
    noisy = type(km)("km", km.d, noisy_y, km.seed, km.n, km.data)
    fit = fit_law(noisy, "saturating", higher_is_better=True, options=FitOptions(n_bootstrap=0))
    assert fit.success
    assert {"below_base", "non_monotone", "noisy"} <= set(fit.diagnostics["flags"])
