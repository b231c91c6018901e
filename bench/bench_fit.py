"""Benchmark `plan-fit`'s fitting: 50 languages x 6 sizes x 3 seeds with 1000 bootstrap draws.

Times the vectorised fit (every start, language and draw solved at once) per law, and the whole
`--law auto` pipeline, against a plain loop of `scipy.optimize.curve_fit` over the same work
(one fit of the full data plus one per bootstrap draw, per language). curve_fit does plain
least squares from one start, so the loop does less than `plan-fit` (no Huber loss, no grid
of starts, no bounds, no held-out checks); the ratio is a floor on the speed-up.

Run from the repository root:

    .venv/bin/python bench/bench_fit.py                  # the issue's setting
    .venv/bin/python bench/bench_fit.py --baseline-languages 10   # time the loop on 10, scale up
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from collections import Counter

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit
from threadpoolctl import threadpool_limits

from fits import LAWS
from fits.bootstrap import language_rng, resample_counts
from fits.data import Points
from fits.fitting import FitOptions, fit_languages
from fits.pipeline import FitRequest, fit_all

SIZES = (64, 256, 1024, 4096, 16384, 65536)
TRUTH_RANGES = {"e": (1.2, 2.5), "b": (10.0, 100.0), "beta": (0.2, 0.6)}


def make_points(n_languages: int, n_seeds: int, seed: int = 0) -> dict[str, Points]:
    """Held-out cross-entropy runs from per-language power laws with 1% multiplicative noise."""
    rng = np.random.default_rng(seed)
    d = np.repeat(np.asarray(SIZES, dtype=float), n_seeds)
    points = {}
    for i in range(n_languages):
        truth = {k: rng.uniform(*bounds) for k, bounds in TRUTH_RANGES.items()}
        y = LAWS["power"](d, **truth) * np.exp(rng.normal(0.0, 0.01, d.size))
        code = f"l{i:02d}"
        seeds = np.tile(np.arange(n_seeds), len(SIZES))
        points[code] = Points(code, d, y, seeds, np.full(d.size, 1.35e8))
    return points


def _power(d: np.ndarray, e: float, b: float, beta: float) -> np.ndarray:
    return e + b * d**-beta


def curve_fit_loop(points: dict[str, Points], n_draws: int, seed: int) -> tuple[float, float]:
    """Wall and CPU seconds of a plain loop: curve_fit on the data and every bootstrap draw."""
    start, cpu = time.perf_counter(), time.process_time()
    failures = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        for code, pts in points.items():
            counts, _ = resample_counts(pts.d, n_draws, language_rng(seed, code), 3)
            datasets = [np.arange(len(pts))]
            datasets += [np.repeat(np.arange(len(pts)), c.astype(int)) for c in counts]
            for rows in datasets:
                try:
                    curve_fit(_power, pts.d[rows], pts.y[rows], p0=(0.8 * pts.y.min(), 50.0, 0.4))
                except RuntimeError:
                    failures += 1
    if failures:
        print(f"  (curve_fit failed on {failures} datasets)", file=sys.stderr)
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> int:
    """Run the benchmark and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--languages", type=int, default=50)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--laws", default="power,saturating,loglinear")
    parser.add_argument(
        "--baseline-languages", type=int, default=None, help="loop on fewer, scale up"
    )
    parser.add_argument("--skip-auto", action="store_true", help="skip the --law auto pipeline")
    args = parser.parse_args()

    points = make_points(args.languages, args.seeds)
    options = FitOptions(n_bootstrap=args.draws, seed=0)
    n_runs = sum(len(p) for p in points.values())
    print(
        f"{args.languages} languages x {len(SIZES)} sizes x {args.seeds} seeds = {n_runs} runs, "
        f"{args.draws} bootstrap draws; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, numpy {np.__version__}\n"
    )
    print("| what | wall s | CPU s | ratio to curve_fit loop (wall) |")
    print("|---|---:|---:|---:|")
    subset = dict(list(points.items())[: args.baseline_languages or args.languages])
    factor = args.languages / len(subset)
    loop_wall, loop_cpu = (t * factor for t in curve_fit_loop(subset, args.draws, 0))
    scaled = "" if len(subset) == args.languages else f" (timed on {len(subset)}, scaled)"
    fits_total = args.languages * (args.draws + 1)
    print(
        f"| plain curve_fit loop, power, {fits_total} fits{scaled} | {loop_wall:.1f} | "
        f"{loop_cpu:.1f} | 1 |"
    )
    for law in args.laws.split(","):
        wall, cpu = time.perf_counter(), time.process_time()
        fits = fit_languages(points, law, higher_is_better=False, options=options)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        kept = sum(fit.n_draws for fit in fits.values())
        what = f"plan-fit `{law}`: grid + L-BFGS-B + {kept} draws"
        print(f"| {what} | {wall:.1f} | {cpu:.1f} | {wall / loop_wall:.3f} |")
    if not args.skip_auto:
        wall, cpu = time.perf_counter(), time.process_time()
        laws = fit_all(
            points,
            FitRequest(law="auto", options=options),
            metric="heldout_ce",
            higher_is_better=False,
        )
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        chosen = Counter(fit.law for fit in laws.fits.values())
        what = (
            f"plan-fit `--law auto` (held-out check of 4 laws, then fits + draws; {dict(chosen)})"
        )
        print(f"| {what} | {wall:.1f} | {cpu:.1f} | {wall / loop_wall:.3f} |")
    return 0


if __name__ == "__main__":
    with threadpool_limits(limits=1):  # single-threaded BLAS, as plan-fit runs
        sys.exit(main())
