"""Training and evaluation examples of a sweep cell, before tokenisation.

A cell's translation pairs are the first `n` of its language's training pool in an order fixed
by the seed, so for one language and seed the larger run's data contains the smaller run's
(nested subsets: a curve over sizes is not noise from resampling). General-task instructions
(Alpaca JSONL, per language) are mixed in at a configured ratio, as in cross-lingual
instruction tuning.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from muit_core import ConfigError, DataError
from sweeps.pairs import LanguagePools, Pair
from sweeps.templates import Direction, pair_direction, render_translation


@dataclass(frozen=True)
class Example:
    """One instruction example: the loss falls on `response` only.

    Attributes:
        prompt: the user turn.
        response: the assistant turn (the reference).
        language: the language code of the cell.
        kind: `translation` or `general`.
        pair: the source pair of a translation example (None for general ones).
        direction: the concrete direction of a translation example.
    """

    prompt: str
    response: str
    language: str
    kind: str = "translation"
    pair: Pair | None = None
    direction: Direction | None = None


def _order_key(seed: int, pair: Pair) -> bytes:
    return hashlib.sha1(f"{seed}\x1f{pair.key}\x1f{pair.en}".encode()).digest()


def select_pairs(pools: LanguagePools, n_examples: int, seed: int) -> tuple[Pair, ...]:
    """The first `n_examples` training pairs in the seed's order (nested across sizes).

    Raises:
        ConfigError: `n_examples` exceeds the training pool; the message names the cap.
    """
    if n_examples > len(pools.train):
        raise ConfigError(
            f"Size {n_examples} is larger than the {pools.language} training pool "
            f"({len(pools.train)} pairs from {pools.source}); lower grid.sizes to at most "
            f"{len(pools.train)} or add data."
        )
    ordered = sorted(pools.train, key=lambda pair: _order_key(seed, pair))
    return tuple(ordered[:n_examples])


def translation_examples(
    pairs: tuple[Pair, ...] | list[Pair], language: str, direction: Direction
) -> list[Example]:
    """Translation instructions from pairs, each with its deterministic template."""
    examples = []
    for pair in pairs:
        prompt, response = render_translation(pair, language, direction)
        concrete = pair_direction(pair, direction)
        examples.append(Example(prompt, response, language, "translation", pair, concrete))
    return examples


def read_general_examples(path_template: str, language: str) -> list[Example]:
    """Alpaca-format instructions (`instruction`, optional `input`, `output`) for a language.

    Raises:
        DataError: the file is missing or a line is malformed (file and line named).
    """
    path = Path(path_template.replace("{lang}", language))
    if not path.is_file():
        raise DataError(
            f"General instruction file {path} does not exist; set data.general_data to an "
            "Alpaca JSONL path (with {lang} for one file per language) or to ''."
        )
    examples = []
    for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            instruction, output = record["instruction"], record["output"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise DataError(
                f"{path}:{line_number}: expected a JSON object with 'instruction' and 'output'."
            ) from None
        extra = record.get("input") or ""
        prompt = f"{instruction}\n\n{extra}" if extra else instruction
        examples.append(Example(prompt, output, language, "general"))
    return examples


def mix_general(
    translation: list[Example], general: list[Example], ratio: float, seed: int
) -> list[Example]:
    """Append `round(ratio * len(translation))` general examples, chosen by the seed.

    General examples repeat when the ratio asks for more than the file holds.
    """
    wanted = round(ratio * len(translation))
    if wanted <= 0 or not general:
        return list(translation)
    ordered = sorted(
        range(len(general)), key=lambda i: hashlib.sha1(f"{seed}:{i}".encode()).digest()
    )
    chosen = [general[ordered[i % len(general)]] for i in range(wanted)]
    return [*translation, *chosen]
