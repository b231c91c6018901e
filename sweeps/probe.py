"""Reading a model's internal layers: layer states, the frozen LM-head readout, the logit lens.

The logit lens reads each layer's hidden states through the model's own final norm and LM
head. On held-out X -> English translation examples, teacher-forced, the probability the lens
puts on the English reference's next token shows at which depth the model already "has" the
English answer: the motivation of DFT (see `sweeps.dft`), and the check of whether DFT moved
that English pivot to earlier layers. `plan-sweep probe` prints the table.

Layers are 1-based: h_k is the output of decoder layer k (the residual stream, before the
final norm), so the lens at the last layer is the model's own next-token distribution.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import torch
from torch.func import functional_call

from muit_core import ConfigError
from sweeps.instructions import Example, translation_examples
from sweeps.pairs import LanguagePools
from sweeps.templates import Direction
from sweeps.train import IGNORE_INDEX, Encoded, causal_parts, collate, encode_example

_NORM_NAMES = ("norm", "final_layernorm", "ln_f")  # the final norm's name in common decoders


def decoder_layers(body: Any) -> torch.nn.ModuleList:
    """The decoder stack's layers (Llama-style `layers`).

    Raises:
        ConfigError: the model has no such list.
    """
    layers = getattr(body, "layers", None)
    if not isinstance(layers, torch.nn.ModuleList):
        raise ConfigError(
            f"Reading internal layers (DFT, probe) needs a decoder stack with a `layers` list "
            f"(Llama-style models); {type(body).__name__} has none. Use objective='sft'."
        )
    return layers


def final_norm(body: Any) -> torch.nn.Module:
    """The norm the decoder applies before the LM head.

    Raises:
        ConfigError: the model has none under a known name.
    """
    for name in _NORM_NAMES:
        norm = getattr(body, name, None)
        if isinstance(norm, torch.nn.Module):
            return norm
    raise ConfigError(
        f"Reading layers through the LM head needs the final norm, but {type(body).__name__} "
        f"has none of {', '.join(_NORM_NAMES)}; use dft.variant='feature'."
    )


class _StopForward(Exception):
    """Raised by a hook to end a forward pass once the deepest layer needed has run."""


@contextmanager
def captured_states(
    layers: torch.nn.ModuleList, wanted: Iterable[int], stop_after: int | None = None
) -> Iterator[dict[int, torch.Tensor]]:
    """Record h_k (the output of 1-based layer k) for each wanted k during the forward passes
    run inside the block. With `stop_after`, the pass raises `_StopForward` after that layer
    (`layer_states` catches it), so deeper layers are never computed."""
    states: dict[int, torch.Tensor] = {}

    def hook_for(k: int) -> Any:
        def hook(module: torch.nn.Module, args: Any, output: Any) -> None:
            states[k] = output[0] if isinstance(output, tuple) else output
            if k == stop_after:
                raise _StopForward

        return hook

    handles = [layers[k - 1].register_forward_hook(hook_for(k)) for k in sorted(set(wanted))]
    try:
        yield states
    finally:
        for handle in handles:
            handle.remove()


def layer_states(
    body: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    wanted: Iterable[int],
    *,
    detach_embeddings: bool = False,
) -> dict[int, torch.Tensor]:
    """h_k ([batch, seq, width]) for each wanted layer k, running the decoder stack `body`
    only up to the deepest of them.

    Args:
        body: the decoder stack (`causal_parts(model)[0]`).
        input_ids: [batch, seq] token ids.
        attention_mask: [batch, seq], 1 on real tokens.
        wanted: 1-based layer numbers.
        detach_embeddings: start from detached input embeddings, so no gradient reaches the
            embedding matrix (needed when the LM head is tied to it).
    """
    wanted = set(wanted)
    inputs = {"input_ids": input_ids}
    if detach_embeddings:
        inputs = {"inputs_embeds": body.get_input_embeddings()(input_ids).detach()}
    layers = decoder_layers(body)
    with captured_states(layers, wanted, stop_after=max(wanted)) as states, suppress(_StopForward):
        body(**inputs, attention_mask=attention_mask)
    return dict(states)


def head_is_trainable_embedding(body: Any, head: torch.nn.Module) -> bool:
    """Whether the LM head's weight is the (trainable) input embedding matrix: a tied model
    trained in full, where gradient through the embedding lookup would reach the head."""
    weight = getattr(head, "weight", None)
    if not isinstance(weight, torch.Tensor):
        return False
    return weight.requires_grad and weight is getattr(body.get_input_embeddings(), "weight", None)


def _detached(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: param.detach() for name, param in module.named_parameters()}


def frozen_readout(
    norm: torch.nn.Module, head: torch.nn.Module, hidden: torch.Tensor
) -> torch.Tensor:
    """Logits (float32) of hidden states through the final norm and the LM head, with both
    modules' weights detached: gradient reaches `hidden`, never the norm or the head."""
    normed = functional_call(norm, _detached(norm), (hidden,))
    return functional_call(head, _detached(head), (normed,)).float()


@dataclass(frozen=True)
class LensRow:
    """The logit lens at one layer, over every reference token of the probed examples.

    Attributes:
        layer: 1-based layer number.
        p_ref: mean probability of the reference's next token.
        top1: share of positions where the reference's next token is the most probable one.
        ce_nats: mean cross-entropy of the reference's next token (nats per token).
    """

    layer: int
    p_ref: float
    top1: float
    ce_nats: float


@dataclass(frozen=True)
class ProbeTable:
    """A logit-lens table: one row per layer, from the first to the last.

    Attributes:
        model: the model's name.
        language: the source language of the probed X -> English examples.
        n_examples: examples probed.
        n_tokens: reference tokens scored per layer.
        rows: one `LensRow` per layer.
    """

    model: str
    language: str
    n_examples: int
    n_tokens: int
    rows: tuple[LensRow, ...]

    @property
    def pivot_layer(self) -> int:
        """The first layer whose `p_ref` reaches half of the last layer's: where the English
        answer emerges."""
        final = self.rows[-1].p_ref
        return next(row.layer for row in self.rows if row.p_ref >= final / 2)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {
            "model": self.model,
            "language": self.language,
            "n_examples": self.n_examples,
            "n_tokens": self.n_tokens,
            "pivot_layer": self.pivot_layer,
            "layers": [vars(row) for row in self.rows],
        }


def probe_examples(pools: LanguagePools, n_examples: int) -> list[Example]:
    """X -> English translation instructions for the first `n_examples` held-out pairs (never
    training pairs)."""
    return translation_examples(pools.heldout[:n_examples], pools.language, Direction.X_TO_EN)


@torch.no_grad()
def logit_lens(
    model: Any,
    tokenizer: Any,
    examples: Sequence[Example],
    *,
    model_name: str = "",
    system_prompt: str | None = None,
    max_length: int = 128,
    batch_size: int = 8,
) -> ProbeTable:
    """The logit lens on teacher-forced examples: per layer, how much probability the frozen
    final norm and LM head put on each reference (response) token, read from that layer.

    Args:
        model: a causal LM (peft-wrapped or not).
        tokenizer: its tokenizer.
        examples: the examples; their responses are the references (English for X -> English).
        model_name: recorded in the table.
        system_prompt: as in training; None is the chat template's default.
        max_length: tokens per example, cut as in training.
        batch_size: examples per forward pass.
    """
    model.eval()
    device = next(model.parameters()).device
    body, head = causal_parts(model)
    norm = final_norm(body)
    n_layers = len(decoder_layers(body))
    encoded: list[Encoded] = [
        encode_example(tokenizer, e, max_length, system_prompt) for e in examples
    ]
    sums = torch.zeros((n_layers, 3), dtype=torch.float64)  # p_ref, top1, nats
    n_tokens = 0
    for start in range(0, len(encoded), batch_size):
        batch = collate(encoded[start : start + batch_size], tokenizer.pad_token_id, device)
        states = layer_states(
            body, batch["input_ids"], batch["attention_mask"], range(1, n_layers + 1)
        )
        targets = batch["labels"][:, 1:]
        keep = targets != IGNORE_INDEX
        reference = targets[keep]
        n_tokens += int(reference.numel())
        for k in range(1, n_layers + 1):
            log_probs = frozen_readout(norm, head, states[k][:, :-1][keep]).log_softmax(-1)
            chosen = log_probs.gather(1, reference[:, None])[:, 0].double()
            top1 = (log_probs.argmax(-1) == reference).double()
            sums[k - 1] += torch.stack([chosen.exp().sum(), top1.sum(), -chosen.sum()]).cpu()
    means = (sums / max(n_tokens, 1)).tolist()
    rows = tuple(LensRow(k + 1, p, t, c) for k, (p, t, c) in enumerate(means))
    language = examples[0].language if examples else ""
    return ProbeTable(model_name, language, len(examples), n_tokens, rows)


def format_probe_table(table: ProbeTable) -> str:
    """The table as text: one line per layer with a bar for `p_ref`."""
    scale = max((row.p_ref for row in table.rows), default=0.0) or 1.0
    lines = [
        f"logit lens: {table.model}, {table.language} -> English, {table.n_examples} held-out "
        f"examples, {table.n_tokens} reference tokens; p_ref = mean probability of the English "
        "reference's next token read from that layer through the final norm and LM head",
        f"{'layer':>5} {'p_ref':>8} {'top1':>7} {'ce_nats':>8}",
    ]
    for row in table.rows:
        bar = "#" * round(30 * row.p_ref / scale)
        lines.append(
            f"{row.layer:>5} {row.p_ref:>8.4f} {row.top1:>7.3f} {row.ce_nats:>8.3f}  {bar}"
        )
    pivot = table.pivot_layer
    lines.append(f"English pivot (first layer with half the last layer's p_ref): {pivot}")
    return "\n".join(lines)
