"""`plan-fit transfer`: fit the transfer law (`fits.transfer`) on a closed loop's mixture runs.

Reads the validation table `plan-sweep validate` wrote and the laws file the mixtures were
planned from (fitted on the single-language sweep), fits the transfer forms with a bootstrap
over mixture runs, scores them and two yardsticks without transfer by leaving each
allocation's runs out, and writes the laws file again with the law under `transfer` (by
default in place; `--out DIR` writes DIR/laws.json instead), where `plan-allocate` reads it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from fits.result import read_laws, write_laws
from fits.transfer import FORMS, describe, fit_transfer
from fits.transfer_runs import check_settings_match, read_mixture_runs
from muit_core import ConfigError, OutputSet
from muit_core.cli import add_common_flags, run_main

log = logging.getLogger("plan-fit")

EPILOG = """examples:
  plan-fit transfer runs/demo/validate/validation.csv --laws runs/demo/fits/laws.json
      adds the transfer law to runs/demo/fits/laws.json
  plan-fit transfer validation.csv --laws laws.json --form shared --out fits-transfer/
  plan-allocate laws.json --budget 20k     shows the transfer-aware plan when it is selected
"""


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of `plan-fit transfer`."""
    parser = argparse.ArgumentParser(
        prog="plan-fit transfer",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("validation_csv", type=Path, help="validation.csv of plan-sweep validate")
    parser.add_argument(
        "--laws", type=Path, required=True, help="laws file fitted on the single-language sweep"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="write OUT/laws.json (default: rewrite the --laws file in place)",
    )
    parser.add_argument(
        "--form",
        choices=("auto", *FORMS),
        default="auto",
        help="transfer form: shared (one tau), similarity (tau x a script-and-family prior), "
        "receiver (one tau per language), or auto: the one that predicts left-out mixtures "
        "best (default)",
    )
    parser.add_argument(
        "--bootstrap", type=int, default=1000, help="draws over mixture runs (default 1000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    add_common_flags(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """Fit and write the laws file with its transfer entry; every input is checked before
    anything is written."""
    if args.bootstrap < 0:
        raise ConfigError(f"--bootstrap must be 0 or more, e.g. 1000; got {args.bootstrap}.")
    if args.seed < 0:
        raise ConfigError(f"--seed must be 0 or more, e.g. 0; got {args.seed}.")
    target = args.out / "laws.json" if args.out is not None else args.laws
    OutputSet.check(target.parent)
    if target.is_dir():
        raise ConfigError(
            f"--out {str(target.parent)!r} holds a folder named 'laws.json'; move it away or "
            "give another --out."
        )
    laws = read_laws(args.laws)
    runs = read_mixture_runs(args.validation_csv, laws.metric)
    check_settings_match(pd.read_csv(args.validation_csv), laws, str(args.validation_csv))
    law = fit_transfer(
        laws,
        runs,
        form=args.form,
        n_bootstrap=args.bootstrap,
        seed=args.seed,
        laws_file=str(args.laws),
        source=str(args.validation_csv),
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    path = write_laws(dataclasses.replace(laws, transfer=law.to_dict()), target)
    log.info("Wrote %s (with its transfer entry)", path)
    if args.format == "json":
        json.dump(law.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(describe(law) + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `plan-fit transfer` (`plan-fit` hands it the arguments after the word)."""
    return run_main(build_parser(), run, argv)
