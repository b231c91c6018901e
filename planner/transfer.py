"""Transfer-aware allocation: maximise the weighted mean utility when languages help each other.

With the transfer law of `fits.transfer`, language l's metric is its own law at the effective
data D_l = E_l + sum_{k != l} T_lk E_k, where E_k is language k's effective examples
(`planner.values.effective_data`: repeated epochs of its own pool count less; other
languages' examples are fresh data for l, so transfer is never discounted as a repeat). The
objective sum_l w_l u_l(D_l(x)) is no longer separable, so water-filling does not apply; with
T >= 0 and concave, increasing u_l it is still concave (a concave function of a linear map),
so a local solver's KKT point is the global optimum. `TransferAllocator` solves it with
scipy's SLSQP from the independent water-filling plan and reports a certificate: the KKT gap.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import minimize

from muit_core import ConfigError, DataError, format_count
from planner.allocation import (
    Allocation,
    BaseAllocator,
    Constraints,
    make_allocation,
    split_capped,
)
from planner.optimiser import Objective, PlannerAllocator
from planner.values import FloatArray, LawValue, ValueModel, effective_data, effective_data_slope

if TYPE_CHECKING:
    from fits.transfer import TransferLaw
    from planner.report import PlanReport

KKT_TOLERANCE = 1e-4  # relative gap above which the plan is logged as not certified
_BOUND_SLACK = 1e-9  # share of the budget within which an amount counts as at its bound


@dataclass(frozen=True, eq=False)
class TransferValue:
    """Utilities that are not separable: each language's utility at its effective data.

    Attributes:
        base: the utility of effective examples per language (for a `LawValue`, a copy with
            no pool cap and one budget unit per example: the cap is applied here, per own
            language, by `effective_data`).
        matrix: T, receiver x donor: effective examples of language l per example of language
            k (>= 0, zero diagonal).
        pools: unique pairs per language (inf: no repeat discount).
        units: budget units per example per language.
        factors: per language, the factor its metric is multiplied by in a mixture (the
            level factor exp(c_l) of a level form; ones otherwise).
    """

    base: ValueModel
    matrix: FloatArray
    pools: FloatArray
    units: FloatArray
    factors: FloatArray

    @property
    def languages(self) -> tuple[str, ...]:
        """Language codes, in the order of every vector."""
        return self.base.languages

    def _own(self, amounts: FloatArray) -> tuple[FloatArray, FloatArray]:
        examples = np.asarray(amounts, dtype=float) / self.units
        return (
            effective_data(examples, self.pools),
            effective_data_slope(examples, self.pools) / self.units,
        )

    def effective(self, amounts: FloatArray) -> FloatArray:
        """D_l for every language at `amounts` (budget units), in effective examples."""
        own, _ = self._own(amounts)
        return np.asarray(own + self.matrix @ own, dtype=float)

    def value(self, amounts: FloatArray) -> FloatArray:
        """Each language's utility at its effective data."""
        return np.asarray(self.factors * self.base.value(self.effective(amounts)), dtype=float)

    def objective(self, amounts: FloatArray, weights: FloatArray) -> float:
        """The weighted mean utility sum_l w_l u_l(D_l) / sum_l w_l."""
        w = np.asarray(weights, dtype=float)
        return float(w @ self.value(amounts) / w.sum())

    def gradient(self, amounts: FloatArray, weights: FloatArray) -> FloatArray:
        """d objective / d amount_j for every language j (budget units)."""
        w = np.asarray(weights, dtype=float)
        own, slope = self._own(amounts)
        marginal = np.asarray(self.base.marginal(own + self.matrix @ own), dtype=float)
        m = w * self.factors * marginal / w.sum()
        return np.asarray((m + self.matrix.T @ m) * slope, dtype=float)


def check_coefficients(transfer: float | FloatArray) -> None:
    """Refuse a transfer coefficient (a shared tau or any entry of T) that is negative or not
    finite.

    Raises:
        ConfigError: one is.
    """
    t = np.asarray(transfer, dtype=float)
    if not (np.isfinite(t).all() and (t >= 0).all()):
        raise ConfigError(f"The transfer coefficients must be 0 or more; got {t.tolist()!r}.")


def as_matrix(transfer: float | FloatArray, n: int) -> FloatArray:
    """T from a shared coefficient (tau off the diagonal) or a receiver x donor matrix.

    Raises:
        ConfigError: a coefficient is negative or not finite, or the matrix is not n x n.
    """
    check_coefficients(transfer)
    t = np.asarray(transfer, dtype=float)
    if t.ndim == 0:
        t = float(t) * (np.ones((n, n)) - np.eye(n))
    if t.shape != (n, n):
        raise ConfigError(
            f"The transfer coefficients must be one per pair of the {n} languages; got a "
            f"{'x'.join(map(str, t.shape))} array."
        )
    return np.asarray(t * (1.0 - np.eye(n)), dtype=float)


def transfer_value(
    values: ValueModel, transfer: float | FloatArray, factors: FloatArray | None = None
) -> TransferValue:
    """The transfer-aware utilities of `values` under `transfer` (a shared tau or T), each
    language's metric times `factors` (default ones: no level factor).

    A `LawValue` is read through its curves (its pools and units of budget per example); any
    other `ValueModel` is taken as the utility of effective data in budget units, with no pool.

    Raises:
        ConfigError: a coefficient is negative or not finite (`as_matrix`).
    """
    n = len(values.languages)
    matrix = as_matrix(transfer, n)
    scale = np.ones(n) if factors is None else np.asarray(factors, dtype=float)
    if scale.shape != (n,) or not (np.isfinite(scale).all() and (scale > 0).all()):
        raise ConfigError(f"The level factors must be {n} positive numbers; got {scale.tolist()}.")
    if isinstance(values, LawValue):
        curves = values.curves
        base = LawValue(
            [dataclasses.replace(c, n_available=math.inf, units_per_example=1.0) for c in curves],
            values.aggregate,
            values.quantile,
        )
        pools = np.array([c.n_available for c in curves], dtype=float)
        units = np.array([c.units_per_example for c in curves], dtype=float)
        return TransferValue(base, matrix, pools, units, scale)
    return TransferValue(values, matrix, np.full(n, math.inf), np.ones(n), scale)


@dataclass(frozen=True)
class Certificate:
    """How close a transfer-aware plan is to optimal (the KKT conditions of a concave problem).

    Attributes:
        kkt_gap: the largest deviation of a language's gradient from the common multiplier
            (interior languages: |g - lambda|; at a floor: g above lambda; at a cap: g below
            it), relative to |lambda|. 0 at the exact optimum.
        multiplier: lambda, the marginal objective of one more budget unit.
        free: the languages strictly between their floor and cap.
        objective: the weighted mean utility at the plan.
    """

    kkt_gap: float
    multiplier: float
    free: tuple[str, ...]
    objective: float

    @property
    def certified(self) -> bool:
        """Whether the gap is within `KKT_TOLERANCE`."""
        return self.kkt_gap <= KKT_TOLERANCE


def certificate(
    model: TransferValue, x: FloatArray, weights: FloatArray, constraints: Constraints
) -> Certificate:
    """The KKT certificate of amounts `x` (see `Certificate`)."""
    g = model.gradient(x, weights)
    lo, hi = constraints.lower, constraints.upper
    slack = _BOUND_SLACK * max(float(x.sum()), 1.0)
    at_lo, at_hi = x <= lo + slack, x >= hi - slack
    free = ~at_lo & ~at_hi
    if free.any():
        lam = float(np.median(g[free]))
    else:
        top = float(g[at_lo].max()) if at_lo.any() else -math.inf
        bottom = float(g[at_hi].min()) if at_hi.any() else math.inf
        lam = 0.5 * (top + bottom) if math.isfinite(top + bottom) else min(top, bottom)
    violation = np.where(
        free, np.abs(g - lam), np.where(at_lo, np.maximum(g - lam, 0), np.maximum(lam - g, 0))
    )
    fixed = at_lo & at_hi  # floor == cap: nothing to decide
    gap = float(np.max(np.where(fixed, 0.0, violation), initial=0.0))
    scale = max(abs(lam), float(np.abs(g).max(initial=0.0)) * 1e-12, 1e-300)
    return Certificate(
        kkt_gap=gap / scale,
        multiplier=lam,
        free=tuple(c for c, f in zip(constraints.languages, free, strict=True) if f),
        objective=model.objective(x, weights),
    )


def _repair(x: FloatArray, budget: float, lo: FloatArray, hi: FloatArray) -> FloatArray:
    """`x` clipped into bounds with its sum moved back to `budget` (spread over the room)."""
    x = np.clip(x, lo, hi)
    for _ in range(len(x) + 1):
        short = budget - float(x.sum())
        if abs(short) <= 1e-12 * max(budget, 1.0):
            break
        room = (hi - x) if short > 0 else (x - lo)
        if room.sum() <= 0:
            break
        x = np.clip(x + short * room / room.sum(), lo, hi)
    return x


class TransferAllocator(BaseAllocator):
    """Maximise the weighted mean utility under the transfer law, within floors and caps.

    Meets `BaseAllocator`'s contract (non-negative, sums to the budget, within floors and
    caps, deterministic: SLSQP from a fixed start). The weighted mean objective only.

    Args:
        transfer: a shared coefficient tau, or T (receiver x donor, the planned languages in
            order: `fits.TransferLaw.matrix_for`), 0 or more; 0 is the independent planner's
            problem.
        factors: per language, the level factor of a level form (default ones).
        label: how the method line names the law (default: the coefficients).
        start: where SLSQP starts: "planner" (the independent water-filling plan) or
            "uniform" (a capped even split; tests use it to check the solver alone).
    """

    name = "transfer"

    def __init__(
        self,
        transfer: float | FloatArray,
        start: str = "planner",
        label: str = "",
        factors: FloatArray | None = None,
    ) -> None:
        if start not in ("planner", "uniform"):
            raise ConfigError(f"Unknown start {start!r}; choose planner or uniform.")
        check_coefficients(transfer)
        t = np.asarray(transfer, dtype=float)
        self.transfer = t
        self.factors = factors
        self.start = start
        self.label = label or (
            f"tau={float(t):.3g}" if t.ndim == 0 else f"T in [{t.min():.3g}, {t.max():.3g}]"
        )

    def solve(
        self, values: ValueModel, budget: float, constraints: Constraints
    ) -> tuple[Allocation, Certificate]:
        """The allocation with its certificate.

        Raises:
            AllocationError: the budget cannot be split (`Constraints.check_budget`).
        """
        constraints.check_budget(budget)
        lo, hi = constraints.lower, constraints.upper
        weights = np.asarray(constraints.weights, dtype=float)
        model = transfer_value(values, self.transfer, self.factors)
        if self.start == "planner":
            x0 = np.asarray(
                PlannerAllocator(Objective.MEAN).allocate(values, budget, constraints).amounts
            )
        else:
            x0 = split_capped(np.ones(len(lo)), budget, lo, hi)
        x0 = _repair(x0, budget, lo, hi)
        f0 = model.objective(x0, weights)
        scale = 1.0 / max(float(np.abs(model.gradient(x0, weights)).max()) * budget, 1e-300)

        def loss(z: FloatArray) -> float:
            return -(model.objective(z * budget, weights) - f0) * scale

        def jac(z: FloatArray) -> FloatArray:
            return np.asarray(-model.gradient(z * budget, weights) * budget * scale)

        found = minimize(
            loss,
            x0 / budget,
            jac=jac,
            method="SLSQP",
            bounds=list(zip(lo / budget, hi / budget, strict=True)),
            constraints=[
                {"type": "eq", "fun": lambda z: z.sum() - 1.0, "jac": lambda z: np.ones_like(z)}
            ],
            options={"ftol": 1e-15, "maxiter": 1000},
        )
        x = _repair(np.asarray(found.x, dtype=float) * budget, budget, lo, hi)
        if model.objective(x, weights) < f0:  # never worse than where it started
            x = x0
        cert = certificate(model, x, weights, constraints)
        method = f"SLSQP, transfer {self.label}, KKT gap {cert.kkt_gap:.1e}"
        return make_allocation(self.name, method, x, budget, constraints), cert

    def allocate(self, values: ValueModel, budget: float, constraints: Constraints) -> Allocation:
        """See `BaseAllocator.allocate`."""
        return self.solve(values, budget, constraints)[0]


def check_transfer_fits(law: TransferLaw, languages: Sequence[str], metric: str) -> None:
    """Refuse a transfer law fitted on another metric or without a planned language.

    Raises:
        DataError: the metric differs, or a planned language was not in its mixture runs.
    """
    if law.metric != metric:
        raise DataError(
            f"The laws file's transfer law was fitted on {law.metric!r} but the laws file plans "
            f"{metric!r}; fit it again with plan-fit transfer on this laws file."
        )
    absent = [code for code in languages if code not in law.languages]
    if absent:
        raise DataError(
            f"The transfer law's mixture runs did not train {', '.join(absent)}; plan only "
            f"{', '.join(law.languages)} with --languages, fit it on runs that train them, or "
            "plan without it (--transfer off)."
        )


def transfer_table(report: PlanReport, law: TransferLaw) -> str:
    """Every allocation of `report` scored under the transfer law beside the independent laws:
    per language examples, then each allocator's predicted objective both ways."""
    problem = report.problem
    c = problem.constraints
    weights = np.asarray(c.weights, dtype=float)
    model = transfer_value(
        problem.values, law.matrix_for(problem.languages), law.factors_for(problem.languages)
    )
    evaluations = [report.planner, *report.baselines]
    names = [ev.allocation.allocator for ev in evaluations]
    errors = ", ".join(f"{m} {v:.4f}" for m, v in law.lomo_mae.items())
    lines = [
        f"Transfer law {law.summary()} ({law.n_runs} mixture runs; leave-one-mixture-out "
        f"MAE {errors}; "
        + ("selected" if law.selected else "NOT selected: it does not predict better")
        + ").",
        "Examples per language: " + ", ".join(names),
    ]
    for i, code in enumerate(problem.languages):
        lines.append(
            f"  {code:<8}" + "".join(f"{ev.allocation.examples[i]:>12,}" for ev in evaluations)
        )
    lines.append(f"Predicted weighted mean {problem.metric} (independent laws -> with transfer):")
    for name, ev in zip(names, evaluations, strict=True):
        x = np.asarray(ev.allocation.amounts, dtype=float)
        independent = problem.sign * float(weights @ problem.values.value(x) / weights.sum())
        transfer = problem.sign * model.objective(x, weights)
        lines.append(f"  {name:<20}{independent:>8.4f} -> {transfer:.4f}")
    lines.append(f"Budget {format_count(report.budget)} {c.unit}.")
    return "\n".join(lines)
