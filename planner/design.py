"""Adaptive sweep design: the next cells whose results are expected to improve the plan most.

Preposterior analysis over the predictive draws of the laws (`fits.Predictive`: law mixture,
parameter noise, reach error). Draw k of every language's curve is, in turn, taken as the
truth; the result a candidate cell (language, size, seed) would give under it is simulated
with the sweep's noise; the draws are reweighted by the likelihood of that result (importance
reweighting, leaving draw k itself out, so a draw never confirms itself); the budget is
re-planned on the reweighted draws (the expected planner: the mean objective over draws); and
the gain is the truth's objective at the new plan minus at today's plan. The expected gain of
a set of cells is that gain averaged over truths; cells are picked greedily, each for its gain
given the ones picked before it (a joint likelihood).

Contracts and caveats:
- gains are in the objective's utility units (nats of mean held-out loss for `heldout_ce`,
  higher is better), never negative by more than the Monte Carlo noise;
- plans are solved on a grid of `steps` equal budget steps (a Lagrangian relaxation, exact
  on each curve's concave hull, the steps it leaves spent greedily);
- the noise is multiplicative (log-normal) for a positive metric, additive otherwise;
- a candidate never repeats a (language, size, seed) the laws' points hold: a swept size is
  proposed with its next unused seed;
- the same inputs and `seed` give the same suggestions;
- with `run_overhead_examples`, cells are picked for their gain per training example (a run
  costs its size plus that overhead), so a small cell can win over a larger, slightly better
  one; without it, for their gain alone.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from muit_core import ConfigError

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from fits import LawsFile
    from planner.problem import Problem

DEFAULT_STEPS = 80  # budget steps of the design's plans: 1.25% of the budget each
DEFAULT_TRUTHS = 64  # draws taken in turn as the truth (Monte Carlo size of each gain)
NOISE_FLOOR = 0.003  # smallest relative noise assumed: 0.3%, below any sweep measured here


@dataclass(frozen=True, order=True)
class CandidateCell:
    """A sweep cell that could be run next: `n_examples` examples of `language`, `seed`."""

    language: str
    n_examples: int
    seed: int


@dataclass(frozen=True)
class Suggestion:
    """A suggested cell and what it is expected to add.

    Attributes:
        cell: the cell.
        expected_gain: expected improvement of the plan's true objective from running it,
            given the suggestions before it (utility units; nats for a loss).
        reach: its size over the language's largest swept size.
    """

    cell: CandidateCell
    expected_gain: float
    reach: float


@dataclass(frozen=True)
class Design:
    """The suggested next cells and the evidence behind them.

    Attributes:
        languages: language codes, in plan order.
        suggestions: the cells, best first.
        total_gain: expected gain of running all of them (utility units).
        perfect_gain: expected gain of knowing the truth (today's expected regret): the most
            any set of cells could gain.
        plan_examples: today's expected plan on the design's grid, per language.
        noise_sd: the noise assumed for a cell's result (relative, for a positive metric).
        n_candidates: cells weighed.
        n_truths: draws taken as the truth.
    """

    languages: tuple[str, ...]
    suggestions: tuple[Suggestion, ...]
    total_gain: float
    perfect_gain: float
    plan_examples: tuple[int, ...]
    noise_sd: float
    n_candidates: int
    n_truths: int


def swept_cells(laws: LawsFile, languages: Sequence[str]) -> dict[str, set[tuple[int, int]]]:
    """The (size, seed) pairs each language's fit holds (its diagnostics' points), plus the
    untuned base (0, 0), which every sweep runs."""
    out: dict[str, set[tuple[int, int]]] = {}
    for code in languages:
        points = laws.fits[code].diagnostics.get("points") or {}
        sizes, seeds = points.get("d", []), points.get("seed", [])
        pairs = {(round(d), int(s)) for d, s in zip(sizes, seeds, strict=False)}
        out[code] = pairs | {(0, 0)}
    return out


def estimate_noise(laws: LawsFile, languages: Sequence[str]) -> float:
    """The relative noise of one run's result: the spread of repeated seeds where the sweep has
    them, else the median of the fits' log residual RMS, inflated for the parameters fitted
    (`sqrt(n / (n - 3))`), at least `NOISE_FLOOR`."""
    replicate: list[float] = []
    residual: list[float] = []
    for code in languages:
        fit = laws.fits[code]
        points = fit.diagnostics.get("points") or {}
        by_size: dict[float, list[float]] = {}
        for d, y in zip(points.get("d", []), points.get("y", []), strict=False):
            if y is not None and y > 0:
                by_size.setdefault(float(d), []).append(math.log(y))
        replicate += [float(np.std(v, ddof=1)) for v in by_size.values() if len(v) > 1]
        rms = fit.diagnostics.get("residual_rms")
        if isinstance(rms, int | float) and math.isfinite(rms) and fit.n_points > 3:
            residual.append(float(rms) * math.sqrt(fit.n_points / (fit.n_points - 3)))
    found = replicate or residual
    return max(float(np.median(found)) if found else 0.01, NOISE_FLOOR)


def candidate_cells(
    laws: LawsFile,
    problem: Problem,
    plan_examples: Sequence[float],
    sizes: Sequence[int] | None = None,
) -> list[CandidateCell]:
    """Per language: its swept sizes, their geometric midpoints, and sizes doubling from twice
    its largest swept size up to where the plan puts it, each within its pool; or `sizes`
    when given. Each size comes with its smallest seed not yet run.

    Raises:
        ConfigError: a size in `sizes` is above a language's training pool.
    """
    languages = problem.languages
    pools = problem.constraints.n_available
    if sizes is not None:
        too_big = [(c, max(sizes), p) for c, p in zip(languages, pools, strict=True)]
        too_big = [t for t in too_big if t[1] > t[2]]
        if too_big:
            code, size, pool = too_big[0]
            raise ConfigError(
                f"Candidate size {size} in --sizes is above the {code} training pool ({pool} "
                f"pairs); give sizes up to {pool}, or plan without {code} (--languages)."
            )
    done = swept_cells(laws, languages)
    out = []
    for i, code in enumerate(languages):
        swept = sorted({d for d, _ in done[code] if d > 0})
        if sizes is not None:
            wanted = {int(s) for s in sizes if s > 0}
        else:
            wanted = set(swept)
            wanted |= {round(math.sqrt(a * b)) for a, b in itertools.pairwise(swept)}
            largest = swept[-1] if swept else 16
            target = min(max(float(plan_examples[i]), 2.0 * largest), pools[i])
            step = 2.0 * largest
            while step < target * 0.75:
                wanted.add(round(step))
                step *= 2.0
            wanted.add(round(target))
        for size in sorted(s for s in wanted if 0 < s <= pools[i]):
            seed = next(s for s in range(len(done[code]) + 1) if (size, s) not in done[code])
            out.append(CandidateCell(code, int(size), seed))
    return out


class _Preposterior:
    """The predictive draws on the design's budget grid, and plans on reweighted draws."""

    def __init__(self, problem: Problem, budget: float, steps: int) -> None:
        values, c = problem.values, problem.constraints
        lo, hi = c.lower, c.upper
        self.steps = steps
        self.step = (budget - float(lo.sum())) / steps
        self.lo = lo
        self.units = np.asarray(c.units_per_example, dtype=float)
        self.weights = np.asarray(c.weights, dtype=float) / float(np.sum(c.weights))
        self.capacity = np.floor((hi - lo) / self.step + 1e-9).astype(int)
        g = np.arange(steps + 1, dtype=float)
        amounts = np.minimum(lo[:, None] + self.step * g[None, :], hi[:, None])  # (L, G+1)
        self.utility = np.stack(
            [values.value_draws(amounts[:, k]) for k in range(steps + 1)], axis=1
        )  # (L, G+1, D)
        self.valid = g[None, 1:] <= self.capacity[:, None]  # (L, G): increment g -> g+1 exists

    def plan(self, w: NDArray[np.float64]) -> NDArray[np.intp]:
        """Grid plans (L, T) maximising the expected objective under draw weights `w` (T, D).

        Lagrangian relaxation, exact on each curve's concave hull: bisect the price `lam` of
        a budget step until each language's best point of `E_i(g) - lam * g` spends at most
        the budget, then spend the steps left on the best next steps, one at a time.
        """
        expected = np.einsum("igd,td->igt", self.utility, w) * self.weights[:, None, None]
        _, n_g, n_t = expected.shape
        g = np.arange(n_g, dtype=float)[None, :, None]
        allowed = g <= self.capacity[:, None, None]
        gains = np.diff(expected, axis=1)
        low = np.full(n_t, float(np.min(gains)) - 1.0)
        high = np.full(n_t, float(np.max(gains)) + 1.0)

        def best(lam: NDArray[np.float64]) -> NDArray[np.intp]:
            score = np.where(allowed, expected - lam[None, None, :] * g, -np.inf)
            return np.asarray(np.argmax(score, axis=1), dtype=np.intp)  # (L, T)

        for _ in range(40):
            mid = 0.5 * (low + high)
            over = best(mid).sum(axis=0) > self.steps
            low, high = np.where(over, mid, low), np.where(over, high, mid)
        plan = best(high)
        columns = np.arange(n_t)
        for _ in range(self.steps):
            short = plan.sum(axis=0) < self.steps
            if not short.any():
                break
            nxt = np.minimum(plan + 1, n_g - 1)
            step_gain = (
                np.take_along_axis(expected, nxt[:, None, :], axis=1)[:, 0, :]
                - np.take_along_axis(expected, plan[:, None, :], axis=1)[:, 0, :]
            )
            step_gain = np.where(plan < self.capacity[:, None], step_gain, -np.inf)
            pick = np.argmax(step_gain, axis=0)
            plan[pick[short], columns[short]] += 1
        return plan

    def objective(self, plans: NDArray[np.intp], truths: NDArray[np.intp]) -> NDArray[np.float64]:
        """The true objective of plan t (column of `plans`) under draw `truths[t]`."""
        rows = np.arange(plans.shape[0])[:, None]
        picked = self.utility[rows, plans, truths[None, :]]  # (L, T)
        return np.asarray((self.weights[:, None] * picked).sum(axis=0), dtype=np.float64)

    def examples(self, plan: NDArray[np.intp]) -> tuple[int, ...]:
        """Whole examples per language of a grid plan (L,)."""
        amounts = self.lo + self.step * plan
        return tuple(round(float(a)) for a in amounts / self.units)


def suggest_cells(
    laws: LawsFile,
    problem: Problem,
    budget: float,
    n_cells: int,
    *,
    sizes: Sequence[int] | None = None,
    noise_sd: float | None = None,
    n_truths: int = DEFAULT_TRUTHS,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    run_overhead_examples: float | None = None,
) -> Design:
    """The `n_cells` cells expected to improve the plan of `budget` most (see the module).

    Args:
        laws: the laws file (its fits' points say which cells were run).
        problem: `planner.build_problem` of those laws; its values must carry draws.
        budget: the plan's budget, in the problem's unit (within floors and caps).
        n_cells: how many cells to suggest (1 or more).
        sizes: candidate sizes for every language instead of the generated ones.
        noise_sd: a run's relative noise; None estimates it (`estimate_noise`).
        n_truths: draws taken in turn as the truth.
        steps: budget steps of the design's plans.
        seed: seeds the choice of truths and the simulated noise.
        run_overhead_examples: None picks each cell for its expected gain; a number (0 or
            more) picks it for its expected gain per example of cost, a run costing its size
            plus this many examples (its fixed cost: loading, evaluation).

    Raises:
        ConfigError: no draws, `n_cells` below 1, a negative overhead, or a candidate size
            above a pool.
        AllocationError: the budget lies outside the floors and caps.
    """
    if n_cells < 1:
        raise ConfigError(f"--cells must be 1 or more, such as 5; got {n_cells}.")
    if run_overhead_examples is not None and not run_overhead_examples >= 0:
        raise ConfigError(
            f"--run-overhead must be 0 or more examples, such as 40; got {run_overhead_examples}."
        )
    values = problem.values
    if values.n_draws < 2:
        raise ConfigError(
            "The laws file has no bootstrap draws, so no cell's value can be weighed; refit "
            "with plan-fit --bootstrap 200 and suggest again."
        )
    problem.constraints.check_budget(budget)
    noise = estimate_noise(laws, problem.languages) if noise_sd is None else float(noise_sd)
    grid = _Preposterior(problem, budget, steps)
    n_draws = values.n_draws
    rng = np.random.default_rng(seed)
    truths = np.sort(rng.choice(n_draws, size=min(n_truths, n_draws), replace=False))
    now = grid.plan(np.full((1, n_draws), 1.0 / n_draws))  # (L, 1)
    base = grid.objective(np.repeat(now, truths.size, axis=1), truths)
    oracle = grid.plan(np.eye(n_draws)[truths])
    perfect = float(np.mean(grid.objective(oracle, truths) - base))
    plan_examples = grid.examples(now[:, 0])
    candidates = candidate_cells(laws, problem, plan_examples, sizes)
    signals = _signals(problem, candidates)
    positive = bool(np.all(signals > 0))
    observed = np.log(signals) if positive else signals
    scale = noise if positive else noise * float(np.mean(np.abs(signals)))
    eps = rng.standard_normal((len(candidates), truths.size))

    def gain_of(chosen: Sequence[int]) -> float:
        loglik = np.zeros((truths.size, n_draws))
        for c in chosen:
            y = observed[c, truths] + scale * eps[c]
            loglik -= 0.5 * ((y[:, None] - observed[c][None, :]) / scale) ** 2
        loglik[np.arange(truths.size), truths] = -np.inf  # a draw never confirms itself
        w = np.exp(loglik - loglik.max(axis=1, keepdims=True))
        w /= w.sum(axis=1, keepdims=True)
        return float(np.mean(grid.objective(grid.plan(w), truths) - base))

    overhead = run_overhead_examples
    chosen: list[int] = []
    suggestions: list[Suggestion] = []
    total = 0.0
    for _ in range(min(n_cells, len(candidates))):
        gains = {c: gain_of([*chosen, c]) for c in range(len(candidates)) if c not in chosen}
        best = max(gains, key=lambda c: (_merit(gains[c] - total, candidates[c], overhead), -c))
        chosen.append(best)
        cell = candidates[best]
        largest = max((d for d, _ in swept_cells(laws, [cell.language])[cell.language]), default=0)
        reach = cell.n_examples / largest if largest > 0 else math.inf
        suggestions.append(Suggestion(cell, gains[best] - total, reach))
        total = gains[best]
    return Design(
        problem.languages,
        tuple(suggestions),
        total,
        perfect,
        plan_examples,
        noise,
        len(candidates),
        int(truths.size),
    )


def _merit(gain: float, cell: CandidateCell, overhead_examples: float | None) -> float:
    """What the greedy choice maximises: the cell's added gain, or that gain per example of
    cost (its size plus `overhead_examples`; at least one example) when an overhead is set."""
    if overhead_examples is None:
        return gain
    return gain / max(cell.n_examples + overhead_examples, 1.0)


def _signals(problem: Problem, candidates: Sequence[CandidateCell]) -> NDArray[np.float64]:
    """The metric each candidate would measure under each draw, shape (cells, draws)."""
    values, c = problem.values, problem.constraints
    index = {code: i for i, code in enumerate(problem.languages)}
    units = np.asarray(c.units_per_example, dtype=float)
    rows = []
    for cell in candidates:
        i = index[cell.language]
        amounts = np.zeros(len(index))
        amounts[i] = cell.n_examples * units[i]
        rows.append(values.metric_draws(amounts)[i])
    return np.asarray(rows, dtype=np.float64)


def cells_toml(design: Design, command: str, metric: str) -> str:
    """The suggestions as a spec fragment of `[[grid.cells]]` tables (`plan-sweep launch
    SPEC --cells FILE` enqueues them)."""
    lines = [
        f"# Suggested by: {command}",
        "# Enqueue with: plan-sweep launch SPEC --cells THIS_FILE",
        f"# Expected gain of all {len(design.suggestions)} cells: {design.total_gain:.3g} "
        f"({metric}, objective units); of knowing the truth: {design.perfect_gain:.3g}.",
    ]
    for s in design.suggestions:
        lines += [
            "",
            "[[grid.cells]]",
            f"language = {_toml_string(s.cell.language)}",
            f"size = {s.cell.n_examples}",
            f"seed = {s.cell.seed}",
            f"# expected gain {s.expected_gain:.3g}, reach {s.reach:.3g}x",
        ]
    return "\n".join(lines) + "\n"


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def design_dict(design: Design) -> dict[str, object]:
    """JSON-safe form of a design (what `plan-suggest` writes to `suggestions.json`)."""

    def num(x: float) -> float | None:
        return None if not math.isfinite(x) else round(float(x), 8)

    return {
        "languages": list(design.languages),
        "suggestions": [
            {
                "language": s.cell.language,
                "size": s.cell.n_examples,
                "seed": s.cell.seed,
                "expected_gain": num(s.expected_gain),
                "reach": num(s.reach),
            }
            for s in design.suggestions
        ],
        "total_gain": num(design.total_gain),
        "perfect_information_gain": num(design.perfect_gain),
        "design_plan_examples": dict(zip(design.languages, design.plan_examples, strict=True)),
        "noise_sd": num(design.noise_sd),
        "n_candidates": design.n_candidates,
        "n_truths": design.n_truths,
    }


def format_design(design: Design, metric: str) -> str:
    """A table of the suggestions (language, size, seed, reach, expected gain)."""
    lines = [f"{'language':<10} {'size':>8} {'seed':>5} {'reach':>8} {'expected gain':>14}"]
    for s in design.suggestions:
        lines.append(
            f"{s.cell.language:<10} {s.cell.n_examples:>8} {s.cell.seed:>5} "
            f"{s.reach:>7.3g}x {s.expected_gain:>14.3g}"
        )
    lines.append(
        f"all {len(design.suggestions)} cells: expected gain {design.total_gain:.3g} "
        f"({metric}, objective units) of at most {design.perfect_gain:.3g} (knowing the truth); "
        f"{design.n_candidates} candidates, {design.n_truths} truths, noise "
        f"{design.noise_sd:.2%}"
    )
    return "\n".join(lines)


def uncertainty_at(problem: Problem, examples: Mapping[str, float]) -> dict[str, float]:
    """Each language's relative spread (sd / mean over the draws) of the metric at `examples`."""
    units = np.asarray(problem.constraints.units_per_example, dtype=float)
    amounts = np.array([examples[c] for c in problem.languages], dtype=float) * units
    draws = problem.values.metric_draws(amounts)
    spread = draws.std(axis=1) / np.abs(draws.mean(axis=1))
    return dict(zip(problem.languages, (float(s) for s in spread), strict=True))
