"""The wrapper every command's `main()` uses: logging to stderr, one-line errors, exit codes."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from muit_core.errors import PlannerError


def configure_logging(level: int = logging.INFO) -> None:
    """Log to stderr as `12:03:41 sweeps.worker: message`, unless logging is already set up
    (`logging.basicConfig` leaves existing handlers alone)."""
    logging.basicConfig(
        level=level, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )


def run_main(
    parser: argparse.ArgumentParser,
    dispatch: Callable[[argparse.Namespace], int | None],
    argv: Sequence[str] | None = None,
) -> int:
    """Parse `argv`, run `dispatch(args)`, and turn a `PlannerError` into one line and exit 1.

    `args.argv` holds the arguments as given (`argv`, or `sys.argv[1:]`), so a command can
    record its own command line. The parser must define `--debug` (traceback instead of one
    line) and `--verbose`.
    Logs go to stderr; results are the dispatch function's to print on stdout.

    Returns:
        The process exit code: 0 on success, 1 on a user error.
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(arguments)
    args.argv = arguments
    configure_logging(logging.DEBUG if getattr(args, "verbose", False) else logging.INFO)
    try:
        code = dispatch(args)
    except PlannerError as err:
        if getattr(args, "debug", False):
            raise
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        print(
            f"(`{parser.prog} --help` lists the options; --debug shows the traceback)",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted.", file=sys.stderr)
        return 130
    return 0 if code is None else code


def add_common_flags(parser: argparse.ArgumentParser, *, subcommand: bool = False) -> None:
    """Add `--debug` and `--verbose`, which every command has.

    Pass `subcommand=True` on sub-parsers, so the flags work on either side of the
    sub-command's name (`plan-sweep --debug data` and `plan-sweep data --debug`).
    """
    default = argparse.SUPPRESS if subcommand else False
    parser.add_argument(
        "--debug",
        action="store_true",
        default=default,
        help="show tracebacks instead of one line",
    )
    parser.add_argument(
        "--verbose", "-v", action="store_true", default=default, help="log debug messages"
    )
