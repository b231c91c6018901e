"""Corpus splitting rules, and the LibreOffice loader on the real Debian packages."""

from __future__ import annotations

from pathlib import Path

import pytest

from muit_core import DataError
from sweeps import corpus_libreoffice
from sweeps.corpus import CORPORA, corpus_for, load_pools, source_help
from sweeps.pairs import (
    LanguagePools,
    Pair,
    PairFilter,
    english_key,
    heldout_score,
    split_pairs,
)

ENGLISH = [
    "Click the button to open the dialog box.",
    "Choose Format - Cells and then the Numbers tab.",
    "The function returns the sum of all arguments.",
    "Select the cell range that you want to sort.",
    "You can rename a sheet by double-clicking its tab.",
    "Press Enter to confirm the entry in the cell.",
]


def _pairs(prefix: str) -> list[Pair]:
    return [
        Pair(en=en, text=f"{prefix} {en[::-1]}", key=f"f.html#{i}") for i, en in enumerate(ENGLISH)
    ]


def test_untranslated_short_long_and_duplicates_are_dropped() -> None:
    raw = [
        *_pairs("xx"),
        Pair("Same text in both languages here.", "Same text in both languages here.", "a#1"),
        Pair("Too short", "zu kurz", "a#2"),
        Pair(" ".join(["word"] * 81), "lang", "a#3"),
        Pair("  Click the button to OPEN the dialog box. ", "duplicate", "z#9"),
        Pair("", "empty English", "a#4"),
    ]
    pools = split_pairs("de", "test", raw, PairFilter(heldout_fraction=0.0))
    kept = {p.en for p in pools.train}
    assert kept == set(ENGLISH)
    assert pools.n_aligned == len(raw)
    assert pools.n_translated == len(raw) - 2  # identical and empty sides
    assert pools.n_in_length == len(ENGLISH) + 1  # the case/space duplicate is in length
    assert not pools.heldout


def test_split_depends_on_english_only_and_is_deterministic() -> None:
    pair_filter = PairFilter(heldout_fraction=0.5)
    first = split_pairs("el", "t", _pairs("el"), pair_filter)
    second = split_pairs("tr", "t", list(reversed(_pairs("tr"))), pair_filter)
    assert [p.en for p in first.heldout] == [p.en for p in second.heldout]
    assert [p.en for p in first.train] == [p.en for p in second.train]
    assert {p.en for p in first.train}.isdisjoint({p.en for p in first.heldout})
    assert english_key(" A  b ") == english_key("a B")
    assert 0.0 <= heldout_score("anything") < 1.0


def test_nothing_left_is_an_error() -> None:
    with pytest.raises(DataError, match="No usable el pairs"):
        split_pairs("el", "t", [Pair("same same same same", "same same same same", "k")])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"min_words": 0}, "min_words"), ({"heldout_fraction": 1.0}, "heldout_fraction")],
)
def test_bad_filter_values(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(DataError, match=match):
        PairFilter(**kwargs)  # type: ignore[arg-type]


def test_pair_filter_text_round_trips_and_names_bad_items() -> None:
    rules = PairFilter(4, 20, 0.25)
    assert rules.to_text() == "min_words=4,max_words=20,heldout_fraction=0.25"
    assert PairFilter.from_text(rules.to_text()) == rules
    assert PairFilter.from_text("max_words=30") == PairFilter(max_words=30)  # others: defaults
    with pytest.raises(DataError, match=r"Bad pair filter item 'max_words=many'"):
        PairFilter.from_text("min_words=4,max_words=many")
    with pytest.raises(DataError, match=r"Bad pair filter item 'words=3'"):
        PairFilter.from_text("words=3")


def test_pair_filter_from_dict_reads_only_its_fields() -> None:
    rules = PairFilter(4, 20, 0.25)
    assert PairFilter.from_dict(rules.to_dict()) == rules
    spec_data = {"source": "libreoffice", "max_words": 30, "renamed_key": [1], "min_words": 2}
    assert PairFilter.from_dict(spec_data) == PairFilter(min_words=2, max_words=30)
    with pytest.raises(DataError, match=r"Bad pair filter field max_words='many'"):
        PairFilter.from_dict({"max_words": "many"})


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("libreoffice", "libreoffice"),
        ("libreoffice:/srv/help", "libreoffice"),
        ("corpora/{lang}.jsonl", "user"),
        ("libreoffice.tsv", "user"),
    ],
)
def test_each_source_goes_to_one_corpus(source: str, kind: str) -> None:
    assert corpus_for(source).name == kind
    assert next(entry.name for entry in CORPORA if entry.claims(source)) == kind


def test_source_help_lists_every_corpus() -> None:
    assert source_help() == (
        "'libreoffice' (default), 'libreoffice:HELP_DIR', or a .jsonl/.tsv/dataset path "
        "('{lang}' is replaced by the code)"
    )


def test_paragraph_parser_keeps_default_switch_and_drops_hidden(tmp_path: Path) -> None:
    page = tmp_path / "x.html"
    page.write_text(
        "<html><head><title>T</title></head><body>"
        '<p id="par_id1" class="paragraph">Use <span class="switchinline">'
        '<span hidden="true" id="MACtext_1" class="MAC">Command</span>'
        '<span hidden="true" id="defaulttext_1">Ctrl</span></span> + F to <b>find</b>'
        '<img src="a.png" alt="icon"> text.</p>'
        '<h2 id="hd_id2">A &amp; B</h2><p id="par_id3"></p><p>no id</p></body></html>',
        encoding="utf-8",
    )
    assert corpus_libreoffice.parse_help_file(page) == {
        "par_id1": "Use Ctrl + F to find text.",
        "hd_id2": "A & B",
    }


def test_unknown_language_lists_the_available_ones() -> None:
    with pytest.raises(DataError, match=r"Unknown language 'xx'.*Available: ca, cs"):
        load_pools("libreoffice", "xx")


def test_missing_help_folder_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist; extract a libreoffice-help"):
        load_pools(f"libreoffice:{tmp_path / 'nowhere'}", "el")


def test_missing_apt_get_points_at_an_extracted_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MUIT_CACHE", str(tmp_path))
    monkeypatch.setattr(corpus_libreoffice.shutil, "which", lambda tool: None)
    with pytest.raises(DataError, match="'libreoffice:/path/to/usr/share/libreoffice/help'"):
        load_pools("libreoffice", "el")


# Real Debian packages (fetched once into the cache; ~3 MB each).
EXPECTED_IN_LENGTH = {"el": (30_000, 36_000), "hi": (2_800, 3_600)}


@pytest.fixture(scope="module")
def real_pools() -> dict[str, LanguagePools]:
    return {lang: load_pools("libreoffice", lang) for lang in EXPECTED_IN_LENGTH}


@pytest.mark.parametrize("language", sorted(EXPECTED_IN_LENGTH))
def test_libreoffice_counts_are_in_the_expected_range(
    real_pools: dict[str, LanguagePools], language: str
) -> None:
    pools = real_pools[language]
    low, high = EXPECTED_IN_LENGTH[language]
    assert low <= pools.n_in_length <= high
    assert pools.n_translated < pools.n_aligned
    n_unique = len(pools.train) + len(pools.heldout)
    assert 0.05 < len(pools.heldout) / n_unique < 0.15


def test_libreoffice_pairs_are_translated_and_never_leak_across_languages(
    real_pools: dict[str, LanguagePools],
) -> None:
    heldout_english: set[str] = set()
    train_english: set[str] = set()
    for pools in real_pools.values():
        for pair in (*pools.train, *pools.heldout):
            assert pair.en != pair.text
            assert 4 <= len(pair.en.split()) <= 80
        heldout_english |= {english_key(p.en) for p in pools.heldout}
        train_english |= {english_key(p.en) for p in pools.train}
    assert heldout_english and train_english
    assert heldout_english.isdisjoint(train_english)
    # The two languages share many English sentences, so the check above is not vacuous.
    el, hi = real_pools["el"], real_pools["hi"]
    shared = {p.en for p in el.train} & {p.en for p in hi.train}
    assert len(shared) > 1_000
