"""Parallel corpora: English <-> language X pairs, split into a training and a held-out pool.

`load_pools(source, language, pair_filter)` picks the corpus kind for a source string from
`CORPORA`, reads its aligned pairs, and splits them with `sweeps.pairs.split_pairs` (so every
kind is filtered, deduplicated and split by the same rule). The kinds, in the order they are
asked:
- `libreoffice` (the embedded default): LibreOffice's translated help pages from Debian's
  `libreoffice-help-<lang>` packages, or `libreoffice:/path/to/usr/share/libreoffice/help` for
  an extracted folder; see `sweeps.corpus_libreoffice`.
- anything else is a path to a `.jsonl`, `.tsv` file or a saved Hugging Face dataset folder;
  see `sweeps.corpus_user`.

Adding a corpus kind is one `CorpusEntry` (in its own module) and one line in `CORPORA`. The
pair types live in `sweeps.pairs`; they are re-exported here for callers that read pools.
"""

from __future__ import annotations

import logging

from sweeps import corpus_libreoffice, corpus_user
from sweeps.pairs import (
    DEFAULT_HELDOUT_FRACTION,
    DEFAULT_MAX_WORDS,
    DEFAULT_MIN_WORDS,
    CorpusEntry,
    LanguagePools,
    Pair,
    PairFilter,
    english_key,
    heldout_score,
    normalise_space,
    split_pairs,
)

__all__ = [
    "CORPORA",
    "DEFAULT_HELDOUT_FRACTION",
    "DEFAULT_MAX_WORDS",
    "DEFAULT_MIN_WORDS",
    "DEFAULT_SOURCE",
    "LIBREOFFICE_SOURCE",
    "CorpusEntry",
    "LanguagePools",
    "Pair",
    "PairFilter",
    "corpus_for",
    "english_key",
    "heldout_score",
    "load_pools",
    "normalise_space",
    "source_help",
    "split_pairs",
]

log = logging.getLogger(__name__)

# The user corpus claims every source (it is a path), so it is asked last.
CORPORA: tuple[CorpusEntry, ...] = (corpus_libreoffice.CORPUS, corpus_user.CORPUS)
LIBREOFFICE_SOURCE = corpus_libreoffice.LIBREOFFICE_SOURCE
DEFAULT_SOURCE = LIBREOFFICE_SOURCE


def corpus_for(source: str) -> CorpusEntry:
    """The first entry of `CORPORA` that claims `source`."""
    for entry in CORPORA:
        if entry.claims(source):
            return entry
    raise AssertionError(f"no corpus claims {source!r}; the last entry must claim every source")


def source_help() -> str:
    """The source strings every corpus kind takes, for the `--source` help."""
    return ", or ".join(entry.source_help for entry in CORPORA)


def load_pools(
    source: str,
    language: str,
    pair_filter: PairFilter | None = None,
) -> LanguagePools:
    """Load a language's training and held-out pools from any supported source.

    Args:
        source: `libreoffice`, `libreoffice:/extracted/help/folder`, or a path to a `.jsonl`
            or `.tsv` file or a saved Hugging Face dataset folder. A path may contain
            `{lang}`, replaced by the language code (one file per language).
        language: the language code, e.g. `el`.
        pair_filter: length limits and held-out fraction; defaults documented on `PairFilter`.

    Raises:
        DataError: unknown language, missing or empty corpus, malformed file.
    """
    raw = corpus_for(source).read_pairs(source, language)
    pools = split_pairs(language, source, raw, pair_filter)
    log.debug(
        "%s from %s: %d train, %d held out (%d aligned)",
        language,
        source,
        len(pools.train),
        len(pools.heldout),
        pools.n_aligned,
    )
    return pools
