from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path

import pytest

from callcenter.db import Database
from callcenter.services.demo import seed_demo
from callcenter.settings import Settings
from callcenter.voice.agi.main import build_server
from callcenter.voice.agi.server import FastAGIServer, RunningServer
from callcenter.voice.agi.simulate import CallScript, Simulation, simulate_call
from tests.conftest import make_settings


@pytest.fixture
def agi_settings(tmp_path: Path, db: Database) -> Settings:
    return make_settings(tmp_path, db.url, agi={"env_timeout_s": 0.5, "reply_timeout_s": 5.0})


@pytest.fixture
def agi_server(agi_settings: Settings, db: Database, now: datetime) -> Iterator[FastAGIServer]:
    with db.transaction() as session:
        seed_demo(session, now=now, admin_password="admin-password")
    server = build_server(agi_settings, db, lambda: now, port=0)
    with RunningServer(server):
        yield server


Server = Callable[..., AbstractContextManager[FastAGIServer]]


@pytest.fixture
def server_at(tmp_path: Path, db: Database, now: datetime) -> Server:
    """A FastAGI server whose clock stands at ``when``, with settings sections overridden."""
    with db.transaction() as session:
        seed_demo(session, now=now, admin_password="admin-password")

    @contextmanager
    def start(when: datetime, **sections: dict[str, object]) -> Iterator[FastAGIServer]:
        settings = make_settings(
            tmp_path, db.url, agi={"env_timeout_s": 0.5, "reply_timeout_s": 5.0}, **sections
        )
        server = build_server(settings, db, lambda: when, port=0)
        with RunningServer(server):
            yield server

    return start


@pytest.fixture
def call(agi_server: FastAGIServer) -> Callable[..., Simulation]:
    def place(*inputs: str, **script: object) -> Simulation:
        result = simulate_call(
            "127.0.0.1", agi_server.port, CallScript(inputs=inputs, **script), timeout_s=10
        )  # type: ignore[arg-type]
        assert agi_server.fallback.recorder.flush()  # the record is written behind the session
        return result

    return place
