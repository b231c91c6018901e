"""FitResult and the laws file: prediction, draws, intervals, JSON round trips, read errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from fits import LAWS, FitResult, LawsFile, read_laws, write_laws
from muit_core import DataError, FitError


def power_fit(n_draws: int = 50, success: bool = True) -> FitResult:
    rng = np.random.default_rng(0)
    return FitResult(
        language="de",
        law="power",
        params={"e": 1.8, "b": 40.0, "beta": 0.45} if success else {"e": math.nan},
        stderr={"e": 0.02, "b": 2.0, "beta": 0.01},
        metric="heldout_ce",
        higher_is_better=False,
        n_points=18,
        d_min=64.0,
        d_max=4096.0,
        success=success,
        message="" if success else "too few sizes",
        draws={
            "e": tuple(1.8 + 0.02 * rng.standard_normal(n_draws)),
            "b": tuple(40.0 + 2.0 * rng.standard_normal(n_draws)),
            "beta": tuple(0.45 + 0.01 * rng.standard_normal(n_draws)),
        }
        if success
        else {},
        data={"n_available": 33_900, "tokens_per_example": 41.5, "corpus": "libreoffice"},
        diagnostics={"flags": ["noisy"], "loss": 1e-4},
    )


def test_call_predicts_through_the_law() -> None:
    fit = power_fit()
    d = np.array([64.0, 1000.0, 1e5])
    np.testing.assert_allclose(fit(d), LAWS["power"](d, **fit.params))


def test_predict_draws_shape_and_interval_brackets_the_curve() -> None:
    fit = power_fit(n_draws=200)
    d = np.geomspace(64, 1e5, 7)
    draws = fit.predict_draws(d)
    assert draws.shape == (200, 7)
    low, high = fit.interval(d, level=0.9)
    assert (low <= fit(d)).all() and (fit(d) <= high).all()
    wide_low, wide_high = fit.interval(d, level=0.99)
    assert (wide_low <= low).all() and (high <= wide_high).all()


def test_no_draws_gives_empty_draws_and_nan_interval() -> None:
    fit = power_fit(n_draws=0)
    assert fit.n_draws == 0
    assert fit.predict_draws([100.0, 200.0]).shape == (0, 2)
    low, high = fit.interval([100.0])
    assert np.isnan(low).all() and np.isnan(high).all()


def test_failed_fit_refuses_to_predict() -> None:
    with pytest.raises(FitError, match="failed and cannot predict: too few sizes"):
        power_fit(success=False)(100.0)


def test_chinchilla_predicts_at_its_fixed_model_size() -> None:
    params = {"e": 1.817, "a": 482.0, "alpha": 0.348, "b": 2085.0, "beta": 0.366}
    fit = FitResult(
        "en",
        "chinchilla",
        params,
        {},
        "loss",
        False,
        240,
        1e9,
        1e12,
        True,
        "",
        fixed={"n": 70e9},
    )
    expected = LAWS["chinchilla"](1.4e12, n=70e9, **params)
    assert fit(np.array([1.4e12]))[0] == pytest.approx(float(expected))
    restored = FitResult.from_dict(json.loads(json.dumps(fit.to_dict())))
    assert restored.fixed == {"n": 70e9}


def test_result_is_a_copy_of_its_inputs() -> None:
    params = {"e": 1.0, "b": 2.0, "beta": 0.5}
    fit = FitResult("de", "power", params, {}, "m", False, 3, 1.0, 9.0, True, "")
    params["e"] = 99.0
    assert fit.params["e"] == 1.0


def test_unknown_law_is_rejected() -> None:
    with pytest.raises(FitError, match="Unknown law 'cubic'"):
        FitResult("de", "cubic", {}, {}, "m", False, 0, 1.0, 1.0, True, "")


def test_laws_file_round_trip(tmp_path: Path) -> None:
    fits = {"de": power_fit(), "hi": power_fit(success=False)}
    laws = LawsFile(
        metric="heldout_ce",
        higher_is_better=False,
        fits=fits,
        source="results.csv",
        pooled=None,
        objective="sft",
        model="SmolLM2",
        settings={"law": "auto", "bootstrap": 50},
    )
    path = write_laws(laws, tmp_path / "out" / "laws.json")
    payload = json.loads(path.read_text())
    assert payload["format"] == "muit-laws/1"
    assert set(payload) >= {"metric", "higher_is_better", "source", "languages", "pooled"}
    entry = payload["languages"]["de"]
    assert LAWS[entry["law"]](100.0, **entry["params"]) == pytest.approx(float(fits["de"](100.0)))
    assert entry["data"]["n_available"] == 33_900
    assert payload["languages"]["hi"]["params"]["e"] is None  # NaN is written as null
    back = read_laws(path)
    assert back.metric == "heldout_ce" and back.objective == "sft"
    np.testing.assert_allclose(
        back.fits["de"].predict_draws([100.0]), fits["de"].predict_draws([100.0]), rtol=1e-7
    )
    assert not back.fits["hi"].success and back.fits["hi"].message == "too few sizes"
    assert math.isnan(back.fits["hi"].params["e"])
    # Draws stay one line each, so the file is readable.
    assert len(path.read_text().splitlines()) < 200


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "No laws file at"),
        ("{not json", "Cannot read the laws file"),
        ('{"format": "other/2"}', "expected format 'muit-laws/1'"),
        ('{"format": "muit-laws/1", "metric": "chrf"}', "lacks higher_is_better, languages"),
        (
            '{"format": "muit-laws/1", "metric": "chrf", "higher_is_better": true, '
            '"languages": {"de": {"law": "power"}}}',
            "entry lacks language",
        ),
    ],
)
def test_read_laws_errors(tmp_path: Path, content: str | None, match: str) -> None:
    path = tmp_path / "laws.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataError, match=match):
        read_laws(path)
