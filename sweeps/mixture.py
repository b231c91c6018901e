"""The sweep stage's reading of a mixture file (`mixture.json`, written by `plan-allocate`).

`plan-sweep write-data` and `plan-sweep validate` read the mixture alone: per language its
corpus, pair filter and training-pool size; per allocator (the planner's and each baseline's)
the examples per language and the predicted score; the seed; and the resolved sweep spec the
laws were fitted on, when the results came from `plan-sweep` (a user's own CSV has none, and
then `--spec` names one). `planner` never imports `sweeps`: the file is the contract.

Every check runs before anything is written, and a bad file gets one sentence naming the
value and the fix.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from muit_core import ConfigError, DataError

MIXTURE_FORMAT = "muit-mixture/1"
PLANNER = "planner"
REWRITE_HINT = "re-run plan-allocate on the laws file to rewrite it"


@dataclass(frozen=True)
class Prediction:
    """A predicted score with its interval (the mixture's `interval_level`, 90% by default)."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class MixtureLanguage:
    """What the sweep stage needs to know of one language of the mixture.

    Attributes:
        code: the language code, as everywhere.
        corpus: where its pairs come from (`libreoffice` or a path), as the sweep read them.
        pair_filter: the sweep's pair filter in `PairFilter.to_text` form; '' = the corpus
            default.
        n_available: the training-pool size the plan assumed.
        cap: the most examples the plan allowed (pool x max epochs).
    """

    code: str
    corpus: str
    pair_filter: str
    n_available: int
    cap: float


@dataclass(frozen=True)
class MixtureAllocation:
    """One allocator's split of the budget, as the mixture file states it.

    Attributes:
        allocator: its name (`planner`, `uniform`, `proportional`, `temperature T=5`, ...).
        examples: examples per language.
        predicted: predicted score per language, where the file carries it.
        objective: the predicted objective (weighted mean score) with its interval.
        planner_gain: for a baseline, the planner's predicted gain over it.
        drawn: for a mixture drawn around the plan by `plan-sweep validate`
            (`sweeps.random_mixtures`), how it was drawn; '' for the file's own allocations.
    """

    allocator: str
    examples: dict[str, int]
    predicted: dict[str, Prediction]
    objective: Prediction | None
    planner_gain: Prediction | None
    drawn: str = ""


@dataclass(frozen=True)
class Mixture:
    """A mixture file, checked.

    Attributes:
        path: where it was read from.
        seed: the plan's seed (data selection and shuffling of the MuIT set).
        metric: the primary metric the laws were fitted on.
        higher_is_better: its direction.
        languages: per language, in the file's order.
        allocations: the planner's first, then each baseline's, by name.
        sweep_spec: the resolved sweep spec (`sweeps.spec.spec_to_dict` form), or None.
        sweep_model: the base model the laws were fitted for, or None.
        weights: each language's weight in the plan's objective.
        raw: the file's parsed content as it is (what a closed-loop study stores for its
            remote workers, which re-check it with `parse_mixture`).
    """

    path: Path
    seed: int
    metric: str
    higher_is_better: bool
    languages: tuple[MixtureLanguage, ...]
    allocations: dict[str, MixtureAllocation]
    sweep_spec: dict[str, Any] | None
    sweep_model: str | None
    weights: dict[str, float]
    raw: dict[str, Any]

    @property
    def codes(self) -> tuple[str, ...]:
        """The language codes, in the file's order."""
        return tuple(lang.code for lang in self.languages)

    def allocation(self, name: str) -> MixtureAllocation:
        """The allocation of `name` (exact, or the same letters and digits: `temperature-t-5`).

        Raises:
            ConfigError: no allocator of that name in the file.
        """
        if name in self.allocations:
            return self.allocations[name]
        by_slug = {allocator_slug(key): key for key in self.allocations}
        if allocator_slug(name) in by_slug:
            return self.allocations[by_slug[allocator_slug(name)]]
        known = ", ".join(self.allocations)
        raise ConfigError(f"The mixture {self.path} has no allocator {name!r}; it has: {known}.")


def allocator_slug(name: str) -> str:
    """`temperature T=3.33` -> `temperature-t-3-33`: a name that needs no quoting in a shell."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _prediction(raw: Any) -> Prediction | None:
    if not isinstance(raw, dict) or raw.get("value") is None:
        return None
    low, high = raw.get("low"), raw.get("high")
    value = float(raw["value"])
    return Prediction(
        value,
        float(low) if low is not None else math.nan,
        float(high) if high is not None else math.nan,
    )


def _examples(raw: Any, where: str, path: Path) -> dict[str, int]:
    if not isinstance(raw, dict):
        raise DataError(f"The mixture {path} has no examples for {where}; {REWRITE_HINT}.")
    out: dict[str, int] = {}
    for lang, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise DataError(
                f"The mixture {path} gives {where} {value!r} examples of {lang!r}; examples "
                f"must be whole numbers >= 0 ({REWRITE_HINT})."
            )
        if float(value) != int(value):
            raise DataError(
                f"The mixture {path} gives {where} {value!r} examples of {lang!r}, not a whole "
                f"number; {REWRITE_HINT}."
            )
        out[str(lang)] = int(value)
    return out


def read_mixture(path: str | Path) -> Mixture:
    """Read and check a mixture file.

    Raises:
        ConfigError: the file is missing.
        DataError: it is not a mixture file, is truncated, is of another format, or was edited
            into something the plan could not have said (an unknown language, examples above a
            language's cap, an allocator whose languages differ from the plan's).
    """
    mixture_path = Path(path)
    if not mixture_path.is_file():
        raise ConfigError(
            f"No mixture file at {str(mixture_path)!r}; pass the mixture.json that "
            "plan-allocate wrote (e.g. runs/demo/allocate/mixture.json)."
        )
    try:
        raw = json.loads(mixture_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(
            f"The mixture file {mixture_path} is not valid JSON ({err}); it may be truncated: "
            f"{REWRITE_HINT}."
        ) from None
    return parse_mixture(raw, mixture_path)


def parse_mixture(raw: Any, mixture_path: Path) -> Mixture:
    """Check a mixture file's parsed content; `mixture_path` names it in messages.

    Raises:
        DataError: as `read_mixture`.
    """
    if not isinstance(raw, dict) or raw.get("format") != MIXTURE_FORMAT:
        found = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
        raise DataError(
            f"{mixture_path} is not a {MIXTURE_FORMAT} mixture file (format {found!r}); "
            f"{REWRITE_HINT}."
        )
    missing = [key for key in ("languages", "baselines", "metric", "seed") if key not in raw]
    if missing:
        raise DataError(
            f"The mixture {mixture_path} lacks {', '.join(missing)} (written by an older "
            f"plan-allocate); {REWRITE_HINT}."
        )
    languages: list[MixtureLanguage] = []
    planner_examples: dict[str, int] = {}
    planner_predicted: dict[str, Prediction] = {}
    for code, entry in raw["languages"].items():
        if not isinstance(entry, dict):
            raise DataError(f"The mixture {mixture_path} has no entry for {code!r}.")
        cap = entry.get("cap")
        languages.append(
            MixtureLanguage(
                code=code,
                corpus=entry.get("corpus") or "",
                pair_filter=entry.get("pair_filter") or "",
                n_available=int(entry.get("n_available") or 0),
                cap=float(cap) if cap is not None else math.inf,
            )
        )
        planner_examples[code] = _examples({code: entry.get("examples")}, PLANNER, mixture_path)[
            code
        ]
        prediction = _prediction(entry.get("predicted"))
        if prediction is not None:
            planner_predicted[code] = prediction
    allocations = {
        PLANNER: MixtureAllocation(
            PLANNER,
            planner_examples,
            planner_predicted,
            _prediction(raw.get("predicted_objective")),
            None,
        )
    }
    for name, entry in raw["baselines"].items():
        predicted = {
            lang: p
            for lang, value in (entry.get("predicted") or {}).items()
            if (p := _prediction(value)) is not None
        }
        allocations[name] = MixtureAllocation(
            name,
            _examples(entry.get("examples"), name, mixture_path),
            predicted,
            _prediction(entry.get("objective")),
            _prediction(entry.get("planner_gain")),
            str(entry.get("drawn") or ""),
        )
    codes = [lang.code for lang in languages]
    for allocation in allocations.values():
        if sorted(allocation.examples) != sorted(codes):
            raise DataError(
                f"The mixture {mixture_path}: {allocation.allocator} allocates "
                f"{', '.join(sorted(allocation.examples))}, the plan has {', '.join(codes)}; "
                f"{REWRITE_HINT}."
            )
        for lang in languages:
            n = allocation.examples[lang.code]
            if n > lang.cap + 0.5:
                raise DataError(
                    f"The mixture {mixture_path}: {allocation.allocator} gives {lang.code} "
                    f"{n} examples, above its cap of {lang.cap:g} (pool {lang.n_available} x "
                    f"max epochs); {REWRITE_HINT}."
                )
    sweep: dict[str, Any] = raw["sweep"] if isinstance(raw.get("sweep"), dict) else {}
    spec, model = sweep.get("spec"), sweep.get("model")
    return Mixture(
        path=mixture_path,
        seed=int(raw["seed"]),
        metric=str(raw["metric"]),
        higher_is_better=bool(raw.get("higher_is_better", False)),
        languages=tuple(languages),
        allocations=allocations,
        sweep_spec=spec if isinstance(spec, dict) else None,
        sweep_model=str(model) if model else None,
        weights={
            code: float(entry.get("weight", 1.0) or 1.0)
            for code, entry in raw["languages"].items()
        },
        raw=raw,
    )
