"""The law registry: one `LawInfo` entry per law, holding everything the rest of `fits` needs.

The fitting, the selection, the diagnostics, the reports, the CLI and the allocator read a
law's entry; none of them asks which law it holds. `register_law` adds an entry, and from then
on the law is in `LAWS`, `LAW_INFO`, the `--law` choices and (when it is a candidate) in
`--law auto`. `fits.laws` registers the built-in laws when `fits` is imported.

The registry is process-wide state: register laws at start-up (or in a test fixture), not
while fits run in other threads.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from muit_core import FitError

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from fits.data import Points
    from fits.space import Box, LawData

Law = Callable[..., "NDArray[np.float64]"]
"""A law: `law(d, **params) -> NDArray[np.float64]`, pure and vectorised."""

Partials = Callable[..., tuple["NDArray[np.float64]", list["NDArray[np.float64]"]]]
"""`partials(d, **params) -> (value, [d value / d param for each fitted param, in order])`."""

BoxesHook = Callable[["LawData"], dict[str, "Box"]]
StartsHook = Callable[["LawData"], "NDArray[np.float64]"]
NeedsHook = Callable[["Points"], "str | None"]
PooledStarts = Callable[
    [list["Points"], tuple[str, ...], bool, "float | None"], list[dict[tuple[str, str], float]]
]
Rebase = Callable[
    [dict[str, "NDArray[np.float64]"], "NDArray[np.float64]"], dict[str, "NDArray[np.float64]"]
]

FIXED_INPUTS = ("n",)
"""Inputs beside `d` that a law may take: the `Points` columns of the same name (model size)."""

AUTO = "auto"
"""What `--law` takes to choose each language's law among the candidates; no law's name."""


@dataclass(frozen=True)
class Pooling:
    """How a law that is only fitted across languages at once pools them.

    Attributes:
        reference: the parameter each language has for itself, a multiplier that is 1 at a
            reference language (`gamma` of `similarity`): fixed at 1 for the first language
            during the fit, then rebased so that the language with the largest value has 1.
        shared: `shared(higher_is_better)`, the parameters every language always shares.
        starts: `starts(points, own, higher_is_better, ceiling)`, the fit's starting points;
            each maps `("*", name)` for a shared parameter and `(language, name)` for each
            language's own parameters (`own`) to a value.
        rebase: `rebase(values, factor)`, one language's parameter values with `reference`
            divided by `factor` and the others changed so that its predictions are unchanged.
    """

    reference: str
    shared: Callable[[bool], tuple[str, ...]]
    starts: PooledStarts
    rebase: Rebase


@dataclass(frozen=True)
class LawInfo:
    """Everything the fitting code, the reports and the allocator need to know about a law.

    Attributes:
        name: the key in `LAWS`, stored in the laws file.
        func: the law itself, `func(d, **params, **fixed)`, pure and vectorised.
        params: fitted parameter names, in a fixed order (the formula's names).
        formula: the formula, as in the docstring.
        boxes: `boxes(data)`, every parameter's `Box` for one language's points.
        start_grid: `start_grid(data)`, starting points (starts, parameters) in `params`
            order; None for a pooled law, which `pooling.starts` seeds.
        partials: analytic value and partial derivatives (`Partials`) for the solver's
            Jacobians; None: finite differences.
        fixed: inputs that are neither `d` nor fitted (`chinchilla`'s model size `n`), read
            from the `Points` column of the same name; one of `FIXED_INPUTS`.
        uses_zero_data: whether points with `d = 0` (the untuned model) can be fitted; the
            others leave them out, with a note.
        candidate: whether `--law auto` tries the law (a pooled one when there are two or
            more languages).
        simpler: the law a named fit falls back to for a language with too few sizes; None
            for no fallback.
        needs: `needs(points)`, why the points cannot determine the law beyond having as many
            distinct sizes as parameters (`chinchilla`: 2 or more model sizes), or None.
        shareable: whether parameters may be shared across languages (`--share`).
        positive: parameters that are positive whatever the data (exponents, offsets,
            multipliers); a fit or a laws file with one at or below 0 is impossible.
        pooling: how a law fitted only across languages pools them; None for a per-language
            law.
    """

    name: str
    func: Law
    params: tuple[str, ...]
    formula: str
    boxes: BoxesHook
    start_grid: StartsHook | None = None
    partials: Partials | None = None
    fixed: tuple[str, ...] = ()
    uses_zero_data: bool = False
    candidate: bool = False
    simpler: str | None = None
    needs: NeedsHook | None = None
    shareable: bool = True
    pooling: Pooling | None = None
    positive: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problems = []
        if not self.name or self.name == AUTO:
            problems.append(f"the name {self.name!r} is empty or reserved")
        names = (*self.params, *self.fixed)
        if not self.params or len(set(names)) != len(names):
            problems.append(f"params and fixed must be distinct and non-empty, got {names}")
        unknown = [name for name in self.fixed if name not in FIXED_INPUTS]
        if unknown:
            problems.append(f"fixed inputs {unknown} are not among {FIXED_INPUTS}")
        try:
            inspect.signature(self.func).bind(1.0, **dict.fromkeys(names, 1.0))
        except (TypeError, ValueError):
            problems.append(f"func must accept d, {', '.join(names)}")
        if self.pooling is None and self.start_grid is None:
            problems.append("a per-language law needs a start_grid")
        if self.pooling is not None and self.pooling.reference not in self.params:
            problems.append(f"pooling.reference {self.pooling.reference!r} is not a parameter")
        if not set(self.positive) <= set(self.params):
            problems.append(f"positive {self.positive} names no parameter of {self.params}")
        if problems:
            raise FitError(f"Invalid entry for the {self.name!r} law: {'; '.join(problems)}.")

    @property
    def pooled(self) -> bool:
        """Whether the law is only fitted across languages at once."""
        return self.pooling is not None

    @property
    def across_models(self) -> bool:
        """Whether the law takes the model size, so runs of every model are fitted together."""
        return "n" in self.fixed

    def impossible_reason(
        self,
        params: Mapping[str, float],
        fixed: Mapping[str, float],
        *,
        higher_is_better: bool,
        d_range: tuple[float, float] | None = None,
        bounds: tuple[float | None, float | None] = (None, None),
        metric: str = "the metric",
    ) -> str | None:
        """Why these parameters make no sense for this law, or None when they do.

        Checked for any entry: every parameter and fixed input is present (and no other) and
        finite, the `positive` ones are above 0, and over `d_range` (the fitted data sizes,
        in examples) the law is finite, moves the metric in its good direction as `d` grows
        (never worse with more data) and stays within `bounds` (the metric's lowest and
        highest value, None for unbounded; 1% of the predictions' size plus 5% of their range
        is allowed).

        Returns:
            A clause naming the parameter or the prediction at fault, for the caller's sentence.
        """
        missing = [name for name in (*self.params, *self.fixed) if name not in {**params, **fixed}]
        if missing:
            noun = "parameter" if len(missing) == 1 else "parameters"
            return f"the {self.name} law's {noun} {_listed(missing)} {_is(missing)} missing"
        unknown = [name for name in params if name not in self.params]
        if unknown:
            return (
                f"{_listed(unknown)} {_is(unknown)} not a parameter of the {self.name} law "
                f"({', '.join(self.params)})"
            )
        values = {**params, **fixed}
        bad = [f"{name}={values[name]}" for name in values if not math.isfinite(values[name])]
        if bad:
            return f"{_listed(bad)} {_is(bad)} not a finite number"
        negative = [f"{name}={params[name]:g}" for name in self.positive if params[name] <= 0]
        if negative:
            return f"the {self.name} law's {_listed(negative)} must be positive"
        if d_range is None or not all(math.isfinite(x) for x in d_range):
            return None
        return self._impossible_curve(params, fixed, higher_is_better, d_range, bounds, metric)

    def _impossible_curve(
        self,
        params: Mapping[str, float],
        fixed: Mapping[str, float],
        higher_is_better: bool,
        d_range: tuple[float, float],
        bounds: tuple[float | None, float | None],
        metric: str,
    ) -> str | None:
        d_lo, d_hi = float(min(d_range)), float(max(d_range))
        start = d_lo if d_lo > 0 else min(1.0, d_hi) if d_hi > 0 else 0.0
        grid = np.geomspace(start, d_hi, _CURVE_POINTS) if 0 < start < d_hi else np.array([d_hi])
        if d_lo <= 0 < d_hi:
            grid = np.concatenate([[d_lo], grid])
        with np.errstate(all="ignore"):
            pred = np.asarray(self.func(grid, **params, **fixed), dtype=np.float64)
        pred = np.broadcast_to(pred, grid.shape)
        said = ", ".join(f"{name}={params[name]:.4g}" for name in self.params)
        if not np.isfinite(pred).all():
            at = int(np.argmax(~np.isfinite(pred)))
            return f"the {self.name} law ({said}) predicts {pred[at]} at d={grid[at]:g}"
        sign = 1.0 if higher_is_better else -1.0
        tol = 1e-9 * max(1.0, float(np.abs(pred).max()))
        best = np.maximum.accumulate(sign * pred)
        drop = best - sign * pred
        if drop.max() > tol:
            worst = int(np.argmax(drop))
            was = int(np.argmax(sign * pred[: worst + 1]))
            way = "falls" if higher_is_better else "rises"
            return (
                f"the {self.name} law ({said}) {way} with data, {metric} going from "
                f"{pred[was]:.4g} at d={grid[was]:g} to {pred[worst]:.4g} at d={grid[worst]:g}, "
                f"the wrong way for a {'higher' if higher_is_better else 'lower'}-is-better metric"
            )
        # A fit to runs that sit at a bound (BLEU near 0 before tuning) may miss it by about
        # the runs' noise; only a larger miss is a wrong law.
        slack = 0.01 * float(np.abs(pred).max()) + 0.05 * float(np.ptp(pred))
        lowest, highest = bounds
        for limit, outside, word in (
            (lowest, pred < (lowest or 0.0) - slack, "lowest"),
            (highest, pred > (highest or 0.0) + slack, "highest"),
        ):
            if limit is not None and outside.any():
                at = int(np.argmax(outside))
                return (
                    f"the {self.name} law ({said}) predicts {metric} {pred[at]:.4g} at "
                    f"d={grid[at]:g}, beyond the {word} value it can take ({limit:g})"
                )
        return None


_CURVE_POINTS = 64  # sizes the direction and bounds checks evaluate over the fitted range


def _listed(names: list[str]) -> str:
    return ", ".join(names)


def _is(names: list[str]) -> str:
    return "is" if len(names) == 1 else "are"


_ENTRIES: dict[str, LawInfo] = {}

LAW_INFO: Mapping[str, LawInfo] = MappingProxyType(_ENTRIES)
"""Every registered law's entry, keyed by name: a live, read-only view of the registry."""


class _LawFunctions(Mapping[str, Law]):
    """A live, read-only view of the registry's law functions."""

    def __getitem__(self, name: str) -> Law:
        return _ENTRIES[name].func

    def __iter__(self) -> Iterator[str]:
        return iter(_ENTRIES)

    def __len__(self) -> int:
        return len(_ENTRIES)

    def __repr__(self) -> str:
        return f"LAWS({', '.join(_ENTRIES)})"


LAWS: Mapping[str, Law] = _LawFunctions()
"""Every law, keyed by the name the laws file stores: `LAWS[entry.law](d, **entry.params)`."""


def register_law(info: LawInfo) -> LawInfo:
    """Add a law to the registry; from then on every part of `fits` (and `planner`) knows it.

    Args:
        info: the law's entry.

    Returns:
        `info`, so it can be kept by the caller.

    Raises:
        FitError: a law of that name is already registered.
    """
    if info.name in _ENTRIES:
        raise FitError(
            f"A law named {info.name!r} is already registered; choose another name, or call "
            f"unregister_law({info.name!r}) first."
        )
    _ENTRIES[info.name] = info
    return info


def unregister_law(name: str) -> LawInfo:
    """Remove a law from the registry (a test fixture's cleanup); returns its entry.

    Raises:
        FitError: no law of that name is registered.
    """
    if name not in _ENTRIES:
        raise FitError(f"No law named {name!r} is registered; known laws: {', '.join(_ENTRIES)}.")
    return _ENTRIES.pop(name)


def law_info(name: str) -> LawInfo:
    """The entry of the law `name`.

    Raises:
        FitError: the law is unknown (the known ones are listed).
    """
    info = _ENTRIES.get(name)
    if info is None:
        raise FitError(f"Unknown law {name!r}; known laws: {', '.join(_ENTRIES)}.")
    return info
