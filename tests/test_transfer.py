"""The transfer law (`fits.transfer`) and the transfer-aware allocator (`planner.transfer`).

Synthetic mixture runs come from known per-language laws at D_l = x_l + tau * sum_{k!=l} x_k
with a known tau and multiplicative noise of a fixed seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fits import FitResult, LawsFile
from fits.transfer import (
    fit_transfer,
    mixed_data,
    read_mixture_runs,
    read_transfer,
    transfer_to_json,
)
from muit_core import DataError
from planner import Constraints, LawCurve, LawValue, PlannerAllocator
from planner.transfer import TransferAllocator, transfer_value

LANGS = ("de", "el", "hi", "tr")
# L(d) = a + b * log(d): the loglinear law of `fits.laws`, loss falling with data.
TRUE = {"de": (3.0, -0.15), "el": (3.4, -0.18), "hi": (2.9, -0.12), "tr": (4.2, -0.16)}


def _laws() -> LawsFile:
    fits = {
        code: FitResult(
            language=code,
            law="loglinear",
            params={"a": a, "b": b},
            stderr={"a": 0.0, "b": 0.0},
            metric="heldout_ce",
            higher_is_better=False,
            n_points=5,
            d_min=16.0,
            d_max=128.0,
            success=True,
            message="ok",
        )
        for code, (a, b) in TRUE.items()
    }
    return LawsFile(metric="heldout_ce", higher_is_better=False, fits=fits, model="m")


def _validation(
    tmp_path: Path, tau: float, noise: float = 0.003, n_mixtures: int = 6, seeds: int = 2
) -> Path:
    """Mixture runs at 1000 examples in all, Dirichlet splits, measured per law at D_l."""
    rng = np.random.default_rng(7)
    rows = []
    for m in range(n_mixtures):
        x = np.round(rng.dirichlet(np.full(len(LANGS), 2.0)) * 1000 + 10)
        d = mixed_data(x, tau)
        for seed in range(seeds):
            for j, code in enumerate(LANGS):
                a, b = TRUE[code]
                value = (a + b * np.log(d[j])) * np.exp(rng.normal(0, noise))
                rows.append((f"mix{m}", seed, code, int(x[j]), "heldout_ce", value, "m"))
    path = tmp_path / "validation.csv"
    columns = ["allocator", "seed", "language", "examples", "metric", "value", "model"]
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("tau", [0.0, 0.3, 1.2])
def test_tau_recovered_from_synthetic_mixture_runs(tmp_path: Path, tau: float) -> None:
    runs = read_mixture_runs(_validation(tmp_path, tau), "heldout_ce")
    law = fit_transfer(_laws(), runs, n_bootstrap=200, seed=0)
    assert law.tau == pytest.approx(tau, rel=0.1, abs=0.02)
    assert law.low <= law.tau <= law.high
    assert law.low - 0.02 <= tau <= law.high + 0.02
    assert law.n_runs == 12 and law.n_mixtures == 6 and len(law.held_out) == 6
    if tau > 0:  # the transfer law predicts unseen mixtures far better than tau = 0
        assert law.selected
        assert law.mae_transfer < 0.5 * law.mae_independent
    assert read_transfer(_write(tmp_path, law)) == law


def _write(tmp_path: Path, law: object) -> Path:
    path = tmp_path / "transfer.json"
    path.write_text(transfer_to_json(law))  # type: ignore[arg-type]
    return path


def test_runs_with_a_language_the_laws_lack_are_refused(tmp_path: Path) -> None:
    runs = read_mixture_runs(_validation(tmp_path, 0.3), "heldout_ce")
    laws = _laws()
    laws.fits.pop("hi")
    with pytest.raises(DataError, match="train hi, which the laws file"):
        fit_transfer(laws, runs, n_bootstrap=0)


def _instance(seed: int, n: int = 4) -> tuple[LawValue, Constraints]:
    """Loss laws (loglinear and power) with random parameters, pools and floors."""
    rng = np.random.default_rng(seed)
    curves = []
    for i in range(n):
        if i % 2:
            params = {"a": float(rng.uniform(2, 4)), "b": float(rng.uniform(-0.3, -0.1))}
            law = lambda d, a, b: a + b * np.log(d)  # noqa: E731
        else:
            params = {
                "e": float(rng.uniform(1, 2)),
                "b": float(rng.uniform(1, 5)),
                "beta": float(rng.uniform(0.2, 0.6)),
            }
            law = lambda d, e, b, beta: e + b * np.power(d, -beta)  # noqa: E731
        pool = float(rng.integers(500, 5000))
        curves.append(LawCurve(f"l{i}", law, params, higher_is_better=False, n_available=pool))
    caps = [int(c.n_available * 2) for c in curves]
    floors = [int(rng.integers(0, 50)) for _ in curves]
    weights = [float(rng.uniform(0.5, 2)) for _ in curves]
    return LawValue(curves), Constraints.simple(
        caps, floors, weights, [c.language for c in curves]
    )


@pytest.mark.parametrize("seed", range(4))
def test_tau_zero_reduces_to_water_filling(seed: int) -> None:
    values, constraints = _instance(seed)
    budget = 0.4 * sum(constraints.max_examples)
    planned = PlannerAllocator().allocate(values, budget, constraints)
    found, cert = TransferAllocator(0.0, start="uniform").solve(values, budget, constraints)
    weights = np.array(constraints.weights)
    model = transfer_value(values, 0.0)
    ours = model.objective(np.array(found.amounts), weights)
    theirs = model.objective(np.array(planned.amounts), weights)
    assert abs(ours - theirs) <= 1e-6 * abs(theirs)
    assert cert.kkt_gap < 1e-4
    assert np.abs(np.array(found.examples) - np.array(planned.examples)).max() <= 1


@pytest.mark.parametrize("tau", [0.0, 0.25, 1.0])
@pytest.mark.parametrize("seed", range(3))
def test_transfer_allocator_contract(seed: int, tau: float) -> None:
    values, constraints = _instance(seed, n=5)
    for share in (0.05, 0.5, 0.95):
        budget = float(round(share * sum(constraints.max_examples)))
        found, cert = TransferAllocator(tau).solve(values, budget, constraints)
        x = np.array(found.amounts)
        assert (x >= 0).all()
        assert x.sum() == pytest.approx(budget, rel=1e-9)
        assert sum(found.examples) == budget
        assert (x >= constraints.lower - 1e-6).all() and (x <= constraints.upper + 1e-6).all()
        assert all(
            lo <= e <= hi
            for e, lo, hi in zip(
                found.examples, constraints.min_examples, constraints.max_examples, strict=True
            )
        )
        assert TransferAllocator(tau).allocate(values, budget, constraints) == found
        assert cert.kkt_gap < 1e-4, cert
        # The optimum beats the independent plan under the transfer law.
        start = PlannerAllocator().allocate(values, budget, constraints)
        model = transfer_value(values, tau)
        w = np.array(constraints.weights)
        assert model.objective(x, w) >= model.objective(np.array(start.amounts), w) - 1e-12


def test_gradient_matches_finite_differences() -> None:
    values, constraints = _instance(3)
    model = transfer_value(values, 0.4)
    w = np.array(constraints.weights)
    x = np.array([300.0, 4000.0, 50.0, 900.0])  # one language beyond its pool: repeats
    step = 1e-3
    numeric = [
        (model.objective(x + step * e, w) - model.objective(x - step * e, w)) / (2 * step)
        for e in np.eye(len(x))
    ]
    assert model.gradient(x, w) == pytest.approx(numeric, rel=1e-4)


@pytest.mark.parametrize(("tau", "expected"), [(0.0, 750.0), (0.2, 1000 * 2.8 / 3.2)])
def test_two_languages_closed_form(tau: float, expected: float) -> None:
    """Equal log laws, weights 3:1: the optimum has D_x / D_y = 3, so
    x = B (3 - tau) / (4 (1 - tau)) (875 of 1000 at tau = 0.2, against 750 without): transfer
    moves budget to the heavier
    language, since the lighter one is fed by it anyway."""
    law = lambda d, a, b: a + b * np.log(d)  # noqa: E731
    curves = [LawCurve(code, law, {"a": 3.0, "b": -0.2}, higher_is_better=False) for code in "xy"]
    constraints = Constraints.simple([10_000, 10_000], weights=[3.0, 1.0], languages=["x", "y"])
    found, cert = TransferAllocator(tau).solve(LawValue(curves), 1000.0, constraints)
    assert found.amounts[0] == pytest.approx(expected, rel=1e-5)
    assert cert.kkt_gap < 1e-6
