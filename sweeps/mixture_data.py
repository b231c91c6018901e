"""The examples of one allocation's MuIT set, by language: what `plan-sweep write-data`
builds (`sweeps.write_data.mixture_examples`), writes (`sweeps.data_layout`) and `plan-sweep
validate` trains on."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sweeps.general_data import GeneralPart
from sweeps.instructions import Example


@dataclass(frozen=True)
class LanguageData:
    """One language's share of a MuIT training set.

    Attributes:
        language: the language code.
        examples: the translation examples, in selection order (before the mixture shuffle).
        pool: the training-pool size they were drawn from (0 when none were asked for).
        corpus: the corpus source.
        pair_filter: the pair filter, `PairFilter.to_text` form ('' = the corpus default).
        general: its general instructions in the language, when the recipe has them.
        heldout: its held-out examples (what runs are scored on), when they were asked for.
    """

    language: str
    examples: tuple[Example, ...]
    pool: int
    corpus: str
    pair_filter: str
    general: GeneralPart | None = None
    heldout: tuple[Example, ...] = ()

    @property
    def training_examples(self) -> list[Example]:
        """Its translation examples, then its general ones."""
        return [*self.examples, *(self.general.examples if self.general else ())]


@dataclass(frozen=True)
class MixtureData:
    """Every example of one allocation's MuIT set, by language.

    Attributes:
        languages: per language of the mixture, in its order.
        english: the English general instructions, when the recipe has them.
    """

    languages: tuple[LanguageData, ...]
    english: GeneralPart | None = None

    def __iter__(self) -> Iterator[LanguageData]:
        return iter(self.languages)

    def training_examples(self) -> list[Example]:
        """All training examples in a fixed order: each language's (translation, then general),
        then the English general ones."""
        english = self.english.examples if self.english else ()
        return [*(e for part in self.languages for e in part.training_examples), *english]
