"""Mixtures drawn around a plan, for `plan-sweep validate --random-mixtures K --leave-one-out`:
mixture runs whose per-language examples vary, the data a transfer law is fitted on.

- `dirichlet-1` ... `dirichlet-K`: shares drawn from Dirichlet(alpha = 20 * p), p the
  planner's shares (languages the plan gives nothing stay at 0). Draw i uses the generator
  `numpy.random.default_rng([mixture seed, i])`, so the same command draws the same mixtures
  and `--random-mixtures 6` after `--random-mixtures 4` adds two and keeps the first four.
- `without-<code>`: that language at 0, its share spread over the others in proportion to
  the plan (evenly when the plan gives the others nothing); one per language the plan feeds.

Each is rounded to whole examples at the planner's total budget and within every language's
cap (pool x max epochs; what a cap cuts goes to the languages with room, in proportion to
their shares). They enter the mixture as baselines marked `"drawn"`, so workers read them from
the study's copy of the mixture, the study name ignores them (it covers the file's own
allocations, from which these are drawn) and the verdict does not compare the planner with them.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping

import numpy as np

from muit_core import ConfigError
from sweeps.mixture import PLANNER, Mixture, parse_mixture

CONCENTRATION = 20.0  # alpha = CONCENTRATION * p: a share's sd is about sqrt(p (1-p) / 21)
MAX_RANDOM_MIXTURES = 50
DIRICHLET_PREFIX = "dirichlet-"
LEAVE_OUT_PREFIX = "without-"


def parse_count(text: str | None) -> int:
    """`--random-mixtures K` as a whole number 0..MAX_RANDOM_MIXTURES (None reads as 0).

    Raises:
        ConfigError: K is not a whole number, is negative or is above the cap.
    """
    if text is None:
        return 0
    stripped = text.strip()
    if not stripped.lstrip("-").isdigit():
        raise ConfigError(
            f"--random-mixtures {text!r} is not a whole number; write e.g. --random-mixtures 4."
        )
    count = int(stripped)
    if count < 0 or count > MAX_RANDOM_MIXTURES:
        raise ConfigError(
            f"--random-mixtures {count} is outside 0..{MAX_RANDOM_MIXTURES}; each mixture is a "
            f"full training run per seed, so ask for at most {MAX_RANDOM_MIXTURES}."
        )
    return count


def _caps(mixture: Mixture) -> dict[str, float]:
    """Each language's cap in whole examples (inf where the mixture records none)."""
    return {
        lang.code: float(math.floor(lang.cap + 1e-9)) if math.isfinite(lang.cap) else math.inf
        for lang in mixture.languages
    }


def round_to_budget(
    shares: Mapping[str, float], budget: int, caps: Mapping[str, float], name: str
) -> dict[str, int]:
    """Whole examples per language summing to `budget`, none above its cap, proportional to
    `shares` (which need not sum to 1): water-fill the caps, then hand out the remainder of
    the rounding by largest fraction (ties in the languages' order). A language with share 0
    gets 0.

    Raises:
        ConfigError: the languages with a positive share cannot hold the budget under their
            caps.
    """
    open_codes = [code for code, s in shares.items() if s > 0]
    room = sum(caps[code] for code in open_codes)
    if room < budget:
        raise ConfigError(
            f"The mixture {name} cannot hold the budget of {budget} examples: its languages "
            f"{', '.join(open_codes)} take at most {room:g} under their caps (pool x max "
            "epochs); drop --leave-one-out/--random-mixtures or plan a smaller budget."
        )
    amounts = dict.fromkeys(shares, 0.0)
    left, free = float(budget), list(open_codes)
    while left > 1e-9 and free:
        total = sum(shares[code] for code in free)
        capped = [c for c in free if amounts[c] + left * shares[c] / total >= caps[c]]
        if not capped:
            for code in free:
                amounts[code] += left * shares[code] / total
            break
        for code in capped:
            left -= caps[code] - amounts[code]
            amounts[code] = caps[code]
        free = [c for c in free if c not in capped]
    whole = {code: math.floor(value + 1e-9) for code, value in amounts.items()}
    order = sorted(open_codes, key=lambda c: -(amounts[c] - whole[c]))
    short = budget - sum(whole.values())
    while short > 0:
        for code in order:
            if short > 0 and whole[code] < caps[code]:
                whole[code] += 1
                short -= 1
    return whole


def dirichlet_allocations(mixture: Mixture, count: int) -> dict[str, dict[str, int]]:
    """`dirichlet-1` ... `dirichlet-<count>`: examples per language, drawn as the module says."""
    plan = mixture.allocation(PLANNER).examples
    budget = sum(plan.values())
    fed = [code for code in mixture.codes if plan[code] > 0]
    caps = _caps(mixture)
    out: dict[str, dict[str, int]] = {}
    for i in range(1, count + 1):
        name = f"{DIRICHLET_PREFIX}{i}"
        rng = np.random.default_rng([mixture.seed, i])
        drawn = rng.dirichlet([CONCENTRATION * plan[code] / budget for code in fed])
        shares = {code: 0.0 for code in mixture.codes}
        shares.update({code: float(s) for code, s in zip(fed, drawn, strict=True)})
        out[name] = round_to_budget(shares, budget, caps, name)
    return out


def leave_one_out_allocations(mixture: Mixture) -> dict[str, dict[str, int]]:
    """`without-<code>` per language the plan feeds, as the module says."""
    plan = mixture.allocation(PLANNER).examples
    budget = sum(plan.values())
    caps = _caps(mixture)
    out: dict[str, dict[str, int]] = {}
    if len(mixture.codes) < 2:
        return out
    for left_out in (code for code in mixture.codes if plan[code] > 0):
        rest = sum(plan[code] for code in mixture.codes if code != left_out)
        shares = {
            code: 0.0 if code == left_out else (float(plan[code]) if rest else 1.0)
            for code in mixture.codes
        }
        name = f"{LEAVE_OUT_PREFIX}{left_out}"
        out[name] = round_to_budget(shares, budget, caps, name)
    return out


def with_drawn(mixture: Mixture, count: int, leave_one_out: bool) -> Mixture:
    """The mixture with `count` Dirichlet mixtures (and the leave-one-out ones) added as
    baselines marked `"drawn"`; the mixture itself when there are none to add.

    Raises:
        ConfigError: the file already has a baseline of a drawn one's name, or a budget the
            caps cannot hold (`round_to_budget`).
    """
    drawn = dirichlet_allocations(mixture, count)
    if leave_one_out:
        drawn.update(leave_one_out_allocations(mixture))
    if not drawn:
        return mixture
    clash = [name for name in drawn if name in mixture.allocations]
    if clash:
        raise ConfigError(
            f"The mixture {mixture.path} already has an allocator {clash[0]!r}; rename it in "
            "the file or drop --random-mixtures/--leave-one-out."
        )
    method = f"dirichlet alpha={CONCENTRATION:g}*p, generator [seed {mixture.seed}, i]"
    entries = {
        name: {
            "examples": examples,
            "drawn": "leave one out" if name.startswith(LEAVE_OUT_PREFIX) else method,
        }
        for name, examples in drawn.items()
    }
    return merge_drawn(mixture, entries)


def merge_drawn(mixture: Mixture, entries: Mapping[str, Mapping[str, object]]) -> Mixture:
    """The mixture with the drawn baseline `entries` (name -> its raw entry) added or, where
    the mixture has a drawn one of that name, replacing it (a study's stored draws replace a
    fresh draw: they are what was enqueued); the file's own baselines are never replaced.

    Raises:
        DataError: an entry breaks the mixture's checks (`parse_mixture`).
    """
    raw = copy.deepcopy(mixture.raw)
    baselines = raw.setdefault("baselines", {})
    for name, entry in entries.items():
        if name not in baselines or baselines[name].get("drawn"):
            baselines[name] = dict(entry)
    return parse_mixture(raw, mixture.path)


def drawn_entries(raw: object) -> dict[str, dict[str, object]]:
    """The drawn baselines of a mixture file's raw content (e.g. a study's stored copy)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("baselines"), dict):
        return {}
    return {
        str(name): entry
        for name, entry in raw["baselines"].items()
        if isinstance(entry, dict) and entry.get("drawn")
    }
