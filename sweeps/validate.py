"""`plan-sweep validate`: the closed loop. Train the planned MuIT mixture and its baselines as
real runs, one model per (allocator, seed), and compare what happened with what was predicted.

The cells are `MixtureCell`s in a study of their own, in the same ledger machinery as a sweep
(journal file in the output folder by default, or any storage URL; local workers, SLURM,
remote `plan-sweep worker`s; heartbeats, retries, idempotent relaunch). The study stores the
resolved spec and the mixture file's content, so a worker elsewhere needs neither file.

Outputs (all or none, in `--out`): `validation.csv` (contract 6: one row per run, language and
metric), `verdict.txt` (the table `sweeps.verdict.format_verdict` prints), and two PNGs:
`predicted_vs_actual.png` and `objective_per_allocator.png`.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from muit_core import METRICS, ConfigError, OutputSet
from sweeps.cells import LedgerConfig, MixtureCell, RunState
from sweeps.ledger import Ledger
from sweeps.mixture import PLANNER, Mixture
from sweeps.random_mixtures import drawn_entries, merge_drawn
from sweeps.spec import (
    SweepSpec,
    apply_overrides,
    load_spec,
    result_payload,
    spec_from_dict,
    spec_to_dict,
)
from sweeps.verdict import (
    VALIDATION_COLUMNS,
    format_verdict,
    plot_objectives,
    plot_predicted_vs_actual,
)

STUDY_KIND = "validate"  # the study attr `kind` of a closed-loop study
DEFAULT_BASELINES = ("uniform", "proportional")


def resolve_spec(mixture: Mixture, spec: str | None, overrides: Sequence[str]) -> SweepSpec:
    """The sweep spec the mixture's laws came from, with `key=value` overrides applied.

    `spec` (a file or built-in name) replaces the one the mixture carries; it is required when
    the mixture carries none (laws fitted on results from outside `plan-sweep`).

    Raises:
        ConfigError: no spec can be had, or an override is wrong.
    """
    if spec is not None:
        return load_spec(spec, list(overrides))
    if mixture.sweep_spec is None:
        raise ConfigError(
            f"The mixture {mixture.path} does not carry the sweep's spec (its laws were not "
            "fitted on a plan-sweep export); name the spec to train with: --spec SPEC."
        )
    raw = apply_overrides(mixture.sweep_spec, list(overrides))
    return spec_from_dict(raw, where=f"the sweep spec in {mixture.path}")


def default_allocators(mixture: Mixture) -> tuple[str, ...]:
    """The planner, uniform and proportional, plus the baseline predicted to come closest to
    the planner (the smallest predicted gain), when it is another one."""
    chosen = [PLANNER, *(b for b in DEFAULT_BASELINES if b in mixture.allocations)]
    gains = {name: g for name, g in predicted_gains(mixture).items() if math.isfinite(g)}
    if gains:
        closest = min(gains, key=lambda name: gains[name])
        if closest not in chosen:
            chosen.append(closest)
    return tuple(chosen)


def parse_allocators(text: str | None, mixture: Mixture) -> tuple[str, ...]:
    """`--allocators planner,uniform` as the mixture's own names (slugs accepted).

    Raises:
        ConfigError: an allocator is not in the mixture (the message lists those that are).
    """
    if not text:
        return default_allocators(mixture)
    names = [part.strip() for part in text.split(",") if part.strip()]
    return tuple(dict.fromkeys(mixture.allocation(name).allocator for name in names))


def parse_seeds(text: str) -> tuple[int, ...]:
    """`--seeds 0,1` as integers.

    Raises:
        ConfigError: a seed is not a non-negative integer.
    """
    seeds = []
    for part in (p.strip() for p in text.split(",")):
        if not part.isdigit():
            raise ConfigError(f"--seeds {text!r}: {part!r} is not a seed; write e.g. --seeds 0,1.")
        seeds.append(int(part))
    return tuple(dict.fromkeys(seeds))


def model_of(mixture: Mixture, spec: SweepSpec) -> str:
    """The base model to train: the one the laws were fitted for, else the spec's only one.

    Raises:
        ConfigError: the spec lists several models and the mixture does not say which.
    """
    if mixture.sweep_model:
        return mixture.sweep_model
    if len(spec.grid.models) == 1:
        return spec.grid.models[0]
    raise ConfigError(
        f"The spec lists models {', '.join(spec.grid.models)} and the mixture does not say "
        "which one its laws are for; pick one: grid.models=['NAME']."
    )


def mixture_cells(
    mixture: Mixture, spec: SweepSpec, allocators: Sequence[str], seeds: Sequence[int]
) -> list[MixtureCell]:
    """One cell per (allocator, seed)."""
    model = model_of(mixture, spec)
    return [
        MixtureCell(
            allocator=name,
            seed=seed,
            n_examples=sum(mixture.allocation(name).examples.values()),
            model=model,
            objective=spec.objective,
        )
        for name in allocators
        for seed in seeds
    ]


def study_name(mixture: Mixture, spec: SweepSpec) -> str:
    """`validate-<spec name>-<hash>`: the hash covers what a mixture run trains on (the seed,
    each language's corpus, pair filter and pool, each allocator's examples) and what changes a
    run's result in the spec, not the mixture's report fields, so relaunching the same
    validation is idempotent (also after plan-allocate rewrote the file with more fields) and
    adding allocators or seeds extends the same study."""
    payload = result_payload(spec)
    trained_on = {
        "seed": mixture.seed,
        "languages": {
            lang.code: [lang.corpus, lang.pair_filter, lang.n_available]
            for lang in mixture.languages
        },
        "allocations": {
            name: a.examples for name, a in mixture.allocations.items() if not a.drawn
        },
    }
    text = json.dumps({"mixture": trained_on, "spec": payload}, sort_keys=True)
    return f"{STUDY_KIND}-{spec.name}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class ValidationStudy:
    """A closed-loop study, ready to enqueue and run.

    Attributes:
        mixture: the mixture file, checked.
        spec: the resolved spec the runs train with.
        cells: the (allocator, seed) cells.
        config: the ledger's location and worker settings.
    """

    mixture: Mixture
    spec: SweepSpec
    cells: tuple[MixtureCell, ...]
    config: LedgerConfig


def plan_study(
    mixture: Mixture,
    spec: SweepSpec,
    allocators: Sequence[str],
    seeds: Sequence[int],
    out_dir: Path,
    storage: str | None,
) -> ValidationStudy:
    """Everything a validation needs, checked before anything is written.

    Raises:
        ConfigError: the ledger settings are wrong.
    """
    config = LedgerConfig(
        storage_url=storage or spec.ledger.storage or None,
        study_name=study_name(mixture, spec),
        sweep_dir=out_dir,
        heartbeat_interval_s=spec.ledger.heartbeat_s,
        max_retries=spec.ledger.max_retries,
    )
    cells = tuple(mixture_cells(mixture, spec, allocators, seeds))
    return ValidationStudy(mixture, spec, cells, config)


def open_study(study: ValidationStudy) -> Ledger:
    """Open the study's ledger and store what its workers need (kind, spec, mixture).

    The stored mixture keeps every drawn mixture the study already holds (a rerun without
    `--random-mixtures` still runs and reports the drawn cells; an earlier draw of a name
    replaces a fresh one, since it is what was enqueued); `ledger.study_attr("mixture")` is
    then the mixture to train and report with.
    """
    ledger = Ledger.open(study.config)
    stored = drawn_entries(ledger.study_attr("mixture"))
    mixture = merge_drawn(study.mixture, stored) if stored else study.mixture
    ledger.set_study_attr("kind", STUDY_KIND)
    ledger.set_study_attr("spec", spec_to_dict(study.spec))
    ledger.set_study_attr("mixture", mixture.raw)
    ledger.set_study_attr("mixture_path", str(study.mixture.path))
    return ledger


def validation_table(ledger: Ledger, mixture: Mixture) -> pd.DataFrame:
    """Contract 6: one row per finished mixture run, language and metric.

    `predicted`, `low` and `high` are the mixture's prediction for the primary metric (the one
    the laws were fitted on); other metrics have none (NaN).
    """
    rows: list[dict[str, Any]] = []
    for record in ledger.records():
        cell = record.cell
        if record.state is not RunState.DONE or not isinstance(cell, MixtureCell):
            continue
        allocation = mixture.allocation(cell.allocator)
        for key, value in record.metrics.items():
            language, _, metric = key.partition("/")
            prediction = allocation.predicted.get(language) if metric == mixture.metric else None
            info = METRICS.get(metric)
            rows.append(
                {
                    "allocator": cell.allocator,
                    "seed": cell.seed,
                    "language": language,
                    "examples": allocation.examples.get(language, 0),
                    "metric": metric,
                    "value": value,
                    "predicted": prediction.value if prediction else math.nan,
                    "low": prediction.low if prediction else math.nan,
                    "high": prediction.high if prediction else math.nan,
                    "weight": mixture.weights.get(language, 1.0),
                    "higher_is_better": info.higher_is_better if info else True,
                    "model": cell.model,
                    "objective": cell.objective,
                    "train_tokens": record.attrs.get("train_tokens"),
                    "wall_s": record.wall_s,
                    "trial": record.trial_number,
                }
            )
    columns = [*VALIDATION_COLUMNS, "model", "objective", "train_tokens", "wall_s", "trial"]
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values(["metric", "allocator", "seed", "language"], kind="stable")


def predicted_gains(mixture: Mixture) -> dict[str, float]:
    """The planner's predicted gain over each baseline, as `plan-allocate` wrote it."""
    return {
        name: a.planner_gain.value
        for name, a in mixture.allocations.items()
        if a.planner_gain is not None
    }


def write_outputs(out: OutputSet, table: pd.DataFrame, mixture: Mixture) -> str:
    """Stage `validation.csv`, `verdict.txt` and the two PNGs in `out`; returns the verdict."""
    import matplotlib

    matplotlib.use("Agg")
    buffer = io.StringIO()
    table.to_csv(buffer, index=False)
    out.write_text("validation.csv", buffer.getvalue())
    metric, higher = mixture.metric, mixture.higher_is_better
    drawn = tuple(name for name, a in mixture.allocations.items() if a.drawn)
    verdict = format_verdict(table, metric, higher, predicted_gains(mixture), skip=drawn)
    out.write_text("verdict.txt", verdict + "\n")
    out.write_png("predicted_vs_actual.png", plot_predicted_vs_actual(table, metric), dpi=130)
    out.write_png("objective_per_allocator.png", plot_objectives(table, metric, higher), dpi=130)
    return verdict
