"""FitResult and the laws file: prediction, draws, intervals, JSON round trips, read errors."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


Change = Callable[[dict[str, Any]], None]


def _break_de(change: Change) -> Change:
    def apply(payload: dict[str, Any]) -> None:
        change(payload["languages"]["de"])

    return apply


def _set(key: str, name: str, value: object) -> Change:
    return _break_de(lambda entry: entry[key].__setitem__(name, value))


def _flip_to_rising_loglinear(entry: dict[str, Any]) -> None:
    entry.update(law="loglinear", params={"a": 2.0, "b": 0.1}, draws={}, stderr={})


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (_set("params", "beta", -0.45), r"the power law's beta=-0.45 must be positive"),
        (_break_de(lambda e: e["params"].pop("e")), r"the power law's parameter e is missing"),
        (_set("params", "b", None), r"b=nan is not a finite number"),
        (_set("params", "zeta", 1.0), r"zeta is not a parameter of the power law"),
        (
            _break_de(_flip_to_rising_loglinear),
            r"the loglinear law \(a=2, b=0.1\) rises with data, heldout_ce going from 2.416 at "
            r"d=64 to 2.832 at d=4096, the wrong way for a lower-is-better metric",
        ),
        (
            lambda payload: payload.update(higher_is_better=True),
            r"higher_is_better=True for heldout_ce, which is lower-is-better",
        ),
    ],
    ids=["negative-exponent", "missing", "null", "unknown", "flipped-slope", "flipped-direction"],
)
def test_read_laws_refuses_an_impossible_law(tmp_path: Path, change: Change, match: str) -> None:
    path = write_laws(
        LawsFile(metric="heldout_ce", higher_is_better=False, fits={"de": power_fit()}),
        tmp_path / "laws.json",
    )
    assert read_laws(path).fits["de"].success
    payload = json.loads(path.read_text())
    change(payload)
    path.write_text(json.dumps(payload))
    with pytest.raises(DataError, match=match) as caught:
        read_laws(path)
    message = str(caught.value)
    if "fit for" in message:
        assert message.startswith("The laws file's ") and "fit for 'de' is impossible: " in message
    assert message.endswith("re-run plan-fit on the results table to rewrite it.")
