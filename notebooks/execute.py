"""Execute the analysis notebook on a sweep folder, headless, and save it with its HTML.

    .venv/bin/python notebooks/execute.py runs/demo [--budget 1M] [--summary]

writes `runs/demo/analysis.ipynb` (executed, with outputs) and `runs/demo/analysis.html`, and
prints their paths (with `--summary`: the laws, the plan against the baselines and where every
output is, as `make demo` ends).
Before executing, it makes what the notebook reads when that is missing, with the commands'
default options:

- `plan-fit SWEEP_DIR/results.csv` when `SWEEP_DIR/fits/` holds no laws file;
- `plan-allocate LAWS --budget N --out SWEEP_DIR/allocate` when `SWEEP_DIR/allocate/` holds no
  mixture, or whenever `--budget` is given (to re-plan at that budget). LAWS is the laws file
  the notebook plans from (`fits.analysis.primary_group`); without `--budget`, N is half the
  languages' pooled data (`planner.analysis.default_budget`).

Run it with the virtual environment's python: the notebook's kernel (`python3`) is started with
the python that runs this script, so it sees the same packages. Exits 1 with one line naming
the failing cell when any cell raises.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.kernelspec import NoSuchKernel
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbconvert import HTMLExporter

from muit_core import PlannerError, atomic_write_text, configure_logging, format_count

NOTEBOOK = Path(__file__).resolve().parent / "analysis.ipynb"
KERNEL_NAME = "python3"
CELL_TIMEOUT_S = 600  # per cell; the slowest is the frontier (a few seconds on a laptop)

log = logging.getLogger("execute")


def _quiet_jupyter_log(record: logging.LogRecord) -> bool:
    """Keep nbclient's and nbconvert's warnings, less the note that plots lack alt text (the
    HTML template has no way to set it)."""
    return record.levelno >= logging.WARNING and "Alternative text" not in record.getMessage()


class NotebookError(PlannerError, RuntimeError):
    """A cell of the notebook raised, or the commands it needs failed."""


def prepare(sweep_dir: Path, budget: str | None = None) -> None:
    """Run `plan-fit` and `plan-allocate` for the sweep's missing outputs (see the module doc).

    Their tables go to stderr, with the logs.

    Raises:
        NotebookError: either command failed (it printed its own error line).
    """
    from fits import analysis as fa
    from fits.cli import main as plan_fit
    from planner import analysis as pa
    from planner.cli import main as plan_allocate

    results = sweep_dir / fa.RESULTS_NAME
    if not any((sweep_dir / fa.FITS_FOLDER).glob("laws*.json")):
        log.info("No laws file in %s: running plan-fit %s", sweep_dir / fa.FITS_FOLDER, results)
        with contextlib.redirect_stdout(sys.stderr):  # stdout: only the paths written
            code = plan_fit([str(results)])
        if code != 0:
            raise NotebookError(f"plan-fit failed on {results}; see its error above.")
    mixture = pa.mixture_path(sweep_dir)
    if budget is None and mixture.is_file():
        return
    main = fa.primary_group(fa.load_groups(sweep_dir))
    if budget is None:
        budget = format_count(pa.default_budget(main.laws))
        log.info("No mixture in %s: planning a budget of %s examples", mixture.parent, budget)
    argv = [str(main.path), "--budget", budget, "--out", str(mixture.parent)]
    with contextlib.redirect_stdout(sys.stderr):
        code = plan_allocate(argv)
    if code != 0:
        raise NotebookError(f"plan-allocate failed on {main.path}; see its error above.")


def parameterise(notebook: nbformat.NotebookNode, sweep_dir: str) -> nbformat.NotebookNode:
    """A copy of `notebook` whose `parameters` cell sets `SWEEP_DIR = sweep_dir`.

    Raises:
        NotebookError: no cell is tagged `parameters`.
    """
    copy = nbformat.from_dict(notebook)
    for cell in copy.cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            cell.source = f"SWEEP_DIR = {sweep_dir!r}  # injected by notebooks/execute.py"
            return copy
    raise NotebookError("The notebook has no cell tagged 'parameters' to set SWEEP_DIR in.")


def _failed_cell(notebook: nbformat.NotebookNode) -> str:
    """ "cell 7 'id' (`first line of its source`)" for the first cell with an error output."""
    for index, cell in enumerate(notebook.cells):
        if any(out.get("output_type") == "error" for out in cell.get("outputs", [])):
            first = next((ln for ln in cell.source.splitlines() if ln.strip()), "")
            return f"cell {index} {cell.get('id', '')!r} (`{first.strip()[:70]}`)"
    return "a cell"


def run_notebook(
    notebook: nbformat.NotebookNode, cwd: Path, timeout_s: int = CELL_TIMEOUT_S
) -> nbformat.NotebookNode:
    """Execute `notebook` in a fresh `python3` kernel started in `cwd`; return it executed.

    Raises:
        NotebookError: a cell raised or timed out (the message names the cell).
    """
    client = NotebookClient(
        notebook,
        timeout=timeout_s,
        kernel_name=KERNEL_NAME,
        extra_arguments=["--log-level=ERROR"],  # not the kernel's TCP-without-encryption notice
        resources={"metadata": {"path": str(cwd)}},
    )
    try:
        return client.execute()
    except CellExecutionError as err:
        evalue = " ".join(str(err.evalue).split())
        raise NotebookError(
            f"The notebook failed in {_failed_cell(client.nb)}: {err.ename}: {evalue}"
        ) from err
    except CellTimeoutError as err:
        raise NotebookError(f"A cell ran past {timeout_s} s: {str(err).splitlines()[0]}") from err
    except DeadKernelError as err:
        raise NotebookError(f"The notebook's kernel died: {err}") from err
    except NoSuchKernel as err:
        raise NotebookError(
            f"No {KERNEL_NAME!r} kernel for {sys.executable}; install ipykernel into it "
            "(pip install -e '.[notebook]')."
        ) from err


def execute(
    sweep_dir: str | os.PathLike[str],
    budget: str | None = None,
    notebook_path: Path = NOTEBOOK,
) -> tuple[Path, Path]:
    """Prepare the sweep folder, execute the notebook on it, and write the notebook and HTML.

    Args:
        sweep_dir: the sweep folder (holds results.csv).
        budget: re-plan at this budget (text such as "1M"); None keeps an existing mixture.
        notebook_path: the notebook to execute.

    Returns:
        `(SWEEP_DIR/analysis.ipynb, SWEEP_DIR/analysis.html)`, both written atomically.

    Raises:
        NotebookError: a command or a cell failed.
        PlannerError: the sweep folder cannot be read.
    """
    folder = Path(sweep_dir)
    if not folder.is_dir():
        raise NotebookError(f"No sweep folder at {str(folder)!r}; give the folder of results.csv.")
    prepare(folder, budget)
    template = nbformat.read(notebook_path, as_version=4)
    executed = run_notebook(parameterise(template, str(folder)), Path.cwd())
    html, _ = HTMLExporter().from_notebook_node(executed)
    return (
        atomic_write_text(folder / "analysis.ipynb", nbformat.writes(executed) + "\n"),
        atomic_write_text(folder / "analysis.html", html),
    )


def _gain_headline(mixture: dict[str, Any]) -> list[str]:
    """One line: the plan's predicted gain over the best and the worst baseline, as the mixture
    config (`plan-allocate`'s `mixture.json`) records them."""
    gains = [
        (name, entry["planner_gain"])
        for name, entry in mixture["baselines"].items()
        if entry["planner_gain"]["value"] is not None
    ]
    if mixture["objective"] == "target" or not gains:  # the target objective: budget saved
        return []
    best, low = min(gains, key=lambda g: g[1]["value"])
    worst, high = max(gains, key=lambda g: g[1]["value"])

    def said(gain: dict[str, float | None]) -> str:
        band = "" if gain["low"] is None else f" [{gain['low']:.2g}, {gain['high']:.2g}]"
        return f"{gain['value']:+.2g}{band}"

    level = f"{mixture['interval_level']:.0%}"
    return [
        "",
        f"Predicted gain of the plan ({mixture['metric']}, positive = better, {level} interval): "
        f"{said(low)} over the best baseline ({best}), {said(high)} over the worst ({worst}).",
    ]


def summary(sweep_dir: str | os.PathLike[str], written: Sequence[Path] = ()) -> str:
    """A short account of a finished sweep folder: the laws, the plan against the baselines
    with the predicted gain (as `plan-allocate` wrote them in `allocate/`), and where every
    output is.

    Raises:
        PlannerError: the folder lacks results, laws or a mixture.
    """
    from fits import analysis as fa
    from fits.report import format_table as fits_table
    from planner import analysis as pa

    folder = Path(sweep_dir)
    main = fa.primary_group(fa.load_groups(folder))
    mixture_file = pa.mixture_path(folder)
    try:
        mixture = json.loads(mixture_file.read_text(encoding="utf-8"))
        plan_text = (mixture_file.parent / "table.txt").read_text(encoding="utf-8")
    except (OSError, json.JSONDecodeError) as err:
        raise NotebookError(
            f"Cannot read the plan in {mixture_file.parent} ({err}); run plan-allocate again."
        ) from err
    where = [
        ("sweep results", folder / fa.RESULTS_NAME),
        ("laws and plots", main.path.parent),
        ("mixture config", mixture_file.parent),
        *(("notebook", path) for path in written),
    ]
    width = max(len(label) for label, _ in where)
    return "\n".join(
        [
            f"=== Summary of {folder} ===",
            "",
            "Scaling laws: " + fits_table(main.laws, str(main.path), candidates=False),
            "The plan: " + plan_text.rstrip("\n"),
            *_gain_headline(mixture),
            "",
            "Where everything went:",
            *(f"  {label.ljust(width)}  {path}" for label, path in where),
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: `execute.py SWEEP_DIR [--budget N]`; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="notebooks/execute.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("sweep_dir", help="sweep folder holding results.csv, e.g. runs/demo")
    parser.add_argument("--budget", help="re-plan at this budget, in examples, e.g. 1M or 250k")
    parser.add_argument(
        "--summary",
        action="store_true",
        help="end with the laws, the plan against the baselines and every output's path "
        "(instead of only the two notebook paths)",
    )
    args = parser.parse_args(argv)
    configure_logging()
    logging.getLogger("traitlets").addFilter(_quiet_jupyter_log)  # nbclient's, nbconvert's log
    try:
        paths = execute(args.sweep_dir, args.budget)
        text = summary(args.sweep_dir, paths) if args.summary else "\n".join(map(str, paths))
    except PlannerError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 1
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
