"""DFT's training data: English parallels of queries and answers, encoded and batched.

Where (x_X, x_en, y_en) come from:
- an X -> English translation example: x_X is its prompt; x_en is the same template with the
  English text in place of the X text; y_en is the English side (the SFT response itself);
- a general instruction in X whose JSONL line also carries `instruction_en`, `output_en` and
  optionally `input_en` (the English original of a translated Alpaca line): x_en and y_en are
  built from those fields the way `read_general_examples` builds prompts;
- every other example (English -> X translations, whose query is already English, and general
  lines without English fields) takes the SFT loss only. A DFT run therefore needs
  `data.direction = 'x-en'` or `'both'` (or general data with English fields); a training set
  without any English parallel is rejected.

The losses that use these batches are in `sweeps.dft`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from muit_core import ConfigError, DataError
from sweeps.instructions import Example
from sweeps.pairs import Pair
from sweeps.spec import SweepSpec
from sweeps.templates import Direction, render_translation
from sweeps.train import (
    IGNORE_INDEX,
    CollateFn,
    Encoded,
    collate,
    encode_example,
    render_prompt,
)

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EnglishParallel:
    """The English side of a target-language example.

    Attributes:
        query: x_en, the user turn in English (same instruction, English text).
        answer: y_en, the English answer.
    """

    query: str
    answer: str


def english_parallel(
    example: Example, general: Mapping[tuple[str, str], EnglishParallel] | None = None
) -> EnglishParallel | None:
    """x_en and y_en of an example, or None when it has none (its query is English, or it is
    a general instruction without English fields).

    Args:
        example: a training example.
        general: English parallels of general examples, keyed by (prompt, response), as
            `read_english_parallels` returns them.
    """
    if example.kind == "translation" and example.pair is not None:
        if example.direction is not Direction.X_TO_EN:
            return None
        # The template is chosen by the English text and the direction, so rendering a pair
        # whose X side is the English text gives the same template with only the text swapped.
        english_only = Pair(example.pair.en, example.pair.en, example.pair.key)
        query, _ = render_translation(english_only, example.language, Direction.X_TO_EN)
        return EnglishParallel(query, example.pair.en)
    return (general or {}).get((example.prompt, example.response))


def read_english_parallels(
    path_template: str, language: str
) -> dict[tuple[str, str], EnglishParallel]:
    """English parallels of a language's general instructions (translated Alpaca data).

    Each JSONL line holds `instruction`, optional `input` and `output` in the language (what
    `read_general_examples` reads) and, for DFT, `instruction_en`, optional `input_en` and
    `output_en`: the English original. Lines without `instruction_en` and `output_en` have no
    parallel and take the SFT loss only.

    Returns:
        (prompt, response) of the X example -> its English parallel.

    Raises:
        DataError: the file is missing or a line is not a JSON object.
    """
    path = Path(path_template.replace("{lang}", language))
    if not path.is_file():
        raise DataError(
            f"General instruction file {path} does not exist; set data.general_data to an "
            "Alpaca JSONL path (with {lang} for one file per language) or to ''."
        )
    parallels: dict[tuple[str, str], EnglishParallel] = {}
    for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise TypeError(type(record))
        except (json.JSONDecodeError, TypeError):
            raise DataError(f"{path}:{line_number}: expected a JSON object per line.") from None
        if not (record.get("instruction_en") and record.get("output_en")):
            continue
        prompt = _alpaca_prompt(record.get("instruction", ""), record.get("input") or "")
        query = _alpaca_prompt(record["instruction_en"], record.get("input_en") or "")
        parallels[(prompt, record.get("output", ""))] = EnglishParallel(query, record["output_en"])
    return parallels


def _alpaca_prompt(instruction: str, extra: str) -> str:
    # The same rule as `sweeps.instructions.read_general_examples`.
    return f"{instruction}\n\n{extra}" if extra else instruction


@dataclass(frozen=True)
class DftEncoded:
    """A tokenised DFT example; `train` batches it with `collate_dft`.

    Attributes:
        input_ids: the SFT sequence [x_X ; y], exactly as `encode_example` makes it.
        labels: its labels (IGNORE_INDEX on the prompt).
        query_span: (start, end) of x_X's user-turn tokens in `input_ids`.
        english_ids: x_en rendered as a prompt by the chat template; () without a parallel.
        english_span: (start, end) of x_en's user-turn tokens in `english_ids`.
        conversion: [x_X ; x_en] with loss on x_en (logits variant); None without a parallel.
        thinking: [x_X ; y_en] with loss on y_en, only when y_en differs from the SFT response
            (translated general data); None when the SFT sequence is the thinking sequence.
    """

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]
    query_span: tuple[int, int] = (0, 0)
    english_ids: tuple[int, ...] = ()
    english_span: tuple[int, int] = (0, 0)
    conversion: Encoded | None = None
    thinking: Encoded | None = None

    @property
    def has_parallel(self) -> bool:
        """Whether the example takes the extra DFT terms."""
        return bool(self.english_ids)


def _prompt_with_span(
    tokenizer: PreTrainedTokenizerBase, prompt: str, system_prompt: str | None
) -> tuple[list[int], tuple[int, int]]:
    """The rendered prompt's ids, and the token span of the user turn's text inside them."""
    rendered = render_prompt(tokenizer, prompt, system_prompt)
    start = rendered.rfind(prompt)  # the user turn comes after any system prompt
    try:
        encoding = tokenizer(rendered, add_special_tokens=False, return_offsets_mapping=True)
    except NotImplementedError:  # slow tokenizers have no offsets: pool over the whole prompt
        ids = list(tokenizer(rendered, add_special_tokens=False)["input_ids"])
        return ids, (0, len(ids))
    ids = list(encoding["input_ids"])
    if start < 0:  # the chat template changed the text: pool over the whole prompt
        return ids, (0, len(ids))
    end = start + len(prompt)
    inside = [k for k, (a, b) in enumerate(encoding["offset_mapping"]) if a < end and b > start]
    return ids, (inside[0], inside[-1] + 1) if inside else (0, len(ids))


def encode_dft_example(
    tokenizer: PreTrainedTokenizerBase,
    example: Example,
    max_length: int,
    system_prompt: str | None = None,
    general: Mapping[tuple[str, str], EnglishParallel] | None = None,
) -> DftEncoded:
    """Tokenise one example for DFT: the SFT sequence plus, when the example has an English
    parallel, x_en and the conversion (and thinking) sequences. Each sequence is cut to
    `max_length` like `encode_example` cuts; an example whose query is cut away entirely
    takes the SFT loss only."""
    sft = encode_example(tokenizer, example, max_length, system_prompt)
    parallel = english_parallel(example, general)
    if parallel is None:
        return DftEncoded(sft.input_ids, sft.labels)
    prompt_ids, (q_start, q_end) = _prompt_with_span(tokenizer, example.prompt, system_prompt)
    n_prompt_kept = next(
        (k for k, label in enumerate(sft.labels) if label != IGNORE_INDEX), len(sft.labels)
    )
    cut = len(prompt_ids) - n_prompt_kept  # encode_example drops the prompt's head when long
    assert sft.input_ids[:n_prompt_kept] == tuple(prompt_ids[cut:]), "prompt tokenisation"
    query_span = (max(q_start - cut, 0), q_end - cut)
    english_ids, (e_start, e_end) = _prompt_with_span(tokenizer, parallel.query, system_prompt)
    e_cut = max(len(english_ids) - max_length, 0)
    english_span = (max(e_start - e_cut, 0), e_end - e_cut)
    if query_span[1] <= query_span[0] or english_span[1] <= english_span[0]:
        return DftEncoded(sft.input_ids, sft.labels)

    def with_response(response: str) -> Encoded:
        target = Example(example.prompt, response, example.language)
        return encode_example(tokenizer, target, max_length, system_prompt)

    conversion = with_response(parallel.query)
    # The SFT sequence is the thinking sequence when y_en is the response (X -> English).
    thinking = None if parallel.answer == example.response else with_response(parallel.answer)
    return DftEncoded(
        input_ids=sft.input_ids,
        labels=sft.labels,
        query_span=query_span,
        english_ids=tuple(english_ids[e_cut:]),
        english_span=english_span,
        conversion=conversion,
        thinking=thinking,
    )


def encode_dft_examples(
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[Example],
    max_length: int,
    system_prompt: str | None = None,
    general: Mapping[tuple[str, str], EnglishParallel] | None = None,
) -> list[DftEncoded]:
    """`encode_dft_example` for each example.

    Raises:
        ConfigError: no example has an English parallel (e.g. only English -> X translations),
            so DFT would have nothing to supervise.
    """
    encoded = [
        encode_dft_example(tokenizer, e, max_length, system_prompt, general) for e in examples
    ]
    if examples and not any(e.has_parallel for e in encoded):
        directions = sorted({e.direction.value for e in examples if e.direction is not None})
        raise ConfigError(
            f"None of the {len(examples)} training examples has an English parallel "
            f"(directions: {', '.join(directions) or 'none'}), so DFT has nothing to supervise: "
            "it needs queries in the target language with their English original. Set "
            "data.direction='x-en' or 'both', or give data.general_data lines with "
            "instruction_en and output_en fields; or use objective='sft'."
        )
    return encoded


def dft_training_data(
    spec: SweepSpec, tokenizer: PreTrainedTokenizerBase, examples: Sequence[Example], language: str
) -> tuple[list[DftEncoded], CollateFn]:
    """A DFT run's tokenised examples and the collate function that batches them.

    Raises:
        ConfigError: no example has an English parallel.
        DataError: the general data file is missing or malformed.
    """
    general: dict[tuple[str, str], EnglishParallel] = {}
    if spec.data.general_data and spec.data.general_ratio > 0:
        general = read_english_parallels(spec.data.general_data, language)
    encoded = encode_dft_examples(
        tokenizer, examples, spec.train.max_length, spec.data.system_prompt, general
    )
    n_parallel = sum(e.has_parallel for e in encoded)
    log.info("DFT: %d of %d examples have an English parallel", n_parallel, len(encoded))
    return encoded, collate_dft


def _span_mask(spans: Sequence[tuple[int, int]], width: int) -> torch.Tensor:
    mask = torch.zeros((len(spans), width), dtype=torch.float32)
    for row, (start, end) in enumerate(spans):
        mask[row, start:end] = 1.0
    return mask


def collate_dft(
    encoded: Sequence[DftEncoded], pad_id: int, device: torch.device
) -> dict[str, torch.Tensor]:
    """`collate`'s SFT batch plus the DFT tensors.

    Added keys: `query_mask` (x_X's query tokens, per row), `parallel_rows` (rows with an
    English parallel); for those rows, `english_ids`, `english_attention_mask`,
    `english_query_mask`, and `conversion_ids`, `conversion_attention_mask`,
    `conversion_labels`; `thinking_rows` (parallel rows whose thinking sequence is the SFT
    sequence) and, for the others, `thinking_ids`, `thinking_attention_mask`, `thinking_labels`.
    """
    batch = collate([Encoded(e.input_ids, e.labels) for e in encoded], pad_id, device)
    width = batch["input_ids"].shape[1]
    batch["query_mask"] = _span_mask([e.query_span for e in encoded], width).to(device)
    rows = [row for row, e in enumerate(encoded) if e.has_parallel]
    batch["parallel_rows"] = torch.tensor(rows, dtype=torch.long, device=device)
    same = [row for row in rows if encoded[row].thinking is None]
    batch["thinking_rows"] = torch.tensor(same, dtype=torch.long, device=device)
    if not rows:
        return batch
    parallel = [encoded[row] for row in rows]
    english = collate(
        [Encoded(e.english_ids, (IGNORE_INDEX,) * len(e.english_ids)) for e in parallel],
        pad_id,
        device,
    )
    batch["english_ids"] = english["input_ids"]
    batch["english_attention_mask"] = english["attention_mask"]
    batch["english_query_mask"] = _span_mask(
        [e.english_span for e in parallel], english["input_ids"].shape[1]
    ).to(device)
    conversion = collate([e.conversion for e in parallel if e.conversion], pad_id, device)
    for key, value in conversion.items():
        batch[f"conversion_{key.removeprefix('input_')}"] = value
    other = [e.thinking for e in parallel if e.thinking is not None]
    if other:
        for key, value in collate(other, pad_id, device).items():
            batch[f"thinking_{key.removeprefix('input_')}"] = value
    return batch
