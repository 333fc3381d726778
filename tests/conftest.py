"""Fixtures shared by the whole suite.

* ``db``: a migrated database, parametrised over SQLite and PostgreSQL, so every test that touches
  the database runs on both. PostgreSQL gets one database per test run, created and dropped here.
  With ``CALLCENTER_REQUIRE_POSTGRES=1`` (CI) an unreachable PostgreSQL fails instead of skipping.
* an autouse guard that fails any test trying to reach a non-loopback address.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from callcenter.db import Base, Database
from callcenter.db.migrate import upgrade
from callcenter.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_ADMIN_URL = os.environ.get(
    "CALLCENTER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_POSTGRES = os.environ.get("CALLCENTER_REQUIRE_POSTGRES") == "1"
# A fixed instant inside hotline hours: Monday 2026-11-23 10:00 in Shanghai.
FIXED_NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


# --- network guard -------------------------------------------------------------------------------

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_local(address: Any) -> bool:
    if not isinstance(address, tuple):
        return True  # Unix sockets
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if not _is_local(address):
        raise AssertionError(f"test tried to reach the network: {address!r}")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> Any:
    if not _is_local(address):
        raise AssertionError(f"test tried to reach the network: {address!r}")
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)


# --- time and settings ---------------------------------------------------------------------------


@pytest.fixture
def now() -> datetime:
    return FIXED_NOW


def make_settings(tmp: Path, database_url: str, **sections: dict[str, Any]) -> Settings:
    overrides: dict[str, Any] = {
        "database": {"url": database_url},
        "storage": {
            "var_dir": str(tmp / "var"),
            "recordings_dir": str(tmp / "var" / "recordings"),
            "spool_dir": str(tmp / "var" / "spool"),
            "monitor_dir": str(tmp / "var" / "monitor"),
            "sounds_dir": str(tmp / "var" / "sounds"),
        },
        "ivr": {"flows_dir": str(ROOT / "ivr_flows")},
        "agi": {"port": 0},
    }
    for name, values in sections.items():
        overrides[name] = {**overrides.get(name, {}), **values}
    return load_settings(ROOT / "settings.toml", overrides=overrides)


# --- databases -----------------------------------------------------------------------------------


def _truncate(db: Database) -> None:
    tables = list(reversed(Base.metadata.sorted_tables))
    with db.engine.begin() as connection:
        if db.dialect == "postgresql":
            names = ", ".join(f'"{table.name}"' for table in tables)
            connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                connection.execute(table.delete())


@pytest.fixture(scope="session")
def sqlite_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    path = tmp_path_factory.mktemp("sqlite") / "callcenter.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    db = Database(url)
    yield db
    db.dispose()


@pytest.fixture(scope="session")
def postgresql_database() -> Iterator[Database]:
    name = f"callcenter_test_{uuid.uuid4().hex[:12]}"
    admin_dsn = POSTGRES_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    try:
        admin = psycopg.connect(admin_dsn, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {exc}"
        if REQUIRE_POSTGRES:
            pytest.fail(message)
        pytest.skip(message)
    admin.execute(f'CREATE DATABASE "{name}"')
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        db = Database(url, pool_size=20)
        yield db
        db.dispose()
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(
    params=[pytest.param("sqlite"), pytest.param("postgresql", marks=pytest.mark.postgresql)],
)
def db(request: pytest.FixtureRequest) -> Iterator[Database]:
    database: Database = request.getfixturevalue(f"{request.param}_database")
    _truncate(database)
    yield database
    _truncate(database)


@pytest.fixture
def settings(tmp_path: Path, db: Database) -> Settings:
    return make_settings(tmp_path, db.url)


# --- a record of what ran, for .ci/run -----------------------------------------------------------

_outcomes: dict[str, dict[str, int]] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call" and not (report.when == "setup" and report.outcome != "passed"):
        return
    markers = [name for name in ("postgresql", "browser", "espeak") if name in report.keywords]
    for marker in [*markers, "all"]:
        counts = _outcomes.setdefault(marker, {"passed": 0, "failed": 0, "skipped": 0})
        counts[report.outcome] = counts.get(report.outcome, 0) + 1


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    target = os.environ.get("CALLCENTER_TEST_REPORT")
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_text(json.dumps(_outcomes, indent=2))
