"""Fitted laws as immutable records, and the laws file that carries them to the allocator.

The laws file (JSON, format `muit-laws/1`) is contract 4 of DESIGN.md. Each language entry is
self-contained: `LAWS[entry["law"]](d, **entry["params"], **entry["fixed"])` predicts the
metric at data size `d`, and `entry["draws"]` holds the bootstrap parameter draws, aligned
across parameters (draw `i` of every parameter comes from the same refit), so an allocator can
propagate the uncertainty through any function of the prediction.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fits.laws import LAW_INFO, LAWS
from fits.predictive import Predictive
from muit_core import METRICS, DataError, FitError, atomic_write_text

if TYPE_CHECKING:
    import os

    from numpy.typing import ArrayLike, NDArray

LAWS_FORMAT = "muit-laws/1"
_DRAW_DIGITS = 8  # significant digits kept per bootstrap draw: far below the draws' spread


def _clean(value: float) -> float | None:
    """A float for JSON: NaN and inf become null."""
    return float(value) if math.isfinite(value) else None


def _unclean(value: Any) -> float:
    return math.nan if value is None else float(value)


@dataclass(frozen=True)
class FitResult:
    """One fitted law for one language (or one language's slice of a pooled fit).

    Attributes:
        language: language code, the same string used everywhere else.
        law: key in `fits.laws.LAWS`.
        params: fitted parameters by name (NaN when the fit failed).
        stderr: bootstrap standard deviation of each parameter (NaN without draws).
        metric: the metric fitted, e.g. `heldout_ce`.
        higher_is_better: the metric's direction.
        n_points: runs used in the fit (excluded zero-data points not counted).
        d_min: smallest data size fitted, in examples.
        d_max: largest data size fitted, in examples.
        success: whether the fit is usable for planning.
        message: why not, or notes such as a fallback to a simpler law.
        draws: bootstrap draws per parameter, aligned across parameters; may be empty.
        data: the language's pool facts when known: `n_available`, `tokens_per_example`,
            `corpus`, `pair_filter` (the sweep's length limits and held-out share).
        fixed: inputs held fixed for prediction, e.g. `{"n": 1.35e8}` for `chinchilla`.
        shared: names of parameters shared with other languages in a pooled fit.
        diagnostics: residuals, extrapolation errors, flags and notes (JSON-safe).
        predictive: the predictive distribution the bands and the planner use (laws the
            backtests cannot tell apart, reach error, untuned anchor; `fits.predictive`), or
            None for a laws file written before it (bands then carry parameter noise only).
    """

    language: str
    law: str
    params: dict[str, float]
    stderr: dict[str, float]
    metric: str
    higher_is_better: bool
    n_points: int
    d_min: float
    d_max: float
    success: bool
    message: str
    draws: dict[str, tuple[float, ...]] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    fixed: dict[str, float] = field(default_factory=dict)
    shared: tuple[str, ...] = ()
    diagnostics: dict[str, Any] = field(default_factory=dict)
    predictive: Predictive | None = None

    def __post_init__(self) -> None:
        if self.law not in LAWS:
            raise FitError(f"Unknown law {self.law!r}; known laws: {', '.join(LAWS)}.")
        # Own copies, so a caller's later edits never reach a frozen record.
        object.__setattr__(self, "params", {k: float(v) for k, v in self.params.items()})
        object.__setattr__(self, "stderr", {k: float(v) for k, v in self.stderr.items()})
        object.__setattr__(self, "fixed", {k: float(v) for k, v in self.fixed.items()})
        draws = {k: tuple(float(x) for x in v) for k, v in self.draws.items()}
        if len({len(v) for v in draws.values()}) > 1:
            raise FitError(
                f"Bootstrap draws for {self.language!r} differ in length per parameter."
            )
        object.__setattr__(self, "draws", draws)
        object.__setattr__(self, "data", dict(self.data))
        object.__setattr__(self, "shared", tuple(self.shared))
        object.__setattr__(self, "diagnostics", dict(self.diagnostics))

    @property
    def formula(self) -> str:
        """The law's formula, as in its docstring."""
        return LAW_INFO[self.law].formula

    @property
    def n_draws(self) -> int:
        """Number of bootstrap draws kept (0 when there are none)."""
        return len(next(iter(self.draws.values()), ()))

    def _check_usable(self) -> None:
        if not self.success:
            raise FitError(
                f"The {self.law} fit for {self.language!r} failed and cannot predict: "
                f"{self.message}"
            )

    def __call__(self, d: ArrayLike) -> NDArray[np.float64]:
        """Point prediction of the metric at data size(s) `d` (examples): the fitted law,
        anchored to the untuned model below the smallest swept size (`fits.predictive`).

        Raises:
            FitError: the fit failed (`success` is false).
        """
        self._check_usable()
        sizes = np.asarray(d, dtype=np.float64)
        if self.predictive is not None:
            params = {k: np.asarray(v) for k, v in {**self.params, **self.fixed}.items()}
            return self.predictive.law_values(self.law, params, sizes)
        return np.asarray(LAWS[self.law](sizes, **self.params, **self.fixed), dtype=np.float64)

    def predict_draws(self, d: ArrayLike) -> NDArray[np.float64]:
        """Predictions of every draw: shape `(n_draws, len(d))`.

        The draws of the predictive distribution when the fit has one (law mixture, parameter
        noise and reach error), else the bootstrap draws of the fitted law. The first axis is
        empty when there are none.

        Raises:
            FitError: the fit failed (`success` is false).
        """
        self._check_usable()
        sizes = np.atleast_1d(np.asarray(d, dtype=np.float64))
        if self.predictive is not None and self.predictive.n_draws:
            return self.predictive.draws(sizes)
        if self.n_draws == 0:
            return np.empty((0, sizes.size), dtype=np.float64)
        columns = {k: np.asarray(v, dtype=np.float64)[:, None] for k, v in self.draws.items()}
        out = LAWS[self.law](sizes[None, :], **columns, **self.fixed)
        return np.asarray(np.broadcast_to(out, (self.n_draws, sizes.size)), dtype=np.float64)

    def interval(
        self, d: ArrayLike, level: float = 0.9
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Percentile interval of the predicted mean metric at `d` over `predict_draws`.

        This is the uncertainty of the curve (its law's form, its parameters and, beyond the
        sweep, the reach error the backtests measured), not the spread of a single run.

        Args:
            d: data size(s) in examples.
            level: central coverage, e.g. 0.9 for the 5th to 95th percentiles.

        Returns:
            `(low, high)`, each shaped like `np.atleast_1d(d)`; NaN where there are no draws.
        """
        if not 0.0 < level < 1.0:
            raise FitError(f"Interval level must lie in (0, 1); got {level=}.")
        preds = self.predict_draws(d)
        if preds.shape[0] == 0:
            nan = np.full(preds.shape[1], np.nan)
            return nan, nan.copy()
        tail = 50.0 * (1.0 - level)
        with np.errstate(invalid="ignore"):
            low, high = np.nanpercentile(preds, [tail, 100.0 - tail], axis=0)
        return np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)

    def param_interval(self, name: str, level: float = 0.9) -> tuple[float, float]:
        """Percentile interval of one parameter over the draws (NaN, NaN without draws)."""
        values = np.asarray(self.draws.get(name, ()), dtype=np.float64)
        if values.size == 0:
            return math.nan, math.nan
        tail = 50.0 * (1.0 - level)
        low, high = np.nanpercentile(values, [tail, 100.0 - tail])
        return float(low), float(high)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (NaN and inf become null); inverse of `from_dict`."""
        return {
            "language": self.language,
            "law": self.law,
            "formula": self.formula,
            "params": {k: _clean(v) for k, v in self.params.items()},
            "fixed": {k: _clean(v) for k, v in self.fixed.items()},
            "stderr": {k: _clean(v) for k, v in self.stderr.items()},
            "shared": list(self.shared),
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "n_points": self.n_points,
            "d_min": _clean(self.d_min),
            "d_max": _clean(self.d_max),
            "success": self.success,
            "message": self.message,
            "data": dict(self.data),
            "diagnostics": _json_safe(self.diagnostics),
            "n_draws": self.n_draws,
            "draws": {
                k: [_clean(float(f"{x:.{_DRAW_DIGITS}g}")) for x in v]
                for k, v in self.draws.items()
            },
            "predictive": None if self.predictive is None else self.predictive.to_dict(),
        }

    @classmethod
    def from_dict(cls, entry: dict[str, Any]) -> FitResult:
        """Rebuild a `FitResult` from `to_dict()` output.

        Raises:
            DataError: a required key is missing or has the wrong type, or a successful fit's
                parameters are impossible (`LawInfo.impossible_reason`: one missing or not
                finite, an exponent at or below 0, the metric getting worse with more data
                over the fitted sizes).
        """
        required = ("language", "law", "params", "metric", "higher_is_better", "success")
        missing = [key for key in required if key not in entry]
        if missing:
            raise DataError(
                f"A laws-file entry lacks {', '.join(missing)}; rewrite it with plan-fit."
            )
        try:
            fixed = {k.lower(): _unclean(v) for k, v in dict(entry.get("fixed") or {}).items()}
            fit = cls(
                language=str(entry["language"]),
                law=str(entry["law"]),
                params={k: _unclean(v) for k, v in dict(entry["params"]).items()},
                stderr={k: _unclean(v) for k, v in dict(entry.get("stderr") or {}).items()},
                metric=str(entry["metric"]),
                higher_is_better=bool(entry["higher_is_better"]),
                n_points=int(entry.get("n_points", 0)),
                d_min=_unclean(entry.get("d_min")),
                d_max=_unclean(entry.get("d_max")),
                success=bool(entry["success"]),
                message=str(entry.get("message", "")),
                draws={
                    k: tuple(_unclean(x) for x in v)
                    for k, v in dict(entry.get("draws") or {}).items()
                },
                data=dict(entry.get("data") or {}),
                fixed=fixed,
                shared=tuple(entry.get("shared") or ()),
                diagnostics=dict(entry.get("diagnostics") or {}),
                predictive=None
                if entry.get("predictive") is None
                else Predictive.from_dict(entry["predictive"]),
            )
        except (TypeError, ValueError, AttributeError) as err:
            language = entry.get("language", "?")
            raise DataError(f"The laws-file entry for {language!r} is malformed: {err}.") from err
        if fit.success:
            known = METRICS.get(fit.metric)
            why = LAW_INFO[fit.law].impossible_reason(
                fit.params,
                fit.fixed,
                higher_is_better=fit.higher_is_better if known is None else known.higher_is_better,
                d_range=(fit.d_min, fit.d_max),
                metric=fit.metric,
            )
            if why:
                raise DataError(
                    f"The laws file's {fit.law} fit for {fit.language!r} is impossible: {why}; "
                    "re-run plan-fit on the results table to rewrite it."
                )
        return fit


def _json_safe(value: Any) -> Any:
    """Recursively replace NaN/inf by None and numpy scalars by Python ones."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return _clean(value)
    return value


@dataclass(frozen=True)
class LawsFile:
    """Everything `plan-fit` writes for one (objective, model) group of runs.

    Attributes:
        metric: the metric fitted.
        higher_is_better: its direction.
        fits: one `FitResult` per language code.
        source: the results table the fits came from.
        pooled: the pooled fit's shared parameters, draws and notes, or None.
        objective: the training objective of the runs (`sft`, `dft`), when known.
        model: the base model of the runs, when known.
        settings: how the fit was made (law requested, bootstrap draws, seed, Huber delta).
        sweep: the sweep the runs came from, as `plan-sweep export` recorded it beside the
            results table (`{"study": ..., "spec": {...}}`), carried as is so the mixture can
            name it; None for results from elsewhere.
        transfer: the transfer law fitted on mixture runs (`fits.transfer.TransferLaw.to_dict`,
            read with `fits.transfer.transfer_of`), or None; `plan-fit transfer` adds it.
    """

    metric: str
    higher_is_better: bool
    fits: dict[str, FitResult]
    source: str = ""
    pooled: dict[str, Any] | None = None
    objective: str | None = None
    model: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    sweep: dict[str, Any] | None = None
    transfer: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "fits", dict(self.fits))
        object.__setattr__(self, "settings", dict(self.settings))
        if self.pooled is not None:
            object.__setattr__(self, "pooled", dict(self.pooled))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict; inverse of `from_dict`."""
        return {
            "format": LAWS_FORMAT,
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "source": self.source,
            "objective": self.objective,
            "model": self.model,
            "settings": _json_safe(self.settings),
            "languages": {code: fit.to_dict() for code, fit in self.fits.items()},
            "pooled": None if self.pooled is None else _json_safe(self.pooled),
            "sweep": self.sweep,
            "transfer": None if self.transfer is None else _json_safe(self.transfer),
        }

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> LawsFile:
        """Rebuild a `LawsFile` from `to_dict()` output.

        Raises:
            DataError: the format tag or a required key is missing or wrong.
        """
        if not isinstance(payload, dict) or payload.get("format") != LAWS_FORMAT:
            found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
            raise DataError(
                f"Not a laws file: expected format {LAWS_FORMAT!r}, found {found!r}; "
                "write one with plan-fit."
            )
        missing = [k for k in ("metric", "higher_is_better", "languages") if k not in payload]
        if missing:
            raise DataError(f"The laws file lacks {', '.join(missing)}; rewrite it with plan-fit.")
        if not isinstance(payload["languages"], dict):
            raise DataError("The laws file's 'languages' must map language codes to entries.")
        metric, higher = str(payload["metric"]), payload["higher_is_better"]
        known = METRICS.get(metric)
        if known is not None and bool(higher) != known.higher_is_better:
            raise DataError(
                f"The laws file says higher_is_better={higher!r} for {metric}, which is "
                f"{'higher' if known.higher_is_better else 'lower'}-is-better; re-run plan-fit "
                "on the results table to rewrite it."
            )
        return cls(
            metric=str(payload["metric"]),
            higher_is_better=bool(payload["higher_is_better"]),
            fits={
                str(code): FitResult.from_dict(entry)
                for code, entry in payload["languages"].items()
            },
            source=str(payload.get("source") or ""),
            pooled=payload.get("pooled"),
            objective=payload.get("objective"),
            model=payload.get("model"),
            settings=dict(payload.get("settings") or {}),
            sweep=payload.get("sweep") if isinstance(payload.get("sweep"), dict) else None,
            transfer=payload.get("transfer")
            if isinstance(payload.get("transfer"), dict)
            else None,
        )


_NUMBER_LIST = re.compile(r"\[\s*((?:-?[0-9.eE+-]+|null)(?:,\s*(?:-?[0-9.eE+-]+|null))*)\s*\]")


def laws_to_json(laws_file: LawsFile) -> str:
    """The laws file as JSON text: indented, with number lists (draws) kept on one line."""
    text = json.dumps(laws_file.to_dict(), indent=2, ensure_ascii=False, allow_nan=False)
    return _NUMBER_LIST.sub(lambda m: "[" + re.sub(r",\s*", ", ", m.group(1)) + "]", text) + "\n"


def write_laws(laws_file: LawsFile, path: str | os.PathLike[str]) -> Path:
    """Write `laws_file` as JSON to `path` atomically (temporary file, then rename).

    Returns:
        The path written.
    """
    return atomic_write_text(path, laws_to_json(laws_file))


def read_laws(path: str | os.PathLike[str]) -> LawsFile:
    """Read a laws file written by `write_laws` (or `plan-fit`).

    Raises:
        DataError: the file is missing, is not JSON, or is not a `muit-laws/1` file, or it
            says something impossible (see `FitResult.from_dict`; a known metric's direction
            flipped).
    """
    target = Path(path)
    if not target.is_file():
        raise DataError(f"No laws file at {str(target)!r}; run plan-fit on a results.csv first.")
    try:
        payload = json.loads(target.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"Cannot read the laws file {str(target)!r} as JSON: {err}.") from err
    return LawsFile.from_dict(payload)
