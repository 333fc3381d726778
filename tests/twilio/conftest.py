"""Fixtures of the Twilio tests: the app with Twilio configured, signed requests, a fake Twilio API.

* ``twilio``: posts form data to ``/twilio/…`` through the Flask test client, signed with twilio's
  ``RequestValidator`` for the public URL (``https://cc.example.com``, as behind a TLS proxy).
* ``fake_api``: a local HTTP server on 127.0.0.1 answering like api.twilio.com (calls.create JSON,
  recording media, recording delete); ``api_base_url`` points the app and the REST client at it.
* ``clock``: a settable clock handed to the app (starts at ``FIXED_NOW``).
"""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import wave
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from twilio.request_validator import RequestValidator
from werkzeug.test import TestResponse

from callcenter.db import Database
from callcenter.events import LocalBus
from callcenter.models import Agent, Queue
from callcenter.services.callers import ensure_caller
from callcenter.settings import Settings
from tests.conftest import FIXED_NOW
from tests.loopback import serving
from tests.web.factories import web_settings_for
from web import create_app
from web.i18n import compile_catalogs
from web.twilio import EXTENSION_KEY as TWILIO_EXTENSION

ACCOUNT = "AC" + "0123456789abcdef" * 2
TOKEN = "twilio-test-auth-token"
PUBLIC = "https://cc.example.com"
CALLER = "+8613800138000"
VIP = "+8613900139000"
HOTLINE_NUMBER = "+864008123123"


@pytest.fixture(scope="session", autouse=True)
def _compiled_catalogs() -> None:
    compile_catalogs()


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(FIXED_NOW)


# --- a fake api.twilio.com ---------------------------------------------------------------------------


def wav_bytes(seconds: float, *, channels: int = 1, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(b"\x00\x01" * channels * int(rate * seconds))
    return buffer.getvalue()


@dataclass
class FakeTwilio:
    """What the fake API was asked, and what it answers."""

    base_url: str = ""
    requests: list[tuple[str, str, dict[str, list[str]]]] = field(default_factory=list)
    recordings: dict[str, bytes] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    media_failures: int = 0  # answer the next N media requests with 503
    create_error: tuple[int, int, str] | None = None  # (HTTP status, Twilio code, message)
    truncate_media: bool = False
    ended_calls: set[str] = field(default_factory=set)  # calls(sid).update answers 21220 for these
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(fake: FakeTwilio) -> type[BaseHTTPRequestHandler]:
    prefix = f"/2010-04-01/Accounts/{ACCOUNT}"
    expected_auth = "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes = b"", content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _note(self) -> tuple[str, dict[str, list[str]]] | None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            parts = urlsplit(self.path)
            with fake.lock:
                fake.requests.append((self.command, self.path, parse_qs(body)))
            if self.headers.get("Authorization") != expected_auth:
                self._send(
                    401, json.dumps({"code": 20003, "message": "Authenticate", "status": 401}).encode()
                )
                return None
            return parts.path, parse_qs(body)

        def do_POST(self) -> None:
            noted = self._note()
            if noted is None:
                return
            path, form = noted
            update = re.fullmatch(rf"{prefix}/Calls/(CA\w+)\.json", path)
            if update is not None:
                self._update_call(update.group(1), form)
                return
            if path != f"{prefix}/Calls.json":
                self._send(404, b'{"code": 20404, "message": "not found", "status": 404}')
                return
            if fake.create_error is not None:
                status, code, message = fake.create_error
                body = {"code": code, "message": message, "more_info": "", "status": status}
                self._send(status, json.dumps(body).encode())
                return
            sid = "CA" + "f" * 32
            body = {
                "sid": sid,
                "account_sid": ACCOUNT,
                "to": form["To"][0],
                "from": form["From"][0],
                "status": "queued",
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "date_created": "Mon, 23 Nov 2026 02:00:00 +0000",
                "uri": f"{prefix}/Calls/{sid}.json",
            }
            self._send(201, json.dumps(body).encode())

        def _update_call(self, sid: str, form: dict[str, list[str]]) -> None:
            """``calls(sid).update``: Twilio refuses a call that is no longer in progress (21220)."""
            if sid in fake.ended_calls:
                body = {"code": 21220, "message": "Call is not in-progress. Cannot redirect.", "status": 400}
                self._send(400, json.dumps(body).encode())
                return
            body = {
                "sid": sid,
                "account_sid": ACCOUNT,
                "status": "in-progress",
                "uri": f"{prefix}/Calls/{sid}.json",
            }
            self._send(200, json.dumps(body).encode())

        def do_GET(self) -> None:
            noted = self._note()
            if noted is None:
                return
            path, _ = noted
            match = re.fullmatch(rf"{prefix}/Recordings/(RE\w+)\.wav", path)
            if match is None or match.group(1) not in fake.recordings:
                self._send(404, b'{"code": 20404, "message": "not found", "status": 404}')
                return
            with fake.lock:
                failing = fake.media_failures > 0
                fake.media_failures -= 1 if failing else 0
            if failing:
                self._send(503, b'{"code": 20503, "message": "unavailable", "status": 503}')
                return
            body = fake.recordings[match.group(1)]
            if fake.truncate_media:
                self.send_response(200)
                self.send_header("Content-Type", "audio/x-wav")
                self.send_header("Content-Length", str(len(body) + 100))
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True
                return
            self._send(200, body, "audio/x-wav")

        def do_DELETE(self) -> None:
            noted = self._note()
            if noted is None:
                return
            path, _ = noted
            match = re.fullmatch(rf"{prefix}/Recordings/(RE\w+)\.json", path)
            if match is None:
                self._send(404, b'{"code": 20404, "message": "not found", "status": 404}')
                return
            with fake.lock:
                fake.deleted.append(match.group(1))
            self._send(204)

    return Handler


@pytest.fixture
def fake_api() -> Iterator[FakeTwilio]:
    fake = FakeTwilio()
    with serving(_handler(fake), "fake-twilio") as fake.base_url:
        yield fake


# --- the app -----------------------------------------------------------------------------------------


def twilio_settings_for(tmp: Path, url: str, api_base_url: str = "", **twilio: Any) -> Settings:
    section = {
        "account_sid": ACCOUNT,
        "auth_token": TOKEN,
        "public_base_url": PUBLIC,
        "api_base_url": api_base_url,
        "caller_id": "+864008123123",
        "hold_music_url": "https://cdn.example.com/hold.mp3",
        **twilio,
    }
    return web_settings_for(tmp, url, twilio=section)


@pytest.fixture
def twilio_settings(tmp_path: Path, db: Database, fake_api: FakeTwilio) -> Settings:
    return twilio_settings_for(tmp_path, db.url, fake_api.base_url)


@pytest.fixture
def bus() -> LocalBus:
    return LocalBus()


@pytest.fixture
def app(twilio_settings: Settings, db: Database, clock: Clock, bus: LocalBus) -> Flask:
    app = create_app(twilio_settings, db, clock=clock, bus=bus)
    app.config["TESTING"] = True
    return app


def sign(url: str, params: Mapping[str, str]) -> str:
    return str(RequestValidator(TOKEN).compute_signature(url, dict(params)))


class SignedClient:
    """Posts to the webhooks as Twilio would: the form, and the signature of the public URL."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def post(self, url: str, params: Mapping[str, str], *, signature: str | None = None) -> TestResponse:
        """``url`` is absolute (under PUBLIC, as in our TwiML) or a path."""
        full = url if url.startswith("http") else PUBLIC + url
        path = full.removeprefix(PUBLIC)
        headers = {"X-Twilio-Signature": sign(full, params) if signature is None else signature}
        if signature == "":
            headers = {}
        response = self.client.post(path, data=dict(params), headers=headers)
        # Webhooks answer before their reports are written: wait for the writer, as a test reads next.
        twilio_web = self.client.application.extensions.get(TWILIO_EXTENSION)
        if twilio_web is not None:
            assert twilio_web.voice.recorder.flush()
        return response


@pytest.fixture
def twilio(app: Flask) -> SignedClient:
    return SignedClient(app.test_client())


def call_params(sid: str = "CA" + "1" * 32, caller: str = CALLER, **extra: str) -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT,
        "CallSid": sid,
        "From": caller,
        "To": HOTLINE_NUMBER,
        "Direction": "inbound",
        "CallStatus": "ringing",
        "ApiVersion": "2010-04-01",
        **extra,
    }


def make_agent(
    db: Database, now: datetime, identity: str, queues: tuple[str, ...], name: str = "王芳"
) -> int:
    with db.transaction() as session:
        rows = []
        for queue_name in queues:
            queue = session.execute(select(Queue).where(Queue.name == queue_name)).scalar_one_or_none()
            if queue is None:
                queue = Queue(name=queue_name, created_at=now)
                session.add(queue)
            rows.append(queue)
        agent = Agent(name=name, twilio_identity=identity, queues=rows, created_at=now)
        session.add(agent)
        session.flush()
        return agent.id


def make_vip(db: Database, now: datetime, number: str = VIP) -> None:
    with db.transaction() as session:
        ensure_caller(session, number, now=now, name="张三", tier="vip")
