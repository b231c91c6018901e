"""`plan-sweep write-data`: the MuIT training set of one allocation of a mixture, ready for
common trainers.

Pairs come from the same corpora, pair filters and training pools as the sweep, never from
the held-out pools. Selection is deterministic: a language given n <= pool pairs gets the first
n of the pool in the seed's order (the sweep's own nested order, so the plan's data extends
what the sweep trained on); above one pool, every full pass is the whole pool in its own seeded
order, and the last, partial pass is a prefix of another. General instructions join them by
the spec's recipe (`sweeps.general_data`). The mixture is then shuffled with the seed.
`plan-sweep validate` trains on exactly these examples (`mixture_examples`).

The output folder (all files land together, or none):
- `train.jsonl`: the whole shuffled mixture; `manifest.json`: counts, passes, text sizes and
  sources per language and per file, the general recipe, and the eval rule;
- `data/train.<lang>.jsonl` (translation), `data/general.<lang>.jsonl` (general instructions in
  X, and `general.en` in English), `data/eval.<lang>.jsonl` (the held-out pairs every sweep run
  and the closed loop scored);
- `README.md` (Hugging Face `datasets`), `dataset_info.json` + `llamafactory.yaml`
  (LLaMA-Factory), `axolotl.yaml` (Axolotl): see `sweeps.trainer_formats`.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from muit_core import ConfigError, DataError, OutputSet
from sweeps.corpus import load_pools
from sweeps.data_layout import build_manifest, check_out_dir, data_files, remove_stale
from sweeps.general_data import GeneralRecipe, mixture_general
from sweeps.instructions import (
    Example,
    heldout_direction,
    heldout_examples,
    select_pairs,
    translation_examples,
)
from sweeps.mixture import Mixture, MixtureAllocation, MixtureLanguage
from sweeps.mixture_data import LanguageData, MixtureData
from sweeps.pairs import LanguagePools, Pair, PairFilter, english_key
from sweeps.templates import Direction
from sweeps.trainer_formats import DATA_FORMATS, jsonl, trainer_configs

log = logging.getLogger(__name__)

PoolLoader = Callable[[str, str, PairFilter | None], LanguagePools]


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
    general: GeneralRecipe | None = None,
    heldout_size: int = 0,
) -> MixtureData:
    """Every language's examples for `allocation`, drawn as the sweep drew them.

    Args:
        general: the general-data recipe (the spec's `data.general_*`); None = none.
        heldout_size: held-out examples to build per language (`eval.heldout_size`); 0 = none.

    Raises:
        ConfigError: a language has no corpus in the mixture.
        DataError: a corpus changed size since the plan (so the plan's caps no longer hold),
            cannot be read, or a training pair is also held out; a general data file the
            recipe names is missing or malformed.
    """
    # General data first: a missing or malformed file fails before any corpus is read.
    recipe = general or GeneralRecipe()
    per_language, english = mixture_general(recipe, allocation.examples, mixture.seed)
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
        heldout = tuple(heldout_examples(pools, heldout_size, lang.code, direction))
        chosen = choose_pairs(pools, n_examples, mixture.seed) if n_examples else []
        _check_disjoint(pools, chosen)
        out.append(
            LanguageData(
                lang.code,
                tuple(translation_examples(chosen, lang.code, direction)),
                len(pools.train) if n_examples else 0,
                lang.corpus,
                lang.pair_filter,
                per_language.get(lang.code),
                heldout,
            )
        )
    return MixtureData(tuple(out), english)


def shuffled_union(data: MixtureData, seed: int) -> list[Example]:
    """All training examples in one list, shuffled with `seed` (the MuIT training order)."""
    union = data.training_examples()
    random.Random(seed).shuffle(union)
    return union


def check_format(data_format: str) -> None:
    """Raise `ConfigError` for a data format `write_training_data` cannot write."""
    if data_format not in DATA_FORMATS:
        raise ConfigError(
            f"Unknown --format {data_format!r}; use one of {', '.join(DATA_FORMATS)}."
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
    general: GeneralRecipe | None = None,
    heldout_size: int = 0,
) -> dict[str, Any]:
    """Write one allocation's MuIT set and its trainer configs into `out_dir`.

    Everything is drawn and checked before anything is written, and all files land together
    (`muit_core.OutputSet`): a failure leaves the folder as it was.

    Args:
        general: the general-data recipe the sweep trained with; None = none.
        heldout_size: held-out examples per language for the eval files (the spec's
            `eval.heldout_size`); 0 writes no eval files.

    Returns:
        The manifest written.

    Raises:
        ConfigError: an unknown format, a language without a corpus, or an output folder
            holding other files.
        DataError: see `mixture_examples`.
    """
    check_format(data_format)
    check_out_dir(out_dir)
    data = mixture_examples(mixture, allocation, direction, load, general, heldout_size)
    union = shuffled_union(data, mixture.seed)
    files = data_files(data)
    settings = {
        "format": data_format,
        "direction": direction.value,
        "general_recipe": (general or GeneralRecipe()).to_dict(),
        "eval": {
            "heldout_size": heldout_size,
            "direction": heldout_direction(direction).value,
            "rule": "each language's first eval.heldout_size held-out pairs (the corpus split "
            "of sweeps.pairs.split_pairs): what every sweep run and validate scored",
        },
    }
    manifest = build_manifest(mixture, allocation, data, files, settings)
    title = f"MuIT training set: {allocation.allocator}'s allocation of {mixture.path.name}"
    configs = trainer_configs(files, data_format, system_prompt, out_dir.resolve(), title)
    with OutputSet(out_dir) as out:
        out.write_text("train.jsonl", jsonl(union, data_format, system_prompt))
        for f in files:
            out.write_text(f.path, jsonl(f.examples, data_format, system_prompt))
        for name, text in configs.items():
            out.write_text(name, text)
        out.write_text("manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    remove_stale(out_dir, {f.path for f in files})
    for part in data.languages:
        log.info(
            "%s: %d examples from %d training pairs", part.language, len(part.examples), part.pool
        )
    return manifest
