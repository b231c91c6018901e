"""Scoring a model on a language's held-out pairs (the same pairs for every run).

- `heldout_ce`: mean per-token cross-entropy (nats) of the reference translation given the
  instruction; the primary, cheap metric (lower is better).
- `chrf` and `bleu`: sacrebleu on greedy generations for a sample of the same pairs (higher is
  better). BLEU uses sacrebleu's Chinese tokenizer for zh-*, character tokens for ja and km.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from sweeps.instructions import Example
from sweeps.templates import Direction
from sweeps.train import Encoded, collate, render_prompt, response_token_losses

_BLEU_TOKENIZER = {"zh-CN": "zh", "zh-TW": "zh", "ja": "char", "km": "char"}


@dataclass(frozen=True)
class EvalReport:
    """Scores of one model on held-out examples.

    Attributes:
        metrics: metric name -> value (`heldout_ce` always; `chrf`, `bleu` when generated).
        n_scored: examples scored by cross-entropy.
        n_generated: examples translated greedily.
        wall_s: seconds spent scoring.
        samples: a few (reference, hypothesis) pairs, for a person to read.
    """

    metrics: dict[str, float]
    n_scored: int
    n_generated: int
    wall_s: float
    samples: tuple[tuple[str, str], ...]


@torch.no_grad()
def heldout_cross_entropy(
    model: Any, encoded: Sequence[Encoded], pad_id: int, batch_size: int
) -> float:
    """Mean cross-entropy per response token (nats) over all `encoded` examples."""
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].input_ids))
    total_nats, total_tokens = 0.0, 0
    for start in range(0, len(order), batch_size):
        batch = collate([encoded[i] for i in order[start : start + batch_size]], pad_id, device)
        losses, _ = response_token_losses(model, batch)
        total_nats += float(losses.double().sum())
        total_tokens += losses.numel()
    return total_nats / total_tokens if total_tokens else math.nan


@torch.no_grad()
def greedy_translations(
    model: Any,
    tokenizer: Any,
    examples: Sequence[Example],
    *,
    system_prompt: str | None,
    max_new_tokens: int,
    batch_size: int,
) -> list[str]:
    """Greedy generations for each example's prompt (left-padded batches)."""
    model.eval()
    device = next(model.parameters()).device
    stop_ids = [tokenizer.eos_token_id]
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if isinstance(im_end, int) and im_end != tokenizer.unk_token_id:
        stop_ids.append(im_end)
    previous_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    outputs: list[str] = []
    try:
        for start in range(0, len(examples), batch_size):
            chunk = examples[start : start + batch_size]
            prompts = [render_prompt(tokenizer, e.prompt, system_prompt) for e in chunk]
            inputs = tokenizer(
                prompts, return_tensors="pt", padding=True, add_special_tokens=False
            ).to(device)
            generated = model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=stop_ids,
                pad_token_id=tokenizer.pad_token_id,
            )
            new_tokens = generated[:, inputs["input_ids"].shape[1] :]
            texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
            outputs.extend(text.strip() for text in texts)
    finally:
        tokenizer.padding_side = previous_side
    return outputs


def bleu_tokenizer(language: str, direction: Direction | None) -> str:
    """sacrebleu's tokenizer for the target side of a direction."""
    if direction is Direction.X_TO_EN:
        return "13a"
    return _BLEU_TOKENIZER.get(language, "13a")


def evaluate_model(
    model: Any,
    tokenizer: Any,
    examples: Sequence[Example],
    encoded: Sequence[Encoded],
    *,
    language: str,
    generate_size: int,
    max_new_tokens: int,
    batch_size: int,
    system_prompt: str | None,
) -> EvalReport:
    """Cross-entropy on all held-out `encoded` examples; chrF/BLEU on the first `generate_size`."""
    import sacrebleu

    started = time.perf_counter()
    metrics = {
        "heldout_ce": heldout_cross_entropy(model, encoded, tokenizer.pad_token_id, batch_size)
    }
    samples: tuple[tuple[str, str], ...] = ()
    sample = list(examples[:generate_size])
    if sample:
        hypotheses = greedy_translations(
            model,
            tokenizer,
            sample,
            system_prompt=system_prompt,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
        )
        references = [e.response for e in sample]
        metrics["chrf"] = float(sacrebleu.corpus_chrf(hypotheses, [references]).score)
        tokenize = bleu_tokenizer(language, sample[0].direction)
        metrics["bleu"] = float(
            sacrebleu.corpus_bleu(hypotheses, [references], tokenize=tokenize).score
        )
        samples = tuple(zip(references[:3], hypotheses[:3], strict=True))
    return EvalReport(
        metrics=metrics,
        n_scored=len(encoded),
        n_generated=len(sample),
        wall_s=time.perf_counter() - started,
        samples=samples,
    )
