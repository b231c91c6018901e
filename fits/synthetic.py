"""A realistic synthetic results table, for tests, the benchmark and trying `plan-fit` out.

Each language's curves come from known saturating laws, so the zero-data (untuned) point sits
on the curve; per-run noise is multiplicative for the loss and additive for the scores, as
with seeds of real fine-tunes. One language (`km` when present) is made to dip below the
untuned model at the smallest size, as small fine-tuning sets sometimes do.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import pandas as pd

from fits.laws import saturating

DEFAULT_LANGUAGES = ("de", "hi", "km", "tr", "zh-CN")
DEFAULT_SIZES = (0, 64, 128, 256, 512, 1024, 2048, 4096)
SMOLLM2_PARAMS = 134_515_008  # SmolLM2-135M-Instruct, the embedded default model
_POOLS = {"de": 33_900, "el": 33_600, "zh-CN": 23_200, "tr": 21_000, "km": 16_800, "hi": 3_300}


def synthetic_truth(language: str) -> dict[str, dict[str, float]]:
    """The true `saturating` parameters of each metric for a language (deterministic)."""
    rng = np.random.default_rng(zlib.crc32(language.encode("utf-8")))
    difficulty = rng.uniform(0.0, 1.0)  # 0: close to English, 1: far from it
    floor = 1.6 + 0.8 * difficulty
    alpha = rng.uniform(0.3, 0.55)
    d0 = rng.uniform(20.0, 120.0)
    base_gap = 1.2 + 1.0 * difficulty  # untuned loss minus floor, in nats
    chrf_max = 62.0 - 20.0 * difficulty
    chrf_gap = 30.0 + 10.0 * difficulty
    return {
        "heldout_ce": {"s_max": floor, "a": -base_gap * d0**alpha, "d0": d0, "alpha": alpha},
        "chrf": {"s_max": chrf_max, "a": chrf_gap * d0**alpha, "d0": d0, "alpha": alpha},
        "bleu": {
            "s_max": 0.6 * chrf_max,
            "a": 0.6 * (chrf_gap - 4.0) * d0**alpha,
            "d0": d0,
            "alpha": alpha,
        },
    }


def synthetic_results(
    languages: tuple[str, ...] = DEFAULT_LANGUAGES,
    sizes: tuple[int, ...] = DEFAULT_SIZES,
    seeds: tuple[int, ...] = (0, 1, 2),
    *,
    metrics: tuple[str, ...] = ("heldout_ce", "chrf", "bleu"),
    loss_noise: float = 0.01,
    score_noise: float = 0.8,
    seed: int = 0,
    model: str = "SmolLM2-135M-Instruct",
    n_params: float = SMOLLM2_PARAMS,
    objective: str = "sft",
) -> pd.DataFrame:
    """A tidy results table (contract 3) with every required and optional column.

    Args:
        languages: language codes.
        sizes: data sizes in examples; 0 is the untuned model (one row per seed, like the
            sweep's evaluation of the base model).
        seeds: seeds per size.
        metrics: any of `heldout_ce`, `chrf`, `bleu`.
        loss_noise: standard deviation of the multiplicative noise on the loss.
        score_noise: standard deviation of the additive noise on the scores, in points.
        seed: seed of the noise.
        model: the `model` column.
        n_params: the `n_params` column.
        objective: the `objective` column.
    """
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for language in languages:
        truth = synthetic_truth(language)
        tokens_per_example = 40.0 + (zlib.crc32(language.encode()) % 30)
        for size in sizes:
            for run_seed in seeds:
                for metric in metrics:
                    value = float(saturating(float(size), **truth[metric]))
                    if language == "km" and size == min(s for s in sizes if s > 0):
                        # Too few examples can hurt: the model forgets before it learns, and
                        # scores below the untuned model.
                        untuned = float(saturating(0.0, **truth[metric]))
                        value = untuned * (1.04 if metric == "heldout_ce" else 0.85)
                    if metric == "heldout_ce":
                        value *= float(np.exp(rng.normal(0.0, loss_noise)))
                    else:
                        value = max(0.0, value + float(rng.normal(0.0, score_noise)))
                    rows.append(
                        {
                            "language": language,
                            "n_examples": int(size),
                            "seed": int(run_seed),
                            "model": model,
                            "n_params": n_params,
                            "objective": objective,
                            "metric": metric,
                            "value": value,
                            "higher_is_better": metric != "heldout_ce",
                            "train_tokens": int(size * tokens_per_example),
                            "wall_s": round(0.5 + size * tokens_per_example / 180.0, 2),
                            "n_available": _POOLS.get(language, 15_000),
                            "tokens_per_example": tokens_per_example,
                            "corpus": "libreoffice",
                            "pair_filter": "min_words=4,max_words=80,heldout_fraction=0.1",
                        }
                    )
    return pd.DataFrame(rows)
