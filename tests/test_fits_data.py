"""Bad input gets a clear error; noisy, non-monotone and below-base points still fit, flagged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fits.data import (
    REQUIRED_COLUMNS,
    Points,
    merge_duplicates,
    metric_direction,
    points_by_language,
    read_results,
    select_metric,
)
from fits.fitting import FitOptions, fit_languages, fit_law
from fits.synthetic import synthetic_results
from muit_core import ConfigError, DataError, FitError


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


def read_back(frame: pd.DataFrame, tmp_path: Path) -> pd.DataFrame:
    """`frame` as `plan-fit` sees it: written to CSV and read with `read_results`."""
    return read_results(write(frame, tmp_path))


@pytest.mark.parametrize(
    ("column", "text"), [("value", "abc"), ("n_examples", "64k"), ("seed", "one")]
)
def test_text_in_a_numeric_column_is_named_with_its_line(
    frame: pd.DataFrame, tmp_path: Path, column: str, text: str
) -> None:
    broken = frame.astype({column: object})
    broken.loc[3, column] = text
    table = read_back(broken, tmp_path)
    with pytest.raises(DataError, match=rf"column '{column}' holds text .*'{text}' \(line 5\)"):
        select_metric(table, str(frame.loc[3, "metric"]), drop_nonfinite=True)


@pytest.mark.parametrize(
    ("metric", "value", "bound"), [("heldout_ce", -0.5, "0 to inf"), ("chrf", 120.0, "0 to 100")]
)
def test_values_outside_the_metric_range_are_refused_naming_the_rows(
    frame: pd.DataFrame, tmp_path: Path, metric: str, value: float, bound: str
) -> None:
    broken = frame.copy()
    index = int(broken.index[broken["metric"] == metric][4])
    broken.loc[index, "value"] = value
    row = broken.loc[index]
    with pytest.raises(
        DataError,
        match=rf"1 row\(s\) of '{metric}' lie outside the range it can take \({bound} .*"
        rf"{row['language']}@{row['n_examples']}/seed {row['seed']}: value {value:g} "
        rf"\(line {index + 2}\)",
    ):
        select_metric(read_back(broken, tmp_path), metric)


@pytest.mark.parametrize("change", [0.0, 0.3], ids=["equal", "conflicting"])
def test_a_run_given_twice_is_refused_or_averaged_when_asked(
    frame: pd.DataFrame, tmp_path: Path, change: float
) -> None:
    rows = frame[frame["metric"] == "heldout_ce"]
    extra = rows.iloc[[5]].assign(value=rows.iloc[5]["value"] + change)
    table = read_back(pd.concat([rows, extra], ignore_index=True), tmp_path)
    selected = select_metric(table, "heldout_ce")
    first = rows.iloc[5]
    with pytest.raises(
        DataError,
        match=rf"1 run\(s\) of 'heldout_ce' appear more than once: "
        rf"{first['language']}@{first['n_examples']}/seed {first['seed']} of "
        rf"sft/SmolLM2-135M-Instruct \(line 7, line {len(rows) + 2}: values .*--average-dup",
    ):
        merge_duplicates(selected)
    merged = merge_duplicates(selected, average=True)
    assert len(merged) == len(rows)
    assert merged.loc[5, "value"] == pytest.approx(first["value"] + change / 2)
    clean = select_metric(read_back(rows, tmp_path), "heldout_ce")
    assert merge_duplicates(clean) is clean


def test_a_fit_that_worsens_with_data_fails_with_the_reason() -> None:
    d = np.array([64.0, 128.0, 256.0, 512.0] * 2)
    rising_loss = Points("de", d, 2.0 + 0.1 * np.log(d), np.repeat([0, 1], 4), np.ones(8))
    fit = fit_law(
        rising_loss,
        "loglinear",
        higher_is_better=False,
        metric="heldout_ce",
        options=FitOptions(n_bootstrap=0),
    )
    assert not fit.success
    assert "rejected: the loglinear law" in fit.message and "rises with data" in fit.message
    sizes = np.array([10.0, 100.0, 1000.0, 10_000.0])
    # On a straight line in log(d) that starts below 0 chrF: a fit cannot make it possible.
    chrf = Points("de", sizes, -20.0 + 10.0 * np.log10(sizes), np.zeros(4, int), np.ones(4))
    below = fit_law(
        chrf, "loglinear", higher_is_better=True, metric="chrf", options=FitOptions(n_bootstrap=0)
    )
    assert not below.success and "beyond the lowest value it can take (0)" in below.message


def test_select_study_keeps_one_study_and_refuses_a_mix() -> None:
    import pandas as pd

    from fits.data import select_study
    from fits.synthetic import synthetic_results

    table = synthetic_results(languages=("de",))
    two = pd.concat([table.assign(study="a"), table.assign(study="b")])
    assert len(select_study(two, "a")) == len(table)
    with pytest.raises(ConfigError, match=r"2 sweep studies .*--study NAME"):
        select_study(two, None)
    dft = table.assign(study="b", objective="dft")  # another objective: not a mix
    assert len(select_study(pd.concat([table.assign(study="a"), dft]), None)) == 2 * len(table)
    assert select_study(table, None) is table  # no study column
