"""Mixtures drawn around a plan (`plan-sweep validate --random-mixtures K --leave-one-out`):
budget, caps, determinism, leave-one-out; no model is trained."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from muit_core import ConfigError
from sweeps.mixture import Mixture, parse_mixture
from sweeps.random_mixtures import (
    dirichlet_allocations,
    leave_one_out_allocations,
    parse_count,
    round_to_budget,
    with_drawn,
)
from sweeps.spec import SweepSpec
from sweeps.validate import study_name

PLAN = {"de": 300, "fr": 200, "hi": 100}
CAPS = {"de": 1000, "fr": 250, "hi": 5000}


def _mixture(caps: dict[str, int] = CAPS, seed: int = 0) -> Mixture:
    raw: dict[str, Any] = {
        "format": "muit-mixture/1",
        "seed": seed,
        "metric": "loss",
        "languages": {
            code: {"examples": n, "cap": caps[code], "n_available": caps[code]}
            for code, n in PLAN.items()
        },
        "baselines": {"uniform": {"examples": dict.fromkeys(PLAN, 200)}},
    }
    return parse_mixture(raw, Path("mixture.json"))


def test_dirichlet_draws_sum_to_the_budget_respect_caps_and_repeat_for_a_seed() -> None:
    mixture = _mixture()
    drawn = dirichlet_allocations(mixture, 8)
    assert list(drawn) == [f"dirichlet-{i}" for i in range(1, 9)]
    for examples in drawn.values():
        assert sum(examples.values()) == sum(PLAN.values())
        assert all(0 <= examples[c] <= CAPS[c] for c in PLAN)
    assert len({tuple(e.values()) for e in drawn.values()}) == 8  # they differ
    assert dirichlet_allocations(mixture, 8) == drawn  # the same command draws the same
    assert dirichlet_allocations(mixture, 3) == {k: drawn[k] for k in list(drawn)[:3]}
    assert dirichlet_allocations(_mixture(seed=1), 8) != drawn


def test_a_cap_cut_goes_to_the_languages_with_room() -> None:
    out = round_to_budget({"de": 0.1, "fr": 0.8, "hi": 0.1}, 600, CAPS, "m")
    assert out["fr"] == 250 and sum(out.values()) == 600 and out["de"] == out["hi"]


def test_leave_one_out_zeroes_exactly_one_language_at_the_budget() -> None:
    drawn = leave_one_out_allocations(_mixture())
    assert list(drawn) == ["without-de", "without-fr", "without-hi"]
    for code in PLAN:
        examples = drawn[f"without-{code}"]
        assert [c for c, n in examples.items() if n == 0] == [code]
        assert sum(examples.values()) == sum(PLAN.values())
        assert all(examples[c] <= CAPS[c] for c in PLAN)
    assert drawn["without-hi"] == {"de": 360, "fr": 240, "hi": 0}  # in proportion to the plan


def test_a_budget_the_caps_cannot_hold_is_one_sentence() -> None:
    with pytest.raises(ConfigError, match=r"without-de cannot hold the budget of 600"):
        leave_one_out_allocations(_mixture({"de": 1000, "fr": 250, "hi": 300}))


@pytest.mark.parametrize("text", ["-1", "2.5", "four", "51"])
def test_bad_counts_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="--random-mixtures"):
        parse_count(text)


def test_drawn_mixtures_are_marked_and_leave_the_study_name_alone() -> None:
    mixture = _mixture()
    extended = with_drawn(mixture, 2, True)
    drawn = [name for name, a in extended.allocations.items() if a.drawn]
    assert drawn == ["dirichlet-1", "dirichlet-2", "without-de", "without-fr", "without-hi"]
    assert study_name(extended, SweepSpec()) == study_name(mixture, SweepSpec())
    assert with_drawn(mixture, 0, False) is mixture
