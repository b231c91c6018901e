"""Benchmark: the sweep trainer (`sweeps.train.train`) against Hugging Face `Trainer`.

Both train the same model (loaded fresh for every run, LoRA adapters initialised under the same
seed, or full fine-tuning) on the same tokenised examples (the demo spec's pairs, chat template,
loss on the response only) with the same settings (the demo spec's `[train]` section: batch 8,
no accumulation, 1 epoch, lr 5e-4, cosine, warmup 3%, clipping 1.0, no weight decay; bf16
autocast on a GPU, fp32 on the CPU). Trainer gets what a user would pick to avoid padding
waste: `DataCollatorForSeq2Seq` and grouping by length.

The two alternate in one process (ours, Trainer; then Trainer, ours; ...), so load from other
programs on a shared machine falls on both alike. Each run reports wall seconds of the training
call only (model loading excluded), tokens/s over the examples' real tokens (the same count for
both), padded tokens processed, peak memory (process RSS sampled every 20 ms on the CPU; peak
allocated CUDA memory on a GPU), the trainer's own mean training loss, and the loss of the
trained model on its training set measured by one function for both (a large gap would mean
the comparison is unfair).

Run from the repository root:

    .venv/bin/python bench/bench_train.py                     # CPU: 64 examples, 2 repeats
    .venv/bin/python bench/bench_train.py --threads 1 --repeats 3   # a CPU shared with others
    .venv/bin/python bench/bench_train.py --method full --repeats 3
    .venv/bin/python bench/bench_train.py --n-examples 2048   # on a GPU the default is 512
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import datetime
import gc
import math
import os
import platform
import shlex
import statistics
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import peft
import psutil
import torch
import transformers

from sweeps.instructions import select_pairs, translation_examples
from sweeps.model import DEFAULT_MODEL, load_model
from sweeps.run import pick_device, spec_pools
from sweeps.spec import TrainSpec, load_spec
from sweeps.templates import Direction
from sweeps.train import (
    _LENGTH_GROUP_BATCHES,
    IGNORE_INDEX,
    Encoded,
    collate,
    encode_example,
    response_token_losses,
    train,
    wrap_lora,
)

OURS, THEIRS = "ours", "HF Trainer"
ORDER_CHECK = "ours, other batch order"  # a control run: how far batch order alone moves loss
_MIB = 2**20
_LOSS_FLOOR_NATS = 0.02  # loss gaps below this pass the fairness check whatever the control says


@dataclass(frozen=True)
class RunResult:
    """One timed training run.

    Attributes:
        trainer: OURS or THEIRS.
        repeat: repetition index (0-based).
        wall_s: seconds of the training call (ours: `train(...)`; theirs: `trainer.train()`).
        cpu_s: this process's CPU seconds (all threads) in the same call; less sensitive than
            `wall_s` to other programs on a shared machine.
        train_tokens: real (non-padding) tokens over the epoch; the same for both trainers.
        padded_tokens: tokens the model processed, padding included.
        n_steps: optimiser steps.
        mean_loss_nats: the trainer's own mean training loss over its steps.
        after_loss_nats: response-token loss of the trained model on its training set (one
            function for both trainers); NaN after the first repetition, which trains the
            same way under the same seed.
        base_mem_mib: process RSS (CPU) or allocated CUDA memory (GPU) before the call.
        peak_mem_mib: the peak of the same measure during the call.
        load_1min: 1-minute load average when the run started.
    """

    trainer: str
    repeat: int
    wall_s: float
    cpu_s: float
    train_tokens: int
    padded_tokens: int
    n_steps: int
    mean_loss_nats: float
    after_loss_nats: float
    base_mem_mib: float
    peak_mem_mib: float
    load_1min: float

    @property
    def tokens_per_s(self) -> float:
        return self.train_tokens / self.wall_s


class PeakMemory:
    """Peak memory while a block runs: sampled process RSS on the CPU, CUDA's own peak on a GPU.

    Not nestable; the RSS sampler is a daemon thread that reads psutil every `interval_s`.
    """

    def __init__(self, device: torch.device, interval_s: float = 0.02) -> None:
        self.device = device
        self.interval_s = interval_s
        self.base_mib = self.peak_mib = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        process = psutil.Process()
        while not self._stop.wait(self.interval_s):
            self.peak_mib = max(self.peak_mib, process.memory_info().rss / _MIB)

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base_mib = torch.cuda.memory_allocated(self.device) / _MIB
        else:
            self.base_mib = psutil.Process().memory_info().rss / _MIB
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        self.peak_mib = self.base_mib
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_mib = torch.cuda.max_memory_allocated(self.device) / _MIB
        elif self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.peak_mib = max(self.peak_mib, psutil.Process().memory_info().rss / _MIB)


def release_memory() -> None:
    """Free the previous run's tensors and hand freed heap back to the OS (comparable RSS)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    with contextlib.suppress(OSError, AttributeError):  # glibc only
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def prepare_data(
    spec_name: str, language: str, n_examples: int, seed: int, tokenizer: Any
) -> list[Encoded]:
    """The sweep's own pipeline: pairs -> translation instructions -> chat-template tokens."""
    spec = load_spec(spec_name)
    pairs = select_pairs(spec_pools(spec, language), n_examples, seed)
    examples = translation_examples(pairs, language, Direction.parse(spec.data.direction))
    return [
        encode_example(tokenizer, e, spec.train.max_length, spec.data.system_prompt)
        for e in examples
    ]


def fresh_model(name: str, spec: TrainSpec, device: torch.device, seed: int) -> Any:
    """The base model, loaded anew, with LoRA adapters initialised under `seed` when asked."""
    model: Any = load_model(name, device=device)[0]
    # The cached default model is converted from GGUF and its config.json still names the GGUF
    # quantisation, so transformers marks the plain fp32 weights as quantised and Trainer
    # refuses to train them. Clear the marker (for both trainers, so they get the same model).
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)
    if spec.method != "lora":
        return model
    torch.manual_seed(seed)
    return wrap_lora(model, spec)


def training_set_loss(
    model: Any, encoded: Sequence[Encoded], pad_id: int, device: torch.device, batch_size: int
) -> float:
    """Mean response-token cross-entropy (nats) of `model` on `encoded`, in a fixed order."""
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].input_ids))
    total, count = 0.0, 0
    model.eval()
    with (
        torch.no_grad(),
        torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"),
    ):
        for start in range(0, len(order), batch_size):
            rows = [encoded[i] for i in order[start : start + batch_size]]
            losses, _ = response_token_losses(model, collate(rows, pad_id, device))
            total += float(losses.sum())
            count += losses.numel()
    model.train()
    return total / count


def warm_up(name: str, spec: TrainSpec, encoded: Sequence[Encoded], pad_id: int) -> None:
    """One untimed forward and backward, so neither trainer pays first-call costs."""
    device = pick_device()
    model = fresh_model(name, spec, device, seed=0)
    batch = collate(encoded[: spec.batch_size], pad_id, device)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        out = model(**batch)
    out.loss.backward()
    del model, out
    release_memory()


def run_ours(
    model: Any, encoded: Sequence[Encoded], spec: TrainSpec, seed: int, pad_id: int
) -> tuple[float, int, int, float]:
    """Train with `sweeps.train.train`; (wall s, padded tokens, steps, mean step loss)."""
    padded = [0]

    def counted(rows: Sequence[Encoded], pad: int, device: torch.device) -> dict[str, Any]:
        batch = collate(rows, pad, device)
        padded[0] += batch["input_ids"].numel()
        return batch

    started = time.perf_counter()
    report = train(model, encoded, spec, seed=seed, pad_id=pad_id, collate_fn=counted)
    wall_s = time.perf_counter() - started
    losses = report.loss_parts["sft"]
    return wall_s, padded[0], report.n_steps, sum(losses) / len(losses)


def trainer_arguments(
    spec: TrainSpec, device: torch.device, seed: int, output_dir: str, warmup_steps: int
) -> Any:
    """`TrainingArguments` that match `spec`: no evaluation, saving, logging or reporting."""
    names = {f.name for f in dataclasses.fields(transformers.TrainingArguments)}
    grouping: dict[str, Any] = (  # transformers 5 replaced the flag with a sampler choice
        {"group_by_length": True}
        if "group_by_length" in names
        else {"train_sampling_strategy": "group_by_length"}
    )
    return transformers.TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=spec.batch_size,
        gradient_accumulation_steps=spec.grad_accum,
        num_train_epochs=spec.epochs,
        learning_rate=spec.learning_rate,
        lr_scheduler_type="constant_with_warmup" if spec.schedule == "constant" else spec.schedule,
        # Ours warms up round(ratio * steps) steps; Trainer's ratio gives ceil(...), which for
        # a short run is one step at lr 0, so pass the same integer.
        warmup_steps=warmup_steps,
        max_grad_norm=spec.max_grad_norm,
        weight_decay=spec.weight_decay,
        eval_strategy="no",
        save_strategy="no",
        report_to=[],
        logging_steps=1_000_000,
        disable_tqdm=True,
        dataloader_num_workers=0,
        use_cpu=device.type == "cpu",
        bf16=device.type == "cuda" and spec.dtype in ("auto", "bfloat16"),
        seed=seed,
        data_seed=seed,
        label_names=["labels"],
        **grouping,
    )


def run_theirs(
    model: Any, encoded: Sequence[Encoded], spec: TrainSpec, seed: int, tokenizer: Any
) -> tuple[float, int, int, float, str]:
    """Train with Hugging Face `Trainer`; (wall s, padded tokens, steps, mean loss, optim)."""
    from datasets import Dataset

    device = next(model.parameters()).device
    rows = [
        {
            "input_ids": list(e.input_ids),
            "labels": list(e.labels),
            "attention_mask": [1] * len(e.input_ids),
        }
        for e in encoded
    ]
    collator = transformers.DataCollatorForSeq2Seq(
        tokenizer, padding=True, label_pad_token_id=IGNORE_INDEX
    )
    padded = [0]

    def counted(features: list[dict[str, Any]]) -> Any:
        batch = collator(features)
        padded[0] += batch["input_ids"].numel()
        return batch

    n_steps = math.ceil(math.ceil(len(encoded) / spec.batch_size) / spec.grad_accum)
    with tempfile.TemporaryDirectory(prefix="bench-train-") as output_dir:
        args = trainer_arguments(
            spec, device, seed, output_dir, round(spec.warmup_ratio * n_steps)
        )
        trainer = transformers.Trainer(
            model=model, args=args, train_dataset=Dataset.from_list(rows), data_collator=counted
        )
        trainer.remove_callback(transformers.PrinterCallback)
        started = time.perf_counter()
        output = trainer.train()
        wall_s = time.perf_counter() - started
    optim = getattr(args.optim, "value", args.optim)  # an enum member in transformers 5
    return wall_s, padded[0], output.global_step, output.training_loss, str(optim)


def one_run(
    trainer: str,
    repeat: int,
    args: argparse.Namespace,
    spec: TrainSpec,
    encoded: Sequence[Encoded],
    tokenizer: Any,
    notes: dict[str, str],
    batch_seed: int | None = None,
) -> RunResult:
    """Load a fresh model, train it with `trainer`, and measure the run.

    `batch_seed` (ours only) replaces `args.seed` for the batch order, keeping the data and the
    adapters' initialisation.
    """
    device = pick_device()
    model = fresh_model(args.model, spec, device, args.seed)
    load_1min = os.getloadavg()[0]
    threads_before = torch.get_num_threads()
    cpu_started = time.process_time()
    with PeakMemory(device) as memory:
        if trainer in (OURS, ORDER_CHECK):
            order_seed = args.seed if batch_seed is None else batch_seed
            wall_s, padded, n_steps, mean_loss = run_ours(
                model, encoded, spec, order_seed, tokenizer.pad_token_id
            )
        else:
            wall_s, padded, n_steps, mean_loss, notes["optim"] = run_theirs(
                model, encoded, spec, args.seed, tokenizer
            )
    cpu_s = time.process_time() - cpu_started
    if torch.get_num_threads() != threads_before:
        notes[f"threads_{trainer}"] = f"{threads_before} -> {torch.get_num_threads()}"
    # Every repetition trains under the same seed, so the trained model is scored once.
    after = (
        training_set_loss(model, encoded, tokenizer.pad_token_id, device, spec.batch_size)
        if repeat == 0 or trainer == ORDER_CHECK
        else math.nan
    )
    del model
    release_memory()
    return RunResult(
        trainer=trainer,
        repeat=repeat,
        wall_s=wall_s,
        cpu_s=cpu_s,
        train_tokens=sum(len(e.input_ids) for e in encoded),
        padded_tokens=padded,
        n_steps=n_steps,
        mean_loss_nats=mean_loss,
        after_loss_nats=after,
        base_mem_mib=memory.base_mib,
        peak_mem_mib=memory.peak_mib,
        load_1min=load_1min,
    )


def machine_lines(device: torch.device) -> list[str]:
    """CPU model, cores, device and library versions."""
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    if device.type == "cuda":
        gpu = torch.cuda.get_device_properties(device)
        device_text = f"{gpu.name} ({gpu.total_memory / 2**30:.0f} GiB), bf16 autocast"
    else:
        device_text = f"CPU, fp32, torch threads: {torch.get_num_threads()}"
    return [
        f"- CPU: {cpu}, {len(os.sched_getaffinity(0))} usable cores "
        f"({os.cpu_count()} online), {psutil.virtual_memory().total / 2**30:.0f} GiB RAM",
        f"- Device: {device_text}",
        f"- Python {platform.python_version()}, torch {torch.__version__}, transformers "
        f"{transformers.__version__}, peft {peft.__version__}",
    ]


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


@dataclass(frozen=True)
class Summary:
    """Medians over the interleaved pairs (ratios are ours / Trainer within one repetition)."""

    ratios: tuple[float, ...]
    ratio: float
    cpu_ratio: float
    per_padded_ratio: float
    tokens_per_s: tuple[float, float]
    extra_mem_mib: tuple[float, float]
    wall_spread: float  # (max - min) / median wall seconds of one trainer, the larger of two


def summarise(results: Sequence[RunResult]) -> Summary:
    """Pair each repetition's two runs and take medians."""
    ours = {r.repeat: r for r in results if r.trainer == OURS}
    theirs = {r.repeat: r for r in results if r.trainer == THEIRS}
    keys = sorted(ours)
    ratios = tuple(ours[k].tokens_per_s / theirs[k].tokens_per_s for k in keys)

    def spread(runs: Sequence[RunResult]) -> float:
        walls = [r.wall_s for r in runs]
        return (max(walls) - min(walls)) / _median(walls)

    return Summary(
        ratios=ratios,
        ratio=_median(ratios),
        cpu_ratio=_median([theirs[k].cpu_s / ours[k].cpu_s for k in keys]),
        per_padded_ratio=_median(
            [
                (ours[k].padded_tokens / ours[k].wall_s)
                / (theirs[k].padded_tokens / theirs[k].wall_s)
                for k in keys
            ]
        ),
        tokens_per_s=(
            _median([r.tokens_per_s for r in ours.values()]),
            _median([r.tokens_per_s for r in theirs.values()]),
        ),
        extra_mem_mib=(
            _median([r.peak_mem_mib - r.base_mem_mib for r in ours.values()]),
            _median([r.peak_mem_mib - r.base_mem_mib for r in theirs.values()]),
        ),
        wall_spread=max(spread(list(ours.values())), spread(list(theirs.values()))),
    )


def _gaps(a: RunResult, b: RunResult) -> tuple[float, float]:
    """|difference| of the mean training loss and of the after-training loss, in nats."""
    return abs(a.mean_loss_nats - b.mean_loss_nats), abs(a.after_loss_nats - b.after_loss_nats)


def loss_check(ours: RunResult, theirs: RunResult, control: RunResult | None) -> str:
    """Say whether the two trainers did the same work, judged against batch order's own effect.

    Trainer's losses may differ from ours by up to twice what another batch order alone moves
    ours (the control run), or by `_LOSS_FLOOR_NATS`, whichever is larger.
    """
    gap = _gaps(ours, theirs)
    said = f"{gap[0]:.3f} nats (mean over the run) and {gap[1]:.3f} nats (the trained model on "
    said += "its training set, one function for both)"
    if control is None:
        allowed = (2.5 * _LOSS_FLOOR_NATS,) * 2
        scale = "no control run of batch order was made"
    else:
        order = _gaps(ours, control)
        allowed = (max(2 * order[0], _LOSS_FLOOR_NATS), max(2 * order[1], _LOSS_FLOOR_NATS))
        scale = (
            f"ours under another batch order differs from itself by {order[0]:.3f} and "
            f"{order[1]:.3f} nats"
        )
    if gap[0] <= allowed[0] and gap[1] <= allowed[1]:
        return (
            f"The two trainers did the same work: Trainer's losses differ from ours by {said}, "
            f"and {scale}, so the gap is what a different batch order gives (each trainer "
            "shuffles its own length groups)."
        )
    return (
        f"**Check this:** Trainer's losses differ from ours by {said}, more than twice what "
        f"batch order alone explains ({scale}). One control run is only a rough scale, but the "
        "trainers may not be doing the same work, so look closer before trusting the ratio."
    )


def shared_cpu_note(summary: Summary, data: dict[str, Any]) -> str:
    """How far to trust absolute figures on a shared CPU, and why one thread was used."""
    note = (
        f"On this CPU ({data['cores']} cores, load average {data['load']} at the start) one "
        f"trainer's wall time varied by up to {100 * summary.wall_spread:.0f}% between "
        "repetitions, so read the within-pair ratio and the CPU-seconds ratio rather than the "
        "absolute tokens/s."
    )
    if data["threads"] == 1 < data["cores"]:
        note += (
            f" The runs used 1 torch thread of {data['cores']} cores (`--threads 1`): with "
            "torch's default of one per core, other programs on the same cores leave its "
            "threads waiting for each other at every operation, and both trainers slow "
            "several-fold."
        )
    return note


def reading(
    summary: Summary,
    first: tuple[RunResult, RunResult],
    control: RunResult | None,
    device: torch.device,
    data: dict[str, Any],
) -> list[str]:
    """A plain-words reading of the figures, with the structural reasons behind them."""
    o, t = first
    faster = "faster than" if summary.ratio >= 1.0 else "slower than"
    padding_ratio = t.padded_tokens / o.padded_tokens
    head_share = data["response_tokens"] / o.padded_tokens
    per_token = (
        f"Per processed token, padding included, ours is {summary.per_padded_ratio:.2f}x "
        "Trainer's speed"
    )
    logits_mib = t.padded_tokens / t.n_steps * data["vocab"] * 4 / _MIB
    memory = (
        "That tensor is also most of Trainer's extra peak memory"
        if summary.extra_mem_mib[1] > summary.extra_mem_mib[0] + 0.5 * logits_mib
        else f"That tensor (about {logits_mib:.0f} MiB a batch here) is small next to the "
        "activations every layer keeps for the backward pass, so peak memory is about the same"
    )
    text = [
        f"Ours is {faster} Trainer here: {summary.ratio:.2f}x its tokens/s (median of "
        f"{len(summary.ratios)} interleaved pair(s); Trainer used {summary.cpu_ratio:.2f}x the "
        "CPU seconds of ours). Two things separate them. (1) Padding: Trainer processed "
        f"{padding_ratio:.2f}x as many tokens as ours ({t.padded_tokens} vs {o.padded_tokens}), "
        "because its length-grouped sampler sorts within mega-batches of "
        f"{data['hf_megabatch']} examples (min(n / (4 x batch), 50) batches) while ours sorts "
        f"within {data['our_group']} examples; at larger n the two groupings converge. "
        f"(2) {per_token}: ours applies the LM head (vocabulary {data['vocab']} x width "
        f"{data['width']}, the largest matrix of this model) and the cross-entropy only at the "
        f"{100 * head_share:.0f}% of positions whose next token is a response token, while "
        "`model(..., labels=...)` under Trainer computes logits at every position and upcasts "
        f"the whole [batch, length, vocabulary] tensor to fp32 for its loss. {memory} "
        f"({summary.extra_mem_mib[1]:.0f} vs {summary.extra_mem_mib[0]:.0f} MiB above the "
        "loaded model).",
        "",
        loss_check(o, t, control),
    ]
    if device.type == "cpu":
        if len(summary.ratios) > 1:
            text += ["", shared_cpu_note(summary, data)]
    else:
        text += [
            "",
            "On a GPU the head saving is the same, but a small model's steps are short, so "
            "host-side costs count: ours reads the loss and token counts back each step "
            "(`float(loss)`, `int(mask.sum())`, and boolean indexing of response positions "
            "synchronises), Trainer keeps its running loss on the device.",
        ]
    return text


def render(
    results: Sequence[RunResult],
    args: argparse.Namespace,
    spec: TrainSpec,
    device: torch.device,
    context: dict[str, Any],
) -> str:
    """The Markdown report: setting, machine, a row per run, the median ratio, a reading."""
    summary = summarise(results)
    o = next(r for r in results if r.trainer == OURS and r.repeat == 0)
    t = next(r for r in results if r.trainer == THEIRS and r.repeat == 0)
    control = next((r for r in results if r.trainer == ORDER_CHECK), None)
    goal = 1.3 if device.type == "cuda" else 1.0
    mem_label = "CUDA allocated" if device.type == "cuda" else "RSS"
    lora = f"LoRA r={spec.lora_r}, alpha {spec.lora_alpha}, {'/'.join(spec.lora_targets)}"
    lines = [
        "# Training throughput: `sweeps.train.train` vs Hugging Face `Trainer`",
        "",
        f"Command: `{context['command']}`  ",
        f"Date: {context['date']}",
        "",
        "## Setting",
        "",
        f"- Model: {args.model}, {lora if spec.method == 'lora' else 'full fine-tuning'}; "
        "loaded fresh for every run (loading not timed).",
        f"- Data: {args.n_examples} `{args.language}` pairs of the `{args.spec}` spec (English "
        f"-> {args.language}), chat template, loss on responses; {o.train_tokens} real tokens "
        f"per epoch ({o.train_tokens / args.n_examples:.1f} per example, "
        f"{context['data']['response_tokens']} of them response tokens), the same `Encoded` "
        "list for both trainers; tokens/s counts these real tokens.",
        f"- Settings (both): batch {spec.batch_size}, grad accumulation {spec.grad_accum}, "
        f"{spec.epochs:g} epoch ({o.n_steps} steps), lr {spec.learning_rate:g}, "
        f"{spec.schedule}, warmup {spec.warmup_ratio:g} ({context['warmup_steps']} steps), "
        f"max grad norm {spec.max_grad_norm:g}, weight decay {spec.weight_decay:g}, "
        f"seed {args.seed}.",
        "- Trainer: `DataCollatorForSeq2Seq(padding=True, label_pad_token_id=-100)`, grouping "
        f"by length, optim `{context['notes'].get('optim', '?')}` (its default), no "
        "evaluation, saving or reporting; `trainer.train()` timed. Ours: AdamW (foreach), its "
        "own length grouping; `train(...)` timed.",
        "- Order alternates per repetition (ours first, then Trainer first) after one untimed "
        "warm-up forward/backward.",
        "",
        "## Machine",
        "",
        *machine_lines(device),
        f"- Load average (1, 5, 15 min): start {context['load_start']}; end {context['load_end']}",
        "",
        "## Runs",
        "",
        "| repeat | trainer | wall s | CPU s | tokens/s | padded tokens | padding % | "
        f"mean train loss | loss after (train set) | {mem_label} before MiB | peak MiB | "
        "load 1 min |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        padding = 100 * (1 - r.train_tokens / r.padded_tokens)
        after = "-" if math.isnan(r.after_loss_nats) else f"{r.after_loss_nats:.4f}"
        repeat = "control" if r.trainer == ORDER_CHECK else str(r.repeat + 1)
        lines.append(
            f"| {repeat} | {r.trainer} | {r.wall_s:.1f} | {r.cpu_s:.1f} | "
            f"{r.tokens_per_s:.1f} | {r.padded_tokens} | {padding:.1f} | "
            f"{r.mean_loss_nats:.4f} | {after} | {r.base_mem_mib:.0f} | "
            f"{r.peak_mem_mib:.0f} | {r.load_1min:.2f} |"
        )
    verdict = "meets" if summary.ratio >= goal else "misses"
    lines += [
        "",
        "## Result",
        "",
        "- Tokens/s ratio ours / Trainer, per repetition: "
        f"{', '.join(f'{x:.2f}' for x in summary.ratios)}; **median {summary.ratio:.2f}x** "
        f"(goal on this device: {goal:g}x or better; it {verdict} it).",
        f"- Median tokens/s: ours {summary.tokens_per_s[0]:.1f}, Trainer "
        f"{summary.tokens_per_s[1]:.1f}. CPU seconds, Trainer / ours: {summary.cpu_ratio:.2f}x.",
        "- Per processed token (padding included), ours / Trainer: "
        f"{summary.per_padded_ratio:.2f}x.",
        f"- Peak memory above the loaded model ({mem_label}, medians): ours "
        f"{summary.extra_mem_mib[0]:.0f} MiB, Trainer {summary.extra_mem_mib[1]:.0f} MiB.",
        f"- Loss (repetition 1), mean over the run: ours {o.mean_loss_nats:.4f}, Trainer "
        f"{t.mean_loss_nats:.4f}; after training, one function on the training set: ours "
        f"{o.after_loss_nats:.4f}, Trainer {t.after_loss_nats:.4f} nats."
        + (
            f" Control (ours, batch-order seed {args.seed + 1}, not in the ratios): "
            f"{control.mean_loss_nats:.4f} and {control.after_loss_nats:.4f}."
            if control is not None
            else ""
        ),
    ]
    for key, value in context["notes"].items():
        if key.startswith("threads_"):
            lines.append(f"- Warning: torch threads changed during {key[8:]}: {value}.")
    context["data"]["load"] = context["load_start"].split(",")[0]
    lines += ["", "## Reading", "", *reading(summary, (o, t), control, device, context["data"])]
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help="model name, folder or hub id")
    parser.add_argument("--language", default="el", help="language code of the pairs")
    parser.add_argument(
        "--n-examples", type=int, default=None, help="examples per run (default 64 CPU, 512 GPU)"
    )
    parser.add_argument("--repeats", type=int, default=2, help="runs of each trainer")
    parser.add_argument("--method", choices=("lora", "full"), default="lora")
    parser.add_argument("--spec", default="demo", help="sweep spec for data and [train]")
    parser.add_argument("--seed", type=int, default=0, help="data order and adapter init")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads; 0 = torch's default"
    )
    parser.add_argument(
        "--no-order-check",
        dest="order_check",
        action="store_false",
        help="skip the control run of ours under another batch order (it calibrates how close "
        "the two trainers' losses should be)",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results_train.md"))
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=FutureWarning)  # deprecations inside peft
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    device = pick_device()
    if device.type == "cuda" and torch.cuda.device_count() > 1:
        # Trainer would spread each batch over every visible GPU (DataParallel); ours uses one.
        print(
            f"{torch.cuda.device_count()} GPUs are visible; run with CUDA_VISIBLE_DEVICES=0 so "
            "both trainers use one.",
            file=sys.stderr,
        )
        return 2
    if args.n_examples is None:
        args.n_examples = 512 if device.type == "cuda" else 64
    context: dict[str, Any] = {
        "command": ".venv/bin/python " + shlex.join(sys.argv),
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "load_start": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
        "notes": {},
    }
    spec = dataclasses.replace(load_spec(args.spec).train, method=args.method)
    base_model, tokenizer = load_model(args.model)
    config = base_model.config
    del base_model
    encoded = prepare_data(args.spec, args.language, args.n_examples, args.seed, tokenizer)
    n_steps = math.ceil(math.ceil(len(encoded) / spec.batch_size) / spec.grad_accum)
    context["warmup_steps"] = round(spec.warmup_ratio * n_steps)
    mega = max(min(len(encoded) // (spec.batch_size * 4), 50), 1) * spec.batch_size
    context["data"] = {
        "response_tokens": sum(e.n_response_tokens for e in encoded),
        "hf_megabatch": mega,  # transformers' get_length_grouped_indices default
        "our_group": spec.batch_size * _LENGTH_GROUP_BATCHES,
        "vocab": getattr(config, "vocab_size", "?"),
        "width": getattr(config, "hidden_size", "?"),
        "cores": len(os.sched_getaffinity(0)),
        "threads": args.threads,
    }
    log: Callable[[str], None] = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    log(f"{len(encoded)} examples, {sum(len(e.input_ids) for e in encoded)} tokens; warm-up")
    warm_up(args.model, spec, encoded, tokenizer.pad_token_id)
    results: list[RunResult] = []
    for repeat in range(args.repeats):
        order = (OURS, THEIRS) if repeat % 2 == 0 else (THEIRS, OURS)
        for name in order:
            result = one_run(name, repeat, args, spec, encoded, tokenizer, context["notes"])
            log(
                f"repeat {repeat + 1} {name}: {result.wall_s:.1f} s, "
                f"{result.tokens_per_s:.1f} tokens/s, loss {result.mean_loss_nats:.4f} / "
                f"after {result.after_loss_nats:.4f}, peak {result.peak_mem_mib:.0f} MiB"
            )
            results.append(result)
    if args.order_check:
        result = one_run(
            ORDER_CHECK,
            args.repeats,
            args,
            spec,
            encoded,
            tokenizer,
            context["notes"],
            batch_seed=args.seed + 1,
        )
        log(
            f"{ORDER_CHECK}: loss {result.mean_loss_nats:.4f} / after {result.after_loss_nats:.4f}"
        )
        results.append(result)
    context["load_end"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    report = render(results, args, spec, device, context)
    args.out.write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
