"""The general-data recipe: general instructions mixed with the translation pairs (CoIT/MuIT).

One rule for the sweep, the closed loop and `plan-sweep write-data`, so all three train on the
same recipe:

- every translation example of language X brings `data.general_ratio` general instructions in
  X (from `data.general_data`, `{lang}` replaced by X) and `data.general_ratio_en` general
  instructions in English (from `data.general_data_en`);
- a run with n translation examples of X gets `round(general_ratio * n)` of X's and
  `round(general_ratio_en * n)` English ones; a MuIT mixture gets `round(general_ratio * n_X)`
  of each X's and `round(general_ratio_en * sum of n_X)` English ones (drawn once, so no
  English example is picked twice while the file has unused ones);
- examples are taken in the seed's order over the file (`sweeps.instructions.choose_general`:
  nested across sizes), whole passes repeating it when the ratio asks for more than it holds.

General examples come on top of the budget, which counts translation examples only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sweeps.instructions import Example, choose_general, general_source, read_general_examples
from sweeps.spec import DataSpec

ENGLISH = "en"


@dataclass(frozen=True)
class GeneralRecipe:
    """How much general data goes with each translation example, and where it comes from.

    Attributes:
        in_language: path template of the general data in each language X (`{lang}`); ''=none.
        ratio: X general examples per X translation example.
        english: path of the English general data; '' = none.
        ratio_en: English general examples per translation example.
    """

    in_language: str = ""
    ratio: float = 0.0
    english: str = ""
    ratio_en: float = 0.0

    @classmethod
    def from_data_spec(cls, data: DataSpec) -> GeneralRecipe:
        """The recipe a spec's `data` table states (an unused side is blanked out)."""
        return cls(
            data.general_data if data.general_ratio > 0 else "",
            data.general_ratio if data.general_data else 0.0,
            data.general_data_en if data.general_ratio_en > 0 else "",
            data.general_ratio_en if data.general_data_en else 0.0,
        )

    @property
    def uses_language_data(self) -> bool:
        """Whether general instructions in each language are mixed in."""
        return bool(self.in_language) and self.ratio > 0

    @property
    def uses_english_data(self) -> bool:
        """Whether English general instructions are mixed in."""
        return bool(self.english) and self.ratio_en > 0

    def to_dict(self) -> dict[str, Any]:
        """The recipe with its rule, for manifests."""
        return {
            "general_data": self.in_language or None,
            "general_ratio": self.ratio,
            "general_data_en": self.english or None,
            "general_ratio_en": self.ratio_en,
            "rule": "per translation example of X: general_ratio examples in X and "
            "general_ratio_en in English, rounded per language (English: over the total); "
            "seeded order over each file, whole passes repeat it; on top of the budget",
        }


@dataclass(frozen=True)
class GeneralPart:
    """The general instructions of one language (or English) in a run or mixture.

    Attributes:
        language: the language code (`en` for English general data).
        source: the file or folder they were read from.
        examples: the chosen examples, in the seed's order.
        pool: how many examples the source holds.
    """

    language: str
    source: str
    examples: tuple[Example, ...]
    pool: int

    @property
    def passes(self) -> float:
        """Passes over the source (above 1: examples repeat)."""
        return len(self.examples) / self.pool if self.pool else 0.0


def _part(path_template: str, language: str, wanted: int, seed: int, setting: str) -> GeneralPart:
    pool = read_general_examples(path_template, language, setting)
    source = str(general_source(path_template, language))
    return GeneralPart(language, source, tuple(choose_general(pool, wanted, seed)), len(pool))


def language_general(
    recipe: GeneralRecipe, language: str, n_translation: int, seed: int
) -> GeneralPart | None:
    """X's general part for `n_translation` translation examples of X; None when unused.

    Raises:
        DataError: X's general data is missing or has another schema (even when
            `n_translation` is 0: a plan that needs it for one allocation needs it for all).
    """
    if not recipe.uses_language_data:
        return None
    wanted = round(recipe.ratio * n_translation)
    return _part(recipe.in_language, language, wanted, seed, "data.general_data")


def english_general(recipe: GeneralRecipe, n_translation: int, seed: int) -> GeneralPart | None:
    """The English general part for `n_translation` translation examples; None when unused.

    Raises:
        DataError: the English general data is missing or has another schema.
    """
    if not recipe.uses_english_data:
        return None
    wanted = round(recipe.ratio_en * n_translation)
    return _part(recipe.english, ENGLISH, wanted, seed, "data.general_data_en")


def cell_examples(
    recipe: GeneralRecipe, translation: Sequence[Example], language: str, seed: int
) -> list[Example]:
    """A sweep cell's training examples: its translations, then X's and English general ones.

    Raises:
        DataError: a general data file the recipe names is missing or malformed.
    """
    parts = (
        language_general(recipe, language, len(translation), seed),
        english_general(recipe, len(translation), seed),
    )
    return [*translation, *(e for part in parts if part for e in part.examples)]


def mixture_general(
    recipe: GeneralRecipe, examples: Mapping[str, int], seed: int
) -> tuple[dict[str, GeneralPart], GeneralPart | None]:
    """A MuIT mixture's general parts: per language (for its translation examples), and the
    English one (for all of them together). Every file is read, also for languages given 0.

    Raises:
        DataError: a general data file the recipe names is missing or malformed.
    """
    per_language = {
        language: part
        for language, n in examples.items()
        if (part := language_general(recipe, language, n, seed)) is not None
    }
    return per_language, english_general(recipe, sum(examples.values()), seed)
