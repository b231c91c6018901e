"""Ledger storage URLs -> Optuna storages and studies (see `sweeps.ledger` for the URL forms).

`open_study` turns every way a storage can fail to open into one `LedgerError` sentence, and
leaves no folder or file behind when it fails. `queue_guard` serialises the ledger's
read-then-write sections (enqueueing a grid) across processes and machines: a PostgreSQL
advisory lock for PostgreSQL, an NFS-safe symlink lock beside a journal file, a file lock beside
a SQLite file. Creating Optuna's tables in a fresh PostgreSQL database is serialised the same
way, so two launches at once never both try to create them.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import StorageInternalError
from optuna.storages import BaseStorage, InMemoryStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

from muit_core import ConfigError, LedgerError
from sweeps.cells import LedgerConfig

DEFAULT_JOURNAL_NAME = "ledger.journal"
_SQLITE_TIMEOUT_S = 60  # wait this long for SQLite's write lock instead of failing at once
_PG_CONNECT_TIMEOUT_S = 10  # an unreachable PostgreSQL host fails in 10 s, not minutes
# A launch holds the journal's enqueue lock about a second for a few hundred cells; a lock held
# longer than this was left by a killed process and is broken (Optuna's own default is 30 s).
_ENQUEUE_LOCK_GRACE_S = 120


@dataclass(frozen=True)
class QueueLocks:
    """The lock files a storage needs besides its own (see `make_storage`).

    Attributes:
        claim: a file lock held while a trial is taken (SQLite only; see `claim_guard`).
        enqueue: what `queue_guard` locks: a journal's symlink-lock stem or a SQLite lock
            file; None where the storage locks itself (PostgreSQL) or is one process's.
    """

    claim: Path | None = None
    enqueue: Path | None = None


def open_study(
    config: LedgerConfig, *, create: bool = True
) -> tuple[optuna.Study, BaseStorage, QueueLocks]:
    """Open the config's study (creating it if `create`); also its storage and lock files.

    A storage that fails to open leaves no folder or file behind that was not there before.

    Raises:
        ConfigError: an unknown URL scheme.
        LedgerError: the storage cannot be reached or opened, or its driver is missing; with
            `create=False`, the study is not in it (nothing is created then).
    """
    # Optuna logs a line per study opened ("Using an existing study ..."); workers open
    # the ledger often, and the sweep's own log says what matters.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sweep_dir = config.sweep_dir
    shown = mask_password(config.storage_url or f"journal://{sweep_dir / DEFAULT_JOURNAL_NAME}")
    ledger_file = ledger_file_path(config.storage_url, sweep_dir)
    if not create and ledger_file is not None and not ledger_file.is_file():
        raise LedgerError(
            f"No study {config.study_name!r}: the ledger {shown} does not exist; launch the "
            "sweep first with `plan-sweep launch SPEC`, or check --storage and --sweep-dir."
        )
    try:
        with _undo_on_error(ledger_file):
            storage, locks = make_storage(config.storage_url, sweep_dir)
            if create:
                study = optuna.create_study(
                    storage=storage,
                    study_name=config.study_name,
                    load_if_exists=True,
                    direction="minimize",
                    sampler=optuna.samplers.RandomSampler(seed=0),
                )
            else:
                require_study(storage, config.study_name, shown)
                study = optuna.load_study(
                    study_name=config.study_name,
                    storage=storage,
                    sampler=optuna.samplers.RandomSampler(seed=0),
                )
    except (ConfigError, LedgerError):
        raise  # an unknown URL scheme or study: the message says what to write instead
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
    return study, storage, locks


def require_study(storage: BaseStorage, study_name: str, shown: str) -> None:
    """Raise `LedgerError` naming the studies there if `study_name` is not in `storage`."""
    try:
        storage.get_study_id_from_name(study_name)
        return
    except KeyError:
        pass
    held = []
    for study in storage.get_all_studies():
        spec = study.user_attrs.get("spec")
        objective = spec.get("objective") if isinstance(spec, dict) else None
        held.append(study.study_name + (f" (objective {objective})" if objective else ""))
    listing = f"it holds {', '.join(held)}" if held else "it holds no study"
    raise LedgerError(
        f"No study {study_name!r} in the ledger {shown} ({listing}); launch it first with "
        "`plan-sweep launch SPEC` (with the same overrides), or name one of those with --study."
    )


@contextlib.contextmanager
def _undo_on_error(ledger_file: Path | None) -> Iterator[None]:
    """On an error in the block, remove the ledger file and folders it created (empty ones)."""
    new = [] if ledger_file is None else [p for p in (ledger_file, *ledger_file.parents)]
    new = [p for p in new if not p.exists() and not p.is_symlink()]
    try:
        yield
    except BaseException:
        for path in new:  # deepest first
            with contextlib.suppress(OSError):
                if path.is_file() and path.stat().st_size == 0:
                    path.unlink()
                elif path.is_dir():
                    path.rmdir()  # only if empty
        raise


def ledger_file_path(url: str | None, sweep_dir: Path) -> Path | None:
    """The file a journal or SQLite storage URL keeps the ledger in; None for the others."""
    if url is None:
        return sweep_dir / DEFAULT_JOURNAL_NAME
    if url.startswith("journal://"):
        return sweep_dir / url.removeprefix("journal://")
    if url.startswith("sqlite:///"):
        path_text = url.removeprefix("sqlite:///").partition("?")[0]
        return None if path_text in ("", ":memory:") else sweep_dir / path_text
    return None


def make_storage(url: str | None, sweep_dir: Path) -> tuple[BaseStorage, QueueLocks]:
    """The Optuna storage for `url`, and the lock files it needs besides its own."""
    if url is None:
        journal = sweep_dir / DEFAULT_JOURNAL_NAME
        return _journal(journal), QueueLocks(enqueue=journal)
    scheme = url.split(":", 1)[0].lower()
    if url in ("memory", "memory://"):
        return InMemoryStorage(), QueueLocks()
    if scheme == "journal" and url.startswith("journal://"):
        journal = sweep_dir / url.removeprefix("journal://")
        return _journal(journal), QueueLocks(enqueue=journal)
    if scheme == "sqlite" and url.startswith("sqlite:///"):
        path_text, _, query = url.removeprefix("sqlite:///").partition("?")
        if path_text in ("", ":memory:"):
            return RDBStorage(url), QueueLocks()
        path = sweep_dir / path_text  # an absolute path_text wins over sweep_dir
        path.parent.mkdir(parents=True, exist_ok=True)
        engine: dict[str, Any] = {"connect_args": {"timeout": _SQLITE_TIMEOUT_S}}
        db_url = f"sqlite:///{path}" + (f"?{query}" if query else "")
        lock = path.with_name(path.name + ".claim.lock")
        return RDBStorage(db_url, engine_kwargs=engine), QueueLocks(claim=lock, enqueue=lock)
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
        # Two processes creating Optuna's tables in a fresh database at once: one fails with
        # "duplicate key value violates unique constraint pg_type_typname_nsp_index".
        import sqlalchemy

        locker = sqlalchemy.create_engine(url, **engine)
        try:
            with _pg_advisory_lock(locker, "muit-ledger: optuna schema"):
                return RDBStorage(url, engine_kwargs=engine), QueueLocks()
        finally:
            locker.dispose()
    if scheme.startswith(("mysql", "mariadb", "oracle", "mssql")):
        return RDBStorage(url, engine_kwargs={"pool_pre_ping": True}), QueueLocks()
    raise ConfigError(
        f"Unknown ledger storage URL {mask_password(url)!r}; use journal:///path/ledger.journal, "
        "sqlite:///path/ledger.db, postgresql://user:password@host:5432/db or memory://, or "
        "leave it unset for the journal file in the sweep folder."
    )


def _lock_key(name: str) -> int:
    """A signed 64-bit advisory-lock key for `name` (stable across processes and machines)."""
    return int.from_bytes(hashlib.sha1(name.encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def _pg_advisory_lock(engine: Any, name: str) -> Iterator[None]:
    """Hold a PostgreSQL transaction-level advisory lock on `name`, on a connection of its own
    from the SQLAlchemy `engine`.

    The lock goes with the transaction, so a killed process never leaves it held.
    """
    import sqlalchemy

    with engine.connect() as connection, connection.begin():
        connection.execute(
            sqlalchemy.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(name)}
        )
        yield


@contextlib.contextmanager
def queue_guard(storage: BaseStorage, locks: QueueLocks, study_name: str) -> Iterator[None]:
    """Hold the lock that serialises enqueues of `study_name` across processes and machines.

    PostgreSQL: an advisory lock in the database (any machine that reaches the server);
    a journal file: an NFS-safe symlink lock beside it (any machine that shares the folder);
    SQLite: a file lock beside the database (one machine); memory: none needed. Other RDB
    servers (MySQL, ...) get no lock: launch those from one process at a time.
    """
    if isinstance(storage, RDBStorage) and storage.engine.dialect.name == "postgresql":
        with _pg_advisory_lock(storage.engine, f"muit-ledger: enqueue {study_name}"):
            yield
        return
    if isinstance(storage, JournalStorage) and locks.enqueue is not None:
        lock = JournalFileSymlinkLock(f"{locks.enqueue}.enqueue", _ENQUEUE_LOCK_GRACE_S)
        lock.acquire()
        try:
            yield
        finally:
            lock.release()
        return
    with claim_guard(locks.enqueue):
        yield


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
