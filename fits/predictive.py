"""One language's predictive distribution: the laws its sweep cannot tell apart, their
bootstrap draws, an error that grows with the reach beyond the sweep, and the untuned anchor.

Draw k of the prediction at `d` examples is

    y_k(d) = anchored(law_c(d; theta_k)) * (1 + sd_c * z_k * g(d / d_max)),
    g(r) = log2(max(r, 1)) ** REACH_POWER,

held no worse than the draw's value at `d_max` (`never_worse_beyond`: more data never makes a
prediction worse).

- component `c` is the law of draw k: every candidate law the sweep's backtests cannot rule
  out, holding draws in proportion to its weight (`fits.reach.law_weights`);
- `theta_k` are that law's bootstrap parameters (parameter noise: one part of the band);
- `sd_c` is the relative error at one doubling of reach that the sweep's own backtests
  measured for that law (`fits.reach`), `z_k` a standard normal draw and `d_max` the largest
  swept size; the error grows as `g`, a power of the doublings of reach. Draws come in
  antithetic pairs (the same parameters with +z and -z), so the reach term
  alone leaves the mean over draws at the mixture's: it widens the bands and the planner's
  risk, not its expected value;
- the hold at `d_max` only trims draws whose reach error would make more data hurt; it moves
  the mean by far less than the band (the planner's expected value stays the mixture's);
- below the smallest swept size `d_lo` a law that does not model zero data (`LawInfo.
  uses_zero_data` false) is anchored to the untuned model's measured mean `y0`:
  `anchored(f)(d) = y0 + (f(d_lo) - y0) * d / d_lo` for `d < d_lo`.

`reach_factor` and `anchor_line` are the two formulas; `FitResult` and the planner's value
curves both evaluate through them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from fits.laws import LAWS, law_info
from muit_core import DataError

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

_DIGITS = 8  # significant digits kept per stored draw
REACH_POWER = 1.5
"""How fast extrapolation error grows with the doublings of reach: `g(r) = log2(r) ** 1.5`.
Chosen on `bench/bench_calibration.py` (synthetic truths of several families): 1 (linear in
log reach) left the 90% bands at 10x and 100x under-covering."""


def reach_growth(reach: ArrayLike, power: float = REACH_POWER) -> NDArray[np.float64]:
    """`g(r) = log2(max(r, 1)) ** power`: 0 within the sweep, 1 at twice its largest size."""
    with np.errstate(divide="ignore", invalid="ignore"):
        doublings = np.log2(np.maximum(np.asarray(reach, dtype=float), 1.0))
    return np.asarray(doublings**power, dtype=np.float64)


def reach_factor(
    d: ArrayLike,
    d_max: ArrayLike,
    reach_sd: ArrayLike,
    z: ArrayLike,
    power: float = REACH_POWER,
) -> NDArray[np.float64]:
    """`1 + reach_sd * z * g(d / d_max)`: the reach term, 1 within the sweep."""
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = reach_growth(np.asarray(d, dtype=float) / np.asarray(d_max), power)
    return np.asarray(1.0 + np.asarray(reach_sd) * np.asarray(z) * growth, dtype=np.float64)


def never_worse_beyond(
    values: ArrayLike,
    at_d_max: ArrayLike,
    d: ArrayLike,
    d_max: ArrayLike,
    higher_is_better: ArrayLike,
) -> NDArray[np.float64]:
    """`values`, held beyond the largest swept size to be no worse than the draw's own value
    there (`at_d_max`): more data never makes a draw's predicted metric worse."""
    v, at = np.asarray(values, dtype=float), np.asarray(at_d_max, dtype=float)
    held = np.where(np.asarray(higher_is_better), np.maximum(v, at), np.minimum(v, at))
    return np.asarray(np.where(np.asarray(d) > np.asarray(d_max), held, v), dtype=np.float64)


def anchor_line(
    d: ArrayLike, d_anchor: ArrayLike, value_at_anchor: ArrayLike, y0: ArrayLike
) -> NDArray[np.float64]:
    """`y0 + (value_at_anchor - y0) * d / d_anchor`: the straight line from the untuned
    model's value at 0 to the law's value at the smallest swept size."""
    d = np.asarray(d, dtype=float)
    y0 = np.asarray(y0, dtype=float)
    return np.asarray(
        y0 + (np.asarray(value_at_anchor) - y0) * d / np.asarray(d_anchor), dtype=np.float64
    )


def antithetic_normals(n_pairs: int, rng: np.random.Generator) -> tuple[float, ...]:
    """`2 * n_pairs` standard normals in pairs `(+z, -z)`."""
    z = rng.standard_normal(n_pairs)
    return tuple(float(x) for x in np.column_stack([z, -z]).ravel())


@dataclass(frozen=True)
class Anchor:
    """The untuned model's measured value and where the anchor line meets the law.

    Attributes:
        d: the smallest positive swept size, in examples.
        value: the mean metric of the untuned model (zero examples) over its runs.
    """

    d: float
    value: float


@dataclass(frozen=True)
class Component:
    """One law of a predictive mixture with its share of the draws.

    Attributes:
        law: key in `fits.laws.LAWS`.
        weight: its share of the mixture (the components' weights sum to 1).
        draws: bootstrap parameter draws, aligned across parameters; each appears twice in a
            row (the antithetic pair).
        fixed: inputs held fixed for prediction (chinchilla's `n`).
        reach_sd: relative error (sd) at 2x the largest swept size; it grows as `g`.
        z: one standard normal per draw, antithetic in consecutive pairs.
    """

    law: str
    weight: float
    draws: dict[str, tuple[float, ...]]
    fixed: dict[str, float] = field(default_factory=dict)
    reach_sd: float = 0.0
    z: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        lengths = {len(v) for v in self.draws.values()} | {len(self.z)}
        if len(lengths) > 1:
            raise DataError(
                f"A {self.law} component of a predictive mixture has draws and z of different "
                "lengths; rewrite the laws file with plan-fit."
            )

    @property
    def n_draws(self) -> int:
        """Draws this component holds."""
        return len(self.z)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form; inverse of `from_dict`."""
        return {
            "law": self.law,
            "weight": _rounded(self.weight),
            "reach_sd_at_2x": _rounded(self.reach_sd),
            "fixed": {k: _rounded(v) for k, v in self.fixed.items()},
            "z": [_rounded(x) for x in self.z],
            "draws": {k: [_rounded(x) for x in v] for k, v in self.draws.items()},
        }

    @classmethod
    def from_dict(cls, entry: dict[str, Any]) -> Component:
        """Rebuild from `to_dict` output."""
        law = str(entry["law"])
        if law not in LAWS:
            raise DataError(
                f"The laws file's predictive mixture names the unknown law {law!r}; known laws: "
                f"{', '.join(LAWS)}."
            )
        return cls(
            law=law,
            weight=float(entry["weight"]),
            draws={k: tuple(_number(x) for x in v) for k, v in dict(entry["draws"]).items()},
            fixed={k: float(v) for k, v in dict(entry.get("fixed") or {}).items()},
            reach_sd=float(entry.get("reach_sd_at_2x") or 0.0),
            z=tuple(float(x) for x in entry["z"]),
        )


@dataclass(frozen=True)
class Predictive:
    """A language's predictive distribution (see the module docstring for the formula).

    Attributes:
        components: the laws of the mixture, in draw order.
        d_max: the largest swept size, in examples; the reach is `d / d_max`.
        anchor: the untuned anchor, or None when the sweep has no zero-data run.
        higher_is_better: the metric's direction (which way "no worse" points).
        reach_power: the power of `g` the reach errors were calibrated with.
        calibration: how the reach errors were measured (JSON-safe): the backtests used per
            law, or why a default stands in.
    """

    components: tuple[Component, ...]
    d_max: float
    anchor: Anchor | None = None
    higher_is_better: bool = False
    reach_power: float = REACH_POWER
    calibration: dict[str, Any] = field(default_factory=dict)

    @property
    def n_draws(self) -> int:
        """All components' draws together."""
        return sum(c.n_draws for c in self.components)

    def anchor_for(self, law: str) -> Anchor | None:
        """The anchor a law is held to: none for a law that models zero data itself."""
        return None if law_info(law).uses_zero_data else self.anchor

    def law_values(
        self, law: str, params: dict[str, NDArray[np.float64]], d: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """`law(d, **params)`, anchored below the smallest swept size (no reach term)."""
        fn = LAWS[law]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            values = np.asarray(fn(d, **params), dtype=np.float64)
            anchor = self.anchor_for(law)
            if anchor is None or not np.any(d < anchor.d):
                return values
            at_anchor = np.asarray(fn(np.full_like(d, anchor.d), **params), dtype=np.float64)
        line = anchor_line(d, anchor.d, at_anchor, anchor.value)
        return np.asarray(np.where(d < anchor.d, line, values), dtype=np.float64)

    def draws(self, d: ArrayLike) -> NDArray[np.float64]:
        """Predicted metric of every draw at sizes `d`: shape `(n_draws, len(d))`."""
        sizes = np.atleast_1d(np.asarray(d, dtype=np.float64))[None, :]
        rows = []
        for comp in self.components:
            if comp.n_draws == 0:
                continue
            params = {k: np.asarray(v, dtype=np.float64)[:, None] for k, v in comp.draws.items()}
            params.update({k: np.asarray(v) for k, v in comp.fixed.items()})
            values = self.law_values(
                comp.law, params, np.broadcast_to(sizes, (comp.n_draws, sizes.shape[1]))
            )
            z = np.asarray(comp.z)[:, None]
            factor = reach_factor(sizes, self.d_max, comp.reach_sd, z, self.reach_power)
            top = self.law_values(comp.law, params, np.full((comp.n_draws, 1), self.d_max))
            rows.append(
                never_worse_beyond(values * factor, top, sizes, self.d_max, self.higher_is_better)
            )
        if not rows:
            return np.empty((0, sizes.shape[1]), dtype=np.float64)
        return np.asarray(np.vstack(rows), dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form; inverse of `from_dict`."""
        return {
            "d_max": self.d_max,
            "anchor": None
            if self.anchor is None
            else {"d": self.anchor.d, "value": _rounded(self.anchor.value)},
            "higher_is_better": self.higher_is_better,
            "reach_power": self.reach_power,
            "calibration": self.calibration,
            "components": [c.to_dict() for c in self.components],
        }

    @classmethod
    def from_dict(cls, entry: dict[str, Any]) -> Predictive:
        """Rebuild from `to_dict` output.

        Raises:
            DataError: a key is missing or malformed.
        """
        try:
            anchor = entry.get("anchor")
            return cls(
                components=tuple(Component.from_dict(c) for c in entry["components"]),
                d_max=float(entry["d_max"]),
                anchor=None
                if anchor is None
                else Anchor(float(anchor["d"]), float(anchor["value"])),
                higher_is_better=bool(entry.get("higher_is_better", False)),
                reach_power=float(entry.get("reach_power", REACH_POWER)),
                calibration=dict(entry.get("calibration") or {}),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(
                f"The laws file's predictive mixture is malformed ({err}); rewrite it with "
                "plan-fit."
            ) from err


def _rounded(value: float) -> float | None:
    return float(f"{value:.{_DIGITS}g}") if math.isfinite(value) else None


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)
