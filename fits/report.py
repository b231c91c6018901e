"""Tables of fitted laws for the terminal, and a compact JSON summary of the same."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from muit_core import format_count

if TYPE_CHECKING:
    from fits.result import FitResult, LawsFile

LEVEL = 0.9  # central coverage of the intervals shown


def _number(value: float) -> str:
    if not math.isfinite(value):
        return "nan"
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.3g}"
    return f"{value:.4g}"


def _percent(value: Any) -> str:
    return "-" if value is None or not math.isfinite(float(value)) else f"{float(value):.2%}"


def chosen_error(fit: FitResult) -> float | None:
    """The held-out extrapolation error of the law the fit uses, when measured."""
    entry = fit.diagnostics.get("extrapolation", {}).get(fit.law)
    return None if entry is None else entry.get("error")


def parameter_text(fit: FitResult, level: float = LEVEL) -> str:
    """`name=value [low, high]` for every parameter; shared ones are marked with `*`."""
    parts = []
    for name, value in fit.params.items():
        low, high = fit.param_interval(name, level)
        mark = "*" if name in fit.shared else ""
        interval = "" if math.isnan(low) else f" [{_number(low)}, {_number(high)}]"
        parts.append(f"{name}{mark}={_number(value)}{interval}")
    parts.extend(f"{name}={format_count(value)} (fixed)" for name, value in fit.fixed.items())
    return "  ".join(parts)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * width for width in widths))
    lines.extend(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    )
    return [line.rstrip() for line in lines]


def format_table(laws_file: LawsFile, path: str = "", *, candidates: bool = True) -> str:
    """The fits as text: one row per language, then (with `candidates`) every candidate law's
    held-out error, the fit messages and the pooled fit."""
    direction = "higher" if laws_file.higher_is_better else "lower"
    group = ", ".join(
        f"{k} {v}"
        for k, v in (("objective", laws_file.objective), ("model", laws_file.model))
        if v and v != "*"
    )
    title = f"{laws_file.metric} ({direction} is better)" + (f", {group}" if group else "")
    lines = [title + (f" -> {path}" if path else "")]
    rows = []
    for code, fit in laws_file.fits.items():
        flags = [f for f in fit.diagnostics.get("flags", []) if not f.startswith("at_bound")]
        sizes = f"{format_count(fit.d_min)}-{format_count(fit.d_max)}" if fit.n_points else "-"
        rows.append(
            [
                code,
                fit.law,
                "yes" if fit.success else "NO",
                str(fit.n_points),
                sizes,
                _percent(chosen_error(fit)),
                ",".join(flags) or "-",
                parameter_text(fit) if fit.success else fit.message,
            ]
        )
    header = ["language", "law", "ok", "runs", "sizes", "extrap", "flags", "parameters [90%]"]
    lines.extend(_table(header, rows))
    if not candidates:
        return "\n".join(lines) + "\n"
    laws = sorted(
        {
            law
            for fit in laws_file.fits.values()
            for law in fit.diagnostics.get("extrapolation", {})
        }
    )
    if laws:
        lines.append("")
        lines.append("Held-out error by law (largest size predicted from the smaller ones):")
        error_rows = []
        for code, fit in laws_file.fits.items():
            extrap = fit.diagnostics.get("extrapolation", {})
            held: list[float] = next(
                (e["held_out"] for e in extrap.values() if e.get("held_out")), []
            )
            error_rows.append(
                [code, ",".join(format_count(h) for h in held) or "-"]
                + [_percent(extrap.get(law, {}).get("error")) for law in laws]
                + [fit.law]
            )
        lines.extend(_table(["language", "held out", *laws, "used"], error_rows))
    lines.extend(_predictive_lines(laws_file))
    notes = [f"{code}: {fit.message}" for code, fit in laws_file.fits.items() if fit.message]
    if notes:
        lines.append("")
        lines.extend(notes)
    if laws_file.pooled:
        pooled = laws_file.pooled
        shared = ", ".join(f"{k}={_number(v)}" for k, v in pooled.get("params", {}).items())
        lines.append("")
        lines.append(f"Pooled {pooled.get('law')} fit, shared: {shared} (* in the table)")
    return "\n".join(lines) + "\n"


def _predictive_lines(laws_file: LawsFile) -> list[str]:
    """The predictive mixture per language: law weights, reach error at 2x, 90% band at 10x."""
    rows = []
    for code, fit in laws_file.fits.items():
        pred = fit.predictive
        if pred is None or not fit.success or pred.n_draws == 0:
            continue
        mix = ", ".join(f"{c.law} {c.weight:.2f}" for c in pred.components)
        sd = ", ".join(f"{c.reach_sd:.1%}" for c in pred.components)
        far = 10 * pred.d_max
        low, high = fit.interval([far], LEVEL)
        band = f"{_number(float(fit([far])[0]))} [{_number(low[0])}, {_number(high[0])}]"
        anchor = "-" if pred.anchor is None else _number(pred.anchor.value)
        rows.append([code, mix, sd, anchor, f"{format_count(far)}: {band}"])
    if not rows:
        return []
    header = ["language", "law mixture (weights)", "reach error at 2x", "untuned", "at 10x [90%]"]
    return [
        "",
        "Predictive mixture (bands: law form + parameters + reach error, calibrated on "
        "backtests at 2x, 4x and 8x):",
        *_table(header, rows),
    ]


def summary(laws_file: LawsFile, path: str = "") -> dict[str, Any]:
    """The table's content as a JSON-safe dict (no bootstrap draws)."""
    languages = {}
    for code, fit in laws_file.fits.items():
        intervals = {}
        for name in fit.params:
            low, high = fit.param_interval(name, LEVEL)
            intervals[name] = [
                None if math.isnan(low) else low,
                None if math.isnan(high) else high,
            ]
        languages[code] = {
            "law": fit.law,
            "success": fit.success,
            "message": fit.message,
            "params": {k: v if math.isfinite(v) else None for k, v in fit.params.items()},
            "interval_90": intervals,
            "fixed": fit.fixed,
            "n_points": fit.n_points,
            "extrapolation_error": chosen_error(fit),
            "candidates": {
                law: e.get("error") for law, e in fit.diagnostics.get("extrapolation", {}).items()
            },
            "flags": fit.diagnostics.get("flags", []),
            "mixture_weights": fit.diagnostics.get("mixture_weights"),
            "backtest_error_at_2x": fit.diagnostics.get("backtest_error_at_2x"),
        }
    return {
        "laws_file": path,
        "metric": laws_file.metric,
        "higher_is_better": laws_file.higher_is_better,
        "objective": laws_file.objective,
        "model": laws_file.model,
        "languages": languages,
    }
