"""One ledger cell from start to finish: data -> model -> train -> evaluate -> outcome.

`run_cell(spec, cell)` is what a sweep's worker calls for each cell it pulls from the ledger; a
cell with `n_examples == 0` scores the untuned base model (the zero-data point of every
curve). `run_mixture_cell(spec, mixture, cell)` is the closed loop's: one MuIT model on an
allocation's whole mixture, scored on every language. Both share the steps below.
"""

from __future__ import annotations

import functools
import logging
import platform
import time
from collections.abc import Sequence
from typing import Any

import torch

from muit_core import ConfigError
from sweeps.cells import AnyCell, Cell, CellOutcome, MixtureCell
from sweeps.corpus import load_pools
from sweeps.evaluate import EvalReport, evaluate_model
from sweeps.general_data import GeneralRecipe, cell_examples
from sweeps.instructions import (
    Example,
    heldout_examples,
    select_pairs,
    translation_examples,
)
from sweeps.mixture import Mixture
from sweeps.model import load_model
from sweeps.pairs import LanguagePools, PairFilter
from sweeps.spec import SweepSpec, spec_to_dict
from sweeps.templates import Direction
from sweeps.train import (
    CollateFn,
    Encoded,
    LossFn,
    collate,
    encode_example,
    sft_loss,
    train,
    wrap_lora,
)
from sweeps.write_data import language_pools, mixture_examples, shuffled_union

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


def objective_loss(spec: SweepSpec, model: Any) -> LossFn:
    """The training objective's loss function for this spec."""
    if spec.objective == "dft":
        from sweeps.dft import make_dft_loss

        return make_dft_loss(spec.dft, model)
    return sft_loss


def _encode(spec: SweepSpec, tokenizer: Any, examples: Sequence[Example]) -> list[Encoded]:
    return [
        encode_example(tokenizer, e, spec.train.max_length, spec.data.system_prompt)
        for e in examples
    ]


def _training_batches(
    spec: SweepSpec, tokenizer: Any, parts: Sequence[tuple[str, list[Example]]]
) -> tuple[list[Any], CollateFn]:
    """Tokenised training examples of each (language, examples) part, in the parts' order."""
    if spec.objective == "dft":  # DFT batches also carry each example's English parallel
        from sweeps.dft_data import collate_dft, dft_training_data

        encoded_dft: list[Any] = []
        for language, examples in parts:
            encoded_dft.extend(dft_training_data(spec, tokenizer, examples, language)[0])
        return encoded_dft, collate_dft
    return [e for _, examples in parts for e in _encode(spec, tokenizer, examples)], collate


def _train(
    spec: SweepSpec,
    model: Any,
    tokenizer: Any,
    encoded: list[Any],
    collate_fn: CollateFn,
    seed: int,
    description: str,
) -> tuple[Any, dict[str, Any]]:
    """Fine-tune `model` (LoRA-wrapped if the spec says so) on `encoded`; the model and attrs."""
    if spec.train.method == "lora":
        model = wrap_lora(model, spec.train)
    report = train(
        model,
        encoded,
        spec.train,
        seed=seed,
        pad_id=tokenizer.pad_token_id,
        loss_fn=objective_loss(spec, model),
        collate_fn=collate_fn,
        description=description,
    )
    attrs = {
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
    return model, attrs


def _score(
    spec: SweepSpec,
    model: Any,
    tokenizer: Any,
    pools: LanguagePools,
    language: str,
    direction: Direction,
) -> EvalReport:
    """Score `model` on the language's first `eval.heldout_size` held-out pairs, as every run
    of the sweep is scored."""
    examples = heldout_examples(pools, spec.eval.heldout_size, language, direction)
    return evaluate_model(
        model,
        tokenizer,
        examples,
        _encode(spec, tokenizer, examples),
        language=language,
        generate_size=spec.eval.generate_size,
        max_new_tokens=spec.eval.max_new_tokens,
        batch_size=spec.eval.batch_size,
        system_prompt=spec.data.system_prompt,
    )


def _set_threads(spec: SweepSpec) -> None:
    if spec.train.threads > 0:
        torch.set_num_threads(spec.train.threads)


def _host_attrs(device: torch.device, started: float) -> dict[str, Any]:
    return {
        "wall_s": round(time.perf_counter() - started, 3),
        "device": str(device),
        "host": platform.node(),
    }


def run_cell(spec: SweepSpec, cell: AnyCell) -> CellOutcome:
    """Train (unless `n_examples == 0`) and score one sweep cell; return its metrics and attrs.

    Raises:
        ConfigError: the cell's size exceeds the language's training pool, or it is a mixture
            cell (those run through `run_mixture_cell`).
        TrainingError: the loss became NaN (the worker records the cell as failed).
    """
    if not isinstance(cell, Cell):
        raise ConfigError(
            f"Cell {cell.key} is a mixture cell; run it with plan-sweep validate or a worker "
            "of its study."
        )
    started = time.perf_counter()
    _set_threads(spec)
    pair_filter = spec.data.pair_filter()
    pools = cached_pools(spec.data.source, cell.language, pair_filter)
    direction = Direction.parse(spec.data.direction)
    device = pick_device()
    model, tokenizer = load_model(cell.model, device=device)
    n_params = sum(p.numel() for p in model.parameters())
    train_attrs: dict[str, Any] = {"train_tokens": 0, "train_wall_s": 0.0}
    tokens_per_example: float | None = None  # the untuned base cell trains on nothing
    if cell.n_examples > 0:
        pairs = select_pairs(pools, cell.n_examples, cell.seed)
        examples = cell_examples(
            GeneralRecipe.from_data_spec(spec.data),
            translation_examples(pairs, cell.language, direction),
            cell.language,
            cell.seed,
        )
        encoded, collate_fn = _training_batches(spec, tokenizer, [(cell.language, examples)])
        tokens_per_example = sum(len(e.input_ids) for e in encoded) / len(encoded)
        description = f"{cell.language} n={cell.n_examples} s={cell.seed}"
        model, train_attrs = _train(
            spec, model, tokenizer, encoded, collate_fn, cell.seed, description
        )
    evaluation = _score(spec, model, tokenizer, pools, cell.language, direction)
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
        **_host_attrs(device, started),
        "samples": [list(s) for s in evaluation.samples],
        "config": spec_to_dict(spec),
    }
    return CellOutcome(metrics=evaluation.metrics, attrs=attrs)


def run_mixture_cell(spec: SweepSpec, mixture: Mixture, cell: AnyCell) -> CellOutcome:
    """Train ONE model on an allocation's whole MuIT mixture and score every language.

    The training examples are exactly what `plan-sweep write-data` writes for the allocation
    (the mixture's seed draws and shuffles them); the cell's seed sets initialisation and batch
    order. Every language is scored on the same held-out pairs and metrics as the sweep.
    Metrics are keyed `LANGUAGE/METRIC` (e.g. `el/heldout_ce`).

    Raises:
        ConfigError: `cell` is a sweep cell.
        DataError: a corpus changed since the plan (see `sweeps.write_data.mixture_examples`).
    """
    if not isinstance(cell, MixtureCell):
        raise ConfigError(f"Cell {cell.key} is a sweep cell, not a mixture cell.")
    started = time.perf_counter()
    _set_threads(spec)
    direction = Direction.parse(spec.data.direction)
    allocation = mixture.allocation(cell.allocator)
    recipe = GeneralRecipe.from_data_spec(spec.data)
    parts = mixture_examples(mixture, allocation, direction, _load_for_mixture, recipe)
    device = pick_device()
    model, tokenizer = load_model(cell.model, device=device)
    n_params = sum(p.numel() for p in model.parameters())
    # The mixture's own order (`shuffled_union`, as write-data writes it); `train` then shuffles
    # batches with the cell's seed. DFT encodes per language (its English parallels are).
    union = shuffled_union(parts, mixture.seed)
    if spec.objective == "dft":
        batch_parts = [(p.language, p.training_examples) for p in parts.languages]
        batch_parts = [(language, examples) for language, examples in batch_parts if examples]
        if parts.english is not None and batch_parts:
            # English general instructions have no parallel to look up (their query is
            # English already): they take the SFT loss in whichever part encodes them.
            batch_parts[0] = (batch_parts[0][0], [*batch_parts[0][1], *parts.english.examples])
    else:
        batch_parts = [("mixture", union)]
    encoded, collate_fn = _training_batches(spec, tokenizer, batch_parts)
    description = f"mixture {cell.allocator} n={len(union)} s={cell.seed}"
    model, train_attrs = _train(
        spec, model, tokenizer, encoded, collate_fn, cell.seed, description
    )
    metrics: dict[str, float] = {}
    per_language: dict[str, Any] = {}
    for lang in mixture.languages:
        pools = language_pools(lang, _load_for_mixture)
        evaluation = _score(spec, model, tokenizer, pools, lang.code, direction)
        for name, value in evaluation.metrics.items():
            metrics[f"{lang.code}/{name}"] = value
        per_language[lang.code] = {
            "examples": allocation.examples[lang.code],
            "n_heldout_scored": evaluation.n_scored,
            "n_generated": evaluation.n_generated,
            "eval_wall_s": round(evaluation.wall_s, 3),
            "samples": [list(s) for s in evaluation.samples[:2]],
        }
    attrs = {
        **train_attrs,
        "n_params": n_params,
        "n_examples": len(union),
        "languages": per_language,
        **_host_attrs(device, started),
        "config": spec_to_dict(spec),
    }
    return CellOutcome(metrics=metrics, attrs=attrs)


def _load_for_mixture(source: str, language: str, pair_filter: PairFilter | None) -> LanguagePools:
    return cached_pools(source, language, pair_filter or PairFilter())
