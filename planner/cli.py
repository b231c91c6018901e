"""`plan-allocate`: split a budget of translation examples across languages.

Reads the laws file `plan-fit` writes, maximises the predicted objective under each language's
cap (available pairs x --max-epochs) and floor, compares the result with uniform,
proportional, temperature (T = 3.33, 5) and UniMax sampling, and writes the MuIT mixture
config (YAML and JSON), the table and two plots into --out.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from fits import LawsFile, TransferLaw, read_laws, transfer_of
from muit_core import ConfigError, PlannerError, format_count, parse_count
from muit_core.cli import add_common_flags, run_main
from planner.baselines import baseline_allocators
from planner.guard import DEFAULT_CONFIDENCE, DEFAULT_REFERENCE, GuardSettings
from planner.mixture import mixture_dict
from planner.optimiser import Objective, Robustness
from planner.pipeline import (
    check_out_dir,
    make_planner,
    minimum_budget,
    reference_allocator,
    run_plan,
    write_outputs,
)
from planner.problem import (
    Problem,
    Unit,
    build_problem,
    parse_assignments,
    raise_all,
    select_languages,
)
from planner.report import format_reach, format_table, suggested_sizes
from planner.transfer import TransferAllocator, check_transfer_fits, transfer_table

if TYPE_CHECKING:
    from fits import LawsFile

T = TypeVar("T")

log = logging.getLogger("plan-allocate")

DEFAULT_LAWS = "fits/laws.json"  # what `plan-fit results.csv` writes, run in the same folder
DEFAULT_OUT = "runs/allocate"

EPILOG = """\
examples:
  plan-allocate laws.json --budget 1M
  plan-allocate laws.json --budget 250k --max-epochs 4 --min-per-language 2k --weights el=2,hi=1
  plan-allocate laws.json --budget 2.5e6 --unit tokens --objective maxmin
  plan-allocate laws.json --objective target --targets el=55,hi=40      # least budget for these
  plan-allocate laws.json --budget 1M --robust --quantile 0.1 --format json
  plan-allocate laws.json --budget 20k --transfer on   # + the transfer-aware plan

The MuIT training set of a plan (or of any baseline in it) is written by the sweep stage:
  plan-sweep write-data runs/allocate/mixture.json --out runs/muit-data

Budgets and floors accept 1M, 250k, 2.5e6 or 1_000_000. The budget is in --unit (examples by
default; tokens uses each language's mean tokens per example from the sweep); floors and
--available are in examples (pairs). Above one epoch, repeated data is valued by the
data-constrained effective-data formula of Muennighoff et al. (2023).
"""


def build_parser() -> argparse.ArgumentParser:
    """The command's argument parser."""
    parser = argparse.ArgumentParser(
        prog="plan-allocate",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "laws", nargs="?", default=DEFAULT_LAWS, metavar="LAWS_JSON",
        help=f"laws file written by plan-fit (default: {DEFAULT_LAWS})",
    )  # fmt: skip
    parser.add_argument("--budget", help="budget in --unit, e.g. 1M, 250k, 2.5e6")
    parser.add_argument(
        "--unit", choices=[u.value for u in Unit], default="examples", help="the budget's unit"
    )
    parser.add_argument(
        "--max-epochs", default="1", help="passes over each pool allowed (default 1)"
    )
    parser.add_argument(
        "--max-extrapolation",
        metavar="K",
        help="cap each language at K x its largest swept size (the plan's reach), e.g. 4",
    )
    parser.add_argument(
        "--warn-reach",
        metavar="K",
        default="4",
        help="warn when a language's plan reaches beyond K x its largest swept size "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--min-per-language", default="0",
        help="floor in examples: one count for all (2k) or per language (el=2k,hi=500)",
    )  # fmt: skip
    parser.add_argument("--weights", help="objective weight per language, e.g. el=2,hi=1")
    parser.add_argument("--languages", help="plan only these languages, e.g. el,tr,vi")
    parser.add_argument(
        "--available", help="training-pool sizes where the laws file lacks them: el=30k,hi=3k"
    )
    parser.add_argument(
        "--corpus",
        help="corpus per language, recorded in the mixture for plan-sweep write-data: el=PATH,...",
    )
    parser.add_argument(
        "--objective", choices=[o.value for o in Objective], default="mean",
        help="mean: weighted mean score (or loss); maxmin: raise the worst language; "
        "target: least budget reaching --targets",
    )  # fmt: skip
    parser.add_argument("--targets", help="metric targets for --objective target: el=55,hi=40")
    parser.add_argument(
        "--robust", action="store_true",
        help="maximise the expected objective over the laws' bootstrap draws",
    )  # fmt: skip
    parser.add_argument(
        "--quantile",
        help="maximise this lower quantile of the objective over the draws, e.g. 0.1 "
        "(implies --robust)",
    )  # fmt: skip
    parser.add_argument(
        "--reference",
        default=DEFAULT_REFERENCE,
        help="the baseline the plan must beat in most predictive draws before it departs from "
        f"it (default {DEFAULT_REFERENCE}; 'none' plans without the guard)",
    )
    parser.add_argument(
        "--confidence",
        default=str(DEFAULT_CONFIDENCE),
        help="share of the draws the plan must beat --reference in, between 0.5 and 1 "
        f"(default {DEFAULT_CONFIDENCE})",
    )
    parser.add_argument(
        "--transfer",
        choices=("auto", "on", "off"),
        default="auto",
        help="the laws file's transfer law (plan-fit transfer): auto adds the transfer-aware "
        "plan (allocator 'transfer') beside the others and scores every plan under it when "
        "the law was selected; on does so even when it was not; off ignores it "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--out", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})"
    )
    parser.add_argument("--seed", default="0", help="search and data-sampling seed (default 0)")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument(
        "--no-plots", action="store_true", help="skip the frontier and marginal-value PNGs"
    )
    add_common_flags(parser)
    return parser


def parse_budget(text: str | None, unit: Unit) -> float:
    """The budget as a positive number of units (whole examples in the examples unit)."""
    if text is None:
        raise ConfigError("--budget is required (e.g. --budget 1M) unless --objective target.")
    if text.strip().startswith("-"):
        raise ConfigError(f"--budget must be positive; got {text!r}. Write it like 1M or 250k.")
    budget = parse_count(text, what="--budget")
    if budget <= 0:
        raise ConfigError(f"--budget must be positive; got {text!r}. Write it like 1M or 250k.")
    if unit is Unit.EXAMPLES:
        if budget < 1:
            raise ConfigError(
                f"--budget {text!r} is less than one example (--unit examples counts whole "
                "examples); give at least 1, e.g. --budget 1k, or use --unit tokens."
            )
        budget = float(round(budget))
    return budget


def parse_positive(text: str, option: str, example: str) -> float:
    """A positive, finite number typed for `option` (e.g. `--max-epochs`)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{option} must be a positive number such as {example}; got {text!r}.")
    return value


def parse_seed(text: str) -> int:
    """A seed: a whole number, 0 or more."""
    try:
        seed = int(text)
    except ValueError:
        seed = -1
    if seed < 0:
        raise ConfigError(f"--seed must be a whole number, 0 or more, such as 0; got {text!r}.")
    return seed


def _floors(text: str, languages: Sequence[str]) -> dict[str, float]:
    if "=" in text:
        return parse_assignments(text, "--min-per-language", languages, counts=True)
    floor = parse_count(text, what="--min-per-language")
    return dict.fromkeys(languages, floor)


def _corpora(text: str | None, languages: Sequence[str]) -> dict[str, str]:
    corpora = {
        code: value
        for code, value in (item.partition("=")[::2] for item in (text or "").split(","))
        if code
    }
    unknown = sorted(set(corpora) - set(languages))
    if unknown:
        known = ", ".join(languages)
        raise ConfigError(f"Unknown language {unknown[0]!r} in --corpus. Known: {known}.")
    return corpora


class _Checks:
    """Runs independent checks and keeps every problem, so all are reported at once."""

    def __init__(self) -> None:
        self.problems: list[PlannerError] = []

    def run(self, check: Callable[[], T]) -> T | None:
        try:
            return check()
        except PlannerError as err:
            self.problems.append(err)
            return None


def _problem(args: argparse.Namespace, laws: LawsFile, max_epochs: float) -> Problem:
    """The problem the options describe; every option problem is reported at once."""
    languages = select_languages(laws, args.languages)
    checks = _Checks()
    corpora = checks.run(lambda: _corpora(args.corpus, languages))
    floors = checks.run(lambda: _floors(args.min_per_language, languages))
    weights = checks.run(lambda: parse_assignments(args.weights, "--weights", languages))
    available = checks.run(
        lambda: parse_assignments(args.available, "--available", languages, counts=True)
    )
    max_extrapolation = None
    if args.max_extrapolation is not None:
        max_extrapolation = checks.run(
            lambda: parse_positive(args.max_extrapolation, "--max-extrapolation", "4")
        )
    raise_all(checks.problems)
    return build_problem(
        laws,
        languages,
        unit=Unit(args.unit),
        max_epochs=max_epochs,
        floors=floors,
        weights=weights,
        available=available,
        corpora=corpora,
        max_extrapolation=max_extrapolation,
    )


def check_reach_budget(problem: Problem, budget: float) -> None:
    """With `--max-extrapolation`, refuse a budget the reach caps cannot absorb, naming the
    largest budget that can and the flag that lifts it."""
    k = problem.max_extrapolation
    c = problem.constraints
    most = float(c.upper.sum())
    if k is None or budget <= most * (1 + 1e-12):
        return
    raise ConfigError(
        f"--budget {format_count(budget)} {c.unit} cannot be spent within --max-extrapolation "
        f"{k:g} (each language at most {k:g}x its largest swept size, and its pool): the "
        f"largest budget that can is {format_count(most)} {c.unit}; lower --budget, raise "
        "--max-extrapolation, or sweep larger sizes."
    )


def reach_warning(problem: Problem, examples: Sequence[int], threshold: float) -> str | None:
    """One line naming the languages the plan puts beyond `threshold` x their largest swept
    size, how far, and which sizes to add to the sweep; None when none is."""
    far = [
        (code, ratio, examples[i], problem.largest_swept[i])
        for i, (code, ratio) in enumerate(
            zip(problem.languages, problem.reach(examples), strict=True)
        )
        if ratio > threshold
    ]
    if not far:
        return None
    reaches = ", ".join(f"{code} {format_reach(r)}" for code, r, _, _ in far)
    sizes = "; ".join(f"{code}: {', '.join(suggested_sizes(x, d))}" for code, _, x, d in far)
    return (
        f"The plan reaches beyond --warn-reach {threshold:g}x the sweep's largest size for "
        f"{reaches}: its predictions there are extrapolations. Add sizes to the sweep "
        f"(grid.sizes) to check them ({sizes}), or cap the plan with --max-extrapolation."
    )


def _check_targets_option(args: argparse.Namespace) -> None:
    if Objective(args.objective) is not Objective.TARGET and args.targets:
        raise ConfigError("--targets only applies to --objective target.")


def _targets(args: argparse.Namespace, problem: Problem) -> list[float] | None:
    if Objective(args.objective) is not Objective.TARGET:
        return None
    given = parse_assignments(args.targets, "--targets", problem.languages)
    if not given:
        raise ConfigError("--objective target needs --targets, e.g. --targets el=55,hi=40.")
    return [given.get(code, math.nan) for code in problem.languages]


def _guard(args: argparse.Namespace) -> GuardSettings | None:
    """The guard the options ask for (None for `--reference none`)."""
    if str(args.reference).lower() == "none":
        return None
    reference_allocator(args.reference)  # refuses an unknown name
    text = str(args.confidence)
    try:
        confidence = float(text)
    except ValueError:
        confidence = math.nan
    if not 0.5 < confidence < 1.0:
        raise ConfigError(
            f"--confidence must be a number between 0.5 and 1, e.g. 0.9; got {text!r}."
        )
    return GuardSettings(args.reference, confidence)


def _robustness(args: argparse.Namespace) -> Robustness | None:
    if args.quantile is not None:
        return Robustness(parse_positive(args.quantile, "--quantile", "0.1"))
    return Robustness() if args.robust else None


@dataclass(frozen=True)
class _Options:
    """What the options say, checked."""

    problem: Problem
    robust: Robustness | None
    targets: list[float] | None
    budget: float | None  # None: the least budget reaching the targets
    seed: int
    warn_reach: float  # warn beyond this reach (amount / largest swept size)
    guard: GuardSettings | None
    transfer: TransferLaw | None  # the transfer law to plan with beside, if any


def _checked_options(args: argparse.Namespace) -> _Options:
    """Check every option before any work or write.

    Raises:
        PlannerError: every problem found, one sentence each (`raise_all`).
    """
    objective, unit = Objective(args.objective), Unit(args.unit)
    checks = _Checks()
    budget: float | None = None
    if args.budget is not None or objective is not Objective.TARGET:
        budget = checks.run(lambda: parse_budget(args.budget, unit))
    max_epochs = checks.run(lambda: parse_positive(args.max_epochs, "--max-epochs", "1 or 4"))
    robust = checks.run(lambda: _robustness(args))
    guard = checks.run(lambda: _guard(args))
    seed = checks.run(lambda: parse_seed(args.seed))
    checks.run(lambda: _check_targets_option(args))
    warn_reach = checks.run(lambda: parse_positive(args.warn_reach, "--warn-reach", "4"))
    checks.run(lambda: check_out_dir(Path(args.out)))
    laws = checks.run(lambda: read_laws(args.laws))
    problem: Problem | None = None
    targets: list[float] | None = None
    if laws is not None and max_epochs is not None:
        problem = checks.run(partial(_problem, args, laws, max_epochs))
    if problem is not None:
        targets = checks.run(partial(_targets, args, problem))
        if budget is not None:
            checks.run(partial(check_reach_budget, problem, budget))
            if not checks.problems:
                checks.run(partial(problem.constraints.check_budget, budget))
    transfer = None
    if laws is not None and problem is not None:
        transfer = checks.run(partial(_transfer_law, args, laws, problem))
    raise_all(checks.problems)
    assert problem is not None and seed is not None and warn_reach is not None  # else raised
    return _Options(problem, robust, targets, budget, seed, warn_reach, guard, transfer)


def _transfer_law(
    args: argparse.Namespace, laws: LawsFile, problem: Problem
) -> TransferLaw | None:
    """The transfer law `--transfer` asks to plan with beside the others, or None.

    Raises:
        ConfigError: `--transfer on` with no transfer law in the laws file, or with an
            objective other than the mean.
        DataError: the law is malformed, of another metric, or lacks a planned language.
    """
    law = transfer_of(laws) if args.transfer != "off" else None
    if args.transfer == "on" and law is None:
        raise ConfigError(
            f"--transfer on, but the laws file {str(args.laws)!r} has no transfer law; fit one "
            "with plan-fit transfer VALIDATION_CSV --laws LAWS, or drop --transfer."
        )
    if law is None:
        return None
    if args.transfer == "auto" and not law.selected:
        log.info(
            "The laws file's transfer law (%s) was not selected: it does not predict left-out "
            "mixtures better than the independent laws; planning without it (--transfer on "
            "shows it anyway).",
            law.summary(),
        )
        return None
    if Objective(args.objective) is not Objective.MEAN:
        if args.transfer == "auto":
            log.info("The transfer law plans the mean objective only; not used here.")
            return None
        raise ConfigError(
            f"--transfer on plans the mean objective only; got --objective {args.objective}: "
            "use --objective mean or drop --transfer."
        )
    check_transfer_fits(law, problem.languages, problem.metric)
    if not law.selected:
        log.warning("The transfer law does not predict left-out mixtures better; shown anyway.")
    return law


def cmd_allocate(args: argparse.Namespace) -> int:
    """Plan the mixture and write it, with the table and plots; print the table or JSON."""
    objective = Objective(args.objective)
    options = _checked_options(args)
    problem, robust, targets, seed = options.problem, options.robust, options.targets, options.seed
    budget = options.budget
    unit = Unit(args.unit)
    if budget is None:
        planner = make_planner(problem, objective, robust, targets, seed)
        budget = minimum_budget(problem, planner)
        log.info("least budget reaching the targets: %.6g %s", budget, unit.value)
    if objective is Objective.MAXMIN and len(set(problem.constraints.weights)) > 1:
        log.warning("--weights do not enter the maxmin objective; they are ignored.")
    transfer = options.transfer
    command = shlex.join(["plan-allocate", *args.argv])
    log.debug("options: %s", {k: v for k, v in vars(args).items() if k != "argv"})
    report = run_plan(
        problem,
        budget,
        objective,
        robust,
        targets,
        seed,
        command,
        str(args.laws),
        guard=options.guard,
        baselines=None
        if transfer is None
        else (
            *baseline_allocators(),
            TransferAllocator(
                transfer.matrix_for(problem.languages),
                label=f"{transfer.form} form",
                factors=transfer.factors_for(problem.languages),
            ),
        ),
    )
    warning = reach_warning(problem, report.planner.allocation.examples, options.warn_reach)
    if warning is not None:
        log.warning("%s", warning)
    for path in write_outputs(report, Path(args.out), plots=not args.no_plots):
        log.info("wrote %s", path)
    if args.format == "json":
        json.dump(mixture_dict(report), sys.stdout, indent=2, ensure_ascii=False)
        print()
    else:
        print(format_table(report))
        if transfer is not None:
            print("\n" + transfer_table(report, transfer))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `plan-allocate`."""
    return run_main(build_parser(), cmd_allocate, argv)


if __name__ == "__main__":
    sys.exit(main())
