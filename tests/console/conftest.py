"""Fixtures of the console tests: the app served on a local port, a signed-in HTTP session, an SSE reader."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from werkzeug.serving import make_server

from callcenter.db import Database
from callcenter.events import LocalBus
from callcenter.settings import Settings
from tests.conftest import FIXED_NOW
from tests.web.factories import CSRF_FIELD, Account, web_settings_for
from web import create_app
from web.console import ConsoleRuntime
from web.i18n import compile_catalogs


@pytest.fixture(scope="session", autouse=True)
def _compiled_catalogs() -> None:
    compile_catalogs()


@dataclass
class Live:
    url: str
    app: Flask
    bus: LocalBus
    settings: Settings
    clients: list[SseClient] = field(default_factory=list)

    @property
    def runtime(self) -> ConsoleRuntime:
        value = self.app.extensions["console"]
        assert isinstance(value, ConsoleRuntime)
        return value

    def wait_streams(self, count: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while self.runtime.hub.streams != count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.runtime.hub.streams} streams open, waited for {count}")
            time.sleep(0.01)


def serve(app: Flask) -> tuple[str, Callable[[], None]]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="console-live", daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()

    return f"http://127.0.0.1:{server.server_port}", stop


@pytest.fixture
def console_options() -> dict[str, Any]:
    return {}


@pytest.fixture
def live(tmp_path: Path, db: Database, console_options: dict[str, Any]) -> Iterator[Live]:
    # Short heartbeats: a closed test client is noticed at the next one.
    options = {"outbox_poll_s": 0.02, "heartbeat_s": 0.2, **console_options}
    settings = web_settings_for(tmp_path, db.url, console=options)
    bus = LocalBus()
    app = create_app(settings, db, bus=bus, clock=lambda: FIXED_NOW)
    url, stop = serve(app)
    live = Live(url, app, bus, settings)
    try:
        yield live
    finally:
        for client in live.clients:
            client.close()
        stop()
        live.runtime.stop()


def signed_in(url: str, account: Account) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{url}/login", timeout=5).text
    match = CSRF_FIELD.search(page)
    assert match
    data = {"username": account.username, "password": account.password, "csrf_token": match.group(1)}
    response = session.post(f"{url}/login", data=data, timeout=5, allow_redirects=False)
    assert response.status_code == 302, response.text[:300]
    return session


@dataclass
class SseClient:
    """A minimal EventSource over a plain socket; decodes a chunked body (werkzeug chunks streams)."""

    url: str
    cookie: str
    last_event_id: str | None = None
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        host, port = self.url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=5)
        extra = f"Last-Event-ID: {self.last_event_id}\r\n" if self.last_event_id else ""
        request = (
            f"GET /console/events HTTP/1.0\r\nHost: {host}\r\nAccept: text/event-stream\r\n"
            f"Cookie: callcenter_session={self.cookie}\r\n{extra}\r\n"
        )
        self.sock.sendall(request.encode())
        self.reader = self.sock.makefile("rb")
        status_line = self.reader.readline().decode()
        self.status = int(status_line.split()[1])
        while True:
            line = self.reader.readline().decode().rstrip("\r\n")
            if not line:
                break
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.chunked = self.headers.get("transfer-encoding") == "chunked"
        self.buffer = b""
        self.ended = False

    def _fill(self) -> bool:
        """Read more of the body into the buffer; False at its end."""
        if self.ended:
            return False
        if not self.chunked:
            data = self.reader.read1(65536)
        else:
            size_line = self.reader.readline()
            if not size_line:
                data = b""
            else:
                size = int(size_line.strip() or b"0", 16)
                data = self.reader.read(size) if size else b""
                self.reader.readline()  # the CRLF after the chunk
        if not data:
            self.ended = True
            return False
        self.buffer += data
        return True

    def readline(self) -> bytes:
        while b"\n" not in self.buffer:
            if not self._fill():
                rest, self.buffer = self.buffer, b""
                return rest
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line + b"\n"

    def next_block(self, timeout: float = 5.0) -> list[str]:
        """The next SSE block (lines up to a blank line); [] at the end of the stream."""
        self.sock.settimeout(timeout)
        lines: list[str] = []
        while True:
            raw = self.readline()
            if not raw:
                return lines
            line = raw.decode().rstrip("\n")
            if line == "":
                if lines:
                    return lines
                continue
            lines.append(line)

    def next_event(self, timeout: float = 5.0) -> dict[str, str]:
        """The next block that is an event (comments skipped)."""
        while True:
            block = self.next_block(timeout)
            if not block:
                raise EOFError("stream ended")
            fields: dict[str, str] = {}
            for line in block:
                if line.startswith(":"):
                    continue
                name, _, value = line.partition(": ")
                fields[name] = value
            if "data" in fields:
                return fields

    def close(self) -> None:
        self.reader.close()
        self.sock.close()
