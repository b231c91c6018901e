"""The smoke sweep end to end through `plan-sweep`: launch, status, export, relaunch.

The `smoke_sweep` fixture (conftest.py) runs it once per test session."""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from muit_core import ConfigError, LedgerError
from sweeps import cli
from sweeps.ledger import Cell, CellOutcome, Ledger, LedgerConfig
from sweeps.pairs import PairFilter
from sweeps.spec import load_spec, spec_from_dict, spec_to_dict
from sweeps.sweep import (
    EXTRA_COLUMNS,
    RESULTS_COLUMNS,
    check_grid,
    export_results,
    grid_cells,
    results_table,
)


def test_grid_has_base_and_every_size() -> None:
    spec = load_spec("smoke")
    cells = grid_cells(spec)
    assert len(cells) == 2 * (1 + 3)
    assert {c.n_examples for c in cells} == {0, 16, 32, 64}


def test_size_above_pool_is_rejected_before_anything_runs() -> None:
    spec = load_spec("smoke", ["grid.sizes=[16, 10000000]"])
    with pytest.raises(ConfigError, match=r"size 10000000 exceeds the el training pool \(\d+"):
        check_grid(spec)


def test_results_csv_has_every_cell_and_loss_falls(smoke_sweep: Path) -> None:
    table = pd.read_csv(smoke_sweep / "results.csv")
    assert list(table.columns[: len(RESULTS_COLUMNS)]) == list(RESULTS_COLUMNS)
    runs = table.drop_duplicates(["language", "n_examples", "seed"])
    assert len(runs) == 8
    ce = table[table.metric == "heldout_ce"].set_index(["language", "n_examples"])["value"]
    for language in ("el", "hi"):
        assert ce[(language, 64)] < ce[(language, 0)]
    assert set(table.metric) == {"heldout_ce", "chrf", "bleu"}
    trained = table[table.n_examples > 0]
    assert (trained.train_tokens > 0).all() and (trained.wall_s > 0).all()
    assert (table.n_available > 1000).all() and table.objective.eq("sft").all()
    spec = load_spec("smoke")
    assert table.pair_filter.eq(
        f"min_words={spec.data.min_words},max_words={spec.data.max_words},"
        f"heldout_fraction={spec.data.heldout_fraction:g}"
    ).all()


def test_relaunching_a_finished_sweep_runs_nothing(smoke_sweep: Path) -> None:
    spec = load_spec("smoke", [f"out_dir={str(smoke_sweep)!r}"])
    before = Ledger.open(LedgerConfig(None, spec.study_name(), smoke_sweep)).records(history=True)
    assert cli.main(["launch", "smoke", f"out_dir={str(smoke_sweep)!r}"]) == 0
    after = Ledger.open(LedgerConfig(None, spec.study_name(), smoke_sweep)).records(history=True)
    assert [r.trial_number for r in after] == [r.trial_number for r in before]


def test_status_and_export_commands(
    smoke_sweep: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    override = f"out_dir={str(smoke_sweep)!r}"
    assert cli.main(["status", "smoke", override]) == 0
    out = capsys.readouterr().out
    assert "done" in out and "el" in out and "all" in out
    target = tmp_path / "r.csv"
    assert cli.main(["export", "smoke", override, "--out", str(target)]) == 0
    assert "8 runs" in capsys.readouterr().out
    assert len(pd.read_csv(target)) == 24


def test_a_worker_joins_with_only_the_storage_url_and_study(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a second machine does: the spec comes from the ledger, not from a file."""
    overrides = [
        f"out_dir={str(tmp_path / 'sweep')!r}",
        "data.languages=['hi']",
        "grid.sizes=[16]",
        "grid.include_base=False",
    ]
    assert cli.main(["launch", "smoke", *overrides, "--workers", "0"]) == 0
    printed = capsys.readouterr().out
    assert "plan-sweep worker --storage journal://" in printed
    spec = load_spec("smoke", overrides)
    journal = (tmp_path / "sweep" / "ledger.journal").resolve()
    assert (
        not Ledger.open(LedgerConfig(None, spec.study_name(), tmp_path / "sweep"))
        .records()[0]
        .metrics
    )
    args = ["--storage", f"journal://{journal}", "--study", spec.study_name()]
    assert cli.main(["worker", *args, "--sweep-dir", str(tmp_path / "sweep")]) == 0
    assert "1 done, 0 failed" in capsys.readouterr().out
    assert cli.main(["export", *args, "--out", str(tmp_path / "r.csv")]) == 0
    table = pd.read_csv(tmp_path / "r.csv")
    assert set(table.n_examples) == {16} and set(table.language) == {"hi"}


def test_unreachable_storage_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(
        ["status", "--storage", "postgresql://nobody@127.0.0.1:1/none", "--study", "x"]
    )
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("plan-sweep: error: Cannot open the ledger storage")


def test_a_dft_cell_runs_end_to_end_beside_the_sft_results(
    smoke_sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The DFT objective through `run_cell`: its data, loss and metrics land in results.csv,
    beside the SFT study's rows already there (a DFT launch used to leave its rows only), and
    `export` of the SFT spec, which this folder's ledger does not hold, is refused instead of
    writing "0 runs, 0 rows" over the table."""
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    for name in ("results.csv", "sweep.json"):
        shutil.copy(smoke_sweep / name, sweep / name)
    sft_lines = (sweep / "results.csv").read_text().splitlines()
    overrides = [
        f"out_dir={str(sweep)!r}",
        "objective='dft'",
        "data.direction='x-en'",
        "data.languages=['el']",
        "grid.sizes=[16]",
        "grid.include_base=False",
    ]
    assert cli.main(["launch", "smoke", *overrides]) == 0
    text = (sweep / "results.csv").read_text()
    assert set(sft_lines[1:]) <= set(text.splitlines()[1:])  # kept byte for byte
    table = pd.read_csv(sweep / "results.csv")
    dft = table[table.objective == "dft"]
    assert len(table) == len(sft_lines) - 1 + len(dft) and set(dft.n_examples) == {16}
    assert dft.set_index("metric").loc["heldout_ce", "value"] > 0
    assert set(table.study) == {
        load_spec("smoke").study_name(),
        load_spec("smoke", overrides).study_name(),
    }
    studies = json.loads((sweep / "sweep.json").read_text())["studies"]
    assert set(studies) == set(table.study)

    capsys.readouterr()
    assert cli.main(["export", "smoke", f"out_dir={str(sweep)!r}"]) == 1
    error = capsys.readouterr().err.splitlines()[0]
    assert f"No study {load_spec('smoke').study_name()!r}" in error
    assert "(objective dft)" in error
    assert (sweep / "results.csv").read_text() == text


def _finished_ledger(folder: Path, study: str, cells: list[Cell]) -> Ledger:
    ledger = Ledger.open(LedgerConfig("memory://", study, folder))
    ledger.set_study_attr("spec", {"name": study})
    ledger.enqueue(cells)
    while (claim := ledger.claim_next()) is not None:
        metrics = {"chrf": 30.0 + claim.cell.n_examples / 7, "heldout_ce": 2.0 / 3}
        ledger.finish(claim, CellOutcome(metrics, {"n_params": 135_000_000}), 1.0)
    return ledger


def test_export_merges_studies_and_refuses_to_shrink_one(tmp_path: Path) -> None:
    """Two studies share one results.csv: each export replaces its own rows only, keeps the
    other's lines byte for byte, and never replaces a study's rows with fewer unless told."""
    path = tmp_path / "results.csv"
    sft = [Cell("el", n, 0, "m", "sft") for n in (0, 16, 32)]
    dft = [Cell("el", n, 0, "m", "dft") for n in (16, 32)]
    export_results(_finished_ledger(tmp_path, "s-sft", sft), "s-sft", path)
    alone = path.read_text()
    export_results(_finished_ledger(tmp_path, "s-dft", dft), "s-dft", path)
    both = path.read_text()
    assert set(alone.splitlines()) <= set(both.splitlines())
    table = pd.read_csv(path)
    assert Counter(table.study) == {"s-sft": 6, "s-dft": 4}
    assert list(table.columns) == [*RESULTS_COLUMNS, *EXTRA_COLUMNS]  # no column gained
    record = json.loads((tmp_path / "sweep.json").read_text())["studies"]
    assert set(record) == {"s-sft", "s-dft"}

    export_results(_finished_ledger(tmp_path, "s-sft", sft), "s-sft", path)
    assert path.read_text() == both  # re-exporting the same runs changes nothing

    fewer = _finished_ledger(tmp_path, "s-sft", sft[:1])
    with pytest.raises(LedgerError, match=r"would replace its 6 rows .* with 2.*--allow-fewer"):
        export_results(fewer, "s-sft", path)
    assert path.read_text() == both
    export_results(fewer, "s-sft", path, allow_fewer=True)
    assert Counter(pd.read_csv(path).study) == {"s-sft": 2, "s-dft": 4}

    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(LedgerError, match=r"is not a results table \(no language"):
        export_results(fewer, "s-sft", tmp_path / "other.csv")
    assert (tmp_path / "other.csv").read_text() == "a,b\n1,2\n"


def test_reading_a_study_that_was_never_launched_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`status`, `export` and `worker` of an unknown study: one sentence, exit 1, and no
    folder or journal file left (`worker` used to leave an empty journal)."""
    folder = tmp_path / "never"
    for argv in (
        ["status", "smoke", f"out_dir={str(folder)!r}"],
        ["export", "smoke", f"out_dir={str(folder)!r}"],
        ["worker", "--storage", f"journal://{folder / 'l.journal'}", "--study", "nope"],
    ):
        assert cli.main(argv) == 1
        assert "does not exist; launch the sweep first" in capsys.readouterr().err
        assert not folder.exists()


def test_a_failed_connection_leaves_no_sweep_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "runs" / "pg"
    overrides = [f"out_dir={str(folder)!r}", "data.languages=['el']", "grid.sizes=[16]"]
    storage = "postgresql://nobody@127.0.0.1:1/none"
    assert cli.main(["launch", "smoke", *overrides, "--storage", storage, "--workers", "0"]) == 1
    assert "Cannot open the ledger storage" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
    journal = tmp_path / "ro" / "sub" / "ledger.journal"
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o500)
    try:
        if not os.access(tmp_path / "ro", os.W_OK):  # root writes anywhere
            with pytest.raises(LedgerError, match="Cannot open the ledger storage"):
                Ledger.open(LedgerConfig(f"journal://{journal}", "x", tmp_path))
    finally:
        (tmp_path / "ro").chmod(0o700)
    assert list((tmp_path / "ro").iterdir()) == []


def test_export_reads_each_runs_recorded_pair_filter_and_tolerates_old_configs(
    tmp_path: Path,
) -> None:
    """A run's pair filter is the one it recorded; a run from an older ledger (none recorded)
    gives it through its stored config's data section, whatever other keys that config has."""
    config = spec_to_dict(load_spec("smoke"))
    old_config = {
        **config,
        "renamed_section": {"x": 1},
        "data": {**config["data"], "min_words": 2, "max_words": 30, "corpus_v0": "x"},
    }
    with pytest.raises(ConfigError, match="renamed_section"):
        spec_from_dict(old_config)  # the whole spec no longer validates...
    recorded, old, unknown = Cell("el", 16, 0), Cell("el", 32, 0), Cell("hi", 16, 0)
    attrs = {
        recorded: {"pair_filter": PairFilter(3, 40, 0.2).to_dict(), "config": old_config},
        old: {"config": old_config},
        unknown: {},
    }
    ledger = Ledger.open(LedgerConfig("memory://", "export-test", tmp_path))
    ledger.enqueue(list(attrs))
    while (claim := ledger.claim_next()) is not None:
        ledger.finish(claim, CellOutcome({"chrf": 30.0}, attrs[claim.cell]), 1.0)

    table = results_table(ledger, "export-test")  # ...but the export still reads its filter
    by_cell = table.set_index(["language", "n_examples"])["pair_filter"]
    assert by_cell[("el", 16)] == "min_words=3,max_words=40,heldout_fraction=0.2"
    assert by_cell[("el", 32)] == "min_words=2,max_words=30,heldout_fraction=0.1"
    assert pd.isna(by_cell[("hi", 16)])
