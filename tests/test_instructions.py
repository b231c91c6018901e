"""Instruction data: nested subsets, deterministic templates, general-data mixing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from muit_core import ConfigError, DataError
from sweeps.instructions import (
    mix_general,
    read_general_examples,
    select_pairs,
    translation_examples,
)
from sweeps.pairs import Pair, PairFilter, split_pairs
from sweeps.templates import TRANSLATION_TEMPLATES, Direction, render_translation

PAIRS = [
    Pair(f"English sentence number {i} here.", f"Satz Nummer {i} hier.", f"k{i}")
    for i in range(200)
]
POOLS = split_pairs("de", "test", PAIRS, PairFilter(heldout_fraction=0.0))


def test_subsets_are_nested_for_one_seed_and_differ_across_seeds() -> None:
    small, large = select_pairs(POOLS, 16, 0), select_pairs(POOLS, 64, 0)
    assert large[:16] == small
    assert select_pairs(POOLS, 16, 1) != small


def test_size_above_pool_names_the_cap() -> None:
    with pytest.raises(ConfigError, match="larger than the de training pool \\(200 pairs"):
        select_pairs(POOLS, 500, 0)


def test_templates_are_many_deterministic_and_directional() -> None:
    assert len(TRANSLATION_TEMPLATES) >= 10
    used = {render_translation(p, "de", Direction.EN_TO_X)[0].split(p.en)[0] for p in PAIRS}
    assert len(used) >= 8  # many paraphrases in use, not one
    pair = PAIRS[0]
    assert render_translation(pair, "de", Direction.EN_TO_X) == render_translation(
        pair, "de", Direction.EN_TO_X
    )
    prompt, response = render_translation(pair, "de", Direction.EN_TO_X)
    assert pair.en in prompt and response == pair.text and "German" in prompt
    prompt, response = render_translation(pair, "de", Direction.X_TO_EN)
    assert pair.text in prompt and response == pair.en
    both = translation_examples(PAIRS, "de", Direction.BOTH)
    assert {e.direction for e in both} == {Direction.EN_TO_X, Direction.X_TO_EN}


def test_general_data_is_mixed_at_the_ratio(tmp_path: Path) -> None:
    path = tmp_path / "de.jsonl"
    path.write_text(
        "\n".join(
            json.dumps({"instruction": f"Task {i}", "input": "", "output": f"Answer {i}"})
            for i in range(5)
        )
    )
    general = read_general_examples(str(tmp_path / "{lang}.jsonl"), "de")
    translation = translation_examples(PAIRS[:20], "de", Direction.EN_TO_X)
    mixed = mix_general(translation, general, 0.5, seed=0)
    assert len(mixed) == 30
    assert sum(e.kind == "general" for e in mixed) == 10


def test_bad_general_data(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_general_examples(str(tmp_path / "none.jsonl"), "de")
    path = tmp_path / "bad.jsonl"
    path.write_text('{"instruction": "x"}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl:1: expected a JSON object"):
        read_general_examples(str(path), "de")
