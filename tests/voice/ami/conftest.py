from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from callcenter.db import Database
from callcenter.settings import Settings
from callcenter.voice.ami.client import AmiClient, Backoff
from tests.conftest import FIXED_NOW, make_settings
from tests.voice.ami.fakeami import FakeAmi, load_capture

SECRET = "s3cret"


def wait_for(condition: Callable[[], Any], timeout: float = 5.0, message: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(0.005)


class Ticker:
    """A clock that moves 1 ms per reading: gaps have a length, nothing reads the real time."""

    def __init__(self, start: datetime = FIXED_NOW) -> None:
        self.now = start
        self.step_us = 1000

    def __call__(self) -> datetime:
        self.now += timedelta(microseconds=self.step_us)
        return self.now


@pytest.fixture
def capture() -> list[dict[str, str]]:
    return load_capture()


@pytest.fixture
def fake_ami() -> Iterator[FakeAmi]:
    server = FakeAmi(secret=SECRET).start()
    yield server
    server.stop()


@pytest.fixture
def make_client() -> Iterator[Callable[..., AmiClient]]:
    clients: list[AmiClient] = []

    def build(server: FakeAmi, *, secret: str = SECRET, **options: Any) -> AmiClient:
        options.setdefault("backoff", Backoff(0.01, 0.08))
        options.setdefault("clock", Ticker())
        options.setdefault("action_timeout_s", 3.0)
        options.setdefault("connect_timeout_s", 2.0)
        client = AmiClient("127.0.0.1", server.port, "callcenter", secret, **options)
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close(1.0)


@pytest.fixture
def ami_settings(
    tmp_path: Path, db: Database, fake_ami: FakeAmi, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    monkeypatch.setenv("CALLCENTER_AMI__SECRET", SECRET)  # secrets come from the environment only
    return make_settings(
        tmp_path,
        db.url,
        ami={
            "host": "127.0.0.1",
            "port": fake_ami.port,
            "reconnect_min_s": 0.01,
            "reconnect_max_s": 0.05,
            "action_timeout_s": 3.0,
        },
    )
