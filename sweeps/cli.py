"""`plan-sweep`: look at the data, check the base model, and run sweeps."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from muit_core import ConfigError, LedgerError, parse_count
from muit_core.cli import add_common_flags, run_main
from sweeps.cli_mixture import add_mixture_commands
from sweeps.corpus import DEFAULT_SOURCE, load_pools, source_help
from sweeps.ledger import DEFAULT_JOURNAL_NAME, Ledger, LedgerConfig, RunState
from sweeps.model import DEFAULT_MODEL
from sweeps.pairs import (
    DEFAULT_HELDOUT_FRACTION,
    DEFAULT_MAX_WORDS,
    DEFAULT_MIN_WORDS,
    PairFilter,
)
from sweeps.slurm import parse_slurm_options, submit_from_options
from sweeps.spec import SweepSpec, load_spec, spec_to_dict
from sweeps.sweep import (
    check_grid,
    check_results_path,
    export_results,
    grid_cells,
    make_run_cell,
    make_run_mixture_cell,
    open_ledger,
    spec_from_ledger,
)
from sweeps.validate import STUDY_KIND
from sweeps.worker import run_local_workers, run_worker, run_worker_process

log = logging.getLogger(__name__)

EPILOG = """\
examples:
  plan-sweep launch demo                # the built-in demo spec; relaunching resumes it
  plan-sweep launch smoke train.epochs=2 --workers 2
  plan-sweep launch my_spec.toml --storage postgresql://user:pw@db-host/sweeps
  plan-sweep worker --storage postgresql://user:pw@db-host/sweeps --study demo-1a2b3c4d
  plan-sweep launch demo --slurm partition=gpu,workers=8,time=720
  plan-sweep status demo
  plan-sweep export demo                # writes runs/demo/results.csv (+ sweep.json)
  plan-sweep write-data runs/demo/allocate/mixture.json --out runs/muit-data
  plan-sweep validate runs/demo/allocate/mixture.json --seeds 0,1
  plan-sweep data --languages el,hi,tr,vi,zh-CN
  plan-sweep data --languages de --source libreoffice:/srv/libreoffice/usr/share/libreoffice/help
  plan-sweep data --languages sw --source corpora/{lang}.jsonl --format json
  plan-sweep model                      # load the embedded default model and score one batch
  plan-sweep model ./my-checkpoint
"""


def _split_languages(text: str) -> list[str]:
    return [code.strip() for code in text.split(",") if code.strip()]


def _add_corpus_flags(parser: argparse.ArgumentParser) -> None:
    """`--source` and the pair filter's flags, as `_pair_filter` reads them."""
    parser.add_argument(
        "--source",
        default=DEFAULT_SOURCE,
        help=source_help(),
    )
    parser.add_argument("--min-words", type=int, default=DEFAULT_MIN_WORDS, help="English words")
    parser.add_argument("--max-words", type=int, default=DEFAULT_MAX_WORDS, help="English words")
    parser.add_argument(
        "--heldout-fraction",
        type=float,
        default=DEFAULT_HELDOUT_FRACTION,
        help="share of distinct English sentences held out, as the sweep spec's "
        "data.heldout_fraction (default %(default)s)",
    )


def _pair_filter(args: argparse.Namespace) -> PairFilter:
    return PairFilter(args.min_words, args.max_words, args.heldout_fraction)


def cmd_data(args: argparse.Namespace) -> int:
    """Print per-language pair counts (training and held-out pools) and two sample pairs."""
    pair_filter = _pair_filter(args)
    rows: list[dict[str, Any]] = []
    for language in _split_languages(args.languages):
        pools = load_pools(args.source, language, pair_filter)
        samples = [{"en": p.en, pools.language: p.text} for p in pools.train[:2]]
        rows.append(
            {
                "language": pools.language,
                "aligned": pools.n_aligned,
                "translated": pools.n_translated,
                "in_length": pools.n_in_length,
                "unique": len(pools.train) + len(pools.heldout),
                "train": len(pools.train),
                "heldout": len(pools.heldout),
                "samples": samples,
            }
        )
    if args.format == "json":
        json.dump({"source": args.source, "languages": rows}, sys.stdout, ensure_ascii=False)
        print()
        return 0
    print(
        f"source: {args.source}; aligned = same file and paragraph id; translated = sides "
        f"differ; in-length = {args.min_words}-{args.max_words} English words; unique = "
        "distinct English sentences, split into train and held-out by a hash of the English"
    )
    columns = ("aligned", "translated", "in_length", "unique", "train", "heldout")
    print(f"{'language':<10}" + "".join(f"{c.replace('_', '-'):>12}" for c in columns))
    for row in rows:
        print(f"{row['language']:<10}" + "".join(f"{row[c]:>12}" for c in columns))
    for row in rows:
        print(f"\n[{row['language']}]")
        for sample in row["samples"]:
            print(f"  en: {sample['en']}")
            print(f"  {row['language']}: {sample[row['language']]}")
    return 0


def cmd_model(args: argparse.Namespace) -> int:
    """Load a base model, report how long it took, and score one sentence (a finite loss)."""
    import math

    import torch

    from sweeps.model import load_model

    started = time.perf_counter()
    model, tokenizer = load_model(args.name)
    load_s = time.perf_counter() - started
    batch = tokenizer(["LibreOffice is a free office suite."], return_tensors="pt")
    with torch.no_grad():
        loss = float(model(**batch, labels=batch["input_ids"]).loss)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {args.name}")
    print(f"layers: {model.config.num_hidden_layers}  parameters: {n_params / 1e6:.1f}M")
    print(f"load time: {load_s:.2f} s")
    print(f"loss on a sample sentence: {loss:.3f} nats/token")
    return 0 if math.isfinite(loss) else 1


PROBE_EPILOG = """\
Teacher-forced on held-out X -> English pairs (never training pairs), each layer's states are read
through the model's own final norm and LM head. p_ref is the mean probability of the English
reference's next token, top1 the share where it ranks first, ce_nats its cross-entropy. The
layer where p_ref rises is the model's "English pivot"; DFT aims to move it earlier.

examples:
  plan-sweep probe smollm2-135m-instruct --language el
  plan-sweep probe ./my-checkpoint --language hi --n 32 --max-words 20 --format json
"""


def cmd_probe(args: argparse.Namespace) -> int:
    """Logit lens: per layer, the probability the LM head puts on English references."""
    from sweeps.model import load_model
    from sweeps.probe import format_probe_table, logit_lens, probe_examples
    from sweeps.run import pick_device

    pair_filter = _pair_filter(args)
    pools = load_pools(args.source, args.language, pair_filter)
    examples = probe_examples(pools, args.n)
    if not examples:
        raise ConfigError(
            f"No held-out {args.language} pairs in {args.source} under these filters; "
            "raise --heldout-fraction or --max-words."
        )
    model, tokenizer = load_model(args.run_or_model, device=pick_device())
    table = logit_lens(
        model,
        tokenizer,
        examples,
        model_name=args.run_or_model,
        system_prompt=args.system_prompt,
        max_length=args.max_length,
        batch_size=args.batch_size,
    )
    if args.format == "json":
        json.dump(table.to_dict(), sys.stdout, ensure_ascii=False)
        print()
    else:
        print(format_probe_table(table))
    return 0


def _ledger_for(args: argparse.Namespace) -> Ledger:
    """The existing ledger named by a SPEC or by --storage/--study (its `config` names the study
    and the sweep folder); a study that was never launched is an error, and nothing is
    created."""
    if args.spec:
        return open_ledger(load_spec(args.spec, args.overrides), args.storage, create=False)
    if not (args.storage and args.study):
        raise ConfigError(
            "Name the sweep: give a SPEC (e.g. `demo`), or both --storage URL and --study NAME."
        )
    config = LedgerConfig(args.storage, args.study, Path(args.sweep_dir or "."))
    return Ledger.open(config, create=False)


def cmd_launch(args: argparse.Namespace) -> int:
    """Enqueue a spec's grid once (idempotent), run workers, and export results.csv."""
    spec = load_spec(args.spec, args.overrides, args.cells or ())
    log.info(
        "spec %s: %s, %s x sizes %s x seeds %s, %s %s (every field: --verbose)",
        spec.name,
        "/".join(spec.grid.models),
        ",".join(spec.data.languages),
        ",".join(map(str, spec.grid.sizes)),
        ",".join(map(str, spec.grid.seeds)),
        spec.objective,
        spec.train.method,
    )
    log.debug("resolved spec: %s", json.dumps(spec_to_dict(spec), sort_keys=True))
    # Every argument is checked before the grid is enqueued.
    if args.workers is not None and args.workers < 0:
        raise ConfigError(
            f"--workers={args.workers} is negative; give 0 to only enqueue the grid, or the "
            "number of local worker processes to run."
        )
    options = parse_slurm_options(args.slurm) if args.slurm else None
    caps = check_grid(spec)
    log.info("training pools: %s", ", ".join(f"{k} {v}" for k, v in caps.items()))
    ledger = open_ledger(spec, args.storage)
    cells = grid_cells(spec)
    added = ledger.enqueue(cells, retry_failed=args.retry_failed)
    log.info(
        "study %s in %s: %d cells, %d newly enqueued",
        spec.study_name(),
        spec.sweep_dir,
        len(cells),
        added,
    )
    factory = functools.partial(make_run_cell, spec_to_dict(spec))
    if options is not None:
        jobs = submit_from_options(options, spec.ledger.workers, ledger.config, factory)
        print(
            f"submitted SLURM jobs {', '.join(map(str, jobs.job_ids))} (logs in {jobs.log_dir}); "
            f"follow with: plan-sweep status {args.spec}"
        )
        return 0
    n_workers = _default_workers(spec) if args.workers is None else args.workers
    if n_workers == 0:
        journal = (spec.sweep_dir / DEFAULT_JOURNAL_NAME).resolve()
        where = ledger.config.storage_url or f"journal://{journal}"
        print(
            f"enqueued; start workers with: plan-sweep worker --storage {where} "
            f"--study {spec.study_name()} --sweep-dir {spec.sweep_dir}"
        )
        return 0
    if n_workers == 1:
        run_worker(ledger, factory())
    else:
        run_local_workers(n_workers, ledger.config, factory)
    path = spec.sweep_dir / "results.csv"
    table = export_results(ledger, spec.study_name(), path)
    _print_status(ledger)
    print(f"results: {path} ({table['n_examples'].size} rows)")
    return 0


def _default_workers(spec: SweepSpec) -> int:
    import torch

    gpus = torch.cuda.device_count()
    return max(gpus, 1) if spec.ledger.workers == 1 and gpus > 1 else spec.ledger.workers


def cmd_worker(args: argparse.Namespace) -> int:
    """Join a sweep from any machine: run its waiting cells until none are left."""
    ledger = _ledger_for(args)
    spec = spec_from_ledger(ledger)
    # The ledger named on the command line, kept as the spec says its workers keep it.
    config = dataclasses.replace(
        ledger.config,
        heartbeat_interval_s=spec.ledger.heartbeat_s,
        max_retries=spec.ledger.max_retries,
    )
    factory: Callable[[], Any] = functools.partial(make_run_cell, spec_to_dict(spec))
    if ledger.study_attr("kind") == STUDY_KIND:  # a closed-loop study: mixture cells
        factory = functools.partial(
            make_run_mixture_cell,
            spec_to_dict(spec),
            ledger.study_attr("mixture"),
            str(ledger.study_attr("mixture_path", "mixture.json")),
        )
    summary = run_worker_process(config, factory, stop_when_empty=not args.wait)
    print(f"worker {summary.worker}: {summary.n_done} done, {summary.n_failed} failed")
    return 0


def cmd_rounds(args: argparse.Namespace) -> int:
    """Adaptive sweep in rounds into one study: launch the spec's (seed) grid, then per round
    export, plan-fit, plan-suggest and launch the suggested cells; prints a line per round
    (runs so far, the plan and its interval, the next cells' expected gain). Run it again to
    resume an interrupted round."""
    from sweeps.rounds import RoundsRequest, run_rounds

    spec = load_spec(args.spec, args.overrides)
    launch_args: list[str] = []
    if args.workers is not None:
        launch_args += ["--workers", str(args.workers)]
    if args.storage:
        launch_args += ["--storage", args.storage]
    if args.slurm:
        launch_args += ["--slurm", args.slurm]
    request = RoundsRequest(
        args.spec,
        tuple(args.overrides),
        args.budget,
        args.rounds,
        args.cells,
        args.min_gain,
        tuple(launch_args),
        ("--bootstrap", str(args.bootstrap)),
    )
    parse_count(args.budget, what="--budget")
    run_rounds(request, spec, main)
    return 0


def _print_status(ledger: Ledger) -> None:
    table = ledger.status()
    shown = table.copy()
    shown["mean_wall_s"] = shown["mean_wall_s"].round(1)
    shown["eta"] = [
        "-" if pd.isna(s) else time.strftime("%H:%M:%S", time.gmtime(s)) for s in shown["eta_s"]
    ]
    print(shown.drop(columns=["eta_s"]).to_string())


def cmd_status(args: argparse.Namespace) -> int:
    """Show done / running / failed / waiting cells per language, with an ETA."""
    ledger = _ledger_for(args)
    if args.format == "json":
        print(ledger.status().reset_index().to_json(orient="records"))
    else:
        _print_status(ledger)
    failed = [r for r in ledger.records() if r.state is RunState.FAILED]
    for record in failed:
        print(f"failed: {record.cell.key}: {record.error}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write results.csv (one row per finished run and metric) for plan-fit.

    The study's rows replace its own earlier rows there; other studies' rows are kept.
    """
    if args.out:
        check_results_path(Path(args.out))
    ledger = _ledger_for(args)
    path = Path(args.out) if args.out else ledger.config.sweep_dir / "results.csv"
    check_results_path(path)
    records = ledger.records()
    if not any(r.state is RunState.DONE for r in records):
        counts = ", ".join(
            f"{sum(r.state is state for r in records)} {state.value}"
            for state in RunState
            if any(r.state is state for r in records)
        )
        raise LedgerError(
            f"Study {ledger.config.study_name!r} has no finished runs yet ({counts or 'no cells'}"
            f"), so there is nothing to export and {str(path)!r} is left as it is; run its "
            "cells first (`plan-sweep worker`, or `plan-sweep launch SPEC`)."
        )
    table = export_results(ledger, ledger.config.study_name, path, allow_fewer=args.allow_fewer)
    runs = table.drop_duplicates(["language", "n_examples", "seed", "model", "objective"])
    print(f"wrote {path}: {len(runs)} runs, {len(table)} rows")
    return 0


def _add_sweep_target(parser: argparse.ArgumentParser, *, spec_required: bool) -> None:
    parser.add_argument(
        "spec",
        nargs=None if spec_required else "?",
        help="a spec file or built-in name (demo, smoke)",
    )
    parser.add_argument(
        "overrides", nargs="*", help="key=value overrides, e.g. train.epochs=2 grid.seeds=[0,1]"
    )
    parser.add_argument("--storage", help="ledger URL (default: the spec's, else a journal file)")


def build_parser() -> argparse.ArgumentParser:
    """The `plan-sweep` argument parser."""
    parser = argparse.ArgumentParser(
        prog="plan-sweep",
        description=(
            "Fine-tune a base model per language at several translation-data sizes, score each "
            "run on held-out pairs, and record every run in a shared ledger."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_flags(parser)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def sub(
        name: str, handler: Any, summary: str, epilog: str = EPILOG
    ) -> argparse.ArgumentParser:
        parser_ = commands.add_parser(
            name,
            help=summary,
            description=handler.__doc__,
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        add_common_flags(parser_, subcommand=True)
        parser_.set_defaults(handler=handler)
        return parser_

    data = sub("data", cmd_data, "per-language pair counts and samples")
    data.add_argument("--languages", required=True, help="comma-separated codes, e.g. el,hi")
    _add_corpus_flags(data)
    data.add_argument("--format", choices=("table", "json"), default="table")

    model = sub("model", cmd_model, "load a base model and score one batch")
    model.add_argument(
        "name",
        nargs="?",
        default=DEFAULT_MODEL,
        help=f"{DEFAULT_MODEL!r} (default), 'tiny-random-llama', a folder, or a hub id",
    )

    probe = sub(
        "probe",
        cmd_probe,
        "logit lens: per layer, mass on the English reference's next tokens",
        PROBE_EPILOG,
    )
    probe.add_argument(
        "run_or_model",
        metavar="RUN_OR_MODEL",
        help=f"{DEFAULT_MODEL!r}, 'tiny-random-llama', a saved model folder, or a hub id",
    )
    probe.add_argument("--language", required=True, help="the source language X, e.g. el")
    probe.add_argument("--n", type=int, default=16, help="held-out pairs (default %(default)s)")
    _add_corpus_flags(probe)
    probe.add_argument(
        "--system-prompt", default=None, help="as in training (default: the template's own)"
    )
    probe.add_argument("--max-length", type=int, default=128, help="tokens per example")
    probe.add_argument("--batch-size", type=int, default=8, help="examples per forward pass")
    probe.add_argument("--format", choices=("table", "json"), default="table")

    launch = sub("launch", cmd_launch, "enqueue a spec's grid and run workers")
    _add_sweep_target(launch, spec_required=True)
    launch.add_argument(
        "--workers",
        type=int,
        help="local worker processes (default: the spec's, or one per GPU); 0 only enqueues",
    )
    launch.add_argument(
        "--slurm",
        metavar="KEY=VALUE,...",
        help="submit workers to SLURM instead: partition=,workers=,time= (min),gpus=,cpus=, "
        "and any sbatch option",
    )
    launch.add_argument(
        "--retry-failed", action="store_true", help="give failed cells another round of retries"
    )
    launch.add_argument(
        "--cells",
        action="append",
        metavar="CELLS_TOML",
        help="also enqueue the [[grid.cells]] of this file (what plan-suggest writes); repeatable",
    )

    rounds = sub("rounds", cmd_rounds, "adaptive sweep: rounds of fit, suggest and launch")
    _add_sweep_target(rounds, spec_required=True)
    rounds.add_argument("--budget", required=True, help="the plan's budget in examples, e.g. 20k")
    rounds.add_argument("--rounds", type=int, default=3, help="rounds after the seed grid")
    rounds.add_argument("--cells", type=int, default=5, help="cells per round (default 5)")
    rounds.add_argument(
        "--min-gain",
        type=float,
        default=0.0,
        help="stop when the next cells' expected gain is under this (objective units)",
    )
    rounds.add_argument("--workers", type=int, help="local worker processes, as for launch")
    rounds.add_argument("--slurm", metavar="KEY=VALUE,...", help="as for launch")
    rounds.add_argument("--bootstrap", type=int, default=200, help="plan-fit's draws")

    for name, handler, summary in (
        ("worker", cmd_worker, "join a sweep and run its waiting cells"),
        ("status", cmd_status, "progress per language with an ETA"),
        ("export", cmd_export, "write results.csv"),
    ):
        target = sub(name, handler, summary)
        _add_sweep_target(target, spec_required=False)
        target.add_argument("--study", help="study name (printed by launch and status)")
        target.add_argument("--sweep-dir", help="sweep folder when no SPEC is given")
        if name == "worker":
            target.add_argument(
                "--wait", action="store_true", help="keep polling when the queue is empty"
            )
        if name == "status":
            target.add_argument("--format", choices=("table", "json"), default="table")
        if name == "export":
            target.add_argument("--out", help="CSV path (default: SWEEP_DIR/results.csv)")
            target.add_argument(
                "--allow-fewer",
                action="store_true",
                help="replace the study's rows even where the table held more of them",
            )
    add_mixture_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `plan-sweep`."""
    parser = build_parser()
    return run_main(parser, lambda args: args.handler(args), argv)


if __name__ == "__main__":
    sys.exit(main())
