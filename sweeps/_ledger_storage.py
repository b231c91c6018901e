"""Ledger storage URLs -> Optuna storages and studies (see `sweeps.ledger` for the URL forms).

`open_study` turns every way a storage can fail to open into one `LedgerError` sentence.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import StorageInternalError
from optuna.storages import BaseStorage, InMemoryStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

from muit_core import ConfigError, LedgerError
from sweeps.cells import LedgerConfig

DEFAULT_JOURNAL_NAME = "ledger.journal"
_SQLITE_TIMEOUT_S = 60  # wait this long for SQLite's write lock instead of failing at once
_PG_CONNECT_TIMEOUT_S = 10  # an unreachable PostgreSQL host fails in 10 s, not minutes


def open_study(config: LedgerConfig) -> tuple[optuna.Study, BaseStorage, Path | None]:
    """Open (creating if needed) the config's study; also its storage and claim-lock file.

    Raises:
        ConfigError: an unknown URL scheme.
        LedgerError: the storage cannot be reached or opened, or its driver is missing.
    """
    # Optuna logs a line per study opened ("Using an existing study ..."); workers open
    # the ledger often, and the sweep's own log says what matters.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sweep_dir = config.sweep_dir
    shown = mask_password(config.storage_url or f"journal://{sweep_dir / DEFAULT_JOURNAL_NAME}")
    try:
        sweep_dir.mkdir(parents=True, exist_ok=True)
        storage, claim_lock = make_storage(config.storage_url, sweep_dir)
        study = optuna.create_study(
            storage=storage,
            study_name=config.study_name,
            load_if_exists=True,
            direction="minimize",
            sampler=optuna.samplers.RandomSampler(seed=0),
        )
    except ConfigError:
        raise  # an unknown URL scheme: the message says what to write instead
    except ImportError as err:  # optuna re-raises the driver's ModuleNotFoundError
        missing = getattr(err.__cause__, "name", None) or err.name or "?"
        raise LedgerError(
            f"The ledger storage {shown} needs the database driver {missing!r}, which is not "
            "installed; for PostgreSQL run pip install 'muit-planner[postgres]'."
        ) from err
    except storage_errors(ValueError, RuntimeError) as err:
        cause = mask_password(str(getattr(err, "orig", None) or err).strip().splitlines()[0])
        on_server = not shown.startswith(("journal:", "sqlite:", "memory"))
        fix = (
            "check that the server is running and that the URL's host, port, user, password "
            "and database are right, or leave the storage URL unset to use a journal file in "
            "the sweep folder"
            if on_server
            else "check that the path is writable and holds an Optuna ledger"
        )
        raise LedgerError(
            f"Cannot open the ledger storage {shown} ({cause.rstrip('.')}); {fix}."
        ) from err
    return study, storage, claim_lock


def make_storage(url: str | None, sweep_dir: Path) -> tuple[BaseStorage, Path | None]:
    """The Optuna storage for `url`, and the claim-lock file it needs (SQLite only)."""
    if url is None:
        return _journal(sweep_dir / DEFAULT_JOURNAL_NAME), None
    scheme = url.split(":", 1)[0].lower()
    if url in ("memory", "memory://"):
        return InMemoryStorage(), None
    if scheme == "journal" and url.startswith("journal://"):
        return _journal(sweep_dir / url.removeprefix("journal://")), None
    if scheme == "sqlite" and url.startswith("sqlite:///"):
        path_text, _, query = url.removeprefix("sqlite:///").partition("?")
        if path_text in ("", ":memory:"):
            return RDBStorage(url), None
        path = sweep_dir / path_text  # an absolute path_text wins over sweep_dir
        path.parent.mkdir(parents=True, exist_ok=True)
        engine: dict[str, Any] = {"connect_args": {"timeout": _SQLITE_TIMEOUT_S}}
        db_url = f"sqlite:///{path}" + (f"?{query}" if query else "")
        return RDBStorage(db_url, engine_kwargs=engine), path.with_name(path.name + ".claim.lock")
    if scheme in ("postgresql", "postgres"):
        # SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3; use whichever driver is here.
        has_psycopg2 = importlib.util.find_spec("psycopg2") is not None
        driver = (
            "psycopg2" if has_psycopg2 or not importlib.util.find_spec("psycopg") else "psycopg"
        )
        url, scheme = f"postgresql+{driver}:" + url.split(":", 1)[1], f"postgresql+{driver}"
    if scheme.startswith("postgresql"):
        engine = {"pool_pre_ping": True}  # a worker's connection may idle for hours
        if "connect_timeout" not in url:
            engine["connect_args"] = {"connect_timeout": _PG_CONNECT_TIMEOUT_S}
        return RDBStorage(url, engine_kwargs=engine), None
    if scheme.startswith(("mysql", "mariadb", "oracle", "mssql")):
        return RDBStorage(url, engine_kwargs={"pool_pre_ping": True}), None
    raise ConfigError(
        f"Unknown ledger storage URL {mask_password(url)!r}; use journal:///path/ledger.journal, "
        "sqlite:///path/ledger.db, postgresql://user:password@host:5432/db or memory://, or "
        "leave it unset for the journal file in the sweep folder."
    )


@contextlib.contextmanager
def claim_guard(claim_lock: Path | None) -> Iterator[None]:
    """Hold the claim lock `make_storage` gave (if any) while the block takes a trial."""
    # pysqlite reads the WAITING state outside the write transaction, so two processes could
    # both flip the same SQLite trial to RUNNING; a file lock serialises the take.
    if claim_lock is None:
        yield
        return
    with open(claim_lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def storage_errors(*also: type[Exception]) -> tuple[type[Exception], ...]:
    """The errors a storage raises when it cannot be reached or written, plus `also`."""
    errors: tuple[type[Exception], ...] = (*also, StorageInternalError, OSError)
    # SQLAlchemy is imported by Optuna only for RDB storages; without it, none of its errors
    # can occur (and journal workers start faster).
    if "sqlalchemy" in sys.modules:
        errors += (sys.modules["sqlalchemy"].exc.SQLAlchemyError,)
    return errors


def _journal(path: Path) -> JournalStorage:
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def mask_password(url: str) -> str:
    return re.sub(r"(://[^:/@\s]*):[^@/\s]*@", r"\1:***@", url)
