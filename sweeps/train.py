"""The per-run trainer: supervised fine-tuning on instruction examples, loss on responses only.

A plain PyTorch loop, top to bottom: tokenise with the model's chat template, group examples
of similar length into batches (little padding), wrap in LoRA or train everything, AdamW with
warmup and a cosine/linear/constant schedule, gradient clipping, a progress bar with tokens/s
and ETA. It is deterministic under the seed on CPU.

Speed: the LM head (vocabulary x width, the largest matrix of a small model) is applied only at
positions whose next token is a response token, instead of at every position as a plain
`model(..., labels=...)` call does; prompts are about half of each example.
"""

from __future__ import annotations

import logging
import math
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import torch
import torch.nn.functional as F
from tqdm import tqdm

from muit_core import PlannerError
from sweeps.instructions import Example
from sweeps.spec import TrainSpec

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

IGNORE_INDEX = -100  # label of positions without loss (prompt and padding)
_LENGTH_GROUP_BATCHES = 32  # batches per length-sorted group: little padding, still shuffled


class TrainingError(PlannerError, RuntimeError):
    """A run failed in a way worth recording (NaN loss, out of memory)."""


@dataclass(frozen=True)
class Encoded:
    """A tokenised example: `labels` is IGNORE_INDEX on prompt tokens."""

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]

    @property
    def n_response_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE_INDEX)


@dataclass(frozen=True)
class TrainReport:
    """What a training run did.

    Attributes:
        n_steps: optimiser steps.
        train_tokens: tokens processed (prompt + response, no padding), over all epochs.
        response_tokens: tokens that carried loss.
        wall_s: seconds in the loop.
        first_loss_nats: mean loss of the first optimiser step.
        last_loss_nats: mean loss over the last 10% of steps.
        loss_curve: (step, loss) every few steps.
        loss_parts: each loss term's value at every optimiser step (`sft`, and for DFT
            `conversion` and `thinking`), unweighted.
    """

    n_steps: int
    train_tokens: int
    response_tokens: int
    wall_s: float
    first_loss_nats: float
    last_loss_nats: float
    loss_curve: tuple[tuple[int, float], ...] = field(default=())
    loss_parts: dict[str, list[float]] = field(default_factory=dict)

    @property
    def tokens_per_s(self) -> float:
        return self.train_tokens / self.wall_s if self.wall_s > 0 else 0.0


def render_prompt(
    tokenizer: PreTrainedTokenizerBase, prompt: str, system_prompt: str | None
) -> str:
    """The text before the response: the chat template's user turn and assistant header."""
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "user", "content": prompt}]
        if system_prompt is not None:
            messages.insert(0, {"role": "system", "content": system_prompt})
        rendered = tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        return str(rendered)
    return f"{prompt}\n\n"


def response_suffix(tokenizer: PreTrainedTokenizerBase) -> str:
    """What closes an assistant turn: the chat template's end-of-turn, else the EOS token."""
    if getattr(tokenizer, "chat_template", None) and "<|im_end|>" in str(tokenizer.chat_template):
        return "<|im_end|>"
    return str(tokenizer.eos_token or "")


def encode_example(
    tokenizer: PreTrainedTokenizerBase,
    example: Example,
    max_length: int,
    system_prompt: str | None = None,
) -> Encoded:
    """Tokenise one example; truncate to `max_length` keeping the prompt's end when possible."""
    prompt_ids = tokenizer(
        render_prompt(tokenizer, example.prompt, system_prompt), add_special_tokens=False
    )["input_ids"]
    response_ids = tokenizer(
        example.response + response_suffix(tokenizer), add_special_tokens=False
    )["input_ids"]
    overflow = len(prompt_ids) + len(response_ids) - max_length
    if overflow > 0:
        # Drop the response's tail first, but keep at least half the budget for the prompt.
        cut_response = min(overflow, max(len(response_ids) - max_length // 2, 0))
        response_ids = response_ids[: len(response_ids) - cut_response]
        prompt_ids = prompt_ids[max(0, overflow - cut_response) :]
    return Encoded(
        tuple(prompt_ids) + tuple(response_ids),
        (IGNORE_INDEX,) * len(prompt_ids) + tuple(response_ids),
    )


def length_grouped_batches(
    lengths: Sequence[int], batch_size: int, generator: torch.Generator
) -> list[list[int]]:
    """Shuffle, sort within groups of `_LENGTH_GROUP_BATCHES` batches, then shuffle batches."""
    order = torch.randperm(len(lengths), generator=generator).tolist()
    group = batch_size * _LENGTH_GROUP_BATCHES
    batches: list[list[int]] = []
    for start in range(0, len(order), group):
        chunk = sorted(order[start : start + group], key=lambda i: -lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    permutation = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in permutation]


def collate(
    encoded: Sequence[Encoded], pad_id: int, device: torch.device
) -> dict[str, torch.Tensor]:
    """Right-pad a batch: input_ids, attention_mask, labels (IGNORE_INDEX on padding)."""
    width = max(len(e.input_ids) for e in encoded)
    input_ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    labels = torch.full((len(encoded), width), IGNORE_INDEX, dtype=torch.long)
    attention = torch.zeros((len(encoded), width), dtype=torch.long)
    for row, example in enumerate(encoded):
        n = len(example.input_ids)
        input_ids[row, :n] = torch.tensor(example.input_ids)
        labels[row, :n] = torch.tensor(example.labels)
        attention[row, :n] = 1
    return {
        "input_ids": input_ids.to(device),
        "attention_mask": attention.to(device),
        "labels": labels.to(device),
    }


def causal_parts(model: Any) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(decoder stack, LM head) of a causal LM, through a peft wrapper if there is one."""
    causal = model.get_base_model() if hasattr(model, "get_base_model") else model
    return causal.base_model, causal.get_output_embeddings()


def response_token_losses(
    model: Any, batch: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token cross-entropy (nats) at response positions only, and the decoder's states.

    Returns:
        (losses of shape [n_response_tokens], last hidden states [batch, seq, width]).
    """
    body, head = causal_parts(model)
    hidden = body(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
    ).last_hidden_state
    targets = batch["labels"][:, 1:]
    keep = targets != IGNORE_INDEX
    logits = head(hidden[:, :-1][keep]).float()
    return F.cross_entropy(logits, targets[keep], reduction="none"), hidden


def sft_loss(model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean response-token cross-entropy, and its parts for logging."""
    losses, _ = response_token_losses(model, batch)
    loss = losses.mean()
    return loss, {"sft": float(loss.detach())}


LossFn = Callable[[Any, dict[str, torch.Tensor]], tuple[torch.Tensor, dict[str, float]]]
# (examples, pad id, device) -> batch tensors; `collate` by default, DFT adds its own tensors.
CollateFn = Callable[[Sequence[Any], int, torch.device], dict[str, torch.Tensor]]


class Batchable(Protocol):
    """What `train` needs of a tokenised example: its ids (for length grouping). The collate
    function turns a list of them into a batch with at least `input_ids`, `attention_mask` and
    `labels` (the SFT sequence, which token counts are taken from)."""

    @property
    def input_ids(self) -> tuple[int, ...]: ...


def wrap_lora(model: PreTrainedModel, spec: TrainSpec) -> Any:
    """Add LoRA adapters (peft) to the spec's target modules; only they will train."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=spec.lora_r,
        lora_alpha=spec.lora_alpha,
        lora_dropout=spec.lora_dropout,
        target_modules=list(spec.lora_targets),
        task_type="CAUSAL_LM",
    )
    with warnings.catch_warnings():
        # peft reads transformers' deprecated `is_gradient_checkpointing`: their concern, not ours.
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
        return get_peft_model(model, config)


def _batches(
    encoded: Sequence[Batchable], spec: TrainSpec, generator: torch.Generator
) -> Iterator[list[int]]:
    lengths = [len(e.input_ids) for e in encoded]
    full_epochs, fraction = divmod(spec.epochs, 1.0)
    for _ in range(int(full_epochs)):
        yield from length_grouped_batches(lengths, spec.batch_size, generator)
    if fraction > 0:
        partial = length_grouped_batches(lengths, spec.batch_size, generator)
        yield from partial[: math.ceil(len(partial) * fraction)]


def train(
    model: Any,
    encoded: Sequence[Batchable],
    spec: TrainSpec,
    *,
    seed: int,
    pad_id: int,
    loss_fn: LossFn = sft_loss,
    collate_fn: CollateFn = collate,
    description: str = "train",
) -> TrainReport:
    """Fine-tune `model` in place on `encoded` examples.

    Args:
        model: a causal LM, already wrapped in LoRA when the method is `lora`.
        encoded: tokenised examples (`Encoded` for SFT; DFT passes its own records).
        spec: the training settings.
        seed: fixes batch order (and dropout).
        pad_id: the tokenizer's padding id.
        loss_fn: the objective; SFT by default, DFT passes its own.
        collate_fn: batches `encoded` records; `collate` by default, DFT passes its own.
        description: the progress bar's label.

    Raises:
        TrainingError: the loss became NaN or infinite.
    """
    from transformers import get_scheduler

    device = next(model.parameters()).device
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    batches = list(_batches(encoded, spec, generator))
    n_steps = math.ceil(len(batches) / spec.grad_accum)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        trainable, lr=spec.learning_rate, weight_decay=spec.weight_decay, foreach=True
    )
    schedule = "constant_with_warmup" if spec.schedule == "constant" else spec.schedule
    scheduler = get_scheduler(
        schedule,
        optimizer,
        num_warmup_steps=round(spec.warmup_ratio * n_steps),
        num_training_steps=n_steps,
    )
    use_bf16 = device.type == "cuda" and spec.dtype in ("auto", "bfloat16")
    model.train()
    step_losses: list[float] = []
    parts_per_step: dict[str, list[float]] = {}
    curve: list[tuple[int, float]] = []
    tokens = response_tokens = 0
    bar = tqdm(
        total=n_steps,
        desc=description,
        unit="step",
        file=sys.stderr,
        mininterval=0.5 if sys.stderr.isatty() else 10.0,
        leave=False,
    )
    started = time.perf_counter()
    for step in range(n_steps):
        step_batches = batches[step * spec.grad_accum : (step + 1) * spec.grad_accum]
        step_loss = 0.0
        step_parts: dict[str, float] = {}
        for indices in step_batches:
            batch = collate_fn([encoded[i] for i in indices], pad_id, device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                loss, parts = loss_fn(model, batch)
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"The training loss became {float(loss.detach())} at step {step + 1} of "
                    f"{n_steps}; lower train.learning_rate or check the data."
                )
            (loss / len(step_batches)).backward()
            step_loss += float(loss.detach()) / len(step_batches)
            for name, value in parts.items():
                step_parts[name] = step_parts.get(name, 0.0) + value / len(step_batches)
            tokens += int(batch["attention_mask"].sum())
            response_tokens += int((batch["labels"] != IGNORE_INDEX).sum())
        if spec.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(trainable, spec.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step_losses.append(step_loss)
        for name, value in step_parts.items():
            parts_per_step.setdefault(name, []).append(round(value, 5))
        if step % max(1, n_steps // 50) == 0 or step == n_steps - 1:
            curve.append((step + 1, round(step_loss, 5)))
        elapsed = time.perf_counter() - started
        bar.set_postfix(loss=f"{step_loss:.3f}", tok_s=f"{tokens / max(elapsed, 1e-9):.0f}")
        bar.update(1)
    bar.close()
    wall_s = time.perf_counter() - started
    tail = step_losses[-max(1, len(step_losses) // 10) :]
    return TrainReport(
        n_steps=n_steps,
        train_tokens=tokens,
        response_tokens=response_tokens,
        wall_s=wall_s,
        first_loss_nats=step_losses[0] if step_losses else math.nan,
        last_loss_nats=sum(tail) / len(tail) if tail else math.nan,
        loss_curve=tuple(curve),
        loss_parts=parts_per_step,
    )
