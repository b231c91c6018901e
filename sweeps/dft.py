"""Deep supervision fine-tuning (DFT): SFT plus two losses on internal layers.

An English-centric model should convert a target-language query x_X to English in its bottom
layers and reason in English in its middle layers. DFT supervises exactly that, on examples
whose English parallel query x_en and English answer y_en are known:

- `logits` variant: the model's own final norm and LM head read layer i's states and must
  produce x_en after x_X (conversion), and read layer j's states and must produce y_en after
  x_X (thinking). Both are cross-entropies (nats per token). The head and the norm are applied
  with detached weights, so the extra terms never train them; the SFT term still does.
- `feature` variant: conversion = 1 - cos(h_i(x_en), h_i(x_X)), thinking = 1 - cos(h_L(x_en),
  h_j(x_X)), each state pooled over the query's tokens (`mean`, or the `last` one).

Total loss = SFT + conversion_weight * conversion + thinking_weight * thinking. `h_k` is the
output of decoder layer k (1-based; the residual stream before the final norm), so `h_L` is the
last layer's output before the final norm.

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

Choices and costs (per batch, against SFT's one forward and backward of [x_X ; y]):
- `logits`: the thinking term reuses the SFT forward (for a translation example y_en is the SFT
  response; the sequence [x_X ; y_en] is the SFT sequence) and reads its layer-j states; the
  conversion term runs one extra sequence [x_X ; x_en] through layers 1..i only (the forward
  stops at layer i), plus the head on the supervised tokens. General examples whose y_en differs
  from their response run [x_X ; y_en] through layers 1..j.
- `feature`: x_X's layer states come from the SFT forward. x_en runs through layers 1..i with
  gradient (the conversion term is symmetric, as its formula reads: both h_i(x_en) and h_i(x_X)
  train, so the bottom layers learn one shared representation) and once through the whole model
  without gradient for h_L(x_en), the fixed target of the thinking term. Query tokens are the
  user turn's tokens (the instruction and its text), not the chat template's shared system and
  header tokens, whose states are the same for x_X and x_en up to the text.
- A model whose LM head is tied to its input embeddings (SmolLM2) and trained in full would let
  the extra terms reach the head through the embedding lookup of x_X. In that case the extra
  terms run their own forward (up to layer j) from detached input embeddings, so they never
  touch the head; with LoRA the embeddings are frozen and the SFT forward is shared.
- In a batch without any example with an English parallel, the extra terms are 0 (logged so).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from muit_core import ConfigError, DataError
from sweeps.corpus import Pair
from sweeps.instructions import Example
from sweeps.probe import (
    captured_states,
    decoder_layers,
    final_norm,
    frozen_readout,
    head_is_trainable_embedding,
    layer_states,
)
from sweeps.spec import DftSpec, SweepSpec
from sweeps.templates import Direction, render_translation
from sweeps.train import (
    IGNORE_INDEX,
    CollateFn,
    Encoded,
    causal_parts,
    collate,
    encode_example,
    render_prompt,
    response_token_losses,
)

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger(__name__)

# Layer i is about layer 2 and layer j about layer 15 of a 32-layer model (issue 5's defaults
# for a LLaMA-2-7B-sized model), scaled to the model's depth.
_CONVERSION_FRACTION = 2 / 32
_THINKING_FRACTION = 15 / 32


def default_layers(n_layers: int) -> tuple[int, int]:
    """The default (conversion, thinking) layers for a depth: about 2/32 and 15/32 of it.

    Example: 32 layers -> (2, 15); SmolLM2's 30 -> (2, 14); the tiny test model's 4 -> (1, 2).
    """
    conversion = max(1, round(n_layers * _CONVERSION_FRACTION))
    return conversion, round(n_layers * _THINKING_FRACTION)


def resolve_layers(spec: DftSpec, n_layers: int) -> tuple[int, int]:
    """The spec's (conversion i, thinking j) layers for a model of `n_layers` layers.

    `-1` takes the depth's default (`default_layers`).

    Raises:
        ConfigError: unless 1 <= i < j <= n_layers - 1; the message names the depth.
    """
    default_i, default_j = default_layers(n_layers)
    i = default_i if spec.conversion_layer == -1 else spec.conversion_layer
    j = default_j if spec.thinking_layer == -1 else spec.thinking_layer
    if not 1 <= i < j <= n_layers - 1:
        raise ConfigError(
            f"DFT layers dft.conversion_layer={i} and dft.thinking_layer={j} do not fit the "
            f"model's depth of {n_layers} layers: they need 1 <= conversion < thinking <= "
            f"{n_layers - 1}. Pick layers in that range, or -1 for the defaults "
            f"({default_i} and {default_j} at this depth)."
        )
    return i, j


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


def readout_losses(
    norm: torch.nn.Module, head: torch.nn.Module, hidden: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """Per-token cross-entropy (nats) of the labelled next tokens read from `hidden`
    ([batch, seq, width]) through the frozen norm and head."""
    targets = labels[:, 1:]
    keep = targets != IGNORE_INDEX
    logits = frozen_readout(norm, head, hidden[:, :-1][keep])
    return F.cross_entropy(logits, targets[keep], reduction="none")


def pool(states: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """One vector per row: the mean of `states` over the mask's tokens, or the last of them.

    Args:
        states: [batch, seq, width].
        mask: [batch, seq], 1 on the query's tokens.
        pooling: `mean` or `last`.
    """
    mask = mask.to(states.dtype)
    if pooling == "last":
        positions = torch.arange(mask.shape[1], device=mask.device, dtype=mask.dtype)
        last = (mask * positions).argmax(dim=1)
        return states[torch.arange(states.shape[0], device=states.device), last]
    return (states * mask.unsqueeze(-1)).sum(dim=1) / mask.sum(dim=1, keepdim=True)


def _cosine_distance(target: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
    return (1.0 - F.cosine_similarity(target.float(), pooled.float(), dim=-1)).mean()


@dataclass(frozen=True)
class DftLoss:
    """The DFT objective, a `LossFn` for `train`: SFT + wc * conversion + wt * thinking.

    Build it with `make_dft_loss`, which resolves and checks the layers. Batches come from
    `collate_dft`. Logged parts (unweighted): `sft`, and `conversion` / `thinking` when their
    weight is not 0 (a term with weight 0 is not computed at all).

    Attributes:
        variant: `logits` or `feature`.
        conversion_layer: layer i (1-based; h_i is layer i's output).
        thinking_layer: layer j.
        conversion_weight: weight of the conversion term.
        thinking_weight: weight of the thinking term.
        pooling: `mean` or `last` (feature variant).
    """

    variant: str
    conversion_layer: int
    thinking_layer: int
    conversion_weight: float = 1.0
    thinking_weight: float = 1.0
    pooling: str = "mean"

    def __call__(
        self, model: Any, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        terms = dft_terms(self, model, batch)
        total = terms["sft"]
        if "conversion" in terms:
            total = total + self.conversion_weight * terms["conversion"]
        if "thinking" in terms:
            total = total + self.thinking_weight * terms["thinking"]
        return total, {name: float(value.detach()) for name, value in terms.items()}


def dft_terms(
    loss: DftLoss, model: Any, batch: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """The unweighted terms of a `collate_dft` batch: `sft`, and `conversion` / `thinking`
    for those whose weight is not 0."""
    body, head = causal_parts(model)
    want_conversion = loss.conversion_weight != 0
    want_thinking = loss.thinking_weight != 0
    rows = batch["parallel_rows"]
    active = (want_conversion or want_thinking) and rows.numel() > 0
    isolate = active and head_is_trainable_embedding(body, head)
    shared: set[int] = set()
    if active and not isolate:
        if loss.variant == "feature":
            wanted = (
                (loss.conversion_layer, want_conversion),
                (loss.thinking_layer, want_thinking),
            )
            shared = {layer for layer, want in wanted if want}
        elif want_thinking:
            shared = {loss.thinking_layer}
    with captured_states(decoder_layers(body), shared) as states:
        sft_losses, _ = response_token_losses(model, batch)
    terms = {"sft": sft_losses.mean()}
    if not active:
        zero = torch.zeros((), device=sft_losses.device)
        terms.update({"conversion": zero} if want_conversion else {})
        terms.update({"thinking": zero} if want_thinking else {})
        return terms
    if loss.variant == "feature":
        terms.update(_feature_terms(loss, body, batch, states, isolate))
    else:
        terms.update(_logits_terms(loss, body, head, batch, states, isolate))
    return terms


def _feature_terms(
    loss: DftLoss,
    body: Any,
    batch: dict[str, torch.Tensor],
    shared: dict[int, torch.Tensor],
    isolate: bool,
) -> dict[str, torch.Tensor]:
    i, j = loss.conversion_layer, loss.thinking_layer
    n_layers = len(decoder_layers(body))
    rows = batch["parallel_rows"]
    pairs = []  # (name, English layer, X layer)
    if loss.conversion_weight != 0:
        pairs.append(("conversion", i, i))
    if loss.thinking_weight != 0:
        pairs.append(("thinking", n_layers, j))
    english_inputs = (batch["english_ids"], batch["english_attention_mask"])
    english: dict[int, torch.Tensor] = {}
    if loss.conversion_weight != 0:  # both sides of the conversion term train
        english.update(layer_states(body, *english_inputs, {i}, detach_embeddings=isolate))
    if loss.thinking_weight != 0:
        with torch.no_grad():  # h_L(x_en) is the target
            english.update(layer_states(body, *english_inputs, {n_layers}))
    if isolate:
        x_states = layer_states(
            body,
            batch["input_ids"][rows],
            batch["attention_mask"][rows],
            {k for _, _, k in pairs},
            detach_embeddings=True,
        )
    else:
        x_states = {k: shared[k][rows] for _, _, k in pairs}
    query_mask = batch["query_mask"][rows]
    return {
        name: _cosine_distance(
            pool(english[k_en], batch["english_query_mask"], loss.pooling),
            pool(x_states[k_x], query_mask, loss.pooling),
        )
        for name, k_en, k_x in pairs
    }


def _logits_terms(
    loss: DftLoss,
    body: Any,
    head: torch.nn.Module,
    batch: dict[str, torch.Tensor],
    shared: dict[int, torch.Tensor],
    isolate: bool,
) -> dict[str, torch.Tensor]:
    i, j = loss.conversion_layer, loss.thinking_layer
    norm = final_norm(body)
    terms: dict[str, torch.Tensor] = {}
    if loss.conversion_weight != 0:
        h_i = layer_states(
            body,
            batch["conversion_ids"],
            batch["conversion_attention_mask"],
            {i},
            detach_embeddings=isolate,
        )[i]
        terms["conversion"] = readout_losses(norm, head, h_i, batch["conversion_labels"]).mean()
    if loss.thinking_weight != 0:
        losses = []
        rows = batch["thinking_rows"]
        if rows.numel():
            if isolate:
                h_j = layer_states(
                    body,
                    batch["input_ids"][rows],
                    batch["attention_mask"][rows],
                    {j},
                    detach_embeddings=True,
                )[j]
            else:
                h_j = shared[j][rows]
            losses.append(readout_losses(norm, head, h_j, batch["labels"][rows]))
        if "thinking_ids" in batch:
            h_j = layer_states(
                body,
                batch["thinking_ids"],
                batch["thinking_attention_mask"],
                {j},
                detach_embeddings=isolate,
            )[j]
            losses.append(readout_losses(norm, head, h_j, batch["thinking_labels"]))
        terms["thinking"] = torch.cat(losses).mean()
    return terms


def make_dft_loss(spec: DftSpec, model: Any) -> DftLoss:
    """The DFT loss for `model`, with the spec's layers resolved against the model's depth.

    Raises:
        ConfigError: layers out of range (the message names the depth), a negative or
            non-finite weight, or a model without a Llama-style decoder stack.
    """
    body, _ = causal_parts(model)
    n_layers = len(decoder_layers(body))
    i, j = resolve_layers(spec, n_layers)
    weights = {
        "dft.conversion_weight": spec.conversion_weight,
        "dft.thinking_weight": spec.thinking_weight,
    }
    bad = [
        f"{key}={value}"
        for key, value in weights.items()
        if not (math.isfinite(value) and value >= 0)
    ]
    if bad:
        raise ConfigError(f"DFT weights must be finite and >= 0; got {', '.join(bad)}.")
    if spec.variant == "logits":
        final_norm(body)
    log.info(
        "DFT (%s): conversion at layer %d, thinking at layer %d of %d; weights %g, %g",
        spec.variant,
        i,
        j,
        n_layers,
        spec.conversion_weight,
        spec.thinking_weight,
    )
    return DftLoss(
        variant=spec.variant,
        conversion_layer=i,
        thinking_layer=j,
        conversion_weight=spec.conversion_weight,
        thinking_weight=spec.thinking_weight,
        pooling=spec.pooling,
    )
