"""A sweep as a whole: its grid of cells, its ledger, and its results table.

`plan-sweep launch` calls `open_ledger`, `check_grid`, `grid_cells` and `Ledger.enqueue` once,
then runs workers; `plan-sweep export` calls `export_results`. Workers on other machines rebuild
the spec from the copy stored in the ledger (`spec_from_ledger`), so they need only the
storage URL and the study name.

One results.csv holds every study exported into it (an SFT and a DFT study of one folder, say):
`export_results` replaces only the rows of its own study (the `study` column) and keeps the
others' rows as they were, and it refuses to replace a study's rows with fewer than the table
held unless told to.

Each run records the pair filter its pools were built with (`attrs["pair_filter"]`, written by
`sweeps.run`); the export reads that back rather than re-validating the run's stored config, so
a spec key renamed later does not break exporting an older ledger.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import io
import json
import logging
import multiprocessing
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from muit_core import METRICS, ConfigError, LedgerError, atomic_write_text
from sweeps.corpus import load_pools
from sweeps.ledger import AnyCell, Cell, CellOutcome, Ledger, LedgerConfig, RunState
from sweeps.mixture import parse_mixture
from sweeps.pairs import PairFilter
from sweeps.spec import SweepSpec, spec_from_dict, spec_to_dict

log = logging.getLogger(__name__)

RESULTS_COLUMNS = (
    "language", "n_examples", "seed", "model", "n_params", "objective", "metric", "value",
    "higher_is_better", "train_tokens", "wall_s",
)  # fmt: skip
EXTRA_COLUMNS = (
    "n_available", "tokens_per_example", "corpus", "pair_filter", "train_wall_s", "eval_wall_s",
    "tokens_per_s", "n_steps", "study", "trial",
)  # fmt: skip


def grid_cells(spec: SweepSpec) -> list[Cell]:
    """Every cell of the spec, each once: per model and language, the untuned base (n = 0,
    once) and each size x seed; then the explicit `grid.cells` (each for every grid model
    unless it names one)."""
    cells = []
    for model in spec.grid.models:
        for language in spec.data.languages:
            if spec.grid.include_base:
                cells.append(Cell(language, 0, 0, model, spec.objective))
            for size in spec.grid.sizes:
                for seed in spec.grid.seeds:
                    cells.append(Cell(language, size, seed, model, spec.objective))
    for extra in spec.grid.cells:
        for model in (extra.model,) if extra.model else spec.grid.models:
            cells.append(Cell(extra.language, extra.size, extra.seed, model, spec.objective))
    return list(dict.fromkeys(cells))


def largest_sizes(spec: SweepSpec) -> dict[str, int]:
    """The largest size each language is run at (the product grid's and its explicit cells')."""
    largest = dict.fromkeys(spec.data.languages, max(spec.grid.sizes, default=0))
    for extra in spec.grid.cells:
        largest[extra.language] = max(largest[extra.language], extra.size)
    return largest


def check_grid(spec: SweepSpec) -> dict[str, int]:
    """Load every language's pools (fetching data once, before workers start) and check that
    each size fits the training pool and each held-out request fits the held-out pool.

    Returns:
        Training pool size per language.

    Raises:
        ConfigError: naming every language whose pool is too small, with its cap.
    """
    rules = spec.data.pair_filter()
    caps, problems = {}, []
    largest = largest_sizes(spec)
    for language in spec.data.languages:
        pools = load_pools(spec.data.source, language, rules)
        caps[language] = len(pools.train)
        if largest[language] > len(pools.train):
            problems.append(
                f"size {largest[language]} exceeds the {language} training pool "
                f"({len(pools.train)} pairs)"
            )
        if spec.eval.heldout_size > len(pools.heldout):
            problems.append(
                f"eval.heldout_size={spec.eval.heldout_size} exceeds the {language} held-out "
                f"pool ({len(pools.heldout)} pairs)"
            )
    if problems:
        raise ConfigError(
            f"The grid does not fit the data: {'; '.join(problems)}; lower grid.sizes (or "
            "grid.cells) or eval.heldout_size, or add data."
        )
    return caps


def ledger_config(spec: SweepSpec, storage: str | None = None) -> LedgerConfig:
    """The spec's ledger settings; `storage` (the command line's) overrides the spec's URL, and
    with neither the ledger is the journal file in the sweep folder."""
    return LedgerConfig(
        storage_url=storage or spec.ledger.storage or None,
        study_name=spec.study_name(),
        sweep_dir=spec.sweep_dir,
        heartbeat_interval_s=spec.ledger.heartbeat_s,
        max_retries=spec.ledger.max_retries,
    )


def open_ledger(spec: SweepSpec, storage: str | None = None, *, create: bool = True) -> Ledger:
    """Open the spec's ledger (`ledger_config`). With `create`, create the study if needed and
    store the resolved spec in it; without, the study must exist (`Ledger.open`)."""
    ledger = Ledger.open(ledger_config(spec, storage), create=create)
    if create:
        ledger.set_study_attr("spec", spec_to_dict(spec))
    return ledger


def spec_from_ledger(ledger: Ledger) -> SweepSpec:
    """The spec `plan-sweep launch` stored in the ledger (for workers that join later)."""
    stored = ledger.study_attr("spec")
    if not isinstance(stored, dict):
        raise LedgerError(
            "The study holds no sweep spec; start it with `plan-sweep launch SPEC` first."
        )
    return spec_from_dict(stored, where="the ledger's stored spec")


def _pick_gpu() -> None:
    """Give each local worker process its own GPU (worker-i -> device i mod count)."""
    import torch

    if torch.cuda.device_count() > 1:
        name = multiprocessing.current_process().name
        index = int(name.rsplit("-", 1)[-1]) if name.rsplit("-", 1)[-1].isdigit() else 0
        torch.cuda.set_device(index % torch.cuda.device_count())


def make_run_cell(spec_dict: dict[str, Any]) -> Callable[[AnyCell], CellOutcome]:
    """The worker-side cell function for a spec (a picklable factory for worker processes)."""
    from sweeps.run import run_cell

    _pick_gpu()
    return functools.partial(run_cell, spec_from_dict(spec_dict))


def make_run_mixture_cell(
    spec_dict: dict[str, Any], mixture_raw: dict[str, Any], mixture_path: str
) -> Callable[[AnyCell], CellOutcome]:
    """The worker-side cell function of a closed-loop study (a picklable factory)."""
    from sweeps.run import run_mixture_cell

    _pick_gpu()
    mixture = parse_mixture(mixture_raw, Path(mixture_path))
    return functools.partial(run_mixture_cell, spec_from_dict(spec_dict), mixture)


def _pair_filter_text(attrs: Mapping[str, Any]) -> str | None:
    """The run's pair filter (`PairFilter.to_text`) as the run recorded it; None if unknown.

    Runs recorded before the filter was (older ledgers) give it through their stored config:
    only its `data` section's three filter fields are read, so other keys, however renamed
    since, do not matter.
    """
    recorded = attrs.get("pair_filter")
    if isinstance(recorded, Mapping):
        return PairFilter.from_dict(recorded).to_text()
    config = attrs.get("config")
    if not isinstance(config, Mapping) or not config:
        return None
    data = config.get("data")  # a spec's defaults where it has none, as the spec would read
    return PairFilter.from_dict(data if isinstance(data, Mapping) else {}).to_text()


_SORT_COLUMNS = ["language", "model", "objective", "n_examples", "seed", "metric"]


def results_table(ledger: Ledger, study_name: str) -> pd.DataFrame:
    """The tidy results table (contract 3): one row per finished run and metric.

    `tokens_per_example` is the language's mean over its trained runs (one value per
    language, as `plan-fit` and `plan-allocate` read it).
    """
    rows: list[dict[str, Any]] = []
    for record in ledger.records():
        if record.state is not RunState.DONE or not isinstance(record.cell, Cell):
            continue
        attrs = record.attrs
        pair_filter = _pair_filter_text(attrs)
        for metric, value in record.metrics.items():
            rows.append(
                {
                    "language": record.cell.language,
                    "n_examples": record.cell.n_examples,
                    "seed": record.cell.seed,
                    "model": record.cell.model,
                    "n_params": attrs.get("n_params"),
                    "objective": record.cell.objective,
                    "metric": metric,
                    "value": value,
                    "higher_is_better": METRICS[metric].higher_is_better
                    if metric in METRICS
                    else True,
                    "train_tokens": attrs.get("train_tokens", 0),
                    "wall_s": attrs.get("wall_s"),
                    **{key: attrs.get(key) for key in EXTRA_COLUMNS[:-2]},
                    "pair_filter": pair_filter,
                    "study": study_name,
                    "trial": record.trial_number,
                }
            )
    table = pd.DataFrame(rows, columns=[*RESULTS_COLUMNS, *EXTRA_COLUMNS])
    if not table.empty:
        per_language = table.groupby("language")["tokens_per_example"].mean()
        table["tokens_per_example"] = table["language"].map(per_language)
    return table.sort_values(_SORT_COLUMNS)


SWEEP_RECORD = "sweep.json"  # beside results.csv: each study's resolved spec, for plan-fit
_NEEDED_COLUMNS = ("language", "n_examples", "metric", "value")


def check_results_path(path: Path, option: str = "--out") -> None:
    """Raise `ConfigError` now if a results table could not be written at `path`.

    Creates nothing; `plan-sweep export` calls it before it opens the ledger.
    """
    if path.is_dir():
        raise ConfigError(
            f"{option} {str(path)!r} is a folder; give the CSV file to write, e.g. "
            f"{str(path / 'results.csv')!r}."
        )
    existing = next(p for p in path.absolute().parents if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f"Cannot write {option} {str(path)!r}: {str(existing)!r} is not a folder you can "
            "write to; give another path."
        )


def export_results(
    ledger: Ledger, study_name: str, path: Path, *, allow_fewer: bool = False
) -> pd.DataFrame:
    """Merge the study's `results_table` into the table at `path`, atomically; return it.

    Rows of other studies at `path` are kept as they were (their text is not rewritten); the
    study's own rows are replaced. Beside it, `sweep.json` records the study's resolved spec
    (`{"format", "studies": {name: spec}}`, other studies' entries kept), which `plan-fit`
    carries into the laws file and `plan-allocate` into the mixture, so `plan-sweep validate`
    trains as the sweep did. Exports into one folder from several processes at once take
    turns (a lock on the folder).

    Args:
        ledger: the open ledger.
        study_name: the study whose finished runs are exported.
        path: the CSV file.
        allow_fewer: replace the study's rows even if the table held more of them than the
            ledger has now (a different ledger, or a cleared one); refused otherwise.

    Raises:
        ConfigError: `path` is a folder or cannot be written.
        LedgerError: the table at `path` is not a results table, or it holds more rows of the
            study than the export would write (without `allow_fewer`); nothing is written then.
    """
    check_results_path(path)
    table = results_table(ledger, study_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _folder_lock(path.parent):
        atomic_write_text(path, _merged_csv(path, study_name, table, allow_fewer=allow_fewer))
        spec = ledger.study_attr("spec")
        if isinstance(spec, dict):
            record_path = path.parent / SWEEP_RECORD
            try:
                record = json.loads(record_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                record = {}
            studies = record.get("studies") if isinstance(record, dict) else None
            studies = dict(studies) if isinstance(studies, dict) else {}
            studies[study_name] = spec
            text = json.dumps({"format": "muit-sweep/1", "studies": studies}, indent=2) + "\n"
            atomic_write_text(record_path, text)
    return table


def _merged_csv(path: Path, study_name: str, table: pd.DataFrame, *, allow_fewer: bool) -> str:
    """The CSV text of the table at `path` with `study_name`'s rows replaced by `table`'s."""
    new_text = table.to_csv(index=False)
    try:
        old = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        return new_text  # the first export: the table as it is
    except (OSError, ValueError) as err:  # pandas' parser errors are ValueErrors
        raise LedgerError(
            f"{str(path)!r} exists but cannot be read as a results table ({err}); move it "
            "away or give another --out."
        ) from None
    missing = [c for c in _NEEDED_COLUMNS if c not in old.columns]
    if missing:
        raise LedgerError(
            f"{str(path)!r} exists but is not a results table (no {', '.join(missing)} "
            "column); move it away or give another --out."
        )
    own = old["study"].eq(study_name) if "study" in old.columns else pd.Series(False, old.index)
    if len(table) < int(own.sum()) and not allow_fewer:
        raise LedgerError(
            f"Exporting study {study_name!r} would replace its {int(own.sum())} rows in "
            f"{str(path)!r} with {len(table)}: the ledger holds fewer finished runs than were "
            "exported there before (another --storage?); check the storage, or pass "
            "--allow-fewer to replace them."
        )
    # Both sides as the text pandas writes, so other studies' rows come back unchanged.
    new = pd.read_csv(io.StringIO(new_text), dtype=str, keep_default_na=False)
    columns = [*new.columns, *(c for c in old.columns if c not in new.columns)]
    merged = pd.concat([old[~own], new], ignore_index=True).reindex(columns=columns)
    merged = merged.fillna("").sort_values(_SORT_COLUMNS, key=_sort_key, kind="stable")
    if len(old) - int(own.sum()):
        log.info(
            "%s: %d rows of study %s, %d rows of other studies kept.",
            *(path, len(new), study_name, len(old) - int(own.sum())),
        )
    return str(merged.to_csv(index=False))


def _sort_key(column: pd.Series) -> pd.Series:
    if column.name in ("n_examples", "seed"):
        return pd.to_numeric(column, errors="coerce")
    return column


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on `folder` (a file lock on the folder itself: no lock file)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as err:  # a file system without flock on folders: go on unlocked
            log.debug("No lock on %s (%s); exporting without one.", folder, err)
        yield
    finally:
        os.close(fd)
