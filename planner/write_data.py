"""`--write-data`: the MuIT training set of an allocation, as JSONL a trainer reads.

Pairs come from the same corpora and the same training pools as the sweep (`sweeps.corpus`,
imported here only, lazily: it is torch-free but `plan-allocate` does not need it otherwise),
never from the held-out pools. Selection is deterministic: a language given n <= pool pairs
gets the first n of the pool in the seed's order (the sweep's own nested order, so the plan's
data extends what the sweep trained on); above one pool, every full pass is the whole pool in
its own seeded order, and the last, partial pass is a prefix of another. The mixture is then
shuffled with the seed.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from muit_core import ConfigError, DataError, atomic_write_text
from planner.allocation import Allocation

if TYPE_CHECKING:
    from sweeps.corpus import LanguagePools, Pair, PairFilter

log = logging.getLogger(__name__)

DATA_FORMATS = ("chat", "alpaca")


@dataclass(frozen=True)
class DataRequest:
    """How to write the training set.

    Attributes:
        out_dir: folder for `train.jsonl` and `manifest.json`.
        corpora: corpus source per language (as `sweeps.corpus.load_pools` takes it).
        direction: translation direction, `en-x`, `x-en` or `both` (the sweep's default
            is `en-x`).
        data_format: `chat` ({"messages": [...]}) or `alpaca` ({"instruction", "input",
            "output"}); both carry `language`.
        seed: selection and shuffling seed.
        expected_pools: training-pool sizes the plan assumed (the laws file's); a pool of
            another size is logged as a warning (the corpus may have changed).
        pair_filters: the sweep's pair filter per language (`PairFilter.to_text` form), so
            the pools are the ones the sweep trained on; missing: the corpus defaults.
    """

    out_dir: Path
    corpora: dict[str, str]
    direction: str = "en-x"
    data_format: str = "chat"
    seed: int = 0
    expected_pools: dict[str, int] | None = None
    pair_filters: dict[str, str] | None = None


def _record(prompt: str, response: str, language: str, data_format: str) -> dict[str, Any]:
    if data_format == "alpaca":
        return {"instruction": prompt, "input": "", "output": response, "language": language}
    messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
    return {"messages": messages, "language": language}


def choose_pairs(pools: LanguagePools, n_examples: int, seed: int) -> list[Pair]:
    """`n_examples` training pairs: whole seeded passes over the pool, then a seeded prefix.

    Pass p uses the order `sweeps.instructions.select_pairs` gives for seed `seed + p`.
    """
    from sweeps.instructions import select_pairs

    size = len(pools.train)
    if n_examples > 0 and size == 0:
        raise DataError(f"The {pools.language} training pool in {pools.source!r} is empty.")
    chosen: list[Pair] = []
    passes, rest = divmod(n_examples, size) if size else (0, 0)
    for p in range(passes):
        chosen.extend(select_pairs(pools, size, seed + p))
    chosen.extend(select_pairs(pools, rest, seed + passes))
    return chosen


def _check_disjoint(pools: LanguagePools, chosen: list[Pair]) -> None:
    from sweeps.corpus import english_key

    heldout = {english_key(p.en) for p in pools.heldout}
    leaked = [p.key for p in chosen if english_key(p.en) in heldout]
    if leaked:
        raise DataError(
            f"{len(leaked)} {pools.language} training pairs (e.g. {leaked[0]!r}) are also held "
            "out; the corpus split is broken, so no data was written."
        )


def write_training_data(
    allocation: Allocation,
    request: DataRequest,
    load_pools: Callable[[str, str, PairFilter | None], LanguagePools] | None = None,
) -> dict[str, Any]:
    """Write `train.jsonl` (the shuffled mixture) and `manifest.json` for an allocation.

    Args:
        allocation: examples per language.
        request: where and how to write.
        load_pools: the corpus loader; `sweeps.corpus.load_pools` when None.

    Returns:
        The manifest written.

    Raises:
        ConfigError: an unknown format or direction, or a language without a corpus.
        DataError: a corpus cannot be read, or a training pair is also held out.
    """
    from sweeps.corpus import PairFilter
    from sweeps.instructions import translation_examples
    from sweeps.templates import Direction

    if request.data_format not in DATA_FORMATS:
        raise ConfigError(
            f"Unknown --data-format {request.data_format!r}; use one of {', '.join(DATA_FORMATS)}."
        )
    direction = Direction.parse(request.direction)
    if load_pools is None:
        from sweeps.corpus import load_pools as corpus_loader

        load_pools = corpus_loader
    records: list[dict[str, Any]] = []
    languages: dict[str, Any] = {}
    for lang, n_examples in zip(allocation.languages, allocation.examples, strict=True):
        source = request.corpora.get(lang)
        if not source:
            raise ConfigError(
                f"The laws file does not say which corpus {lang!r} came from; pass "
                f"--corpus {lang}=SOURCE (e.g. libreoffice or a JSONL path)."
            )
        if n_examples == 0:
            languages[lang] = {"examples": 0, "pool": None, "passes": 0.0, "corpus": source}
            continue
        filter_text = (request.pair_filters or {}).get(lang, "")
        pools = load_pools(
            source, lang, PairFilter.from_text(filter_text) if filter_text else None
        )
        expected = (request.expected_pools or {}).get(lang)
        if expected is not None and expected != len(pools.train):
            log.warning(
                "%s: the training pool in %s (%s) has %d pairs, the plan assumed %d; check that "
                "the corpus is the one the sweep read.",
                lang,
                source,
                filter_text or "default pair filter",
                len(pools.train),
                expected,
            )
        chosen = choose_pairs(pools, n_examples, request.seed)
        _check_disjoint(pools, chosen)
        for example in translation_examples(chosen, lang, direction):
            records.append(_record(example.prompt, example.response, lang, request.data_format))
        languages[lang] = {
            "examples": n_examples,
            "pool": len(pools.train),
            "passes": n_examples / len(pools.train),
            "corpus": source,
            "pair_filter": filter_text or None,
        }
        log.info("%s: %d examples from %d training pairs", lang, n_examples, len(pools.train))
    random.Random(request.seed).shuffle(records)
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    atomic_write_text(request.out_dir / "train.jsonl", lines)
    manifest = {
        "file": "train.jsonl",
        "examples": len(records),
        "format": request.data_format,
        "direction": direction.value,
        "seed": request.seed,
        "languages": languages,
    }
    atomic_write_text(request.out_dir / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest
