"""Known true curves for the decision benchmarks (`bench_decision.py`, `bench_design.py`).

Every truth is a held-out cross-entropy curve `L(d)` per language (nats, lower is better,
`d` in training examples), for five languages with the demo's real training pools. Families:

- `saturating`: `L(d) = floor + gap * (d + d0)**(-alpha)`, random parameters in the range the
  demo sweep measured (untuned 2.2-4.0 nats);
- `sigmoid`: `L(d) = floor + (untuned - floor) / (1 + (d / d50)**alpha)`, random parameters:
  a curve that bends late, beyond the swept sizes, and is not convex in `d`;
- `demo`: the laws the real demo sweep fitted (`runs/demo/fits/laws.json`): case 0 their point
  parameters, case k > 0 one bootstrap draw per language (a truth the demo's data cannot rule
  out), each linear below 16 examples from the measured untuned loss to the law at 16.

`global_oracle` is the best allocation under the true curves found without assuming they are
convex (dynamic programming on a fine grid, then integer exchange moves).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fits import LAWS, read_laws

POOLS = {"el": 16_563, "hi": 2_304, "tr": 10_790, "vi": 7_605, "zh-CN": 11_740}
SIZES = (0, 16, 32, 64, 128)  # the demo sweep's sizes
REACHES = (2, 10, 40)  # uniform's amount per language / the largest swept size
DEMO_LAWS = Path("runs/demo/fits/laws.json")
DEMO_LINEAR_BELOW = 16.0  # examples: below this the demo truths are linear from the untuned loss

Curve = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Truth:
    """One language's true curve: `L(d) = floor + gap * (d + d0)**(-alpha)`."""

    floor: float
    gap: float
    d0: float
    alpha: float

    def loss(self, d: np.ndarray) -> np.ndarray:
        """True held-out loss (nats) at `d` examples."""
        return self.floor + self.gap * np.power(np.asarray(d, dtype=float) + self.d0, -self.alpha)

    def __call__(self, d: np.ndarray) -> np.ndarray:
        return self.loss(d)


@dataclass(frozen=True)
class SigmoidTruth:
    """`L(d) = floor + (untuned - floor) / (1 + (d / d50)**alpha)`."""

    floor: float
    untuned: float
    d50: float
    alpha: float

    def __call__(self, d: np.ndarray) -> np.ndarray:
        ratio = np.asarray(d, dtype=float) / self.d50
        return self.floor + (self.untuned - self.floor) / (1.0 + np.power(ratio, self.alpha))


@dataclass(frozen=True)
class DemoTruth:
    """A fitted demo law with fixed parameters, linear below `DEMO_LINEAR_BELOW` examples from
    the measured untuned loss `y0`."""

    law: str
    params: tuple[tuple[str, float], ...]
    y0: float

    def law_loss(self, d: np.ndarray) -> np.ndarray:
        """The law itself at `d` examples."""
        return np.asarray(LAWS[self.law](np.asarray(d, dtype=float), **dict(self.params)))

    def __call__(self, d: np.ndarray) -> np.ndarray:
        d = np.asarray(d, dtype=float)
        at = float(self.law_loss(np.array([DEMO_LINEAR_BELOW]))[0])
        law = self.law_loss(np.maximum(d, DEMO_LINEAR_BELOW))
        return np.where(
            d < DEMO_LINEAR_BELOW, self.y0 + (at - self.y0) * d / DEMO_LINEAR_BELOW, law
        )


def draw_truths(rng: np.random.Generator) -> dict[str, Truth]:
    """Random saturating curves in the range the demo sweep measured (2.2-4.0 nats untuned)."""
    out = {}
    for code in POOLS:
        floor, untuned = rng.uniform(0.6, 1.8), rng.uniform(2.2, 4.0)
        d0, alpha = rng.uniform(10.0, 200.0), rng.uniform(0.1, 0.6)
        out[code] = Truth(floor, (untuned - floor) * d0**alpha, d0, alpha)
    return out


def saturating(rng: np.random.Generator, case: int) -> dict[str, Curve]:
    """`draw_truths` as a family (the case number is not used: `rng` carries it)."""
    return dict(draw_truths(rng))


def sigmoid(rng: np.random.Generator, case: int) -> dict[str, Curve]:
    """Random sigmoid curves with their midpoint `d50` log-uniform in 50-3000 examples."""
    out: dict[str, Curve] = {}
    for code in POOLS:
        floor, untuned = rng.uniform(0.6, 1.8), rng.uniform(2.2, 4.0)
        d50, alpha = np.exp(rng.uniform(np.log(50.0), np.log(3000.0))), rng.uniform(0.3, 1.0)
        out[code] = SigmoidTruth(floor, untuned, float(d50), alpha)
    return out


def demo(rng: np.random.Generator, case: int) -> dict[str, Curve]:
    """The demo sweep's laws: point parameters for case 0, else a random bootstrap draw per
    language (`rng`); the untuned loss is the measured one (the fit's zero point, else the
    mean of `results.csv`'s untuned runs)."""
    laws = read_laws(DEMO_LAWS)
    results = pd.read_csv(DEMO_LAWS.parent.parent / "results.csv")
    zero = results[(results["metric"] == "heldout_ce") & (results["n_examples"] == 0)]
    untuned = zero.groupby("language")["value"].mean().to_dict()
    out: dict[str, Curve] = {}
    for code in POOLS:
        fit = laws.fits[code]
        points = fit.diagnostics["points"]
        at_zero = [y for d, y in zip(points["d"], points["y"], strict=True) if d == 0]
        y0 = float(np.mean(at_zero)) if at_zero else float(untuned[code])
        params = dict(fit.params)
        if case > 0 and fit.n_draws:
            k = int(rng.integers(fit.n_draws))
            params = {name: float(values[k]) for name, values in fit.draws.items()}
        params.update(fit.fixed)
        out[code] = DemoTruth(fit.law, tuple(sorted(params.items())), y0)
    return out


FAMILIES: dict[str, Callable[[np.random.Generator, int], dict[str, Curve]]] = {
    "saturating": saturating,
    "sigmoid": sigmoid,
    "demo": demo,
}


def true_objective(truths: dict[str, Truth] | dict[str, Curve], examples: Sequence[int]) -> float:
    """Mean true loss over the languages (nats) at whole-example amounts (lower is better)."""
    losses = [t(np.array([x]))[0] for t, x in zip(truths.values(), examples, strict=True)]
    return float(np.mean(losses))


def global_oracle(
    curves: Sequence[Curve],
    lower: Sequence[int],
    upper: Sequence[int],
    budget_examples: int,
    grid_steps: int = 1600,
) -> tuple[int, ...]:
    """Whole examples per language minimising the mean true loss, summing to
    `budget_examples`, within `lower` and `upper`, for any (non-convex) decreasing curves.

    Dynamic programming over `grid_steps` equal budget steps (exact on that grid), then the
    leftover examples spent one by one where they help most, then integer exchange moves
    (`delta` examples from one language to another, `delta` halving from a grid step to 1)
    while any improves the objective.
    """
    n = len(curves)
    lo, hi = np.asarray(lower, dtype=int), np.asarray(upper, dtype=int)
    free = budget_examples - int(lo.sum())
    step = max(1, -(-free // grid_steps))  # ceil: at most `grid_steps` steps
    n_steps = free // step
    g = np.arange(n_steps + 1)
    cost = np.full((n, n_steps + 1), np.inf)  # loss of language i at lo_i + g * step
    for i, curve in enumerate(curves):
        ok = lo[i] + g * step <= hi[i]
        cost[i, ok] = curve(np.asarray(lo[i] + g[ok] * step, dtype=float))
    best = cost[0].copy()
    choice = np.zeros((n, n_steps + 1), dtype=int)
    choice[0] = g
    for i in range(1, n):
        spent = g[:, None] - g[None, :]  # total t (rows) minus language i's share (columns)
        table = np.where(spent >= 0, best[np.clip(spent, 0, None)] + cost[i][None, :], np.inf)
        choice[i] = np.argmin(table, axis=1)
        best = table[g, choice[i]]
    if not np.isfinite(best[n_steps]):
        raise ValueError("The caps cannot absorb the budget.")
    shares, t = np.zeros(n, dtype=int), n_steps
    for i in range(n - 1, -1, -1):
        shares[i] = choice[i, t] if i > 0 else t
        t -= shares[i]
    x = lo + shares * step

    def loss(i: int, amount: int) -> float:
        return float(curves[i](np.array([float(amount)]))[0])

    for _ in range(budget_examples - int(x.sum())):
        gains = [loss(i, x[i]) - loss(i, x[i] + 1) if x[i] < hi[i] else -np.inf for i in range(n)]
        x[int(np.argmax(gains))] += 1
    delta = step
    while delta >= 1:
        improved = True
        while improved:
            improved = False
            for i in range(n):
                for j in range(n):
                    if i == j or x[i] + delta > hi[i] or x[j] - delta < lo[j]:
                        continue
                    before = loss(i, x[i]) + loss(j, x[j])
                    if loss(i, x[i] + delta) + loss(j, x[j] - delta) < before - 1e-15:
                        x[i] += delta
                        x[j] -= delta
                        improved = True
        delta //= 2
    return tuple(int(v) for v in x)
