"""Concurrent `plan-sweep launch` processes on one ledger never duplicate a cell.

Two real `plan-sweep launch smoke --workers 0` processes per round (`launch_race_helper.py`),
held at a barrier until both are about to open the ledger, so that they create the tables, the
study and the grid at the same moment. Ten rounds each: on a fresh PostgreSQL database (the
schema-creation race: one launch used to fail with "duplicate key value violates unique
constraint pg_type_typname_nsp_index"), on an existing database (both used to enqueue the grid:
16 trials for 8 cells), and on a fresh journal file in the sweep folder. Every round must end
with both launches exiting 0 and each of the 8 cells enqueued exactly once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from postgres_server import postgres_url  # noqa: F401

from sweeps.ledger import Ledger, LedgerConfig
from sweeps.spec import load_spec
from sweeps.sweep import grid_cells

HELPER = Path(__file__).with_name("launch_race_helper.py")
ROUNDS = 10
N_LAUNCHERS = 2


def _create_databases(server_url: str, names: list[str]) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(
        server_url.replace("postgresql://", "postgresql+psycopg2://"),
        isolation_level="AUTOCOMMIT",
    )
    with engine.connect() as connection:
        for name in names:
            connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()


def _run_rounds(rounds: list[dict[str, object]], folder: Path) -> list[list[dict[str, object]]]:
    """Run the rounds in `N_LAUNCHERS` processes in lock step; each round's results."""
    barrier = folder / "barrier"
    barrier.mkdir()
    rounds_file = folder / "rounds.json"
    rounds_file.write_text(json.dumps(rounds))
    logs = [open(folder / f"launcher-{i}.log", "wb") for i in range(N_LAUNCHERS)]  # noqa: SIM115
    command = [sys.executable, str(HELPER), str(rounds_file), str(barrier)]
    launchers = [subprocess.Popen(command, stdout=log, stderr=log) for log in logs]
    try:
        for index in range(len(rounds)):
            deadline = time.monotonic() + 120
            while len(list(barrier.glob(f"ready.{index}.*"))) < N_LAUNCHERS:
                dead = [p.args for p in launchers if p.poll() is not None]
                assert not dead and time.monotonic() < deadline, _logs(folder)
                time.sleep(0.005)
            (barrier / f"go.{index}").touch()
        assert [p.wait(timeout=120) for p in launchers] == [0] * N_LAUNCHERS, _logs(folder)
    finally:
        for process in launchers:
            if process.poll() is None:
                process.kill()
        for log in logs:
            log.close()
    return [
        [json.loads(p.read_text()) for p in sorted(barrier.glob(f"rc.{index}.*"))]
        for index in range(len(rounds))
    ]


def _logs(folder: Path) -> str:
    return "\n".join(p.read_text(errors="replace")[-3000:] for p in folder.glob("launcher-*.log"))


@pytest.mark.parametrize(
    "where",
    [
        pytest.param("postgres-fresh", marks=pytest.mark.postgres),
        pytest.param("postgres-existing", marks=pytest.mark.postgres),
        "journal",
    ],
)
def test_concurrent_launches_enqueue_each_cell_once(
    where: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    tag = uuid.uuid4().hex[:8]
    rounds, ledgers = [], []
    if where.startswith("postgres"):
        server = str(request.getfixturevalue("postgres_url"))
        base = server.rsplit("/", 1)[0]
        if where == "postgres-fresh":
            names = [f"race_{tag}_{index}" for index in range(ROUNDS)]
        else:
            names = [f"race_{tag}"]
        _create_databases(server, names)
        urls = [f"{base}/{names[index % len(names)]}" for index in range(ROUNDS)]
        if where == "postgres-existing":  # the tables and another study are already there
            Ledger.open(LedgerConfig(urls[0], "an-earlier-sweep", tmp_path)).enqueue([])
    else:
        urls = [None] * ROUNDS
    for index, url in enumerate(urls):
        overrides = [f"name='race{index}'", f"out_dir={str(tmp_path / 'runs' / '{name}')!r}"]
        argv = ["launch", "smoke", *overrides, "--workers", "0"]
        rounds.append({"argv": argv + (["--storage", url] if url else [])})
        spec = load_spec("smoke", overrides)
        ledgers.append((LedgerConfig(url, spec.study_name(), spec.sweep_dir), grid_cells(spec)))

    results = _run_rounds(rounds, tmp_path)

    good = 0
    problems = []
    for index, ((config, cells), launches) in enumerate(zip(ledgers, results, strict=True)):
        codes = [launch["code"] for launch in launches]
        counts = Counter(r.cell for r in Ledger.open(config).records(history=True))
        if codes == [0] * N_LAUNCHERS and counts == Counter(cells):
            good += 1
        else:
            errors = [launch["stderr"] for launch in launches if launch["code"] != 0]
            problems.append(
                f"round {index}: exit codes {codes}, {sum(counts.values())} trials "
                f"for {len(cells)} cells, {errors}"
            )
    print(f"{where}: each cell exactly once in {good} of {ROUNDS} rounds")
    assert good == ROUNDS, "\n".join(problems)
