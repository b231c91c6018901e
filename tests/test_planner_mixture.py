"""The mixture config records the plan: read back, it is the same plan, nothing solved again."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import pytest
from test_planner_helpers import SCORE_LANGUAGES, loss_fits, score_fits, write_score_laws

from fits import LawsFile, read_laws
from muit_core import DataError
from planner import (
    Objective,
    PlanReport,
    Robustness,
    Unit,
    build_problem,
    format_table,
    make_planner,
    minimum_budget,
    mixture_dict,
    report_from_mixture,
    run_plan,
)
from planner.analysis import what_if
from planner.cli import main as plan_allocate

SCORE_LAWS = LawsFile(metric="chrf", higher_is_better=True, fits=score_fits(n_draws=20))


def _plan(kind: str) -> tuple[PlanReport, LawsFile]:
    """A plan of each kind, seeded with 3, as plan-allocate would make it."""
    languages = tuple(SCORE_LANGUAGES)
    if kind == "mean":
        problem = build_problem(
            SCORE_LAWS, languages, max_epochs=2.0, floors={"hi": 1_000}, weights={"el": 2.0}
        )
        return run_plan(problem, 300_000, Objective.MEAN, seed=3, command="plan-allocate a"), (
            SCORE_LAWS
        )
    if kind == "target-tokens":
        problem = build_problem(SCORE_LAWS, languages, unit=Unit.TOKENS)
        targets = [50.0, math.nan, math.nan, math.nan, math.nan, 30.0]
        planner = make_planner(problem, Objective.TARGET, None, targets, seed=3)
        budget = minimum_budget(problem, planner)
        report = run_plan(problem, budget, Objective.TARGET, None, targets, 3, "plan-allocate b")
        return report, SCORE_LAWS
    laws = LawsFile(metric="heldout_ce", higher_is_better=False, fits=loss_fits(n_draws=20))
    problem = build_problem(laws, tuple(laws.fits))
    robust = Robustness(None)
    return run_plan(problem, 20_000, Objective.MAXMIN, robust, seed=3, command="c"), laws


def _file(report: PlanReport) -> dict[str, Any]:
    """`mixture_dict` as it comes back from mixture.json."""
    loaded: dict[str, Any] = json.loads(json.dumps(mixture_dict(report)))
    return loaded


@pytest.mark.parametrize("kind", ["mean", "target-tokens", "maxmin-robust-losses"])
def test_mixture_reads_back_as_the_same_plan(kind: str) -> None:
    report, laws = _plan(kind)
    recorded = _file(report)
    assert recorded["seed"] == 3
    back = report_from_mixture(recorded, laws)
    assert back.seed == 3 and back.objective is report.objective and back.robust == report.robust
    assert back.problem.constraints == report.problem.constraints
    assert back.planner.allocation == report.planner.allocation  # continuous amounts too
    assert [ev.allocation.examples for ev in back.baselines] == [
        ev.allocation.examples for ev in report.baselines
    ]
    assert format_table(back) == format_table(report)
    assert _file(back) == recorded  # every recorded number and setting survives


def test_reading_solves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    report, laws = _plan("mean")
    recorded = _file(report)

    def no_solving(*args: object, **kwargs: object) -> None:
        raise AssertionError("the plan was solved again")

    monkeypatch.setattr("planner.optimiser.PlannerAllocator.allocate", no_solving)
    monkeypatch.setattr("planner.baselines.UniformAllocator.allocate", no_solving)
    assert report_from_mixture(recorded, laws).planner.scores == report.planner.scores


def test_what_if_keeps_the_recorded_settings_and_seed() -> None:
    report, laws = _plan("mean")
    back = report_from_mixture(_file(report), laws)
    other = what_if(back, budget="150k")
    assert other.seed == 3 and sum(other.planner.allocation.examples) == 150_000
    assert other.problem.constraints.weights == report.problem.constraints.weights
    assert other.problem.constraints.min_examples == report.problem.constraints.min_examples


@pytest.mark.parametrize(
    ("drop", "named"),
    [
        ("seed", "seed"),
        ("amount", "languages.el.amount"),
        ("predicted", "baselines.uniform.predicted"),
    ],
)
def test_an_older_mixture_names_the_command_that_rewrites_it(drop: str, named: str) -> None:
    report, laws = _plan("mean")
    recorded = _file(report)
    if drop == "seed":
        del recorded["seed"]
    elif drop == "amount":
        for entry in recorded["languages"].values():
            del entry["amount"]
    else:
        for entry in recorded["baselines"].values():
            del entry["predicted"]
    message = rf"lacks {named}.*re-run plan-allocate to rewrite it: `plan-allocate a`"
    with pytest.raises(DataError, match=message):
        report_from_mixture(recorded, laws)


def test_not_a_mixture() -> None:
    with pytest.raises(DataError, match="expected format 'muit-mixture/1'"):
        report_from_mixture({"format": "laws/1"}, SCORE_LAWS)


def test_other_laws_are_reported(caplog: pytest.LogCaptureFixture) -> None:
    report, _ = _plan("mean")
    other = LawsFile(metric="chrf", higher_is_better=True, fits=score_fits(n_draws=20, seed=9))
    with caplog.at_level(logging.WARNING, logger="planner.mixture"):
        report_from_mixture(_file(report), SCORE_LAWS)
    assert not [r for r in caplog.records if r.name == "planner.mixture"]
    with caplog.at_level(logging.WARNING, logger="planner.mixture"):
        back = report_from_mixture(_file(report), other)
    assert "not the one this mixture was made from" in caplog.text
    assert back.planner.scores == report.planner.scores  # the mixture's numbers, as recorded


def test_plan_allocate_records_its_seed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    laws = write_score_laws(tmp_path / "laws.json")
    argv = [str(laws), "--budget", "250k", "--seed", "5", "--out", "plan", "--no-plots"]
    assert plan_allocate([*argv, "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    written = json.loads((tmp_path / "plan" / "mixture.json").read_text())
    assert printed["seed"] == written["seed"] == 5
    assert report_from_mixture(written, read_laws(laws)).seed == 5


def test_the_mixture_states_the_sweeps_general_data() -> None:
    from planner.mixture import general_data

    data = {"general_data": "g/{lang}.jsonl", "general_ratio": 0.1}
    data.update({"general_data_en": "g/en.jsonl", "general_ratio_en": 0.05})
    sweep = {"spec": {"data": data}}
    stated = general_data(sweep, 20_000)
    assert stated["per_language"] == {"path": "g/{lang}.jsonl", "ratio": 0.1}
    assert stated["english"] == {"path": "g/en.jsonl", "ratio": 0.05}
    assert stated["approximate_share_of_run"] == pytest.approx(3_000 / 23_000)
    none = general_data(None, 20_000)
    assert none["approximate_share_of_run"] == 0.0 and none["per_language"]["path"] is None
