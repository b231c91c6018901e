"""Synthetic laws files for the planner tests (no sweep or fit needed to produce them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fits import FitResult, LawsFile, write_laws

# language: (training pairs, saturating-law s_max, a, alpha, tokens per example)
SCORE_LANGUAGES: dict[str, tuple[int, float, float, float, float]] = {
    "el": (900_000, 62.0, 260.0, 0.36, 48.0),
    "de": (800_000, 66.0, 400.0, 0.50, 41.0),
    "tr": (500_000, 58.0, 300.0, 0.30, 45.0),
    "vi": (300_000, 60.0, 240.0, 0.42, 52.0),
    "ja": (200_000, 45.0, 120.0, 0.22, 60.0),
    "hi": (40_000, 50.0, 280.0, 0.28, 55.0),
}
# The saturating law's zero-data offset, in examples: large enough that every language's
# untuned score S(0) = s_max - a * D0**(-alpha) is a chrF the metric can take (at least 0), so
# a plan of a few examples rests on possible predictions (the planner refuses impossible ones).
D0 = 1000.0


def score_fits(
    n_draws: int = 40,
    seed: int = 0,
    failed: str | None = None,
    with_available: bool = True,
) -> dict[str, FitResult]:
    """chrF-like saturating fits with aligned bootstrap draws; `failed` marks one as failed."""
    rng = np.random.default_rng(seed)
    fits = {}
    for lang, (pool, s_max, a, alpha, tpe) in SCORE_LANGUAGES.items():
        params = {"s_max": s_max, "a": a, "d0": D0, "alpha": alpha}
        draws = {
            "s_max": tuple(s_max * (1 + 0.01 * rng.standard_normal(n_draws))),
            "a": tuple(a * np.exp(0.05 * rng.standard_normal(n_draws))),
            "d0": (D0,) * n_draws,
            "alpha": tuple(alpha * (1 + 0.03 * rng.standard_normal(n_draws))),
        }
        ok = lang != failed
        data: dict[str, object] = {
            "tokens_per_example": tpe,
            "corpus": f"corpora/{lang}.jsonl",
            "pair_filter": "min_words=4,max_words=20,heldout_fraction=0.1",
        }
        if with_available:
            data["n_available"] = pool
        fits[lang] = FitResult(
            language=lang,
            law="saturating",
            params=params if ok else dict.fromkeys(params, float("nan")),
            stderr=dict.fromkeys(params, 0.0),
            metric="chrf",
            higher_is_better=True,
            n_points=12,
            d_min=64.0,
            d_max=16_384.0,
            success=ok,
            message="" if ok else "the optimiser did not converge from any start",
            draws=draws if n_draws and ok else {},
            data=data,
        )
    return fits


def loss_fits(n_draws: int = 0) -> dict[str, FitResult]:
    """Held-out cross-entropy power laws (lower is better), for direction tests."""
    rng = np.random.default_rng(1)
    specs = {
        "el": (30_000, 1.2, 6.0, 0.30),
        "hi": (3_000, 1.5, 9.0, 0.35),
        "tr": (20_000, 1.3, 5.0, 0.28),
    }
    fits = {}
    for lang, (pool, e, b, beta) in specs.items():
        draws = {
            "e": tuple(e * (1 + 0.01 * rng.standard_normal(n_draws))),
            "b": tuple(b * np.exp(0.05 * rng.standard_normal(n_draws))),
            "beta": tuple(beta * (1 + 0.03 * rng.standard_normal(n_draws))),
        }
        fits[lang] = FitResult(
            language=lang,
            law="power",
            params={"e": e, "b": b, "beta": beta},
            stderr={},
            metric="heldout_ce",
            higher_is_better=False,
            n_points=9,
            d_min=64.0,
            d_max=4096.0,
            success=True,
            message="",
            draws=draws if n_draws else {},
            data={"n_available": pool, "tokens_per_example": 40.0, "corpus": "libreoffice"},
        )
    return fits


def write_score_laws(path: Path, **kwargs: object) -> Path:
    """Write the chrF laws file of `score_fits(**kwargs)` to `path`."""
    fits = score_fits(**kwargs)  # type: ignore[arg-type]
    return write_laws(LawsFile(metric="chrf", higher_is_better=True, fits=fits), path)


def write_loss_laws(path: Path, n_draws: int = 0) -> Path:
    """Write the cross-entropy laws file of `loss_fits` to `path`."""
    fits = loss_fits(n_draws)
    return write_laws(LawsFile(metric="heldout_ce", higher_is_better=False, fits=fits), path)
