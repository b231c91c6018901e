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

Where (x_X, x_en, y_en) come from, and how examples are encoded and batched:
`sweeps.dft_data`.

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

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from muit_core import ConfigError
from sweeps.probe import (
    captured_states,
    decoder_layers,
    final_norm,
    frozen_readout,
    head_is_trainable_embedding,
    layer_states,
)
from sweeps.spec import DftSpec
from sweeps.train import (
    IGNORE_INDEX,
    causal_parts,
    response_token_losses,
)

if TYPE_CHECKING:
    pass

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
