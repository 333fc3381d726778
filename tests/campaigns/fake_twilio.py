"""A local api.twilio.com for the dialler: Calls.json create (a fresh CallSid each), list by To, and
fetch by sid, answering with a configurable final status. Records when each create arrived."""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.loopback import serving

ACCOUNT = "AC" + "0123456789abcdef" * 2
TOKEN = "twilio-test-auth-token"


@dataclass
class FakeTwilio:
    base_url: str = ""
    status: str = "completed"  # what a fetched call says
    statuses: dict[str, str] = field(default_factory=dict)  # by To number
    creates: list[tuple[float, str, str]] = field(default_factory=list)  # (monotonic, To, url)
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def dial_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self.lock:
            for _, number, _ in self.creates:
                counts[number] = counts.get(number, 0) + 1
        return counts


def _body(fake: FakeTwilio, sid: str) -> dict[str, Any]:
    call = fake.calls[sid]
    return {
        "sid": sid,
        "account_sid": ACCOUNT,
        "to": call["to"],
        "from": call["from"],
        "status": fake.statuses.get(call["to"], fake.status),
        "direction": "outbound-api",
        "date_created": call["date_created"],
        "uri": f"/2010-04-01/Accounts/{ACCOUNT}/Calls/{sid}.json",
    }


def handler(fake: FakeTwilio) -> type[BaseHTTPRequestHandler]:
    prefix = f"/2010-04-01/Accounts/{ACCOUNT}/Calls"
    auth = "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorised(self) -> bool:
            if self.headers.get("Authorization") == auth:
                return True
            self._send(401, {"code": 20003, "message": "Authenticate", "status": 401})
            return False

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode())
            if not self._authorised():
                return
            if urlsplit(self.path).path != f"{prefix}.json":
                self._send(404, {"code": 20404, "message": "not found", "status": 404})
                return
            with fake.lock:
                sid = f"CA{next(fake.counter):032x}"
                fake.creates.append((time.monotonic(), form["To"][0], form["Url"][0]))
                fake.calls[sid] = {
                    "to": form["To"][0],
                    "from": form["From"][0],
                    "date_created": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
                }
                body = _body(fake, sid)
            body["status"] = "queued"
            self._send(201, body)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if not self._authorised():
                return
            match = re.fullmatch(rf"{prefix}/(CA\w+)\.json", parts.path)
            with fake.lock:
                if match is not None and match.group(1) in fake.calls:
                    self._send(200, _body(fake, match.group(1)))
                    return
                if parts.path == f"{prefix}.json":
                    to = parse_qs(parts.query).get("To", [""])[0]
                    found = [_body(fake, sid) for sid, call in fake.calls.items() if call["to"] == to]
                    page = {
                        "calls": found,
                        "page": 0,
                        "page_size": 50,
                        "next_page_uri": None,
                        "uri": parts.path,
                    }
                    self._send(200, page)
                    return
            self._send(404, {"code": 20404, "message": "not found", "status": 404})

    return Handler


@contextmanager
def running_fake_twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio()
    with serving(handler(fake), "fake-twilio") as fake.base_url:
        yield fake
