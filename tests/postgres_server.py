"""A throwaway PostgreSQL server on 127.0.0.1 for the ledger tests, and the storage fixtures.

`postgres_url` starts one server for the whole test session from Debian's binaries
(`apt-get install postgresql`; tests that need it skip with that hint where they are missing):
`initdb` into a temporary folder, trust auth, fsync off, a free port on 127.0.0.1, the unix socket
in the same folder; stopped at the end of the session. PostgreSQL refuses to run as root, so as
root it runs as the `postgres` user, in a folder that user owns.

`storage_url(kind, folder, request)` gives a URL of each storage kind the ledger supports, for
parametrised tests. Test modules import the fixture by name so pytest finds it:
`from postgres_server import postgres_url  # noqa: F401`.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# Every storage kind the ledger tests run against; postgres is marked so `-m` can select it.
STORAGE_KINDS = [
    "memory",
    "sqlite",
    "journal",
    pytest.param("postgres", marks=pytest.mark.postgres),
]
# The kinds that several processes can share.
SHARED_STORAGE_KINDS = STORAGE_KINDS[1:]
_MISSING = "PostgreSQL binaries not found; install them with `apt-get install postgresql`."


def find_postgres_bin() -> Path | None:
    """The folder holding initdb and pg_ctl: on PATH, else the newest Debian install."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).parent
    installs = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    return installs[-1].parent if installs else None


class PostgresServer:
    """One PostgreSQL server in its own temporary folder; `start()`, then `url`, then `stop()`."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="ledger-pg-"))
        self.port = _free_port()
        self._run_as: list[str] = []
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip(
                    "Running as root needs a `postgres` user (apt-get install postgresql)."
                )
            shutil.chown(self.root, user="postgres")
            self._run_as = ["runuser", "-u", "postgres", "--"] if shutil.which("runuser") else []

    @property
    def url(self) -> str:
        """A SQLAlchemy URL for the server's `postgres` database, as the `postgres` superuser."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        """initdb, then start the server and wait until it accepts connections."""
        data = self.root / "data"
        self._pg(
            "initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"
        )
        options = f"-F -k {self.root} -p {self.port} -c listen_addresses=127.0.0.1"
        self._pg(
            "pg_ctl",
            "-D",
            str(data),
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        )

    def stop(self) -> None:
        """Stop the server at once (its data is thrown away) and delete its folder."""
        try:
            self._pg("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _pg(self, program: str, *args: str) -> None:
        command = [str(self.bin_dir / program), *args]
        if os.geteuid() == 0 and not self._run_as:
            command = ["su", "postgres", "-s", "/bin/sh", "-c", shlex.join(command)]
        done = subprocess.run(
            [*self._run_as, *command], capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{program} failed:\n{done.stdout}\n{done.stderr}\n{tail}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# One server per session even when several test modules import the fixture (pytest then sees
# one fixture per module): the first use starts it, the last teardown stops it.
_server: PostgresServer | None = None
_users = 0


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a PostgreSQL server started for this test session."""
    global _server, _users
    if _server is None:
        bin_dir = find_postgres_bin()
        if bin_dir is None:
            pytest.skip(_MISSING)
        server = PostgresServer(bin_dir)
        try:
            server.start()
        except BaseException:
            server.stop()
            raise
        _server = server
    _users += 1
    try:
        yield _server.url
    finally:
        _users -= 1
        if _users == 0:
            _server.stop()
            _server = None


def storage_url(kind: str, folder: Path, request: pytest.FixtureRequest) -> str:
    """A ledger storage URL of `kind` (memory, sqlite, journal, postgres) for one test."""
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{folder / 'ledger.db'}"
    if kind == "journal":
        return f"journal://{folder / 'ledger.journal'}"
    assert kind == "postgres", kind
    return str(request.getfixturevalue("postgres_url"))


def unique_study(prefix: str = "test") -> str:
    """A study name no other test uses (the PostgreSQL server is shared by the session)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"
