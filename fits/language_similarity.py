"""A similarity prior between languages, for the transfer law's `similarity` form.

Each language has a script (ISO 15924 code), a family and a branch (the family's first-level
subgroup), from:

- scripts: ISO 15924, the Unicode Consortium's registry (https://www.unicode.org/iso15924/),
  with simplified and traditional Han both counted as Han, since their characters largely
  coincide (Japanese is written in a separate `Jpan` mix of Han and kana);
- families and branches: Glottolog 5.0 (Hammarstrom, Forkel, Haspelmath, Bank;
  https://glottolog.org), top-level family and its first subgroup.

The prior is a simple count of shared traits, not a measurement:

    s(l, k) = (1 + [same script] + [same family] + [same branch]) / 4,

so unrelated languages in different scripts score 0.25, a shared script or family 0.5, and
close relatives in one script (Spanish and Italian) 1. The transfer law scales it by one
fitted tau, so only the ratios between pairs matter. The table covers the LibreOffice help
languages of the embedded corpus, English and common languages of MuIT papers; a language it
lacks is refused with the fix (`similarity_matrix`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from muit_core import DataError

SOURCE = "ISO 15924 (scripts), Glottolog 5.0 (family, first subgroup)"


@dataclass(frozen=True)
class LanguageTraits:
    """What the prior compares: script (ISO 15924), family and branch (Glottolog)."""

    script: str
    family: str
    branch: str


def _t(script: str, family: str, branch: str) -> LanguageTraits:
    return LanguageTraits(script, family, branch)


IE, AA, ST, AU, UR, TK = (
    "Indo-European", "Afro-Asiatic", "Sino-Tibetan", "Austroasiatic", "Uralic", "Turkic",
)  # fmt: skip

TRAITS: dict[str, LanguageTraits] = {
    "ar": _t("Arab", AA, "Semitic"),
    "bn": _t("Beng", IE, "Indo-Iranian"),
    "ca": _t("Latn", IE, "Italic"),
    "cs": _t("Latn", IE, "Balto-Slavic"),
    "da": _t("Latn", IE, "Germanic"),
    "de": _t("Latn", IE, "Germanic"),
    "dz": _t("Tibt", ST, "Bodic"),
    "el": _t("Grek", IE, "Hellenic"),
    "en": _t("Latn", IE, "Germanic"),
    "es": _t("Latn", IE, "Italic"),
    "et": _t("Latn", UR, "Finnic"),
    "eu": _t("Latn", "Basque", "Basque"),
    "fa": _t("Arab", IE, "Indo-Iranian"),
    "fi": _t("Latn", UR, "Finnic"),
    "fr": _t("Latn", IE, "Italic"),
    "gl": _t("Latn", IE, "Italic"),
    "he": _t("Hebr", AA, "Semitic"),
    "hi": _t("Deva", IE, "Indo-Iranian"),
    "hu": _t("Latn", UR, "Ugric"),
    "id": _t("Latn", "Austronesian", "Malayo-Polynesian"),
    "it": _t("Latn", IE, "Italic"),
    "ja": _t("Jpan", "Japonic", "Japanesic"),
    "km": _t("Khmr", AU, "Khmeric"),
    "ko": _t("Kore", "Koreanic", "Koreanic"),
    "mr": _t("Deva", IE, "Indo-Iranian"),
    "ne": _t("Deva", IE, "Indo-Iranian"),
    "nl": _t("Latn", IE, "Germanic"),
    "om": _t("Latn", AA, "Cushitic"),
    "pl": _t("Latn", IE, "Balto-Slavic"),
    "pt": _t("Latn", IE, "Italic"),
    "pt-BR": _t("Latn", IE, "Italic"),
    "ru": _t("Cyrl", IE, "Balto-Slavic"),
    "sk": _t("Latn", IE, "Balto-Slavic"),
    "sl": _t("Latn", IE, "Balto-Slavic"),
    "sv": _t("Latn", IE, "Germanic"),
    "sw": _t("Latn", "Atlantic-Congo", "Volta-Congo"),
    "ta": _t("Taml", "Dravidian", "South Dravidian"),
    "te": _t("Telu", "Dravidian", "South-Central Dravidian"),
    "th": _t("Thai", "Tai-Kadai", "Kam-Tai"),
    "tr": _t("Latn", TK, "Common Turkic"),
    "ug": _t("Arab", TK, "Common Turkic"),
    "uk": _t("Cyrl", IE, "Balto-Slavic"),
    "ur": _t("Arab", IE, "Indo-Iranian"),
    "vi": _t("Latn", AU, "Vietic"),
    "zh-CN": _t("Hani", ST, "Sinitic"),
    "zh-TW": _t("Hani", ST, "Sinitic"),
}


def similarity(a: str, b: str) -> float:
    """s(a, b) in [0.25, 1] as the module says (1 for a language with itself).

    Raises:
        DataError: a language is not in the table.
    """
    missing = [code for code in (a, b) if code not in TRAITS]
    if missing:
        _refuse(missing)
    ta, tb = TRAITS[a], TRAITS[b]
    shared = (ta.script == tb.script) + (ta.family == tb.family) + (ta.branch == tb.branch)
    return (1.0 + shared) / 4.0


def similarity_matrix(languages: Sequence[str]) -> NDArray[np.float64]:
    """s(l, k) for every pair of `languages`, 0 on the diagonal (a language's own examples are
    not transfer).

    Raises:
        DataError: a language is not in the table (one sentence naming it and the fix).
    """
    missing = [code for code in languages if code not in TRAITS]
    if missing:
        _refuse(missing)
    n = len(languages)
    out = np.zeros((n, n))
    for i, a in enumerate(languages):
        for j, b in enumerate(languages):
            if i != j:
                out[i, j] = similarity(a, b)
    return out


def _refuse(missing: Sequence[str]) -> None:
    raise DataError(
        f"The similarity table (fits/language_similarity.py) has no entry for "
        f"{', '.join(missing)}; add its script, family and branch to TRAITS there, or fit "
        "the transfer law with --form shared or --form receiver."
    )
