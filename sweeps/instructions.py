"""Training and evaluation examples of a sweep cell, before tokenisation.

A cell's translation pairs are the first `n` of its language's training pool in an order fixed
by the seed, so for one language and seed the larger run's data contains the smaller run's
(nested subsets: a curve over sizes is not noise from resampling). General-task instructions
(Alpaca JSONL or a saved Hugging Face dataset, in each language and in English) are mixed in
at configured ratios, as in cross-lingual instruction tuning (`sweeps.general_data` holds the
recipe). Held-out examples, the pairs every run is scored on, are built here too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from muit_core import ConfigError, DataError
from sweeps.pairs import LanguagePools, Pair
from sweeps.saved_datasets import load_saved_dataset
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


GENERAL_SCHEMA = "Alpaca records: string 'instruction' and 'output', optional string 'input'"


def _alpaca_example(record: object, language: str, where: str) -> Example:
    """One Alpaca record as an example; `where` names the file and line (or row) for errors."""
    fields = sorted(record) if isinstance(record, dict) else type(record).__name__
    if not isinstance(record, dict) or not all(
        isinstance(record.get(key), str) for key in ("instruction", "output")
    ):
        raise DataError(
            f"{where}: expected a JSON object with 'instruction' and 'output' strings (found "
            f"{fields}); convert the general data to {GENERAL_SCHEMA}."
        )
    extra = record.get("input") or ""
    if not isinstance(extra, str):
        raise DataError(
            f"{where}: 'input' is {type(extra).__name__}, not a string; convert the general "
            f"data to {GENERAL_SCHEMA}."
        )
    instruction = record["instruction"]
    prompt = f"{instruction}\n\n{extra}" if extra else instruction
    return Example(prompt, record["output"], language, "general")


def _saved_dataset_rows(path: Path) -> list[dict[str, object]]:
    """The rows of a folder written by `datasets` `save_to_disk` (a `DatasetDict`: its `train`
    split, else its only one)."""
    loaded = load_saved_dataset(path, "an Alpaca JSONL file")
    if isinstance(loaded, dict):  # a DatasetDict (a dict of splits)
        if "train" not in loaded and len(loaded) != 1:
            raise DataError(
                f"The saved dataset {path} has splits {', '.join(loaded)} and none is 'train'; "
                "save the split to mix in on its own."
            )
        loaded = loaded["train"] if "train" in loaded else next(iter(loaded.values()))
    return [dict(row) for row in loaded]


def general_source(path_template: str, language: str) -> Path:
    """The general-data file or folder of `language`: `{lang}` replaced by its code."""
    return Path(path_template.replace("{lang}", language))


def read_general_examples(
    path_template: str, language: str, setting: str = "data.general_data"
) -> list[Example]:
    """General instructions for a language: an Alpaca JSONL file (`instruction`, optional
    `input`, `output` per line) or a saved Hugging Face dataset folder with those columns.

    `setting` names the spec field the path came from, for the message when it is missing.

    Raises:
        DataError: the file is missing, empty, or a line or row has another schema (file and
            line named).
    """
    path = general_source(path_template, language)
    if not path.exists():
        ratio = setting.replace("general_data", "general_ratio")
        raise DataError(
            f"No general data for {language!r}: {path} (from {setting}) does not exist; add "
            f"that file ({GENERAL_SCHEMA}; JSONL or a saved Hugging Face dataset folder), or "
            f"set {ratio}=0 to train without it."
        )
    examples = []
    if path.is_dir():
        for index, row in enumerate(_saved_dataset_rows(path)):
            examples.append(_alpaca_example(row, language, f"{path}[row {index}]"))
    else:
        for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            where = f"{path}:{line_number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(
                    f"{where}: not valid JSON ({err.msg}); convert the general data to "
                    f"{GENERAL_SCHEMA}, one object per line."
                ) from None
            examples.append(_alpaca_example(record, language, where))
    if not examples:
        raise DataError(f"General data {path} holds no examples; add some or set the ratio to 0.")
    return examples


def choose_general(
    general: list[Example] | tuple[Example, ...], wanted: int, seed: int
) -> list[Example]:
    """`wanted` general examples in the seed's order over the file; whole passes repeat it.

    The order is a hash of the seed and each example's index, so a smaller draw is a prefix of
    a larger one (nested, like the translation pairs).
    """
    if wanted <= 0 or not general:
        return []
    ordered = sorted(
        range(len(general)), key=lambda i: hashlib.sha1(f"{seed}:{i}".encode()).digest()
    )
    return [general[ordered[i % len(general)]] for i in range(wanted)]


def mix_general(
    translation: list[Example], general: list[Example], ratio: float, seed: int
) -> list[Example]:
    """Append `round(ratio * len(translation))` general examples, chosen by the seed.

    General examples repeat when the ratio asks for more than the file holds.
    """
    return [*translation, *choose_general(general, round(ratio * len(translation)), seed)]


def heldout_direction(direction: Direction) -> Direction:
    """The direction held-out pairs are scored in: English -> X unless training is X -> English."""
    return Direction.X_TO_EN if direction is Direction.X_TO_EN else Direction.EN_TO_X


def heldout_examples(
    pools: LanguagePools, heldout_size: int, language: str, direction: Direction
) -> list[Example]:
    """What every sweep run and every closed-loop run of `language` is scored on: the first
    `heldout_size` held-out pairs of its pools, as instructions in `heldout_direction`."""
    return translation_examples(
        pools.heldout[:heldout_size], language, heldout_direction(direction)
    )
