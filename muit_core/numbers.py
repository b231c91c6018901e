"""Human-friendly counts (`1M`, `250k`, `2.5e6`, `1_000_000`), parsed in one place."""

from __future__ import annotations

import math
import re

from muit_core.errors import ConfigError

_SUFFIX_FACTOR = {"": 1, "k": 1_000, "m": 1_000_000, "b": 1_000_000_000, "g": 1_000_000_000}
_COUNT_RE = re.compile(r"^\s*([0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][+-]?[0-9]+)?)\s*([kKmMbBgG]?)\s*$")


def parse_count(text: str, *, what: str = "count") -> float:
    """Parse a human-friendly, non-negative count.

    Accepts plain numbers (`1000`, `1_000_000`, `2.5e6`) and one suffix of k (thousand),
    M (million) or B/G (billion), case-insensitive: `250k`, `1M`, `1.5B`.

    Args:
        text: what the user typed.
        what: the option's name, for the error message (e.g. "--budget").

    Returns:
        The value as a float (callers round where they need whole examples).

    Raises:
        ConfigError: the text is not such a number, or it is negative, NaN or infinite.
    """
    match = _COUNT_RE.match(text)
    if match is None:
        raise ConfigError(
            f"Cannot read {what}={text!r} as a number; write it like 1M, 250k, 2.5e6 or 1_000_000."
        )
    number_text, suffix = match.groups()
    try:
        value = float(number_text) * _SUFFIX_FACTOR[suffix.lower()]
    except ValueError:
        raise ConfigError(
            f"Cannot read {what}={text!r} as a number; write it like 1M, 250k, 2.5e6 or 1_000_000."
        ) from None
    if not math.isfinite(value):
        raise ConfigError(f"{what}={text!r} is not finite; give a number such as 1M.")
    return value


def format_count(value: float) -> str:
    """Format a count compactly for tables: 1234 -> '1.23k', 1_000_000 -> '1M'."""
    magnitude = abs(value)
    for factor, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if magnitude >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{value:.3g}" if value != int(value) else str(int(value))
