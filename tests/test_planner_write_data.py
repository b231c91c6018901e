"""`--write-data`: deterministic MuIT JSONL from the training pools, never the held-out ones."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from test_planner_helpers import write_score_laws

import sweeps.corpus
from muit_core import ConfigError
from planner import Allocation, DataRequest, choose_pairs, write_training_data
from planner.cli import main
from sweeps.corpus import LanguagePools, Pair, PairFilter
from sweeps.instructions import select_pairs

filters_seen: list[PairFilter | None] = []


def fake_pools(source: str, language: str, pair_filter: PairFilter | None = None) -> LanguagePools:
    """Stands in for the corpus loader (`sweeps.corpus.load_pools`): 10 training pairs and
    4 held-out pairs per language, whose texts say which pool they are from. Records the
    filter it was given in filters_seen."""
    filters_seen.append(pair_filter)
    train = tuple(
        Pair(en=f"train sentence number {i} in english", text=f"{language} train {i}", key=f"t{i}")
        for i in range(10)
    )
    heldout = tuple(
        Pair(
            en=f"heldout sentence number {i} in english",
            text=f"{language} HELDOUT {i}",
            key=f"h{i}",
        )
        for i in range(4)
    )
    return LanguagePools(language, source, train, heldout, 14, 14, 14)


def allocation(examples: dict[str, int]) -> Allocation:
    return Allocation(
        allocator="planner",
        method="test",
        languages=tuple(examples),
        amounts=tuple(float(v) for v in examples.values()),
        examples=tuple(examples.values()),
        budget=float(sum(examples.values())),
    )


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_writes_exact_counts_from_training_pools_only(tmp_path: Path) -> None:
    request = DataRequest(tmp_path / "a", {"el": "fake", "hi": "fake"}, seed=3)
    manifest = write_training_data(allocation({"el": 25, "hi": 3}), request, fake_pools)
    records = read_jsonl(tmp_path / "a" / "train.jsonl")
    assert len(records) == 28 == manifest["examples"]
    assert Counter(r["language"] for r in records) == {"el": 25, "hi": 3}
    text = (tmp_path / "a" / "train.jsonl").read_text(encoding="utf-8")
    assert "HELDOUT" not in text and "heldout sentence" not in text
    for record in records:
        user, assistant = record["messages"]  # type: ignore[misc]
        assert user["role"] == "user" and assistant["role"] == "assistant"
        assert "english" in user["content"]  # en-x: the English side is the prompt's input
    # 25 from a pool of 10: two full passes (each pair twice) plus 5 pairs a third time.
    el_answers = Counter(r["messages"][1]["content"] for r in records if r["language"] == "el")  # type: ignore[index]
    assert sorted(el_answers.values()) == [2] * 5 + [3] * 5
    assert manifest["languages"]["el"]["passes"] == 2.5


def test_sampling_is_deterministic_and_seeded(tmp_path: Path) -> None:
    plan = allocation({"el": 17, "hi": 6})
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        write_training_data(
            plan, DataRequest(tmp_path / name, {"el": "x", "hi": "x"}, seed=seed), fake_pools
        )
    a, b, c = ((tmp_path / n / "train.jsonl").read_bytes() for n in "abc")
    assert a == b and a != c


def test_first_pass_follows_the_sweeps_nested_order() -> None:
    pools = fake_pools("x", "el")
    assert choose_pairs(pools, 4, seed=7) == list(select_pairs(pools, 4, 7))
    assert choose_pairs(pools, 6, seed=7)[:4] == choose_pairs(pools, 4, seed=7)  # nested
    assert choose_pairs(pools, 0, seed=7) == []


def test_alpaca_format_and_direction(tmp_path: Path) -> None:
    request = DataRequest(tmp_path, {"el": "x"}, direction="x-en", data_format="alpaca")
    write_training_data(allocation({"el": 4}), request, fake_pools)
    for record in read_jsonl(tmp_path / "train.jsonl"):
        assert set(record) == {"instruction", "input", "output", "language"}
        assert "english" in str(record["output"])  # x-en: the English side is the answer


def test_missing_corpus_and_bad_format(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--corpus el=SOURCE"):
        write_training_data(allocation({"el": 4}), DataRequest(tmp_path, {}), fake_pools)
    with pytest.raises(ConfigError, match="Unknown --data-format"):
        request = DataRequest(tmp_path, {"el": "x"}, data_format="csv")
        write_training_data(allocation({"el": 4}), request, fake_pools)


def test_cli_write_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sweeps.corpus, "load_pools", fake_pools)  # stands in for the loader
    filters_seen.clear()
    laws = write_score_laws(tmp_path / "laws.json")
    argv = [str(laws), "--budget", "60", "--languages", "el,hi", "--write-data", "data"]
    assert main([*argv, "--available", "el=10,hi=10", "--max-epochs", "3", "--no-plots"]) == 0
    records = read_jsonl(tmp_path / "data" / "train.jsonl")
    assert len(records) == 60
    manifest = json.loads((tmp_path / "data" / "manifest.json").read_text())
    assert manifest["languages"]["el"]["corpus"] == "corpora/el.jsonl"
    # The pools are the sweep's: the laws file's pair filter reaches the loader.
    assert filters_seen == [PairFilter(4, 20, 0.1)] * 2
    assert (
        manifest["languages"]["el"]["pair_filter"]
        == "min_words=4,max_words=20,heldout_fraction=0.1"
    )
    mixture = json.loads((tmp_path / "runs/allocate/mixture.json").read_text())
    assert mixture["languages"]["hi"]["pair_filter"] == manifest["languages"]["el"]["pair_filter"]
    capsys.readouterr()


def test_real_loader_on_a_jsonl_corpus(tmp_path: Path) -> None:
    corpus = tmp_path / "el.jsonl"
    lines = [
        json.dumps(
            {"en": f"This is test sentence number {i} here.", "el": f"Αυτή είναι η πρόταση {i}."}
        )
        for i in range(60)
    ]
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    pools = sweeps.corpus.load_pools(str(corpus), "el")
    heldout = {p.text for p in pools.heldout}
    request = DataRequest(tmp_path / "out", {"el": str(corpus)}, seed=0)
    n = 2 * len(pools.train) + 3
    write_training_data(allocation({"el": n}), request)
    records = read_jsonl(tmp_path / "out" / "train.jsonl")
    answers = [r["messages"][1]["content"] for r in records]  # type: ignore[index]
    assert len(answers) == n
    assert not heldout & set(answers)
    assert set(answers) == {p.text for p in pools.train}
