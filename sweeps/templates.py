"""Translation instructions: paraphrased prompt templates, chosen deterministically per pair.

Cross-lingual instruction tuning trains on translation requests phrased many ways, so the model
learns the task rather than one prompt string. The template of a pair is fixed by a hash of its
English text and the direction, so every run and every data size sees the same prompt for the
same pair, and nested data subsets stay nested.
"""

from __future__ import annotations

import enum
import hashlib

from muit_core import ConfigError
from sweeps.pairs import Pair


class Direction(enum.Enum):
    """Which side of a pair is the instruction's input."""

    EN_TO_X = "en-x"
    X_TO_EN = "x-en"
    BOTH = "both"  # each pair is used in one direction, chosen by its hash

    @classmethod
    def parse(cls, text: str) -> Direction:
        """Read `en-x`, `x-en` or `both`; anything else is a ConfigError."""
        try:
            return cls(text)
        except ValueError:
            raise ConfigError(
                f"Unknown direction {text!r}; use one of {[d.value for d in cls]}."
            ) from None


# English names for prompts; a code missing here is shown as itself.
LANGUAGE_NAMES: dict[str, str] = {
    "ca": "Catalan", "cs": "Czech", "da": "Danish", "de": "German", "dz": "Dzongkha",
    "el": "Greek", "en": "English", "es": "Spanish", "et": "Estonian", "eu": "Basque",
    "fi": "Finnish", "fr": "French", "gl": "Galician", "hi": "Hindi", "hu": "Hungarian",
    "id": "Indonesian", "it": "Italian", "ja": "Japanese", "km": "Khmer", "ko": "Korean",
    "nl": "Dutch", "om": "Oromo", "pl": "Polish", "pt": "Portuguese",
    "pt-BR": "Brazilian Portuguese", "ru": "Russian", "sk": "Slovak", "sl": "Slovenian",
    "sv": "Swedish", "sw": "Swahili", "tr": "Turkish", "ug": "Uyghur", "uk": "Ukrainian",
    "vi": "Vietnamese", "zh-CN": "Simplified Chinese", "zh-TW": "Traditional Chinese",
}  # fmt: skip

# Paraphrases in the style of cross-lingual instruction tuning data; {src}/{tgt} are language
# names and {text} the input. Twelve, so no single phrasing dominates.
TRANSLATION_TEMPLATES: tuple[str, ...] = (
    "Translate the following {src} text into {tgt}.\n\n{text}",
    "Translate this from {src} to {tgt}:\n{text}",
    "What is the {tgt} translation of the following {src} text?\n{text}",
    "Please render this {src} passage in {tgt}.\n\n{text}",
    "{text}\n\nTranslate the text above into {tgt}.",
    "Convert the following sentence from {src} into {tgt}:\n{text}",
    "How would you say this in {tgt}?\n{text}",
    "Give a faithful {tgt} translation of this {src} text:\n{text}",
    "I need this {src} text in {tgt}, please.\n\n{text}",
    "Source ({src}): {text}\nTranslate it into {tgt}.",
    "Rewrite the following in {tgt}, keeping the meaning exactly.\n{text}",
    "Translate to {tgt}:\n{text}",
)


def language_name(code: str) -> str:
    """The English name used in prompts (`el` -> `Greek`); unknown codes are shown as is."""
    return LANGUAGE_NAMES.get(code, code)


def _stable_int(*parts: str) -> int:
    return int.from_bytes(hashlib.sha1("\x1f".join(parts).encode("utf-8")).digest()[:8], "big")


def pair_direction(pair: Pair, direction: Direction) -> Direction:
    """The concrete direction of one pair: `BOTH` picks one by the pair's hash."""
    if direction is not Direction.BOTH:
        return direction
    return Direction.EN_TO_X if _stable_int(pair.en, "dir") % 2 == 0 else Direction.X_TO_EN


def render_translation(pair: Pair, language: str, direction: Direction) -> tuple[str, str]:
    """The (instruction prompt, reference response) of one translation example.

    Args:
        pair: the English / language-X pair.
        language: the pair's language code, for its name in the prompt.
        direction: `EN_TO_X`, `X_TO_EN`, or `BOTH` (one of the two, by hash).
    """
    concrete = pair_direction(pair, direction)
    if concrete is Direction.EN_TO_X:
        src, tgt, text, response = "English", language_name(language), pair.en, pair.text
    else:
        src, tgt, text, response = language_name(language), "English", pair.text, pair.en
    template = TRANSLATION_TEMPLATES[
        _stable_int(pair.en, concrete.value) % len(TRANSLATION_TEMPLATES)
    ]
    return template.format(src=src, tgt=tgt, text=text), response
