"""The laws: closed-form values, broadcasting, and parameter names that match the formulas."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from fits import LAW_INFO, LAWS
from fits.laws import chinchilla, loglinear, power, saturating, similarity


def test_every_law_is_registered_with_its_metadata() -> None:
    assert set(LAWS) == {"power", "saturating", "loglinear", "similarity", "chinchilla"}
    for name, info in LAW_INFO.items():
        assert LAWS[name] is info.func
        assert info.name == name


@pytest.mark.parametrize("name", sorted(LAW_INFO))
def test_parameter_names_match_signature_and_docstring(name: str) -> None:
    info = LAW_INFO[name]
    signature = list(inspect.signature(info.func).parameters)
    assert signature == ["d", *info.params, *info.fixed]
    doc = inspect.getdoc(info.func) or ""
    assert info.formula.split("=", 1)[1].strip().split()[0] in doc
    for param in (*info.params, *info.fixed):
        assert f"{param}:" in doc, f"{name}: {param} is not documented"
        assert param == param.lower()


def test_closed_form_values() -> None:
    assert power(100.0, e=1.0, b=10.0, beta=0.5) == pytest.approx(2.0)
    assert saturating(0.0, s_max=50.0, a=100.0, d0=100.0, alpha=1.0) == pytest.approx(49.0)
    assert saturating(300.0, s_max=50.0, a=100.0, d0=100.0, alpha=0.5) == pytest.approx(45.0)
    assert loglinear(np.e**2, a=1.0, b=3.0) == pytest.approx(7.0)
    assert similarity(25.0, s_max=10.0, a=4.0, alpha=0.5, gamma=4.0) == pytest.approx(9.6)
    epoch = {"e": 1.817, "a": 482.0, "alpha": 0.348, "b": 2085.0, "beta": 0.366}
    expected = 1.817 + 482.0 / 70e9**0.348 + 2085.0 / 1.4e12**0.366
    assert chinchilla(1.4e12, n=70e9, **epoch) == pytest.approx(expected)


def test_similarity_gamma_is_a_data_multiplier() -> None:
    params = {"s_max": 60.0, "a": 300.0, "alpha": 0.4}
    assert similarity(400.0, gamma=0.25, **params) == pytest.approx(
        similarity(100.0, gamma=1.0, **params)
    )


def test_laws_broadcast_over_draws() -> None:
    d = np.array([10.0, 100.0, 1000.0])
    betas = np.array([[0.3], [0.5]])
    out = power(d[None, :], e=1.0, b=5.0, beta=betas)
    assert out.shape == (2, 3)
    assert out[1, 2] == pytest.approx(1.0 + 5.0 * 1000.0**-0.5)


def test_only_saturating_is_finite_at_zero_data() -> None:
    assert np.isfinite(saturating(0.0, s_max=1.0, a=1.0, d0=5.0, alpha=0.5))
    assert not np.isfinite(power(0.0, e=1.0, b=1.0, beta=0.5))
    assert not np.isfinite(loglinear(0.0, a=1.0, b=1.0))
    assert LAW_INFO["saturating"].uses_zero_data
    assert not LAW_INFO["power"].uses_zero_data


@pytest.mark.parametrize("name", sorted(LAW_INFO))
def test_analytic_partials_match_finite_differences(name: str) -> None:
    values = {
        "power": {"e": 1.8, "b": 40.0, "beta": 0.45},
        "saturating": {"s_max": 60.0, "a": 300.0, "d0": 50.0, "alpha": 0.5},
        "loglinear": {"a": 10.0, "b": 5.0},
        "similarity": {"s_max": 60.0, "a": 300.0, "alpha": 0.4, "gamma": 0.3},
        "chinchilla": {"e": 1.8, "a": 482.0, "alpha": 0.348, "b": 2085.0, "beta": 0.366},
    }[name]
    d = np.geomspace(10.0, 1e5, 7)
    fixed = {"n": np.full(7, 1e9)} if name == "chinchilla" else {}
    partials = LAW_INFO[name].partials
    pred, parts = partials(d, **values, **fixed)
    np.testing.assert_allclose(pred, LAWS[name](d, **values, **fixed))
    for j, param in enumerate(LAW_INFO[name].params):
        step = 1e-6 * abs(values[param])
        moved = {**values, param: values[param] + step}
        numeric = (LAWS[name](d, **moved, **fixed) - LAWS[name](d, **values, **fixed)) / step
        np.testing.assert_allclose(parts[j], numeric, rtol=1e-4, atol=1e-9, err_msg=param)


# A sensible loss law per entry (lower is better, d from 64 to 4096), and a parameter of it.
SENSIBLE_LOSS = {
    "power": ({"e": 1.8, "b": 40.0, "beta": 0.45}, {}),
    "saturating": ({"s_max": 1.8, "a": -20.0, "d0": 50.0, "alpha": 0.4}, {}),
    "loglinear": ({"a": 4.0, "b": -0.2}, {}),
    "similarity": ({"s_max": 1.8, "a": -20.0, "alpha": 0.4, "gamma": 0.5}, {}),
    "chinchilla": (
        {"e": 1.817, "a": 482.0, "alpha": 0.348, "b": 2085.0, "beta": 0.366},
        {"n": 1.35e8},
    ),
}


def reason(name: str, params: dict[str, float], fixed: dict[str, float]) -> str | None:
    return LAW_INFO[name].impossible_reason(
        params, fixed, higher_is_better=False, d_range=(64.0, 4096.0), bounds=(0.0, None)
    )


@pytest.mark.parametrize("name", sorted(SENSIBLE_LOSS))
def test_a_sensible_law_is_possible_and_each_broken_parameter_is_named(name: str) -> None:
    params, fixed = SENSIBLE_LOSS[name]
    assert reason(name, params, fixed) is None
    first = LAW_INFO[name].params[0]
    missing = {k: v for k, v in params.items() if k != first}
    assert reason(name, missing, fixed) == f"the {name} law's parameter {first} is missing"
    assert f"{first}=nan is not a finite number" in (
        reason(name, {**params, first: float("nan")}, fixed) or ""
    )
    for positive in LAW_INFO[name].positive:
        why = reason(name, {**params, positive: -0.3}, fixed)
        assert why == f"the {name} law's {positive}=-0.3 must be positive"


def test_every_exponent_is_declared_positive() -> None:
    exponents = {"beta", "alpha", "gamma", "d0"}
    for name, info in LAW_INFO.items():
        assert set(info.positive) == exponents & set(info.params) | (
            {"a", "b"} if name == "chinchilla" else set()
        ), name


def test_a_law_moving_the_wrong_way_or_out_of_bounds_is_named() -> None:
    rising = reason("loglinear", {"a": 2.0, "b": 0.1}, {})
    assert rising is not None
    assert rising.startswith("the loglinear law (a=2, b=0.1) rises with data, the metric going")
    assert "lower-is-better" in rising
    negative = reason("loglinear", {"a": 1.0, "b": -0.5}, {})
    assert negative is not None and "beyond the lowest value it can take (0)" in negative
    # Outside the fitted range is the allocator's business: no range, no curve check.
    no_range = LAW_INFO["loglinear"].impossible_reason(
        {"a": 2.0, "b": 0.1}, {}, higher_is_better=False, d_range=None
    )
    assert no_range is None
