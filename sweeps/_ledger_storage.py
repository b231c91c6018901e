"""Ledger storage URLs -> Optuna storages (see `sweeps.ledger` for the URL forms)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

from optuna.exceptions import StorageInternalError
from optuna.storages import BaseStorage, InMemoryStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

from muit_core import ConfigError

DEFAULT_JOURNAL_NAME = "ledger.journal"
_SQLITE_TIMEOUT_S = 60  # wait this long for SQLite's write lock instead of failing at once
_PG_CONNECT_TIMEOUT_S = 10  # an unreachable PostgreSQL host fails in 10 s, not minutes


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
