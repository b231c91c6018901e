"""`plan-sweep write-data`: deterministic MuIT JSONL of one allocation of a mixture file,
from the sweep's training pools, never the held-out ones."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from test_planner_helpers import write_score_laws

import sweeps.corpus
from muit_core import ConfigError, DataError
from planner.cli import main as plan_allocate
from sweeps.instructions import select_pairs
from sweeps.mixture import Mixture, read_mixture
from sweeps.pairs import LanguagePools, Pair, PairFilter
from sweeps.templates import Direction
from sweeps.write_data import choose_pairs, write_training_data

filters_seen: list[PairFilter | None] = []
POOL = 10


def fake_pools(source: str, language: str, pair_filter: PairFilter | None = None) -> LanguagePools:
    """Stands in for the corpus loader (`sweeps.corpus.load_pools`): 10 training pairs and
    4 held-out pairs per language, whose texts say which pool they are from. Records the
    filter it was given in filters_seen."""
    filters_seen.append(pair_filter)
    train = tuple(
        Pair(en=f"train sentence number {i} in english", text=f"{language} train {i}", key=f"t{i}")
        for i in range(POOL)
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


def make_mixture(tmp_path: Path, budget: int = 28, seed: int = 3) -> Path:
    """A real mixture file: plan-allocate on a synthetic laws file, el and hi, pools of 10."""
    laws = write_score_laws(tmp_path / "laws.json")
    argv = [str(laws), "--budget", str(budget), "--languages", "el,hi", "--seed", str(seed)]
    out = tmp_path / "allocate"
    argv += ["--available", f"el={POOL},hi={POOL}", "--max-epochs", "3", "--no-plots"]
    assert plan_allocate([*argv, "--out", str(out)]) == 0
    return out / "mixture.json"


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def write(mixture: Mixture, out: Path, allocator: str = "planner", **kw: object) -> dict:
    kw.setdefault("direction", Direction.EN_TO_X)
    return write_training_data(mixture, mixture.allocation(allocator), out, load=fake_pools, **kw)  # type: ignore[arg-type]


def test_writes_the_allocations_exact_counts_from_training_pools_only(tmp_path: Path) -> None:
    mixture = read_mixture(make_mixture(tmp_path))
    planned = mixture.allocation("planner").examples
    filters_seen.clear()
    manifest = write(mixture, tmp_path / "a")
    records = read_jsonl(tmp_path / "a" / "train.jsonl")
    assert len(records) == sum(planned.values()) == 28 == manifest["examples"]
    assert Counter(r["language"] for r in records) == {k: v for k, v in planned.items() if v}
    text = (tmp_path / "a" / "train.jsonl").read_text(encoding="utf-8")
    assert "HELDOUT" not in text and "heldout sentence" not in text
    for record in records:
        user, assistant = record["messages"]  # type: ignore[misc]
        assert user["role"] == "user" and assistant["role"] == "assistant"
        assert "english" in user["content"]  # en-x: the English side is the prompt's input
    # The pools are the sweep's: the mixture's pair filter reaches the loader.
    assert set(filters_seen) == {PairFilter(4, 20, 0.1)}
    assert manifest["seed"] == 3 and manifest["allocator"] == "planner"
    lang = max(planned, key=lambda k: planned[k])
    assert manifest["languages"][lang]["passes"] == planned[lang] / POOL


def test_any_baseline_and_repeated_passes(tmp_path: Path) -> None:
    mixture = read_mixture(make_mixture(tmp_path, budget=50))
    uniform = mixture.allocation("uniform").examples
    assert uniform == {"el": 25, "hi": 25}
    write(mixture, tmp_path / "u", allocator="uniform")
    records = read_jsonl(tmp_path / "u" / "train.jsonl")
    # 25 from a pool of 10: two full passes (each pair twice) plus 5 pairs a third time.
    el = Counter(r["messages"][1]["content"] for r in records if r["language"] == "el")  # type: ignore[index]
    assert sorted(el.values()) == [2] * 5 + [3] * 5
    # Baseline names with spaces also answer to a shell-friendly slug.
    assert mixture.allocation("temperature-t-5").allocator == "temperature T=5"


def test_sampling_is_deterministic_and_seeded(tmp_path: Path) -> None:
    outputs = []
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        mixture = read_mixture(make_mixture(tmp_path / name, seed=seed))
        write(mixture, tmp_path / name / "data")
        outputs.append((tmp_path / name / "data" / "train.jsonl").read_bytes())
    a, b, c = outputs
    assert a == b and a != c


def test_first_pass_follows_the_sweeps_nested_order() -> None:
    pools = fake_pools("x", "el")
    assert choose_pairs(pools, 4, seed=7) == list(select_pairs(pools, 4, 7))
    assert choose_pairs(pools, 6, seed=7)[:4] == choose_pairs(pools, 4, seed=7)  # nested
    assert choose_pairs(pools, 0, seed=7) == []


def test_alpaca_format_direction_and_system_prompt(tmp_path: Path) -> None:
    mixture = read_mixture(make_mixture(tmp_path))
    write(
        mixture,
        tmp_path / "d",
        direction=Direction.X_TO_EN,
        data_format="alpaca",
        system_prompt="Be brief.",
    )
    for record in read_jsonl(tmp_path / "d" / "train.jsonl"):
        assert set(record) == {"instruction", "input", "output", "language", "system"}
        assert "english" in str(record["output"])  # x-en: the English side is the answer


def edit(path: Path, change: object) -> Path:
    raw = json.loads(path.read_text())
    change(raw)  # type: ignore[operator]
    path.write_text(json.dumps(raw))
    return path


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (lambda m: m.pop("seed"), DataError, r"lacks seed .*re-run plan-allocate"),
        (lambda m: m.update(format="x/0"), DataError, r"not a muit-mixture/1 mixture file"),
        (
            lambda m: m["languages"]["el"].update(examples=10_000),
            DataError,
            r"above its cap of 30",
        ),
        (lambda m: m["languages"]["el"].update(examples=2.5), DataError, r"not a whole number"),
        (
            lambda m: m["baselines"]["uniform"]["examples"].update(xx=3),
            DataError,
            r"uniform allocates el, hi, xx",
        ),
    ],
)
def test_hand_edited_mixture_is_refused(
    tmp_path: Path, change: object, error: type[Exception], match: str
) -> None:
    path = edit(make_mixture(tmp_path), change)
    with pytest.raises(error, match=match):
        read_mixture(path)


def test_missing_truncated_and_unknown_allocator(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"No mixture file at .*plan-allocate wrote"):
        read_mixture(tmp_path / "nope.json")
    path = make_mixture(tmp_path)
    mixture = read_mixture(path)
    with pytest.raises(ConfigError, match=r"has no allocator 'oracle'; it has: planner, uniform"):
        mixture.allocation("oracle")
    path.write_text(path.read_text()[:200])
    with pytest.raises(DataError, match=r"not valid JSON .*truncated"):
        read_mixture(path)


def test_a_changed_corpus_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    mixture = read_mixture(
        edit(make_mixture(tmp_path), lambda m: m["languages"]["el"].update(n_available=11))
    )
    out = tmp_path / "data"
    with pytest.raises(
        DataError, match=r"el: the training pool .* has 10 pairs, the plan assumed 11"
    ):
        write(mixture, out)
    assert not out.exists() or not any(out.iterdir())


def test_an_output_folder_with_other_files_is_refused_and_kept(tmp_path: Path) -> None:
    mixture = read_mixture(make_mixture(tmp_path))
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"holds other files \(notes.txt\)"):
        write(mixture, tmp_path / "d")
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["notes.txt"]
    write(mixture, tmp_path / "e")  # a rewrite of an earlier set is fine
    first = (tmp_path / "e" / "train.jsonl").read_bytes()
    write(mixture, tmp_path / "e")
    assert (tmp_path / "e" / "train.jsonl").read_bytes() == first


def test_unknown_format(tmp_path: Path) -> None:
    mixture = read_mixture(make_mixture(tmp_path))
    with pytest.raises(ConfigError, match="Unknown --format 'csv'"):
        write(mixture, tmp_path, data_format="csv")


def test_real_loader_on_a_jsonl_corpus(tmp_path: Path) -> None:
    for lang, text in (("el", "Αυτή είναι η πρόταση"), ("hi", "यह वाक्य संख्या")):
        lines = [
            json.dumps({"en": f"This is test sentence number {i} here.", lang: f"{text} {i}."})
            for i in range(60)
        ]
        (tmp_path / f"{lang}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    corpus = tmp_path / "{lang}.jsonl"
    pools = sweeps.corpus.load_pools(str(corpus), "el")
    n = 2 * len(pools.train) + 3
    mixture_path = make_mixture(tmp_path)

    def point_at_corpus(raw: dict) -> None:
        raw["languages"]["el"].update(
            examples=n,
            corpus=str(corpus),
            pair_filter=None,
            n_available=len(pools.train),
            cap=3 * len(pools.train),
        )
        raw["languages"]["hi"].update(
            examples=0, corpus=str(corpus), pair_filter=None, n_available=len(pools.train)
        )

    mixture = read_mixture(edit(mixture_path, point_at_corpus))
    write_training_data(
        mixture, mixture.allocation("planner"), tmp_path / "out", direction=Direction.EN_TO_X
    )
    answers = [r["messages"][1]["content"] for r in read_jsonl(tmp_path / "out" / "train.jsonl")]  # type: ignore[index]
    assert len(answers) == n
    assert not {p.text for p in pools.heldout} & set(answers)
    assert set(answers) == {p.text for p in pools.train}
