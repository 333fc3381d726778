"""The one session helper: an engine per process, short transactions, dialect-aware upserts."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Dialect,
    Engine,
    Table,
    TextClause,
    bindparam,
    create_engine,
    event,
    text,
)
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

from callcenter.db.base import Base

SQLITE_BUSY_TIMEOUT_MS = 30_000


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the web read while the voice layer writes; foreign keys are off by default in SQLite.
    dbapi_connection.isolation_level = None  # let SQLAlchemy's BEGIN below take effect
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


READ_ONLY = "callcenter_read_only"


def _begin(connection: Any) -> None:
    # Writers take the write lock at BEGIN so they queue on busy_timeout instead of failing with
    # "database is locked" when a read transaction tries to upgrade; readers (WAL) take no lock.
    read_only = connection.get_execution_options().get(READ_ONLY, False)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def make_engine(url: str, *, echo: bool = False, pool_size: int = 10) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _configure_sqlite)
        event.listen(engine, "begin", _begin)
        return engine
    return create_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, future=True
    )


class SqliteWriteLock:
    """One SQLite writer at a time across the threads *and processes* of this database file.

    Threads queue on a lock and processes on ``flock`` of a lock file beside the database; both wake
    the next writer as soon as the lock is released, where SQLite's own busy handler sleeps in steps
    of up to 100 ms (which starved two gunicorn workers writing to one file). The lock file is opened
    per process (after a fork the child opens its own, or both would share one lock).
    """

    def __init__(self, database_file: str | None) -> None:
        self._threads = threading.Lock()
        self._path = f"{database_file}-writelock" if database_file else None
        self._fd: int | None = None
        self._pid = 0

    def __enter__(self) -> None:
        self._threads.acquire()
        try:
            if self._path is not None:
                fcntl.flock(self._file(), fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            if self._path is not None and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def _file(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            assert self._path is not None
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd


def _sqlite_file(url: str) -> str | None:
    """The database file of an SQLite URL, or None for an in-memory database."""
    path = url.split("///", 1)[1] if "///" in url else ""
    return path.split("?", 1)[0] if path and ":memory:" not in path else None


class Database:
    """Owns the engine and session factory of one process. Passed to whoever needs the database."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 10) -> None:
        self.url = url
        self.engine = make_engine(url, echo=echo, pool_size=pool_size)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time: writers queue on SqliteWriteLock (threads and processes).
        self._write_lock: SqliteWriteLock | contextlib.nullcontext[None] = (
            SqliteWriteLock(_sqlite_file(url))
            if self.engine.dialect.name == "sqlite"
            else contextlib.nullcontext()
        )
        self._readers = sessionmaker(
            self.engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work is committed on success and rolled back on any error."""
        with self._write_lock, self.sessions() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading only: on SQLite it does not take the write lock."""
        with self._readers() as session:  # closing rolls the read transaction back
            yield session

    def ping(self) -> None:
        """Raise if the database cannot be reached (for health checks)."""
        with self.engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")

    def dispose(self) -> None:
        self.engine.dispose()


@functools.lru_cache(maxsize=64)
def insert_ignoring(
    table: Table,
    columns: tuple[str, ...],
    keys: tuple[str, ...],
    *,
    rows: int = 1,
    returning: tuple[str, ...] = (),
) -> tuple[TextClause, tuple[tuple[str, str], ...]]:
    """``INSERT`` of ``rows`` rows ``ON CONFLICT (keys) DO NOTHING`` (``RETURNING`` what is asked),
    with each parameter's (name, column); for one row the parameters are named after the columns.

    The same SQL on SQLite (>= 3.24) and PostgreSQL; typed bind parameters keep the column types'
    conversions (aware datetimes, JSON). Text built once per shape, so SQLAlchemy caches its compiled
    form: the dialects' own ``insert().on_conflict_do_nothing()`` has no cache key and was compiled
    again for every statement.
    """
    parameters = tuple(
        (column if rows == 1 else f"{column}_{row}", column) for row in range(rows) for column in columns
    )
    names = ", ".join(f'"{name}"' for name in columns)
    width = len(columns)
    groups = ", ".join(
        "(" + ", ".join(f":{name}" for name, _ in parameters[row * width : (row + 1) * width]) + ")"
        for row in range(rows)
    )
    conflict = ", ".join(f'"{name}"' for name in keys)
    sql = f'INSERT INTO "{table.name}" ({names}) VALUES {groups} ON CONFLICT ({conflict}) DO NOTHING'  # noqa: S608 - names from the model
    if returning:
        sql += " RETURNING " + ", ".join(f'"{name}"' for name in returning)
    types = (bindparam(name, type_=table.c[column].type) for name, column in parameters)
    return text(sql).bindparams(*types), parameters


def insert_ignoring_duplicates(
    session: Session, model: type[Base], rows: Sequence[dict[str, Any]], keys: Sequence[str]
) -> None:
    """INSERT … ON CONFLICT (keys) DO NOTHING, for rows that all name the same columns."""
    if not rows:
        return
    table = cast(Table, model.__table__)
    statement, _ = insert_ignoring(table, tuple(rows[0]), tuple(keys))
    executemany(session.connection(), statement, rows)


class _Plan:
    """A statement compiled for one dialect: its SQL, its parameters in order, their converters."""

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)  # DML and text statements compile with the SQL compiler
        self.sql = compiled.string
        self.positional = bool(compiled.positional)
        names = list(compiled.positiontup or ()) if self.positional else list(compiled.binds)
        binds = compiled.binds
        self.names = tuple(names)
        self.converters = tuple(
            binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
        )

    def parameters(self, row: dict[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        values = tuple(
            row[name] if convert is None else convert(row[name])
            for name, convert in zip(self.names, self.converters, strict=True)
        )
        return values if self.positional else dict(zip(self.names, values, strict=True))


@functools.lru_cache(maxsize=128)
def _plan(statement: ClauseElement, dialect: Dialect) -> _Plan:
    return _Plan(statement, dialect)


def executemany(connection: Connection, statement: ClauseElement, rows: Sequence[dict[str, Any]]) -> None:
    """Run ``statement`` (no RETURNING) once per row through the DB-API's ``executemany``.

    Each value goes through its column type's own bind processor, as ``connection.execute`` would
    convert it (aware datetimes, JSON); what is skipped is SQLAlchemy's per-row bookkeeping around it,
    which costs more than the conversion on the writers' batches. Every row names every parameter.
    """
    if not rows:
        return
    plan = _plan(statement, connection.dialect)
    connection.exec_driver_sql(plan.sql, [plan.parameters(row) for row in rows])
