"""The closed loop end to end on the real smoke sweep (tiny random Llama, LibreOffice pairs):
plan-fit -> plan-allocate -> plan-sweep validate, its table, report, plots and relaunch."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from fits.cli import main as plan_fit
from planner.cli import main as plan_allocate
from sweeps import cli
from sweeps.ledger import Ledger, LedgerConfig
from sweeps.mixture import read_mixture
from sweeps.templates import Direction
from sweeps.validate import default_allocators, parse_seeds
from sweeps.write_data import mixture_examples, shuffled_union

BUDGET = 80  # examples: 40 a language under uniform, within ~1x of the smoke sweep's 64


@pytest.fixture(scope="module")
def smoke_mixture(smoke_sweep: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke sweep's laws and a plan at a budget the sweep supports."""
    out = tmp_path_factory.mktemp("closed-loop")
    csv = smoke_sweep / "results.csv"
    assert plan_fit([str(csv), "--out", str(out / "fits"), "--no-plots", "--bootstrap", "50"]) == 0
    laws = out / "fits" / "laws.json"
    argv = [str(laws), "--budget", str(BUDGET), "--out", str(out / "allocate"), "--no-plots"]
    assert plan_allocate(argv) == 0
    return out / "allocate" / "mixture.json"


def test_the_sweep_spec_travels_from_export_to_the_mixture(
    smoke_sweep: Path, smoke_mixture: Path
) -> None:
    record = json.loads((smoke_sweep / "sweep.json").read_text())
    (study,) = record["studies"]
    laws = json.loads((smoke_mixture.parent.parent / "fits" / "laws.json").read_text())
    assert laws["sweep"]["study"] == study
    mixture = read_mixture(smoke_mixture)
    assert mixture.sweep_spec == record["studies"][study]
    assert mixture.sweep_model == "tiny-random-llama"
    assert default_allocators(mixture)[:3] == ("planner", "uniform", "proportional")


def test_validate_trains_each_allocation_and_reports_the_verdict(
    smoke_mixture: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "validate"
    argv = ["validate", str(smoke_mixture), "--allocators", "planner,uniform", "--out", str(out)]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "Band coverage:" in printed and "planner vs" in printed
    table = pd.read_csv(out / "validation.csv")
    mixture = read_mixture(smoke_mixture)
    assert set(table["allocator"]) == {"planner", "uniform"}
    assert set(table["language"]) == {"el", "hi"}
    assert set(table["metric"]) == {"heldout_ce", "chrf", "bleu"}
    assert len(table) == 2 * 2 * 3
    ce = table[table["metric"] == "heldout_ce"]
    assert ce["value"].map(math.isfinite).all() and (ce["value"] > 0).all()
    for row in ce.itertuples():
        allocation = mixture.allocation(row.allocator)
        assert row.examples == allocation.examples[row.language]
        assert row.predicted == pytest.approx(allocation.predicted[row.language].value)
        assert row.low <= row.predicted <= row.high
    for name in ("verdict.txt", "predicted_vs_actual.png", "objective_per_allocator.png"):
        assert (out / name).stat().st_size > 0

    # Relaunching runs nothing and rewrites the same table.
    ledgers = list(out.glob("*.journal"))
    assert len(ledgers) == 1
    before = (out / "validation.csv").read_bytes()
    names = {r.cell.key for r in _records(out)}
    n_trials = len(_records(out, history=True))
    assert cli.main(argv) == 0
    capsys.readouterr()
    assert len(_records(out, history=True)) == n_trials
    assert {r.cell.key for r in _records(out)} == names
    assert (out / "validation.csv").read_bytes() == before


def _records(out: Path, history: bool = False) -> list:  # type: ignore[type-arg]
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(out / "ledger.journal")))
    (study,) = storage.get_all_studies()
    ledger = Ledger.open(LedgerConfig(None, study.study_name, out))
    return ledger.records(history=history)


def test_validate_trains_on_exactly_what_write_data_writes(
    smoke_mixture: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["write-data", str(smoke_mixture), "--out", str(tmp_path / "d")]) == 0
    capsys.readouterr()
    written = [
        json.loads(line)["messages"]
        for line in (tmp_path / "d" / "train.jsonl").read_text().splitlines()
    ]
    mixture = read_mixture(smoke_mixture)
    spec = mixture.sweep_spec
    assert spec is not None
    parts = mixture_examples(mixture, mixture.allocation("planner"), Direction.EN_TO_X)
    union = shuffled_union(parts, mixture.seed)
    assert [(m[-2]["content"], m[-1]["content"]) for m in written] == [
        (e.prompt, e.response) for e in union
    ]
    assert written[0][0] == {"role": "system", "content": spec["data"]["system_prompt"]} or (
        spec["data"]["system_prompt"] is None and written[0][0]["role"] == "user"
    )


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--allocators", "planner,oracle"], "has no allocator 'oracle'; it has: planner"),
        (["--seeds", "0,x"], "--seeds '0,x': 'x' is not a seed"),
        (["--workers", "-1"], "--workers -1 must be 0"),
        (["train.epochs=0"], "train.epochs"),
        (["data.general_ratio=0.5", "data.general_data='g.jsonl'"], "general data"),
    ],
)
def test_bad_validate_input_is_one_sentence_and_writes_nothing(
    smoke_mixture: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    match: str,
) -> None:
    out = tmp_path / "v"
    assert cli.main(["validate", str(smoke_mixture), *argv, "--out", str(out)]) == 1
    assert match in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_parse_seeds() -> None:
    assert parse_seeds("1, 0,1") == (1, 0)


def test_a_worker_killed_mid_mixture_cell_is_retried_and_the_cell_finishes_once(
    smoke_mixture: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Enqueue only, run a real `plan-sweep worker` process, SIGKILL it while it trains, then
    relaunch with a local worker: the dead attempt is failed as stale and retried, and each
    cell ends done exactly once."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "v"
    fast = ["ledger.heartbeat_s=1"]  # stale after 3 missed beats: 3 s, not 90
    base = ["validate", str(smoke_mixture), *fast, "--allocators", "planner,uniform"]
    assert cli.main([*base, "--out", str(out), "--workers", "0"]) == 0
    printed = capsys.readouterr().out
    worker_args = printed.split("start workers with: plan-sweep ")[1].split("; then")[0].split()
    exe = Path(sys.executable).with_name("plan-sweep")
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen([str(exe), *worker_args], stdout=log, stderr=log)
    deadline = time.monotonic() + 120
    while not any(r.state.value == "running" for r in _records(out)):
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()
        assert time.monotonic() < deadline, "the worker never started a cell"
        time.sleep(0.2)
    time.sleep(1.0)  # mid-cell
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert cli.main([*base, "--out", str(out), "--workers", "1"]) == 0
    capsys.readouterr()
    history = _records(out, history=True)
    done = [r.cell.key for r in history if r.state.value == "done"]
    assert sorted(done) == sorted({r.cell.key for r in history})  # each cell done once
    assert len(done) == 2
    failed = [r for r in history if r.state.value == "failed"]
    assert len(failed) == 1 and "heartbeats" in (failed[0].error or "")
    assert (out / "validation.csv").is_file()


def test_the_study_is_named_by_what_the_runs_train_on(smoke_mixture: Path, tmp_path: Path) -> None:
    from sweeps.mixture import parse_mixture
    from sweeps.validate import resolve_spec, study_name

    raw = json.loads(smoke_mixture.read_text())
    mixture = read_mixture(smoke_mixture)
    spec = resolve_spec(mixture, None, [])
    name = study_name(mixture, spec)
    reported = {**raw, "objective_label": "another label", "new_report_field": [1, 2]}
    assert study_name(parse_mixture(reported, smoke_mixture), spec) == name
    assert study_name(mixture, resolve_spec(mixture, None, ["ledger.heartbeat_s=5"])) == name
    changed = json.loads(json.dumps(raw))
    changed["baselines"]["uniform"]["examples"]["el"] -= 1
    changed["baselines"]["uniform"]["examples"]["hi"] += 1
    assert study_name(parse_mixture(changed, smoke_mixture), spec) != name
    assert study_name(mixture, resolve_spec(mixture, None, ["train.epochs=2"])) != name


def test_random_mixtures_join_the_study_and_a_rerun_enqueues_none(
    smoke_mixture: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "v"
    base = ["validate", str(smoke_mixture), "--allocators", "planner", "--workers", "0"]
    argv = [*base, "--random-mixtures", "2", "--leave-one-out", "--out", str(out)]
    assert cli.main(argv) == 0
    codes = read_mixture(smoke_mixture).codes
    expected = {"planner", "dirichlet-1", "dirichlet-2", *(f"without-{c}" for c in codes)}
    records = _records(out)
    assert {r.cell.allocator for r in records} == expected and len(records) == len(expected)
    assert cli.main(argv) == 0
    assert cli.main([*base, "--out", str(out)]) == 0  # without the option: the draws stay
    assert len(_records(out)) == len(expected)
