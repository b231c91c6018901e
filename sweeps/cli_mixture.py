"""`plan-sweep write-data` and `plan-sweep validate`: the sweep stage's commands that read a
mixture file (`mixture.json`, written by `plan-allocate`)."""

from __future__ import annotations

import argparse
import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from muit_core import ConfigError, OutputSet
from sweeps.corpus import load_pools
from sweeps.general_data import GeneralRecipe
from sweeps.ledger import DEFAULT_JOURNAL_NAME, Ledger, RunState
from sweeps.mixture import PLANNER, Mixture, allocator_slug, parse_mixture, read_mixture
from sweeps.random_mixtures import CONCENTRATION, MAX_RANDOM_MIXTURES, parse_count, with_drawn
from sweeps.slurm import parse_slurm_options, submit_from_options
from sweeps.spec import SweepSpec, spec_to_dict
from sweeps.sweep import make_run_mixture_cell
from sweeps.templates import Direction
from sweeps.validate import (
    ValidationStudy,
    open_study,
    parse_allocators,
    parse_seeds,
    plan_study,
    resolve_spec,
    validation_table,
    write_outputs,
)
from sweeps.worker import run_local_workers, run_worker
from sweeps.write_data import DATA_FORMATS, mixture_examples
from sweeps.write_data import write_training_data as write_mixture_data

log = logging.getLogger(__name__)

MIXTURE_EPILOG = """\
examples:
  plan-sweep write-data runs/demo/allocate/mixture.json           # the planner's MuIT set
  plan-sweep write-data runs/demo/allocate/mixture.json --allocator uniform --format alpaca
  plan-sweep validate runs/demo/allocate/mixture.json             # planner vs uniform, ...
  plan-sweep validate mixture.json --allocators planner,uniform --seeds 0,1 --workers 2
  plan-sweep validate mixture.json train.epochs=2 --storage postgresql://user:pw@db/sweeps
  plan-sweep validate mixture.json --spec my_spec.toml  # laws fitted on results from elsewhere
  plan-sweep validate mixture.json --random-mixtures 4 --leave-one-out  # + mixtures around it
"""


def cmd_write_data(args: argparse.Namespace) -> int:
    """Write the MuIT training set of one allocation in a mixture file as JSONL, from the same
    corpora, pair filters and training pools the sweep used, in the sweep's nested order, with
    the sweep's general data at its ratios; per-language files, the held-out pairs the sweep
    scored, and configs for Hugging Face datasets, LLaMA-Factory and Axolotl beside it."""
    mixture = read_mixture(args.mixture)
    allocation = mixture.allocation(args.allocator)
    out_dir = (
        Path(args.out)
        if args.out
        else mixture.path.parent / "muit-data" / allocator_slug(allocation.allocator)
    )
    # The sweep's settings: --spec's, else the mixture's own, else the spec defaults.
    has_spec = args.spec is not None or mixture.sweep_spec is not None
    spec = resolve_spec(mixture, args.spec, []) if has_spec else SweepSpec()
    direction = Direction.parse(args.direction or spec.data.direction)
    manifest = write_mixture_data(
        mixture,
        allocation,
        out_dir,
        direction=direction,
        data_format=args.format,
        system_prompt=spec.data.system_prompt,
        general=GeneralRecipe.from_data_spec(spec.data),
        heldout_size=spec.eval.heldout_size,
    )
    counts = ", ".join(f"{k} {v['examples']}" for k, v in manifest["languages"].items())
    general = f", {manifest['general_examples']} general" if manifest["general_examples"] else ""
    print(
        f"wrote {out_dir / 'train.jsonl'}: {manifest['examples']} examples of "
        f"{allocation.allocator}'s mixture ({counts}{general}), {args.format} format, "
        f"{direction.value}; per-language files in {out_dir / 'data'}, configs for datasets "
        "(README.md), LLaMA-Factory (dataset_info.json, llamafactory.yaml) and Axolotl "
        "(axolotl.yaml)"
    )
    return 0


def _check_corpora(study: ValidationStudy) -> None:
    """Draw every allocation's data once before anything is enqueued (a changed corpus or a
    missing general data file fails here, with one sentence, instead of in every worker)."""
    direction = Direction.parse(study.spec.data.direction)
    recipe = GeneralRecipe.from_data_spec(study.spec.data)
    for name in dict.fromkeys(cell.allocator for cell in study.cells):
        allocation = study.mixture.allocation(name)
        mixture_examples(study.mixture, allocation, direction, load_pools, recipe)


def cmd_validate(args: argparse.Namespace) -> int:
    """Train one MuIT model per (allocator, seed) on the mixture's allocations, score every
    language on the sweep's held-out pairs, and compare actual with predicted."""
    mixture = read_mixture(args.mixture)
    spec = resolve_spec(mixture, args.spec, args.overrides)
    mixture = with_drawn(mixture, parse_count(args.random_mixtures), args.leave_one_out)
    drawn = [name for name, a in mixture.allocations.items() if a.drawn]
    allocators = tuple(dict.fromkeys([*parse_allocators(args.allocators, mixture), *drawn]))
    seeds = parse_seeds(args.seeds)
    if args.workers is not None and args.workers < 0:
        raise ConfigError(f"--workers {args.workers} must be 0 (enqueue only) or more.")
    options = parse_slurm_options(args.slurm) if args.slurm else None
    out_dir = Path(args.out) if args.out else mixture.path.parent / "validate"
    OutputSet.check(out_dir)  # a bad --out fails before any work
    study = plan_study(mixture, spec, allocators, seeds, out_dir, args.storage)
    _check_corpora(study)
    ledger = open_study(study)
    mixture = parse_mixture(ledger.study_attr("mixture"), mixture.path)  # + the study's draws
    added = ledger.enqueue(list(study.cells), retry_failed=args.retry_failed)
    log.info(
        "validate %s: %s x seeds %s, %d cells, %d newly enqueued (study %s in %s)",
        mixture.path,
        ",".join(allocators),
        ",".join(map(str, seeds)),
        len(study.cells),
        added,
        study.config.study_name,
        out_dir,
    )
    factory: Callable[[], Any] = functools.partial(
        make_run_mixture_cell, spec_to_dict(spec), mixture.raw, str(mixture.path)
    )
    if options is not None:
        jobs = submit_from_options(options, spec.ledger.workers, ledger.config, factory)
        print(f"submitted SLURM jobs {', '.join(map(str, jobs.job_ids))}; rerun to report.")
        return 0
    n_workers = spec.ledger.workers if args.workers is None else args.workers
    if n_workers == 0:
        journal = (out_dir / DEFAULT_JOURNAL_NAME).resolve()
        where = ledger.config.storage_url or f"journal://{journal}"
        print(
            f"enqueued; start workers with: plan-sweep worker --storage {where} "
            f"--study {study.config.study_name} --sweep-dir {out_dir}; then rerun this "
            "command to write the verdict"
        )
        return 0
    if n_workers == 1:
        run_worker(ledger, factory())
    else:
        run_local_workers(n_workers, ledger.config, factory)
    return _report(ledger, mixture, out_dir)


def _report(ledger: Ledger, mixture: Mixture, out_dir: Path) -> int:
    records = ledger.records()
    failed = [r for r in records if r.state is RunState.FAILED]
    for record in failed:
        print(f"failed: {record.cell.key}: {record.error}")
    table = validation_table(ledger, mixture)
    if table.empty:
        raise ConfigError(
            "No mixture run has finished, so there is no verdict yet; run workers (see above) "
            "and rerun this command."
        )
    with OutputSet(out_dir) as out:
        verdict = write_outputs(out, table, mixture)
    print(verdict)
    print(f"\nvalidation: {out_dir / 'validation.csv'} (+ verdict.txt and two PNGs)")
    return 1 if failed else 0


def add_mixture_commands(sub: Callable[..., argparse.ArgumentParser]) -> None:
    """Register `write-data` and `validate` through `plan-sweep`'s sub-parser helper."""
    write = sub(
        "write-data", cmd_write_data, "write the MuIT training set of a mixture", MIXTURE_EPILOG
    )
    write.add_argument("mixture", metavar="MIXTURE_JSON", help="what plan-allocate wrote")
    write.add_argument(
        "--allocator", default=PLANNER, help="whose allocation (default: %(default)s)"
    )
    write.add_argument("--out", help="output folder (default: MIXTURE_DIR/muit-data/ALLOCATOR)")
    write.add_argument("--format", choices=DATA_FORMATS, default="chat")
    write.add_argument(
        "--direction",
        choices=("en-x", "x-en", "both"),
        help="translation direction (default: the sweep's)",
    )
    write.add_argument("--spec", help="the sweep spec, when the mixture carries none")

    validate = sub(
        "validate", cmd_validate, "train the mixture and its baselines; predicted vs actual",
        MIXTURE_EPILOG,
    )  # fmt: skip
    validate.add_argument("mixture", metavar="MIXTURE_JSON", help="what plan-allocate wrote")
    validate.add_argument(
        "overrides", nargs="*", help="key=value overrides of the sweep spec, e.g. train.epochs=2"
    )
    validate.add_argument(
        "--allocators",
        help="comma-separated (default: planner, uniform, proportional and the baseline "
        "predicted closest to the planner)",
    )
    validate.add_argument("--seeds", default="0", help="training seeds (default: %(default)s)")
    validate.add_argument("--spec", help="train with this spec instead of the mixture's own")
    validate.add_argument("--out", help="output folder (default: MIXTURE_DIR/validate)")
    validate.add_argument("--storage", help="ledger URL (default: a journal file in --out)")
    validate.add_argument(
        "--workers", type=int, help="local worker processes (default: the spec's); 0 enqueues"
    )
    validate.add_argument(
        "--slurm", metavar="KEY=VALUE,...", help="submit workers to SLURM, as for launch"
    )
    validate.add_argument(
        "--random-mixtures",
        metavar="K",
        help=f"also train K mixtures drawn around the plan, dirichlet-1..K: shares from "
        f"Dirichlet(alpha = {CONCENTRATION:g} x the planner's shares), seeded by the mixture's "
        "seed, at the planner's budget in examples and within the caps "
        f"(0..{MAX_RANDOM_MIXTURES})",
    )
    validate.add_argument(
        "--leave-one-out",
        action="store_true",
        help="also train without-LANG per language: LANG at 0 examples, its share spread over "
        "the others in proportion to the plan, at the same budget",
    )
    validate.add_argument(
        "--retry-failed", action="store_true", help="give failed cells another round of retries"
    )
