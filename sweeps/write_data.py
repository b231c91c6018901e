"""`plan-sweep write-data`: the MuIT training set of one allocation of a mixture, as JSONL.

Pairs come from the same corpora, pair filters and training pools as the sweep, never from
the held-out pools. Selection is deterministic: a language given n <= pool pairs gets the first
n of the pool in the seed's order (the sweep's own nested order, so the plan's data extends
what the sweep trained on); above one pool, every full pass is the whole pool in its own seeded
order, and the last, partial pass is a prefix of another. The mixture is then shuffled with the
seed. `plan-sweep validate` trains on exactly these examples (`mixture_examples`).
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from muit_core import ConfigError, DataError, OutputSet
from sweeps.corpus import load_pools
from sweeps.instructions import Example, select_pairs, translation_examples
from sweeps.mixture import Mixture, MixtureAllocation, MixtureLanguage
from sweeps.pairs import LanguagePools, Pair, PairFilter, english_key
from sweeps.templates import Direction

log = logging.getLogger(__name__)

DATA_FORMATS = ("chat", "alpaca")
PoolLoader = Callable[[str, str, PairFilter | None], LanguagePools]


@dataclass(frozen=True)
class LanguageData:
    """One language's share of a MuIT training set.

    Attributes:
        language: the language code.
        examples: the instruction examples, in selection order (before the mixture shuffle).
        pool: the training-pool size they were drawn from (0 when none were asked for).
        corpus: the corpus source.
        pair_filter: the pair filter, `PairFilter.to_text` form ('' = the corpus default).
    """

    language: str
    examples: tuple[Example, ...]
    pool: int
    corpus: str
    pair_filter: str


def choose_pairs(pools: LanguagePools, n_examples: int, seed: int) -> list[Pair]:
    """`n_examples` training pairs: whole seeded passes over the pool, then a seeded prefix.

    Pass p uses the order `sweeps.instructions.select_pairs` gives for seed `seed + p`, so the
    first pass is the sweep's own nested order.

    Raises:
        DataError: examples are asked of an empty pool.
    """
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
    heldout = {english_key(p.en) for p in pools.heldout}
    leaked = [p.key for p in chosen if english_key(p.en) in heldout]
    if leaked:
        raise DataError(
            f"{len(leaked)} {pools.language} training pairs (e.g. {leaked[0]!r}) are also held "
            "out; the corpus split is broken, so no data was written."
        )


def language_pools(lang: MixtureLanguage, load: PoolLoader = load_pools) -> LanguagePools:
    """The language's pools as the sweep read them: its corpus under its pair filter."""
    pair_filter = PairFilter.from_text(lang.pair_filter) if lang.pair_filter else None
    return load(lang.corpus, lang.code, pair_filter)


def mixture_examples(
    mixture: Mixture,
    allocation: MixtureAllocation,
    direction: Direction,
    load: PoolLoader = load_pools,
) -> list[LanguageData]:
    """Every language's examples for `allocation`, drawn as the sweep drew them.

    Raises:
        ConfigError: a language has no corpus in the mixture.
        DataError: a corpus changed size since the plan (so the plan's caps no longer hold),
            cannot be read, or a training pair is also held out.
    """
    out: list[LanguageData] = []
    for lang in mixture.languages:
        n_examples = allocation.examples[lang.code]
        if not lang.corpus:
            raise ConfigError(
                f"The mixture {mixture.path} does not say which corpus {lang.code!r} came from; "
                "re-run plan-fit and plan-allocate on results that carry a corpus column."
            )
        pools = language_pools(lang, load)  # every language: validate scores all
        if lang.n_available and lang.n_available != len(pools.train):
            raise DataError(
                f"{lang.code}: the training pool of {lang.corpus!r} "
                f"({lang.pair_filter or 'default pair filter'}) has {len(pools.train)} pairs, "
                f"the plan assumed {lang.n_available}; the corpus changed since the sweep: "
                "re-run the sweep's export, plan-fit and plan-allocate on it."
            )
        if n_examples == 0:
            out.append(LanguageData(lang.code, (), 0, lang.corpus, lang.pair_filter))
            continue
        chosen = choose_pairs(pools, n_examples, mixture.seed)
        _check_disjoint(pools, chosen)
        examples = tuple(translation_examples(chosen, lang.code, direction))
        out.append(
            LanguageData(lang.code, examples, len(pools.train), lang.corpus, lang.pair_filter)
        )
    return out


def shuffled_union(parts: list[LanguageData], seed: int) -> list[Example]:
    """All languages' examples in one list, shuffled with `seed` (the MuIT training order)."""
    union = [example for part in parts for example in part.examples]
    random.Random(seed).shuffle(union)
    return union


def _record(example: Example, data_format: str, system_prompt: str | None) -> dict[str, Any]:
    if data_format == "alpaca":
        record: dict[str, Any] = {
            "instruction": example.prompt,
            "input": "",
            "output": example.response,
            "language": example.language,
        }
        if system_prompt:
            record["system"] = system_prompt
        return record
    messages = [
        {"role": "user", "content": example.prompt},
        {"role": "assistant", "content": example.response},
    ]
    if system_prompt:
        messages.insert(0, {"role": "system", "content": system_prompt})
    return {"messages": messages, "language": example.language}


def check_format(data_format: str) -> None:
    """Raise `ConfigError` for a data format `write_training_data` cannot write."""
    if data_format not in DATA_FORMATS:
        raise ConfigError(
            f"Unknown --format {data_format!r}; use one of {', '.join(DATA_FORMATS)}."
        )


OUTPUT_FILES = ("train.jsonl", "manifest.json")


def check_out_dir(out_dir: Path) -> None:
    """Refuse an output folder that holds files other than an earlier training set's.

    Raises:
        ConfigError: `out_dir` is a file, or a folder with other files in it.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {str(out_dir)!r} is a file, not a folder; give a folder path.")
    if out_dir.is_dir():
        others = sorted(p.name for p in out_dir.iterdir() if p.name not in OUTPUT_FILES)
        if others:
            raise ConfigError(
                f"--out {str(out_dir)!r} holds other files ({', '.join(others[:3])}); give an "
                "empty or new folder, or one that only holds an earlier train.jsonl."
            )


def write_training_data(
    mixture: Mixture,
    allocation: MixtureAllocation,
    out_dir: Path,
    *,
    direction: Direction,
    data_format: str = "chat",
    system_prompt: str | None = None,
    load: PoolLoader = load_pools,
) -> dict[str, Any]:
    """Write `train.jsonl` (the shuffled mixture) and `manifest.json` for one allocation.

    Everything is drawn and checked before anything is written, and both files land together
    (`muit_core.OutputSet`): a failure leaves the folder as it was.

    Returns:
        The manifest written.

    Raises:
        ConfigError: an unknown format, or a language without a corpus.
        DataError: see `mixture_examples`.
    """
    check_format(data_format)
    check_out_dir(out_dir)
    parts = mixture_examples(mixture, allocation, direction, load)
    union = shuffled_union(parts, mixture.seed)
    lines = "".join(
        json.dumps(_record(e, data_format, system_prompt), ensure_ascii=False) + "\n"
        for e in union
    )
    languages = {
        part.language: {
            "examples": len(part.examples),
            "pool": part.pool or None,
            "passes": len(part.examples) / part.pool if part.pool else 0.0,
            "corpus": part.corpus,
            "pair_filter": part.pair_filter or None,
        }
        for part in parts
    }
    manifest = {
        "file": "train.jsonl",
        "mixture": str(mixture.path),
        "allocator": allocation.allocator,
        "examples": len(union),
        "format": data_format,
        "direction": direction.value,
        "seed": mixture.seed,
        "languages": languages,
    }
    with OutputSet(out_dir) as out:
        out.write_text("train.jsonl", lines)
        out.write_text("manifest.json", json.dumps(manifest, indent=2) + "\n")
    for part in parts:
        log.info(
            "%s: %d examples from %d training pairs", part.language, len(part.examples), part.pool
        )
    return manifest
