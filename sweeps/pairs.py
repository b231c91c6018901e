"""Translation pairs and the rules that turn a corpus into training and held-out pools.

The types every corpus shares (`Pair`, `PairFilter`, `LanguagePools`, `CorpusEntry`) and the
one split rule (`split_pairs`). Corpus readers (`sweeps.corpus_libreoffice`,
`sweeps.corpus_user`) import this module; `sweeps.corpus` picks the reader for a source.

Every source ends in the same `LanguagePools`: deduplicated `Pair`s, filtered by English
length, split deterministically by a hash of the normalised English text. Because the split
depends on the English side only, an English sentence that is held out for one language is held
out for every language, so no held-out sentence is ever trained on, in any language.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from muit_core import DataError

DEFAULT_HELDOUT_FRACTION = 0.1  # of distinct English sentences; hi (~3.3k pairs) keeps ~300
DEFAULT_MIN_WORDS = 4  # English words; shorter strings are mostly UI labels
DEFAULT_MAX_WORDS = 80  # English words; longer paragraphs are rare and cost the most to train on


@dataclass(frozen=True)
class Pair:
    """One aligned translation pair.

    Attributes:
        en: the English text.
        text: the same text in the pair's language.
        key: a stable id of where the pair came from (e.g. `text/shared/x.html#par_id1`).
    """

    en: str
    text: str
    key: str


@dataclass(frozen=True)
class LanguagePools:
    """A language's pairs, split into disjoint pools.

    Attributes:
        language: the language code (`el`, `zh-CN`, ...), the same string everywhere.
        source: where the pairs came from (`libreoffice` or a path).
        train: the training pool, in a deterministic pseudo-random order (by hash).
        heldout: the held-out pool, never trained on; same order rule.
        n_aligned: aligned pairs before any filter.
        n_translated: pairs left after dropping empty and untranslated ones (identical sides).
        n_in_length: of those, pairs within the English word limits (before deduplication).
    """

    language: str
    source: str
    train: tuple[Pair, ...]
    heldout: tuple[Pair, ...]
    n_aligned: int
    n_translated: int
    n_in_length: int


@dataclass(frozen=True)
class PairFilter:
    """What `split_pairs` keeps.

    Attributes:
        min_words: fewest English words (inclusive).
        max_words: most English words (inclusive).
        heldout_fraction: share of distinct English sentences held out, in [0, 1).
    """

    min_words: int = DEFAULT_MIN_WORDS
    max_words: int = DEFAULT_MAX_WORDS
    heldout_fraction: float = DEFAULT_HELDOUT_FRACTION

    def to_text(self) -> str:
        """`min_words=4,max_words=20,heldout_fraction=0.1`: the form results.csv and the laws
        file carry, so the plan's data comes from the pools the sweep trained on."""
        return (
            f"min_words={self.min_words},max_words={self.max_words},"
            f"heldout_fraction={self.heldout_fraction:g}"
        )

    @classmethod
    def from_text(cls, text: str) -> PairFilter:
        """The filter `to_text` wrote; fields left out keep their defaults.

        Raises:
            DataError: an unknown field or a value that is not a number.
        """
        values: dict[str, float] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            name, _, value = item.partition("=")
            try:
                if name not in _FILTER_FIELDS:
                    raise ValueError
                values[name] = float(value) if name == "heldout_fraction" else int(value)
            except ValueError:
                raise DataError(
                    f"Bad pair filter item {item!r} in {text!r}; write it as "
                    "min_words=4,max_words=80,heldout_fraction=0.1."
                ) from None
        return cls(**values)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-able dict (what a run records in the ledger)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PairFilter:
        """The filter whose fields `data` holds, e.g. `to_dict()` or a spec's `data` section.

        Only the three field names are read; other keys are ignored and missing fields keep
        their defaults, so a stored config whose other keys were renamed still gives its filter.

        Raises:
            DataError: a field value is not a number or is out of range.
        """
        values: dict[str, Any] = {}
        for name in _FILTER_FIELDS:
            if name not in data:
                continue
            value = data[name]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise DataError(f"Bad pair filter field {name}={value!r}; it must be a number.")
            values[name] = float(value) if name == "heldout_fraction" else int(value)
        return cls(**values)

    def __post_init__(self) -> None:
        if self.min_words < 1 or self.max_words < self.min_words:
            raise DataError(
                f"Word limits min_words={self.min_words}, max_words={self.max_words} are "
                "inconsistent; use 1 <= min_words <= max_words."
            )
        if not 0.0 <= self.heldout_fraction < 1.0:
            raise DataError(
                f"heldout_fraction={self.heldout_fraction} must be in [0, 1); 0.1 is typical."
            )


_FILTER_FIELDS = tuple(f.name for f in dataclasses.fields(PairFilter))


@dataclass(frozen=True)
class CorpusEntry:
    """One kind of corpus, as `sweeps.corpus` dispatches to it: adding a corpus is one entry.

    Attributes:
        name: a short name for the kind (`libreoffice`, `user`).
        source_help: the source strings it takes, as the `--source` help lists them.
        claims: whether a source string is of this kind.
        read_pairs: `(source, language) -> aligned pairs`, unfiltered; raises `DataError`.
    """

    name: str
    source_help: str
    claims: Callable[[str], bool]
    read_pairs: Callable[[str, str], list[Pair]]


_SPACE_RE = re.compile(r"\s+")


def normalise_space(text: str) -> str:
    """Unicode NFC, whitespace runs collapsed to one space, ends stripped."""
    return _SPACE_RE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def english_key(en: str) -> str:
    """The form of an English sentence that decides its split: case- and space-insensitive."""
    return normalise_space(en).casefold()


def heldout_score(en: str) -> float:
    """A uniform number in [0, 1) fixed by the English text alone (SHA-1 of `english_key`)."""
    digest = hashlib.sha1(english_key(en).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_pairs(
    language: str,
    source: str,
    raw_pairs: Iterable[Pair],
    pair_filter: PairFilter | None = None,
) -> LanguagePools:
    """Filter, deduplicate and split aligned pairs into training and held-out pools.

    Drops pairs whose two sides are identical (untranslated), whose English side has too few or
    too many words, or whose either side is empty; keeps the first pair (by key) of each
    distinct English sentence. A pair is held out when `heldout_score(en)` falls below the
    held-out fraction, which depends on the English text only.

    Raises:
        DataError: nothing is left after filtering.
    """
    rules = pair_filter or PairFilter()
    by_english: dict[str, Pair] = {}
    n_aligned = n_translated = n_in_length = 0
    for pair in sorted(raw_pairs, key=lambda p: p.key):
        n_aligned += 1
        en, text = normalise_space(pair.en), normalise_space(pair.text)
        if not en or not text or en == text:
            continue
        n_translated += 1
        if not rules.min_words <= len(en.split()) <= rules.max_words:
            continue
        n_in_length += 1
        by_english.setdefault(english_key(en), Pair(en=en, text=text, key=pair.key))
    if not by_english:
        raise DataError(
            f"No usable {language} pairs in {source!r} ({n_aligned} aligned before filtering); "
            f"check the language code and the word limits {rules.min_words}-{rules.max_words}."
        )
    scored = sorted(by_english.values(), key=lambda p: (heldout_score(p.en), p.key))
    train = tuple(p for p in scored if heldout_score(p.en) >= rules.heldout_fraction)
    heldout = tuple(p for p in scored if heldout_score(p.en) < rules.heldout_fraction)
    return LanguagePools(language, source, train, heldout, n_aligned, n_translated, n_in_length)
