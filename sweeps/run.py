"""One sweep cell from start to finish: data -> model -> train -> evaluate -> outcome.

`run_cell(spec, cell)` is what a worker calls for each cell it pulls from the ledger. A cell
with `n_examples == 0` scores the untuned base model (the zero-data point of every curve).
"""

from __future__ import annotations

import functools
import logging
import platform
import time
from typing import Any

import torch

from sweeps.cells import Cell, CellOutcome
from sweeps.corpus import load_pools
from sweeps.evaluate import evaluate_model
from sweeps.instructions import (
    mix_general,
    read_general_examples,
    select_pairs,
    translation_examples,
)
from sweeps.model import load_model
from sweeps.pairs import LanguagePools, PairFilter
from sweeps.spec import SweepSpec, spec_to_dict
from sweeps.templates import Direction
from sweeps.train import CollateFn, LossFn, collate, encode_example, sft_loss, train, wrap_lora

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=64)
def cached_pools(source: str, language: str, pair_filter: PairFilter) -> LanguagePools:
    """`load_pools`, once per process for each (source, language, filter)."""
    return load_pools(source, language, pair_filter)


def spec_pools(spec: SweepSpec, language: str) -> LanguagePools:
    """The language's pools under the spec's data settings."""
    return cached_pools(spec.data.source, language, spec.data.pair_filter())


def pick_device() -> torch.device:
    """The first CUDA device when there is one (each worker sees its own), else the CPU."""
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def heldout_direction(direction: Direction) -> Direction:
    """The direction held-out pairs are scored in: English -> X unless training is X -> English."""
    return Direction.X_TO_EN if direction is Direction.X_TO_EN else Direction.EN_TO_X


def objective_loss(spec: SweepSpec, model: Any) -> LossFn:
    """The training objective's loss function for this spec."""
    if spec.objective == "dft":
        from sweeps.dft import make_dft_loss

        return make_dft_loss(spec.dft, model)
    return sft_loss


def run_cell(spec: SweepSpec, cell: Cell) -> CellOutcome:
    """Train (unless `n_examples == 0`) and score one cell; return its metrics and attrs.

    Raises:
        ConfigError: the cell's size exceeds the language's training pool.
        TrainingError: the loss became NaN (the worker records the cell as failed).
    """
    started = time.perf_counter()
    if spec.train.threads > 0:
        torch.set_num_threads(spec.train.threads)
    pair_filter = spec.data.pair_filter()
    pools = cached_pools(spec.data.source, cell.language, pair_filter)
    direction = Direction.parse(spec.data.direction)
    device = pick_device()
    model, tokenizer = load_model(cell.model, device=device)
    n_params = sum(p.numel() for p in model.parameters())
    system_prompt = spec.data.system_prompt

    heldout_examples = translation_examples(
        pools.heldout[: spec.eval.heldout_size], cell.language, heldout_direction(direction)
    )

    def encode(examples: list[Any]) -> list[Any]:
        return [
            encode_example(tokenizer, e, spec.train.max_length, system_prompt) for e in examples
        ]

    heldout_encoded = encode(heldout_examples)
    train_attrs: dict[str, Any] = {"train_tokens": 0, "train_wall_s": 0.0}
    tokens_per_example: float | None = None  # the untuned base cell trains on nothing
    if cell.n_examples > 0:
        pairs = select_pairs(pools, cell.n_examples, cell.seed)
        examples = translation_examples(pairs, cell.language, direction)
        if spec.data.general_data and spec.data.general_ratio > 0:
            general = read_general_examples(spec.data.general_data, cell.language)
            examples = mix_general(examples, general, spec.data.general_ratio, cell.seed)
        collate_fn: CollateFn = collate
        if spec.objective == "dft":  # DFT batches also carry each example's English parallel
            from sweeps.dft_data import dft_training_data

            encoded, collate_fn = dft_training_data(spec, tokenizer, examples, cell.language)
        else:
            encoded = encode(examples)
        tokens_per_example = sum(len(e.input_ids) for e in encoded) / len(encoded)
        if spec.train.method == "lora":
            model = wrap_lora(model, spec.train)
        loss_fn = objective_loss(spec, model)
        report = train(
            model,
            encoded,
            spec.train,
            seed=cell.seed,
            pad_id=tokenizer.pad_token_id,
            loss_fn=loss_fn,
            collate_fn=collate_fn,
            description=f"{cell.language} n={cell.n_examples} s={cell.seed}",
        )
        train_attrs = {
            "train_tokens": report.train_tokens,
            "response_tokens": report.response_tokens,
            "train_wall_s": round(report.wall_s, 3),
            "tokens_per_s": round(report.tokens_per_s, 1),
            "n_steps": report.n_steps,
            "first_loss_nats": report.first_loss_nats,
            "last_loss_nats": report.last_loss_nats,
            "loss_curve": [list(point) for point in report.loss_curve],
            "loss_parts": report.loss_parts,
        }
    evaluation = evaluate_model(
        model,
        tokenizer,
        heldout_examples,
        heldout_encoded,
        language=cell.language,
        generate_size=spec.eval.generate_size,
        max_new_tokens=spec.eval.max_new_tokens,
        batch_size=spec.eval.batch_size,
        system_prompt=system_prompt,
    )
    attrs = {
        **train_attrs,
        "n_params": n_params,
        "n_available": len(pools.train),
        "n_heldout_scored": evaluation.n_scored,
        "n_generated": evaluation.n_generated,
        "tokens_per_example": tokens_per_example,
        "corpus": spec.data.source,
        "pair_filter": pair_filter.to_dict(),  # the pools' filter, for results.csv
        "eval_wall_s": round(evaluation.wall_s, 3),
        "wall_s": round(time.perf_counter() - started, 3),
        "device": str(device),
        "host": platform.node(),
        "samples": [list(s) for s in evaluation.samples],
        "config": spec_to_dict(spec),
    }
    return CellOutcome(metrics=evaluation.metrics, attrs=attrs)
