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

import fits

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
            together); empty when the fit has none. Used only without `predictive`.
        higher_is_better: the metric's direction.
        n_available: unique training pairs (one epoch), or inf when unknown.
        units_per_example: budget units per example (1 for examples, tokens per example).
        predictive: the fit's predictive distribution (`fits.Predictive`: the law mixture,
            the reach error and the untuned anchor); when given, its draws are the curve's
            draws and its anchor holds the point curve below the smallest swept size.
        law_name: the registered name of `law` (needed with `predictive`, for its anchor).
    """

    language: str
    law: Callable[..., FloatArray]
    params: Mapping[str, float]
    draws: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    higher_is_better: bool = True
    n_available: float = float("inf")
    units_per_example: float = 1.0
    predictive: fits.Predictive | None = None
    law_name: str = ""

    @property
    def n_draws(self) -> int:
        """Draws this curve has (predictive draws when there is a predictive)."""
        if self.predictive is not None:
            return self.predictive.n_draws
        return len(next(iter(self.draws.values()), ()))


@dataclass(frozen=True)
class _Cells:
    """Cells (language row, draw column) that share one law function, parameters stacked.

    The point curves are cells with column 0 of a one-column table. Below `floor_d` a cell
    follows the line `floor_value + floor_slope * (d - floor_d)`: the untuned anchor's line
    (`fits.anchor_line`, from the measured value at 0 to the law at the smallest swept size)
    where the curve has one, else the tangent at `MIN_LAW_EXAMPLES`.
    """

    rows: NDArray[np.intp]
    cols: NDArray[np.intp]
    law: Callable[..., FloatArray]
    params: dict[str, FloatArray]  # shape (n_cells,)
    reach_sd: FloatArray  # relative error at 2x d_max (0 for points)
    reach_power: float
    z: FloatArray
    d_max: FloatArray
    floor_d: FloatArray
    floor_value: FloatArray
    floor_slope: FloatArray
    at_d_max: FloatArray  # the law at d_max (NaN where d_max is inf)
    higher_is_better: bool

    def evaluate(self, d: FloatArray) -> FloatArray:
        """The cells' metric at effective examples `d` (one per cell): `fits.Predictive`'s
        formula (anchor or tangent below the floor, reach term, never worse beyond d_max)."""
        values = np.asarray(self.law(np.maximum(d, self.floor_d), **self.params), dtype=float)
        below = self.floor_value + self.floor_slope * (d - self.floor_d)
        values = np.where(d < self.floor_d, below, values)
        reach = fits.reach_factor(d, self.d_max, self.reach_sd, self.z, self.reach_power)
        return fits.never_worse_beyond(
            values * reach, self.at_d_max, d, self.d_max, self.higher_is_better
        )


@dataclass
class _CellRows:
    """Cells being collected for one law function (lists, before stacking)."""

    law: Callable[..., FloatArray]
    reach_power: float = 1.0  # irrelevant where the reach sd is 0 (points, old laws files)
    higher_is_better: bool = True
    rows: list[int] = field(default_factory=list)
    cols: list[NDArray[np.intp]] = field(default_factory=list)
    params: list[dict[str, NDArray[np.float64]]] = field(default_factory=list)
    reach_sd: list[FloatArray] = field(default_factory=list)
    z: list[FloatArray] = field(default_factory=list)
    d_max: list[float] = field(default_factory=list)
    anchor: list[tuple[float, float] | None] = field(default_factory=list)
    zero_ok: list[bool] = field(default_factory=list)  # the law is finite at 0: no floor line

    def add(
        self,
        row: int,
        cols: NDArray[np.intp],
        params: dict[str, NDArray[np.float64]],
        reach_sd: float = 0.0,
        z: FloatArray | None = None,
        d_max: float = float("inf"),
        anchor: tuple[float, float] | None = None,
        zero_ok: bool = False,
    ) -> None:
        self.rows.append(row)
        self.cols.append(cols)
        self.params.append(params)
        self.reach_sd.append(np.full(cols.size, reach_sd))
        self.z.append(np.zeros(cols.size) if z is None else np.asarray(z, dtype=float))
        self.d_max.append(d_max)
        self.anchor.append(anchor)
        self.zero_ok.append(zero_ok)

    def stack(self) -> _Cells:
        sizes = [c.size for c in self.cols]
        rows = np.repeat(np.array(self.rows, dtype=np.intp), sizes)
        names = sorted(self.params[0])
        params = {n: np.concatenate([p[n] for p in self.params]) for n in names}
        floor_d = np.repeat(
            [
                a[0] if a else (0.0 if zero else MIN_LAW_EXAMPLES)
                for a, zero in zip(self.anchor, self.zero_ok, strict=True)
            ],
            sizes,
        )

        def at(x: FloatArray) -> FloatArray:
            return np.asarray(self.law(x, **params), dtype=float)

        value = at(floor_d)
        tangent = log_central_difference(at, np.maximum(floor_d, MIN_LAW_EXAMPLES))
        d_max = np.repeat(np.array(self.d_max, dtype=float), sizes)
        finite = np.isfinite(d_max)
        at_d_max = np.where(finite, at(np.where(finite, d_max, 1.0)), np.nan)
        y0 = np.repeat([a[1] if a else np.nan for a in self.anchor], sizes)
        anchored = np.isfinite(y0)
        safe_floor = np.where(floor_d > 0, floor_d, 1.0)
        slope = np.where(anchored, (value - np.where(anchored, y0, 0.0)) / safe_floor, tangent)
        return _Cells(
            rows=rows,
            cols=np.concatenate(self.cols) if self.cols else np.empty(0, dtype=np.intp),
            law=self.law,
            params=params,
            reach_sd=np.concatenate(self.reach_sd),
            reach_power=self.reach_power,
            z=np.concatenate(self.z),
            d_max=d_max,
            floor_d=floor_d,
            floor_value=value,
            floor_slope=slope,
            at_d_max=at_d_max,
            higher_is_better=self.higher_is_better,
        )


def _finite_draws(curve: LawCurve) -> NDArray[np.bool_]:
    """Which of a curve's draws have every parameter finite."""
    if curve.predictive is None:
        columns = [np.asarray(v, dtype=float) for v in curve.draws.values()]
    else:
        columns = []
        for comp in curve.predictive.components:
            params = [np.asarray(v, dtype=float) for v in comp.draws.values()]
            columns.append(np.all(np.isfinite(params), axis=0) if params else np.ones(0))
        return np.concatenate(columns).astype(bool) if columns else np.zeros(0, dtype=bool)
    if not columns:
        return np.zeros(0, dtype=bool)
    return np.all(np.isfinite(np.array(columns)), axis=0)


def _common_draws(curves: Sequence[LawCurve]) -> int:
    """Draws every language can give: the fewest finite ones any has (0 when under 2)."""
    if not curves:
        return 0
    n = min(int(_finite_draws(c).sum()) for c in curves)
    return n if n >= 2 else 0


def _draw_picks(finite: NDArray[np.bool_], wanted: int) -> NDArray[np.intp]:
    """`wanted` of the finite draw indices, spread evenly; an antithetic pair (draws 2k and
    2k+1, the same parameters) is kept whole wherever both are wanted."""
    usable = np.flatnonzero(finite)
    if wanted >= usable.size:
        return usable
    pairs = usable[(usable % 2 == 0) & np.isin(usable + 1, usable)]
    if pairs.size >= wanted // 2 and wanted // 2:
        chosen = pairs[np.linspace(0, pairs.size - 1, wanted // 2).round().astype(np.intp)]
        picks = np.unique(np.column_stack([chosen, chosen + 1]).ravel())
    else:
        picks = np.empty(0, dtype=np.intp)
    if picks.size < wanted:  # an odd count, or too few pairs: fill with single draws
        spare = np.setdiff1d(usable, picks)
        spare = spare[np.linspace(0, spare.size - 1, wanted - picks.size).round().astype(np.intp)]
        picks = np.sort(np.concatenate([picks, spare]))
    return picks.astype(np.intp)


def _finite_at_zero(law: str) -> bool:
    """Whether a registered law models zero data itself (then it is evaluated down to 0)."""
    return bool(law) and law in fits.LAW_INFO and fits.law_info(law).uses_zero_data


def _anchor_of(curve: LawCurve) -> tuple[float, float] | None:
    if curve.predictive is None:
        return None
    anchor = curve.predictive.anchor_for(curve.law_name) if curve.law_name else None
    return None if anchor is None else (anchor.d, anchor.value)


def _point_cells(curves: Sequence[LawCurve]) -> tuple[_Cells, ...]:
    groups: dict[tuple[int, tuple[str, ...]], _CellRows] = {}
    zero = np.zeros(1, dtype=np.intp)
    for i, curve in enumerate(curves):
        key = (id(curve.law), tuple(sorted(curve.params)))
        rows = groups.setdefault(key, _CellRows(curve.law))
        params = {n: np.array([float(v)]) for n, v in curve.params.items()}
        rows.add(
            i, zero, params, anchor=_anchor_of(curve), zero_ok=_finite_at_zero(curve.law_name)
        )
    return tuple(g.stack() for g in groups.values())


def _draw_cells(curves: Sequence[LawCurve], n_draws: int) -> tuple[_Cells, ...]:
    """The draws of every language as cells grouped by law (columns `0..n_draws-1`)."""
    if n_draws == 0:
        return ()
    groups: dict[tuple[int, tuple[str, ...], float, bool], _CellRows] = {}
    for i, curve in enumerate(curves):
        picks = _draw_picks(_finite_draws(curve), n_draws)
        if curve.predictive is None:
            key = (id(curve.law), tuple(sorted(curve.params)), 0.0, True)
            rows = groups.setdefault(key, _CellRows(curve.law))
            params = {n: np.asarray(v, dtype=float)[picks] for n, v in curve.draws.items()}
            rows.add(i, np.arange(n_draws, dtype=np.intp), params)
            continue
        pred = curve.predictive
        start = 0
        for comp in pred.components:
            own = picks[(picks >= start) & (picks < start + comp.n_draws)] - start
            cols = np.flatnonzero((picks >= start) & (picks < start + comp.n_draws))
            start += comp.n_draws
            if own.size == 0:
                continue
            law = fits.LAWS[comp.law]
            key = (
                id(law),
                tuple(sorted({*comp.draws, *comp.fixed})),
                pred.reach_power,
                pred.higher_is_better,
            )
            rows = groups.setdefault(key, _CellRows(law, pred.reach_power, pred.higher_is_better))
            params = {n: np.asarray(v, dtype=float)[own] for n, v in comp.draws.items()}
            params.update({n: np.full(own.size, v) for n, v in comp.fixed.items()})
            anchor = pred.anchor_for(comp.law)
            rows.add(
                i,
                cols.astype(np.intp),
                params,
                reach_sd=comp.reach_sd,
                z=np.asarray(comp.z, dtype=float)[own],
                d_max=pred.d_max,
                anchor=None if anchor is None else (anchor.d, anchor.value),
                zero_ok=_finite_at_zero(comp.law),
            )
    return tuple(g.stack() for g in groups.values())


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
        self.n_draws = _common_draws(self._curves)
        if aggregate is not Aggregate.POINT and self.n_draws == 0:
            raise ValueError("A robust aggregate needs bootstrap draws for every language.")
        self.aggregate = aggregate
        self.quantile = quantile
        self._points = _point_cells(self._curves)
        self._draws = _draw_cells(self._curves, self.n_draws)
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
        """The metric at effective examples `d` (n,): per draw if `draws`, else the point."""
        if draws:
            out = np.empty((len(self._curves), self.n_draws))
            for cells in self._draws:
                out[cells.rows, cells.cols] = cells.evaluate(d[cells.rows])
            return out
        point = np.empty(len(self._curves))
        for cells in self._points:
            point[cells.rows] = cells.evaluate(d[cells.rows])
        return point

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
