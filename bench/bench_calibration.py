"""Calibration of the predictions beyond the sweep: median error and 90%-band coverage at 2x,
10x and 100x the largest swept size, against the truth.

Ground truths (held-out cross-entropy, nats; five languages per case, parameters drawn at
random in the range the demo sweep measured, untuned 2.2-4.0 nats):

- `saturating`: `L(d) = floor + gap * (d + d0)**(-alpha)` (the family of the `saturating` law);
- `power`: `L(d) = e + b * (d + 1)**(-beta)` (close to the `power` law);
- `hill`: `L(d) = floor + (untuned - floor) / (1 + (d / d0)**alpha)` (a family no law has);
- `logdecay`: `L(d) = untuned - c * log(1 + d / d0)`, floored at 0.3 nats (log-linear far out,
  flat near zero).

A demo-sized sweep is simulated (sizes 0, 16, 32, 64, 128; 1 or 3 seeds; 1% or 3%
multiplicative noise) and fitted by `plan-fit`'s pipeline with 200 bootstrap draws. Methods:

- `auto, predictive`: `--law auto` with its predictive mixture (this change: laws the
  backtests cannot tell apart, reach error calibrated on the sweep's own backtests, untuned
  anchor);
- `auto, parameter draws only`: the same point law with the bands the laws file gave before
  (its bootstrap draws alone);
- `loglinear` and `power`: `--law loglinear` / `--law power`, bands from their bootstrap draws
  (what a user of a single textbook law gets).

Also on the real demo sweep (`runs/demo/results.csv`, when present): fit the sizes up to 32
(or 64) and predict the larger ones (2x and 4x), against the measured means.

Run from the repository root (about 3 minutes on 2 cores):

    .venv/bin/python bench/bench_calibration.py --cases 4
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from fits.data import Points, points_by_language, read_results, select_metric
from fits.fitting import FitOptions
from fits.pipeline import FitRequest, fit_all
from fits.predictive import REACH_POWER
from muit_core import FitError

SIZES = (0, 16, 32, 64, 128)
REACHES = (2, 10, 100)
LANGS = ("l0", "l1", "l2", "l3", "l4")
Curve = Callable[[np.ndarray], np.ndarray]


def truth_curves(family: str, rng: np.random.Generator) -> dict[str, Curve]:
    """Five random true curves of one family."""
    out: dict[str, Curve] = {}
    for code in LANGS:
        untuned, floor = rng.uniform(2.2, 4.0), rng.uniform(0.6, 1.8)
        d0, alpha = rng.uniform(10.0, 200.0), rng.uniform(0.1, 0.6)
        if family == "saturating":
            gap = (untuned - floor) * d0**alpha
            out[code] = lambda d, f=floor, g=gap, d0=d0, a=alpha: f + g * (d + d0) ** (-a)
        elif family == "power":
            b = untuned - floor
            out[code] = lambda d, e=floor, b=b, a=alpha: e + b * (d + 1.0) ** (-a)
        elif family == "hill":
            out[code] = lambda d, f=floor, u=untuned, d0=d0, a=alpha: (
                f + (u - f) / (1.0 + (d / d0) ** (a + 0.3))
            )
        elif family == "logdecay":
            c = rng.uniform(0.05, 0.2)
            out[code] = lambda d, u=untuned, c=c, d0=d0: np.maximum(u - c * np.log1p(d / d0), 0.3)
        else:
            raise ValueError(family)
    return out


def sweep(curves: dict[str, Curve], rng: np.random.Generator, noise: float, seeds: int):
    d = np.repeat(np.asarray(SIZES, dtype=float), seeds)
    points = {}
    for code, curve in curves.items():
        y = curve(d) * np.exp(rng.normal(0.0, noise, d.size))
        seed_ids = np.tile(np.arange(seeds), len(SIZES))
        points[code] = Points(code, d, y, seed_ids, np.full(d.size, 1.35e8))
    return points


def method_fits(points: dict[str, Points], seed: int, draws: int) -> dict[str, dict]:
    """Each method's fits: `{method: {language: FitResult}}`."""
    opts = FitOptions(n_bootstrap=draws, seed=seed)
    kw = {"metric": "heldout_ce", "higher_is_better": False}
    auto = fit_all(points, FitRequest(law="auto", options=opts), **kw).fits
    out = {
        "auto, predictive": auto,
        "auto, parameter draws only": {k: replace(f, predictive=None) for k, f in auto.items()},
    }
    for law in ("loglinear", "power"):
        try:
            named = fit_all(points, FitRequest(law=law, options=opts), **kw).fits
        except FitError:  # too few sizes for this law (the demo's fit up to 32)
            continue
        out[law] = {k: replace(f, predictive=None) for k, f in named.items()}
    return out


def score(fit, d: float, truth: float) -> tuple[float, bool]:
    """Relative error of the point prediction, and whether the 90% band holds the truth."""
    if not fit.success:
        return float("nan"), False
    pred = float(fit(np.array([d]))[0])
    low, high = fit.interval(np.array([d]), 0.9)
    covered = bool(low[0] <= truth <= high[0]) if np.isfinite(low[0]) else False
    return abs(pred - truth) / truth, covered


def synthetic(cases: int, draws: int) -> dict[tuple[str, str, int], list[tuple[float, bool]]]:
    rows: dict[tuple[str, str, int], list[tuple[float, bool]]] = defaultdict(list)
    for family in ("saturating", "power", "hill", "logdecay"):
        for noise in (0.01, 0.03):
            for seeds in (1, 3):
                for case in range(cases):
                    rng = np.random.default_rng([case, seeds, int(noise * 100), len(family)])
                    curves = truth_curves(family, rng)
                    points = sweep(curves, rng, noise, seeds)
                    for method, fitted in method_fits(points, case, draws).items():
                        for code, fit in fitted.items():
                            for reach in REACHES:
                                d = float(max(SIZES) * reach)
                                truth = float(curves[code](np.array([d]))[0])
                                rows[(method, family, reach)].append(score(fit, d, truth))
    return rows


def demo_backtests(results: Path, draws: int) -> dict[tuple[str, int], list[tuple[float, bool]]]:
    """Fit the demo sweep's sizes up to 32 or 64, score the larger sizes' measured means."""
    rows: dict[tuple[str, int], list[tuple[float, bool]]] = defaultdict(list)
    rows_csv = select_metric(read_results(results), "heldout_ce")
    points = points_by_language(rows_csv, "sft")
    for top in (32.0, 64.0):
        train = {k: p.below(top * 1.0001) for k, p in points.items()}
        for method, fitted in method_fits(train, 0, draws).items():
            for code, fit in fitted.items():
                pts = points[code]
                for size in sorted(set(pts.d[pts.d > top])):
                    truth = float(pts.y[pts.d == size].mean())
                    rows[(method, round(size / top))].append(score(fit, size, truth))
    return rows


def table(rows: dict, key_names: tuple[str, ...]) -> str:
    head = " | ".join(key_names)
    lines = [f"| {head} | predictions | median error | 90% band coverage |"]
    lines.append("|" + "---|" * len(key_names) + "---:|---:|---:|")
    for key in sorted(
        rows, key=lambda k: tuple((0, x, "") if isinstance(x, int) else (1, 0, x) for x in k)
    ):
        vals = rows[key]
        errors = [e for e, _ in vals if np.isfinite(e)]
        cover = np.mean([c for _, c in vals])
        label = " | ".join(f"{k}x" if isinstance(k, int) else str(k) for k in key)
        lines.append(f"| {label} | {len(vals)} | {np.median(errors):.2%} | {cover:.0%} |")
    return "\n".join(lines)


def pooled(rows: dict) -> dict:
    out: dict = defaultdict(list)
    for (method, _family, reach), vals in rows.items():
        out[(method, reach)].extend(vals)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=4, help="cases per setting")
    parser.add_argument("--draws", type=int, default=200, help="bootstrap draws")
    parser.add_argument("--demo", type=Path, default=Path("runs/demo/results.csv"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    started = time.perf_counter()
    with threadpool_limits(1):
        rows = synthetic(args.cases, args.draws)
        demo = demo_backtests(args.demo, args.draws) if args.demo.is_file() else {}
    wall = time.perf_counter() - started
    print(
        f"REACH_POWER {REACH_POWER}; {args.cases} cases x 4 families x 2 noise levels x "
        f"1/3 seeds, 5 languages each, {args.draws} draws; {wall:.0f} s on "
        f"{platform.machine()}, load average {os.getloadavg()[0]:.2f}"
    )
    print("\nPooled over families, noise levels and seeds:\n")
    print(table(pooled(rows), ("method", "reach")))
    print("\nBy family:\n")
    print(table(rows, ("method", "family", "reach")))
    if demo:
        print("\nReal demo sweep, fitting up to 32 or 64 examples (reach = held size / top):\n")
        print(table(demo, ("method", "reach")))


if __name__ == "__main__":
    main()
