"""`plan-fit`: fit per-language scaling laws, with uncertainty, to a sweep's results table.

Reads `results.csv` (or any CSV with the contract's columns), fits each language's law for the
chosen metric (`--law auto` picks by held-out extrapolation error), bootstraps over runs, and
writes the laws file for `plan-allocate`, a table on stdout and PNG plots.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from threadpoolctl import threadpool_limits

from fits.data import (
    group_keys,
    group_rows,
    merge_duplicates,
    metric_ceiling,
    metric_direction,
    points_by_language,
    read_results,
    select_metric,
    select_study,
    sweep_record,
)
from fits.fitting import FitOptions
from fits.laws import LAW_INFO
from fits.pipeline import FitRequest, fit_all, law_choices
from fits.plots import plot_language, plot_overview
from fits.report import format_table, summary
from fits.result import laws_to_json
from fits.transfer_cli import main as transfer_main
from muit_core import ConfigError, DataError, FitError, OutputSet, parse_count
from muit_core.cli import add_common_flags, run_main

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd

    from fits.data import Points
    from fits.result import LawsFile

log = logging.getLogger("plan-fit")

EPILOG = """examples:
  plan-fit runs/smoke/results.csv
      fit heldout_ce per language, law chosen by extrapolation error; writes runs/smoke/fits/
  plan-fit results.csv --metric chrf --law saturating --bootstrap 2000 --seed 1
  plan-fit results.csv --law similarity            pooled law: shared exponent, gamma per language
  plan-fit results.csv --law power --share beta    pooled power law with one exponent
  plan-fit results.csv --law chinchilla --n-params 135M   model-size axis from n_params
  plan-fit results.csv --format json --no-plots > fits.json
  plan-fit transfer validation.csv --laws laws.json    transfer law from mixture runs (--help)

outputs (in --out, default: a fits/ folder next to the CSV):
  laws.json (one laws_<objective>_<model>.json per group when the table has several),
  plots/<language>.png and plots/overview.png
"""


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of `plan-fit`."""
    parser = argparse.ArgumentParser(
        prog="plan-fit",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("results_csv", type=Path, help="results table (contract 3)")
    parser.add_argument(
        "--metric", default="heldout_ce", help="metric to fit (default: %(default)s)"
    )
    parser.add_argument(
        "--law", default="auto", choices=law_choices(), help="law to fit (default: auto)"
    )
    parser.add_argument(
        "--share",
        default="",
        help="comma-separated parameters shared across languages, e.g. alpha",
    )
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=1000,
        help="bootstrap draws over runs (default: 1000; 0: none)",
    )
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    parser.add_argument(
        "--holdout",
        type=int,
        default=1,
        help="largest sizes held out to score extrapolation (default: 1)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="output folder (default: <csv folder>/fits)"
    )
    parser.add_argument(
        "--plan-max",
        default=None,
        help="largest data size of the planning range, in examples, e.g. 500k "
        "(default: 100x the largest size)",
    )
    parser.add_argument(
        "--objective", default=None, help="fit only runs of this objective (sft, dft)"
    )
    parser.add_argument("--model", default=None, help="fit only runs of this base model")
    parser.add_argument(
        "--study",
        default=None,
        help="fit only runs of this sweep study (the `study` column), when the table has several",
    )
    parser.add_argument(
        "--n-params",
        default=None,
        help="model size a chinchilla fit predicts at, in parameters, e.g. 135M "
        "(default: the largest run)",
    )
    parser.add_argument(
        "--max-value",
        type=float,
        default=None,
        help="highest possible value of a bounded score (default: 100 for chrf and bleu)",
    )
    parser.add_argument(
        "--drop-nonfinite",
        action="store_true",
        help="skip rows with NaN or inf values instead of failing",
    )
    parser.add_argument(
        "--average-duplicates",
        action="store_true",
        help="fit the mean of a run that appears more than once (same language, objective, "
        "model, size and seed) instead of failing",
    )
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument(
        "--format",
        choices=("table", "json"),
        default="table",
        help="stdout format (default: table)",
    )
    add_common_flags(parser)
    return parser


def _groups(
    rows: pd.DataFrame, args: argparse.Namespace, request: FitRequest
) -> list[tuple[str, str]]:
    """The (objective, model) groups to fit, after --objective and --model."""
    by_model = not request.across_models
    keys = group_keys(rows, by_model=by_model)
    for flag, position in (("objective", 0), ("model", 1)):
        wanted = getattr(args, flag)
        if wanted is None:
            continue
        if flag == "model" and not by_model:
            raise ConfigError(
                f"--model does not apply to the {request.law} law, which fits across models."
            )
        present = sorted({key[position] for key in keys})
        if wanted not in present:
            raise DataError(
                f"No runs with {flag} {wanted!r}; the table has: {', '.join(present)}."
            )
        keys = [key for key in keys if key[position] == wanted]
    return keys


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


def _write_plots(
    outputs: OutputSet,
    folder: str,
    laws_file: LawsFile,
    points: dict[str, Points],
    plan_max: float,
) -> None:
    for code, fit in laws_file.fits.items():
        outputs.write_png(
            f"{folder}/{_slug(code)}.png", plot_language(fit, points.get(code), plan_max=plan_max)
        )
    outputs.write_png(
        f"{folder}/overview.png", plot_overview(laws_file, points, plan_max=plan_max)
    )


def _positive_count(text: str | None, option: str, example: str) -> float | None:
    """A count option's value (None when not given), which must be above 0."""
    if text is None:
        return None
    value = parse_count(text, what=option)
    if value <= 0:
        raise ConfigError(f"{option}={text!r} must be above 0; give a size such as {example}.")
    return value


def _request(args: argparse.Namespace) -> FitRequest:
    """What to fit, from the arguments; every option is checked here, before any work."""
    if args.bootstrap < 0:
        raise ConfigError(f"--bootstrap must be >= 0; got {args.bootstrap}.")
    if args.seed < 0:
        raise ConfigError(f"--seed must be >= 0; got {args.seed}. Give a non-negative integer.")
    if args.holdout < 1:
        raise ConfigError(
            f"--holdout must be 1 or more (the largest sizes held out to score "
            f"extrapolation); got {args.holdout}."
        )
    if args.max_value is not None and not (math.isfinite(args.max_value) and args.max_value > 0):
        raise ConfigError(
            f"--max-value={args.max_value} must be a positive number, e.g. 100 for chrF."
        )
    share = tuple(name.strip() for name in args.share.split(",") if name.strip())
    model_size = _positive_count(args.n_params, "--n-params", "135M")
    ceiling = args.max_value if args.max_value is not None else metric_ceiling(args.metric)
    return FitRequest(
        law=args.law,
        share=share,
        n_holdout=args.holdout,
        options=FitOptions(
            n_bootstrap=args.bootstrap, seed=args.seed, model_size=model_size, ceiling=ceiling
        ),
    )


def _refuse_nothing_fitted(
    laws_file: LawsFile, points: dict[str, Points], label: str, n_groups: int
) -> None:
    """Raise when no language of a group has a usable fit, saying why and what to run."""
    if any(fit.success for fit in laws_file.fits.values()):
        return
    others = (
        " (or fit the other groups alone with --objective and --model)" if n_groups > 1 else ""
    )
    fewest = min(len(info.params) for info in LAW_INFO.values() if not info.pooled)
    sizes = {code: np.unique(pts.d[pts.d > 0]) for code, pts in points.items()}
    if all(found.size < fewest for found in sizes.values()):
        listed = "; ".join(
            f"{code}: {', '.join(f'{s:g}' for s in found) or 'none'}"
            for code, found in sizes.items()
        )
        raise FitError(
            f"No language of {label} could be fitted: every law needs {fewest} or more "
            f"distinct data sizes above 0, and each language has fewer ({listed}); run the "
            f"sweep at more sizes (grid.sizes), export it, then run plan-fit again{others}."
        )
    listed = "; ".join(f"{code}: {fit.message}" for code, fit in laws_file.fits.items())
    raise FitError(
        f"No language of {label} could be fitted ({listed}); fix those runs or try another "
        f"--law, then run plan-fit again{others}."
    )


def run(args: argparse.Namespace) -> int:
    """Run `plan-fit` on parsed arguments; returns the exit code.

    Every argument and the output folder are checked first, every group is fitted and
    plotted next, and only then are the outputs put in place, all or none (`OutputSet`).
    """
    request = _request(args)
    plan_max = _positive_count(args.plan_max, "--plan-max", "500k")
    out_dir = args.out if args.out is not None else args.results_csv.parent / "fits"
    OutputSet.check(out_dir)
    frame = select_study(read_results(args.results_csv), args.study)
    rows = select_metric(frame, args.metric, drop_nonfinite=args.drop_nonfinite)
    rows = merge_duplicates(rows, average=args.average_duplicates)
    higher = metric_direction(frame, args.metric)
    groups = _groups(rows, args, request)
    plot_max = plan_max if plan_max is not None else 100.0 * float(rows["n_examples"].max())
    fitted: list[tuple[str, LawsFile, dict[str, Points]]] = []
    for objective, model in groups:
        points = points_by_language(rows, objective, model)
        label = objective if model == "*" else f"{objective}/{model}"
        log.info("Fitting %s for %d language(s) (%s)", args.metric, len(points), label)
        laws_file = fit_all(
            points,
            request,
            metric=args.metric,
            higher_is_better=higher,
            source=str(args.results_csv),
            objective=objective,
            model=None if model == "*" else model,
        )
        _refuse_nothing_fitted(laws_file, points, f"{args.metric} ({label})", len(groups))
        sweep = sweep_record(args.results_csv, group_rows(rows, objective, model))
        laws_file = dataclasses.replace(laws_file, sweep=sweep)
        if args.average_duplicates:
            settings = {**laws_file.settings, "average_duplicates": True}
            laws_file = dataclasses.replace(laws_file, settings=settings)
        name = "laws" if len(groups) == 1 else f"laws_{_slug(objective)}_{_slug(model)}"
        fitted.append((name, laws_file, points))
    _warn_dropped_transfer(out_dir, [name for name, _, _ in fitted])
    outputs_written: list[tuple[LawsFile, str]] = []
    with OutputSet(out_dir) as outputs:
        for name, laws_file, points in fitted:
            path = outputs.write_text(f"{name}.json", laws_to_json(laws_file))
            if not args.no_plots:
                folder = "plots" if len(groups) == 1 else f"plots_{name[5:]}"
                _write_plots(outputs, folder, laws_file, points, plot_max)
            outputs_written.append((laws_file, str(path)))
    for _, written in outputs_written:
        log.info("Wrote %s", written)
    if not args.no_plots:
        n_plots = sum(len(laws_file.fits) + 1 for laws_file, _ in outputs_written)
        log.info("Wrote %d plot(s) to %s", n_plots, out_dir)
    if args.format == "json":
        payload = [summary(laws_file, path) for laws_file, path in outputs_written]
        json.dump(payload[0] if len(payload) == 1 else payload, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(
            "\n".join(format_table(laws_file, path) for laws_file, path in outputs_written)
        )
    failed = [
        code
        for laws_file, _ in outputs_written
        for code, fit in laws_file.fits.items()
        if not fit.success
    ]
    if failed:
        log.warning("No usable fit for %s; see the table's messages.", ", ".join(failed))
    return 0


BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _warn_dropped_transfer(out_dir: Path, names: list[str]) -> None:
    """Warn when a laws file about to be replaced carries a transfer law (`plan-fit transfer`
    adds it, fitted on the old laws; the new file has none until it is fitted again)."""
    for name in names:
        old = out_dir / f"{name}.json"
        try:
            had = old.is_file() and json.loads(old.read_text(encoding="utf-8")).get("transfer")
        except (OSError, ValueError, AttributeError):
            had = False
        if had:
            log.warning(
                "%s had a transfer law, fitted on the laws this run replaces; fit it again: "
                "plan-fit transfer VALIDATION_CSV --laws %s",
                old,
                old,
            )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `plan-fit`: runs single-threaded BLAS unless the user chose otherwise."""
    # Fitting solves many tiny systems, where threaded BLAS brings nothing and its spinning
    # threads cost much: on a busy 2-core machine, scipy's L-BFGS-B and numpy's batched solves
    # ran 4-12x slower with OpenBLAS's default threads. The limit reaches the BLAS libraries
    # loaded by then (numpy's and scipy's, which this module's imports load). A user who set a
    # thread variable keeps it; library users (who import `fits` themselves) are not affected.
    chose = any(name in os.environ for name in BLAS_THREAD_VARIABLES)
    arguments = list(sys.argv[1:] if argv is None else argv)
    with threadpool_limits(limits=None if chose else 1):
        if arguments[:1] == ["transfer"]:  # a results table is never named `transfer`
            return transfer_main(arguments[1:])
        return run_main(build_parser(), run, arguments)


if __name__ == "__main__":
    sys.exit(main())
