"""`plan-fit transfer`: fit the transfer law (`fits.transfer`) on a closed loop's mixture runs.

Reads the validation table `plan-sweep validate` wrote and the laws file the mixtures were
planned from (fitted on the single-language sweep), fits one shared tau with a bootstrap over
mixture runs, scores it by leaving each allocation's runs out, and writes `transfer.json` for
`plan-allocate --transfer`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from fits.result import read_laws
from fits.transfer import (
    check_settings_match,
    describe,
    fit_transfer,
    read_mixture_runs,
    transfer_to_json,
)
from muit_core import ConfigError, OutputSet, atomic_write_text
from muit_core.cli import add_common_flags, run_main

log = logging.getLogger("plan-fit")

EPILOG = """examples:
  plan-fit transfer runs/demo/validate/validation.csv --laws runs/demo/fits/laws.json
      writes runs/demo/validate/transfer.json
  plan-fit transfer validation.csv --laws laws.json --out fits/ --bootstrap 2000 --seed 1
  plan-allocate laws.json --budget 20k --transfer fits/transfer.json   plan with it
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
        "--out", type=Path, default=None, help="output folder (default: the CSV's folder)"
    )
    parser.add_argument(
        "--bootstrap", type=int, default=1000, help="draws over mixture runs (default 1000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    add_common_flags(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """Fit and write `transfer.json`; every input is checked before anything is written."""
    if args.bootstrap < 0:
        raise ConfigError(f"--bootstrap must be 0 or more, e.g. 1000; got {args.bootstrap}.")
    if args.seed < 0:
        raise ConfigError(f"--seed must be 0 or more, e.g. 0; got {args.seed}.")
    out_dir = args.out if args.out is not None else args.validation_csv.parent
    OutputSet.check(out_dir)
    if (out_dir / "transfer.json").is_dir():
        raise ConfigError(
            f"--out {str(out_dir)!r} holds a folder named 'transfer.json'; move it away or "
            "give another --out."
        )
    laws = read_laws(args.laws)
    runs = read_mixture_runs(args.validation_csv, laws.metric)
    check_settings_match(pd.read_csv(args.validation_csv), laws, str(args.validation_csv))
    law = fit_transfer(
        laws,
        runs,
        n_bootstrap=args.bootstrap,
        seed=args.seed,
        laws_file=str(args.laws),
        source=str(args.validation_csv),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = atomic_write_text(out_dir / "transfer.json", transfer_to_json(law))
    log.info("Wrote %s", path)
    if args.format == "json":
        json.dump(law.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(describe(law) + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `plan-fit transfer` (`plan-fit` hands it the arguments after the word)."""
    return run_main(build_parser(), run, argv)
