"""Per-language value curves: the predicted utility of giving a language an amount of budget.

The allocators never see a `FitResult`; they see a `ValueModel`, which maps a vector of
amounts (one per language, in the budget's unit) to a vector of utilities and of marginal
utilities. Utility is the predicted metric when higher is better and its negation otherwise,
so every allocator maximises.

Two implementations:

- `CallableValue` wraps one plain callable per language (tests, small problems);
- `LawValue` evaluates scaling laws `law(d, **params)` for many languages at once, with
  repeated epochs valued by the data-constrained effective-data formula and with bootstrap
  draws for intervals and robust objectives.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

# Muennighoff et al. 2023, "Scaling Data-Constrained Language Models" (NeurIPS), eq. 5 and
# table 2: the fitted decay constant for repeated data, R*_D = 15.39 repetitions.
R_STAR = 15.4
# Laws are evaluated at no fewer than this many (effective) examples; below it a curve is
# continued linearly with the slope it has there, so zero data gives a finite, concave value
# instead of the -inf a power or log law gives at d = 0.
MIN_LAW_EXAMPLES = 1.0
# Relative step of the central differences in log d (truncation error ~ step**2 / 6).
_LOG_STEP = 1e-4


def effective_data(n_examples: FloatArray, n_unique: FloatArray) -> FloatArray:
    """Effective number of examples when `n_examples` are drawn from `n_unique` unique ones.

    D' = U + U * R* * (1 - exp(-R / R*)), with U unique examples and R = n_examples / U - 1
    repetitions beyond the first epoch (Muennighoff et al. 2023); D' = n_examples up to one
    epoch. Concave and increasing, with slope 1 at one epoch and exp(-R / R*) beyond.

    Args:
        n_examples: examples trained on (any shape).
        n_unique: unique examples available (broadcast against `n_examples`); inf for no cap.

    Returns:
        The effective data, in examples.
    """
    d = np.asarray(n_examples, dtype=float)
    u = np.asarray(n_unique, dtype=float)
    if not np.any(d > u):  # within one epoch everywhere: the common, fast case
        return d
    safe_u = np.where(np.isfinite(u) & (u > 0), u, 1.0)
    repeats = np.maximum(d / safe_u - 1.0, 0.0)
    repeated = safe_u + safe_u * R_STAR * -np.expm1(-repeats / R_STAR)
    return np.where((d > u) & np.isfinite(u) & (u > 0), repeated, d)


def effective_data_slope(n_examples: FloatArray, n_unique: FloatArray) -> FloatArray:
    """dD'/dD of `effective_data`: 1 up to one epoch, exp(-R / R*) beyond."""
    d = np.asarray(n_examples, dtype=float)
    u = np.asarray(n_unique, dtype=float)
    if not np.any(d > u):
        return np.ones(np.broadcast(d, u).shape)
    safe_u = np.where(np.isfinite(u) & (u > 0), u, 1.0)
    repeats = np.maximum(d / safe_u - 1.0, 0.0)
    return np.where((d > u) & np.isfinite(u) & (u > 0), np.exp(-repeats / R_STAR), 1.0)


class ValueModel(Protocol):
    """Per-language utility of an amount of budget, evaluated for all languages at once."""

    @property
    def languages(self) -> tuple[str, ...]:
        """Language codes, in the order of every vector."""
        ...

    def value(self, amounts: FloatArray) -> FloatArray:
        """Utility of each language at its amount (shape (n_languages,))."""
        ...

    def marginal(self, amounts: FloatArray) -> FloatArray:
        """d utility / d amount for each language at its amount."""
        ...


class DrawValueModel(ValueModel, Protocol):
    """A `ValueModel` that also has one utility per bootstrap draw."""

    def value_draws(self, amounts: FloatArray) -> FloatArray:
        """Utility per language and draw (shape (n_languages, n_draws); n_draws may be 0)."""
        ...


def log_central_difference(
    fn: Callable[[FloatArray], FloatArray], x: FloatArray, floor: float = 0.0
) -> FloatArray:
    """Derivative of a vectorised `fn` by a central difference in log x, at x >= `floor`.

    Where x is at or below `floor` (or 0) the derivative is taken at the floor (or a tiny
    positive x), matching curves that are continued linearly below it.
    """
    at = np.maximum(np.asarray(x, dtype=float), max(floor, 1e-300))
    up, down = at * np.exp(_LOG_STEP), at * np.exp(-_LOG_STEP)
    return (fn(up) - fn(down)) / (up - down)


@dataclass(frozen=True)
class CallableValue:
    """Utilities from one vectorised callable per language: `functions[i](amounts) -> values`.

    Marginals are central differences in log amount unless `derivatives` are given.
    Evaluates language by language, so it is meant for tests and a few languages.
    """

    languages: tuple[str, ...]
    functions: tuple[Callable[[FloatArray], FloatArray], ...]
    derivatives: tuple[Callable[[FloatArray], FloatArray], ...] | None = None

    def value(self, amounts: FloatArray) -> FloatArray:
        """See `ValueModel.value`."""
        x = np.asarray(amounts, dtype=float)
        return np.array(
            [float(np.asarray(f(x[i : i + 1]))[0]) for i, f in enumerate(self.functions)]
        )

    def marginal(self, amounts: FloatArray) -> FloatArray:
        """See `ValueModel.marginal`."""
        x = np.asarray(amounts, dtype=float)
        out = np.empty(len(self.functions))
        for i, f in enumerate(self.functions):
            xi = x[i : i + 1]
            if self.derivatives is not None:
                out[i] = float(np.asarray(self.derivatives[i](xi))[0])
            else:
                out[i] = float(log_central_difference(f, xi)[0])
        return out


class Aggregate(enum.Enum):
    """How a `LawValue` turns bootstrap draws into one utility per language."""

    POINT = "point"  # the fitted parameters
    MEAN = "mean"  # the mean over draws (the expected utility)
    QUANTILE = "quantile"  # a lower quantile over draws (per language)


@dataclass(frozen=True)
class LawCurve:
    """One language's scaling law, as the planner needs it.

    Attributes:
        language: language code.
        law: pure, vectorised `law(d, **params)` giving the metric at `d` examples.
        params: fitted parameters.
        draws: bootstrap draws per parameter, aligned (draw k of every parameter belongs
            together); empty when the fit has none.
        higher_is_better: the metric's direction.
        n_available: unique training pairs (one epoch), or inf when unknown.
        units_per_example: budget units per example (1 for examples, tokens per example).
    """

    language: str
    law: Callable[..., FloatArray]
    params: Mapping[str, float]
    draws: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    higher_is_better: bool = True
    n_available: float = float("inf")
    units_per_example: float = 1.0


@dataclass(frozen=True)
class _LawGroup:
    """Languages that share one law function, with their parameters stacked.

    `*_floor` hold the law's value and slope at `MIN_LAW_EXAMPLES` (the linear continuation
    below it), computed once.
    """

    index: NDArray[np.intp]
    law: Callable[..., FloatArray]
    params: dict[str, FloatArray]  # shape (n_group,)
    draws: dict[str, FloatArray]  # shape (n_group, n_draws)
    point_floor: tuple[FloatArray, FloatArray]
    draws_floor: tuple[FloatArray, FloatArray]


def _floor_line(
    law: Callable[..., FloatArray], params: Mapping[str, FloatArray], shape: tuple[int, ...]
) -> tuple[FloatArray, FloatArray]:
    """Value and slope of `law` at `MIN_LAW_EXAMPLES`, for every row of parameters."""

    def at(x: FloatArray) -> FloatArray:
        return np.asarray(law(x, **params), dtype=float)

    floor = np.full(shape, MIN_LAW_EXAMPLES)
    return at(floor), log_central_difference(at, floor)


def _valid_draws(curves: Sequence[LawCurve]) -> NDArray[np.intp]:
    """Draw indices every language has, with finite values for every parameter."""
    if not curves or any(not c.draws for c in curves):
        return np.empty(0, dtype=np.intp)
    n = min(len(v) for c in curves for v in c.draws.values())
    valid = np.ones(n, dtype=bool)
    for curve in curves:
        for values in curve.draws.values():
            valid &= np.isfinite(np.asarray(values[:n], dtype=float))
    index = np.flatnonzero(valid)
    return index if len(index) >= 2 else np.empty(0, dtype=np.intp)


def _stack_groups(
    curves: Sequence[LawCurve], draw_index: NDArray[np.intp]
) -> tuple[_LawGroup, ...]:
    keys: dict[tuple[int, tuple[str, ...]], list[int]] = {}
    for i, curve in enumerate(curves):
        keys.setdefault((id(curve.law), tuple(sorted(curve.params))), []).append(i)
    groups = []
    for (_, names), members in keys.items():
        chosen = [curves[i] for i in members]
        params = {n: np.array([c.params[n] for c in chosen], dtype=float) for n in names}
        draws = {
            n: np.array([np.asarray(c.draws[n], dtype=float)[draw_index] for c in chosen])
            if len(draw_index)
            else np.empty((len(chosen), 0))
            for n in names
        }
        law = chosen[0].law
        groups.append(
            _LawGroup(
                index=np.array(members, dtype=np.intp),
                law=law,
                params=params,
                draws=draws,
                point_floor=_floor_line(law, params, (len(chosen),)),
                draws_floor=_floor_line(law, draws, (len(chosen), len(draw_index))),
            )
        )
    return tuple(groups)


def _eval_law(
    law: Callable[..., FloatArray],
    params: Mapping[str, FloatArray],
    d: FloatArray,
    floor: tuple[FloatArray, FloatArray],
) -> FloatArray:
    """`law(d, **params)`, continued linearly below `MIN_LAW_EXAMPLES`."""
    values = np.asarray(law(np.maximum(d, MIN_LAW_EXAMPLES), **params), dtype=float)
    floor_value, floor_slope = floor
    below = floor_value + floor_slope * (d - MIN_LAW_EXAMPLES)
    return np.where(d < MIN_LAW_EXAMPLES, below, values)


class LawValue:
    """Utilities of many languages' scaling laws, evaluated group by group with numpy.

    The amount a language gets (budget units) becomes examples (divide by units per example),
    then effective examples (repeated epochs, `effective_data`), then the law's metric; the
    utility is the metric, negated when lower is better. Below `MIN_LAW_EXAMPLES` effective
    examples a law is continued linearly.

    Draws are paired across languages by index (so a pooled fit's shared draws stay together)
    and cut to the fewest any language has; a draw with a non-finite parameter in any language
    is dropped for all. A language without draws leaves the model without any (`n_draws == 0`).

    Args:
        curves: one per language.
        aggregate: how draws become the utility that `value` and `marginal` return.
        quantile: the lower quantile for `Aggregate.QUANTILE`, in (0, 1).
    """

    def __init__(
        self,
        curves: Sequence[LawCurve],
        aggregate: Aggregate = Aggregate.POINT,
        quantile: float = 0.1,
    ) -> None:
        self._curves = tuple(curves)
        draw_index = _valid_draws(self._curves)
        self.n_draws = len(draw_index)
        if aggregate is not Aggregate.POINT and self.n_draws == 0:
            raise ValueError("A robust aggregate needs bootstrap draws for every language.")
        self.aggregate = aggregate
        self.quantile = quantile
        self._groups = _stack_groups(self._curves, draw_index)
        self._sign = np.array([1.0 if c.higher_is_better else -1.0 for c in self._curves])
        self._unique = np.array([c.n_available for c in self._curves], dtype=float)
        self._units = np.array([c.units_per_example for c in self._curves], dtype=float)

    @property
    def languages(self) -> tuple[str, ...]:
        """Language codes, in the order of every vector."""
        return tuple(c.language for c in self._curves)

    @property
    def curves(self) -> tuple[LawCurve, ...]:
        """The curves this model evaluates."""
        return self._curves

    def with_aggregate(self, aggregate: Aggregate, quantile: float = 0.1) -> LawValue:
        """The same curves with another way of aggregating draws."""
        return LawValue(self._curves, aggregate, quantile)

    def _effective(self, amounts: FloatArray) -> FloatArray:
        return effective_data(np.asarray(amounts, dtype=float) / self._units, self._unique)

    def _metric_at(self, d: FloatArray, draws: bool) -> FloatArray:
        """The law's metric at effective examples `d` (n,), per draw if `draws`."""
        shape = (len(self._curves), self.n_draws) if draws else (len(self._curves),)
        out = np.empty(shape)
        for group in self._groups:
            if draws:
                dg = d[group.index][:, None]
                out[group.index] = _eval_law(group.law, group.draws, dg, group.draws_floor)
            else:
                dg = d[group.index]
                out[group.index] = _eval_law(group.law, group.params, dg, group.point_floor)
        return out

    def metric(self, amounts: FloatArray) -> FloatArray:
        """Predicted metric per language at the fitted parameters."""
        return self._metric_at(self._effective(amounts), draws=False)

    def metric_draws(self, amounts: FloatArray) -> FloatArray:
        """Predicted metric per language and draw, shape (n_languages, n_draws)."""
        return self._metric_at(self._effective(amounts), draws=True)

    def value_draws(self, amounts: FloatArray) -> FloatArray:
        """Utility per language and draw, shape (n_languages, n_draws)."""
        return self._sign[:, None] * self.metric_draws(amounts)

    def _utility_of_effective(self, d: FloatArray) -> FloatArray:
        if self.aggregate is Aggregate.POINT:
            return self._sign * self._metric_at(d, draws=False)
        per_draw = self._sign[:, None] * self._metric_at(d, draws=True)
        if self.aggregate is Aggregate.MEAN:
            return np.asarray(per_draw.mean(axis=1), dtype=float)
        return np.asarray(np.quantile(per_draw, self.quantile, axis=1), dtype=float)

    def value(self, amounts: FloatArray) -> FloatArray:
        """See `ValueModel.value`."""
        return self._utility_of_effective(self._effective(amounts))

    def marginal(self, amounts: FloatArray) -> FloatArray:
        """See `ValueModel.marginal`: chain rule through examples and effective data."""
        examples = np.asarray(amounts, dtype=float) / self._units
        d = effective_data(examples, self._unique)
        slope = log_central_difference(self._utility_of_effective, d, MIN_LAW_EXAMPLES)
        return slope * effective_data_slope(examples, self._unique) / self._units
