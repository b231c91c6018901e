"""The transfer law (`fits.transfer`) and the transfer-aware allocator (`planner.transfer`).

Synthetic mixture runs come from known per-language laws at D_l = x_l + sum_{k!=l} T_lk x_k
with a known T (a shared tau, or one tau per receiving language) and multiplicative noise of a
fixed seed; or, for the `level` yardstick, from each language's own law times a constant.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fits import FitResult, LawsFile, read_laws, transfer_of, write_laws
from fits.transfer import fit_transfer
from fits.transfer_fit import effective_examples
from fits.transfer_runs import read_mixture_runs
from muit_core import DataError, FitError
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
    tmp_path: Path,
    tau: float | np.ndarray,
    noise: float = 0.003,
    n_mixtures: int = 6,
    seeds: int = 2,
    level: float = 0.0,
) -> Path:
    """Mixture runs at 1000 examples in all, Dirichlet splits, measured per law at D_l (`tau`:
    shared, or one per receiving language), times exp(`level`)."""
    rng = np.random.default_rng(7)
    taus = np.broadcast_to(np.asarray(tau, dtype=float), (len(LANGS),))
    matrix = taus[:, None] * (np.ones((len(LANGS), len(LANGS))) - np.eye(len(LANGS)))
    rows = []
    for m in range(n_mixtures):
        x = np.round(rng.dirichlet(np.full(len(LANGS), 2.0)) * 1000 + 10)
        d = effective_examples(x, matrix)
        for seed in range(seeds):
            for j, code in enumerate(LANGS):
                a, b = TRUE[code]
                value = (a + b * np.log(d[j])) * np.exp(level + rng.normal(0, noise))
                rows.append((f"mix{m}", seed, code, int(x[j]), "heldout_ce", value, "m"))
    path = tmp_path / "validation.csv"
    columns = ["allocator", "seed", "language", "examples", "metric", "value", "model"]
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("tau", [0.0, 0.3, 1.2])
def test_tau_recovered_from_synthetic_mixture_runs(tmp_path: Path, tau: float) -> None:
    runs = read_mixture_runs(_validation(tmp_path, tau), "heldout_ce")
    law = fit_transfer(_laws(), runs, form="shared", n_bootstrap=200, seed=0)
    fitted, (low, high) = law.params["tau"], law.intervals["tau"]
    assert fitted == pytest.approx(tau, rel=0.1, abs=0.02)
    assert low <= fitted <= high
    assert low - 0.02 <= tau <= high + 0.02
    assert law.n_runs == 12 and law.n_mixtures == 6 and len(law.held_out) == 6
    assert set(law.lomo_mae) == {"independent", "level", "shared"}
    if tau > 0:  # the transfer law predicts unseen mixtures far better than tau = 0
        assert law.selected
        assert law.lomo_mae["shared"] < 0.5 * law.lomo_mae["independent"]
    # Stored in the laws file as its own entry, read back unchanged.
    path = write_laws(dataclasses.replace(_laws(), transfer=law.to_dict()), tmp_path / "l.json")
    back = transfer_of(read_laws(path))
    assert back is not None
    assert back.to_dict() == law.to_dict()
    assert back.matrix_for(("hi", "de")) == pytest.approx(np.array([[0, fitted], [fitted, 0]]))


def test_receiver_taus_recovered_and_chosen_by_auto(tmp_path: Path) -> None:
    truth = np.array([0.1, 0.6, 0.3, 1.0])  # de, el, hi, tr
    runs = read_mixture_runs(_validation(tmp_path, truth, n_mixtures=8), "heldout_ce")
    law = fit_transfer(_laws(), runs, n_bootstrap=100, seed=0)
    assert law.form == "receiver" and law.selected
    assert [law.params[f"tau_{c}"] for c in LANGS] == pytest.approx(truth, rel=0.15, abs=0.03)
    assert law.lomo_mae["receiver"] < min(law.lomo_mae["shared"], law.lomo_mae["similarity"])
    assert law.matrix[1, 0] == pytest.approx(law.params["tau_el"])  # el receives from de


def test_a_constant_mixture_bonus_is_not_taken_for_transfer(tmp_path: Path) -> None:
    """Runs whose every language is 8% better in a mixture than its own law, whatever the
    split: the level yardstick predicts them and the transfer law is not selected."""
    runs = read_mixture_runs(_validation(tmp_path, 0.0, level=-0.08), "heldout_ce")
    law = fit_transfer(_laws(), runs, n_bootstrap=0)
    assert law.lomo_mae["level"] < 0.25 * law.lomo_mae["independent"]
    assert not law.selected


def test_transfer_on_top_of_a_mixture_bonus_is_told_apart(tmp_path: Path) -> None:
    """Runs with transfer (tau 0.4) and a 6% bonus in every mixture: the shared-level form
    recovers both; the level yardstick alone, and transfer alone, predict worse."""
    path = _validation(tmp_path, 0.4, level=-0.06, n_mixtures=8)
    law = fit_transfer(_laws(), read_mixture_runs(path, "heldout_ce"), n_bootstrap=100)
    assert law.form == "shared-level" and law.selected
    assert law.params["tau"] == pytest.approx(0.4, rel=0.15)
    assert np.exp(law.levels) == pytest.approx(np.full(4, np.exp(-0.06)), rel=0.01)
    assert law.lomo_mae["shared-level"] < min(law.lomo_mae["level"], law.lomo_mae["shared"])
    mean, se = law.improvements["level"]
    assert mean > 2 * se > 0


def test_forms_that_cannot_be_carried(tmp_path: Path) -> None:
    runs = read_mixture_runs(_validation(tmp_path, 0.3, n_mixtures=1, seeds=2), "heldout_ce")
    with pytest.raises(FitError, match=r"the receiver form has 4 parameter.*2 mixture run"):
        fit_transfer(_laws(), runs, form="receiver", n_bootstrap=0)
    law = fit_transfer(_laws(), runs, n_bootstrap=0)  # auto: the form is skipped, said so
    assert "receiver" not in law.lomo_mae and any("receiver" in n for n in law.notes)
    assert not law.selected  # one allocation: nothing was left out


def test_similarity_needs_every_language_in_its_table(tmp_path: Path) -> None:
    _validation(tmp_path, 0.3)
    laws = _laws()
    laws.fits["xx"] = laws.fits.pop("tr")
    frame = pd.read_csv(tmp_path / "validation.csv").replace({"language": {"tr": "xx"}})
    frame.to_csv(tmp_path / "validation.csv", index=False)
    runs = read_mixture_runs(tmp_path / "validation.csv", "heldout_ce")
    with pytest.raises(DataError, match=r"similarity table .* no entry for xx; add its"):
        fit_transfer(laws, runs, form="similarity", n_bootstrap=0)
    assert any("similarity" in n for n in fit_transfer(laws, runs, n_bootstrap=0).notes)


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


def test_gradient_with_a_transfer_matrix_matches_finite_differences() -> None:
    values, constraints = _instance(2)
    matrix = np.random.default_rng(0).uniform(0, 0.8, (4, 4)) * (1 - np.eye(4))
    model = transfer_value(values, matrix)
    w = np.array(constraints.weights)
    x = np.array([800.0, 120.0, 2500.0, 40.0])
    step = 1e-3
    numeric = [
        (model.objective(x + step * e, w) - model.objective(x - step * e, w)) / (2 * step)
        for e in np.eye(len(x))
    ]
    assert model.gradient(x, w) == pytest.approx(numeric, rel=1e-4)
    factors = np.array([0.9, 1.0, 0.95, 1.1])
    scaled = transfer_value(values, matrix, factors)
    numeric = [
        (scaled.objective(x + step * e, w) - scaled.objective(x - step * e, w)) / (2 * step)
        for e in np.eye(len(x))
    ]
    assert scaled.gradient(x, w) == pytest.approx(numeric, rel=1e-4)
    assert scaled.value(x) == pytest.approx(factors * model.value(x))
    shared = TransferAllocator(0.3).allocate(values, 3000.0, constraints)
    as_matrix = TransferAllocator(0.3 * (1 - np.eye(4))).allocate(values, 3000.0, constraints)
    assert shared.examples == as_matrix.examples


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


def test_plan_fit_transfer_then_plan_allocate_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """The whole path a user runs: laws from a sweep, the transfer law added to the same laws
    file from mixture runs, and plan-allocate showing the transfer-aware plan beside."""
    import json

    from fits.cli import main as plan_fit
    from fits.synthetic import synthetic_results
    from planner.cli import main as plan_allocate

    langs = ("de", "el", "hi")
    synthetic_results(languages=langs).to_csv(tmp_path / "results.csv", index=False)
    assert (
        plan_fit([str(tmp_path / "results.csv"), "--bootstrap", "40", "--out", str(tmp_path)]) == 0
    )
    laws = read_laws(tmp_path / "laws.json")
    rng = np.random.default_rng(3)
    rows = []
    matrix = 0.5 * (np.ones((3, 3)) - np.eye(3))
    for m in range(5):
        x = np.round(rng.dirichlet(np.full(3, 3.0)) * 600 + 20)
        d = effective_examples(x, matrix)
        for j, code in enumerate(langs):
            value = float(laws.fits[code](d[j])[()]) * np.exp(rng.normal(0, 0.002))
            rows.append((f"mix{m}", 0, code, int(x[j]), laws.metric, value))
    columns = ["allocator", "seed", "language", "examples", "metric", "value"]
    pd.DataFrame(rows, columns=columns).to_csv(tmp_path / "validation.csv", index=False)
    before = (tmp_path / "laws.json").read_text()

    argv = [str(tmp_path / "validation.csv"), "--laws", str(tmp_path / "laws.json")]
    assert plan_fit(["transfer", *argv, "--form", "shared", "--bootstrap", "50"]) == 0
    printed = capsys.readouterr().out
    assert "Selected: yes" in printed
    law = transfer_of(read_laws(tmp_path / "laws.json"))
    assert law is not None and law.selected
    assert law.params["tau"] == pytest.approx(0.5, rel=0.1)
    # Everything else in the laws file is as plan-fit wrote it.
    after = json.loads((tmp_path / "laws.json").read_text())
    assert {k: v for k, v in after.items() if k != "transfer"} == {
        k: v for k, v in json.loads(before).items() if k != "transfer"
    }

    out = tmp_path / "allocate"
    assert plan_allocate([str(tmp_path / "laws.json"), "--budget", "3k", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Transfer law shared: tau = " in printed
    mixture = json.loads((out / "mixture.json").read_text())
    assert sum(mixture["baselines"]["transfer"]["examples"].values()) == 3000
    off = tmp_path / "allocate-off"
    assert (
        plan_allocate(
            [str(tmp_path / "laws.json"), "--budget", "3k", "--transfer", "off", "--out", str(off)]
        )
        == 0
    )
    assert "transfer" not in json.loads((off / "mixture.json").read_text())["baselines"]
    # Fitting the laws again replaces the file without its transfer law, and says so.
    assert (
        plan_fit([str(tmp_path / "results.csv"), "--bootstrap", "40", "--out", str(tmp_path)]) == 0
    )
    assert "had a transfer law, fitted on the laws this run replaces" in caplog.text
    assert transfer_of(read_laws(tmp_path / "laws.json")) is None
