"""Screen-pop latency with many agents connected: from the ring event on the bus to the browser's receipt.

One web node, as ``callcenter serve`` runs it: the Flask app under werkzeug's threaded server (one
thread per open stream) on a fresh SQLite database with N agents (default 500), each with a signed-in
session. A client process holds N Server-Sent Events streams open (asyncio, one socket each, as N
browser tabs would) and notes when each ``screenpop`` event arrives. The server publishes ring events
(``SCREEN_POP`` for ``PJSIP/<extension>`` with a call id) on its bus and notes the instant just before
``publish``; latency = receipt - publish (same machine, same clock). It includes the hub's routing,
the card's database read (caller, last calls, open cases) in the stream's thread, and the write.

Phases: ``steady`` (default 20 pops/s to random agents) and ``burst`` (every agent rung at once).
Usage: python -m bench.screenpop [--agents 500] [--rate 20] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.serving import make_server

from callcenter.db import Database
from callcenter.db.migrate import upgrade
from callcenter.events import SCREEN_POP, Event, LocalBus
from callcenter.models import Agent, User, UserRole
from callcenter.runtime import settle
from callcenter.services.calls import CallSeen, Entry, record_call
from callcenter.settings import load_settings
from web import create_app
from web.auth import SEEN_AT, SIGNED_IN_AT

ROOT = Path(__file__).resolve().parents[1]


# --- the server process ----------------------------------------------------------------------------


def _seed(db: Any, agents: int, now: datetime) -> list[int]:
    with db.transaction() as session:
        for index in range(agents):
            user = User(
                username=f"agent{index}", display_name=f"坐席{index}", password_hash="!", created_at=now
            )
            user.role_rows = [UserRole(role="agent_consultation")]
            session.add(user)
            session.flush()
            session.add(
                Agent(name=f"坐席{index}", extension=str(1000 + index), user_id=user.id, created_at=now)
            )
    call_ids = []
    for index in range(50):  # calls of 50 callers, each with a little history
        with db.transaction() as session:
            for back in range(4):
                linkedid = f"17954{index:03d}.{back}"
                seen = CallSeen(
                    "asterisk",
                    linkedid,
                    now - timedelta(days=back),
                    from_raw=f"1380013{index:04d}",
                    caller_name="张三",
                )
                entries = [
                    Entry(
                        f"r:{linkedid}",
                        "ivr.route",
                        seen.at,
                        "agi",
                        "route",
                        0,
                        {"queue": "consultation", "branch": "consultation", "priority": 0},
                    )
                ]
                call = record_call(session, seen, entries, region="CN", now=now)
            call_ids.append(call.id)
    return call_ids


def serve(agents: int) -> None:

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log line per stream
    folder = Path(tempfile.mkdtemp(prefix="bench-screenpop-"))
    url = f"sqlite:///{folder / 'callcenter.db'}"
    upgrade(url)
    settings = load_settings(
        ROOT / "settings.toml",
        overrides={
            "database": {"url": url, "pool_size": 50},
            "web": {"secret_key": "bench-secret"},
            "storage": {"var_dir": str(folder)},
            "console": {"max_streams": agents + 100},
        },
    )
    db = Database(url, pool_size=50)
    now = datetime.now(UTC)
    call_ids = _seed(db, agents, now)
    bus = LocalBus()
    app: Flask = create_app(settings, db, bus=bus)
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    signed_in = time.time()  # a session as sign-in leaves it (web/auth.py checks both instants)
    cookies = [
        serializer.dumps(
            {"_user_id": str(index + 1), "_fresh": True, SIGNED_IN_AT: signed_in, SEEN_AT: signed_in}
        )
        for index in range(agents)
    ]
    server = make_server("127.0.0.1", 0, app, threaded=True)
    server.request_queue_size = 1024
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settle(settings.organisation.phone_region)
    hub = app.extensions["console"].hub
    print(json.dumps({"port": server.server_port, "cookies": cookies}), flush=True)

    def pop(index: int) -> tuple[str, float]:
        event_id = uuid.uuid4().hex
        payload = {
            "agent": f"PJSIP/{1000 + index}",
            "call_id": random.choice(call_ids),
            "state": "ringing",
            "event_id": event_id,
        }
        published = time.time()
        bus.publish(Event(SCREEN_POP, payload))
        return event_id, published

    for line in sys.stdin:
        command = line.split()
        if not command:
            continue
        if command[0] == "streams":
            print(json.dumps({"streams": hub.streams}), flush=True)
        elif command[0] == "steady":
            count, rate = int(command[1]), float(command[2])
            sent: dict[str, float] = {}
            start = time.monotonic()
            for n in range(count):
                delay = start + n / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                event_id, at = pop(random.randrange(agents))
                sent[event_id] = at
            print(json.dumps({"sent": sent}), flush=True)
        elif command[0] == "burst":
            sent = dict(pop(index) for index in range(agents))
            print(json.dumps({"sent": sent}), flush=True)
        elif command[0] == "stats":
            usage = resource.getrusage(resource.RUSAGE_SELF)
            print(
                json.dumps({"threads": threading.active_count(), "max_rss_mb": usage.ru_maxrss / 1024}),
                flush=True,
            )
        elif command[0] == "quit":
            break
    server.shutdown()


# --- the client process ----------------------------------------------------------------------------


class Streams:
    def __init__(self) -> None:
        self.received: dict[str, float] = {}
        self.open = 0
        self.errors = 0

    async def one(self, port: int, cookie: str) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            self.errors += 1
            return
        writer.write(
            (
                f"GET /console/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                f"Cookie: callcenter_session={cookie}\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 200 " not in head.split(b"\r\n", 1)[0]:
            self.errors += 1
            return
        chunked = b"chunked" in head.lower()
        self.open += 1
        buffer = b""
        event_id = None
        while True:
            if chunked:
                size = int((await reader.readuntil(b"\r\n")).strip() or b"0", 16)
                if size == 0:
                    break
                data = (await reader.readexactly(size + 2))[:-2]
            else:
                data = await reader.read(65536)
                if not data:
                    break
            buffer += data
            while b"\n" in buffer:
                line, _, buffer = buffer.partition(b"\n")
                if line.startswith(b"id: "):
                    event_id = line[4:].decode()
                elif line.startswith(b"data: ") and event_id:
                    self.received[event_id] = time.time()
                    event_id = None
        self.open -= 1


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _report(name: str, sent: dict[str, float], received: dict[str, float]) -> dict[str, Any]:
    latencies = [(received[key] - at) * 1000 for key, at in sent.items() if key in received]
    missing = len(sent) - len(latencies)
    row = {
        "phase": name,
        "events": len(sent),
        "missing": missing,
        "p50_ms": round(_percentile(latencies, 0.50), 1) if latencies else None,
        "p99_ms": round(_percentile(latencies, 0.99), 1) if latencies else None,
        "max_ms": round(max(latencies), 1) if latencies else None,
        "mean_ms": round(statistics.fmean(latencies), 1) if latencies else None,
    }
    return row


async def run(args: argparse.Namespace) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.screenpop", "--serve", "--agents", str(args.agents)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "CALLCENTER_LOG_LEVEL": "WARNING"},
    )
    assert server.stdin is not None and server.stdout is not None

    def ask(command: str) -> dict[str, Any]:
        assert server.stdin is not None and server.stdout is not None
        server.stdin.write(command + "\n")
        server.stdin.flush()
        answer: dict[str, Any] = json.loads(server.stdout.readline())
        return answer

    try:
        hello = json.loads(server.stdout.readline())
        streams = Streams()
        tasks = [asyncio.create_task(streams.one(hello["port"], cookie)) for cookie in hello["cookies"]]
        deadline = time.monotonic() + 60
        while ask("streams")["streams"] < args.agents and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        connected = ask("streams")["streams"]
        print(f"streams open on the server: {connected} of {args.agents} (client errors: {streams.errors})")
        loop = asyncio.get_running_loop()
        rows = []
        for phase, command in (
            ("steady", f"steady {int(args.rate * args.seconds)} {args.rate}"),
            ("burst", "burst"),
        ):
            result = await loop.run_in_executor(None, ask, command)
            await asyncio.sleep(2.0)  # let the last events arrive
            rows.append(_report(phase, result["sent"], streams.received))
        stats = {**ask("stats"), "load_average": [round(x, 1) for x in os.getloadavg()]}
        print(json.dumps({"agents": args.agents, "connected": connected, **stats, "phases": rows}, indent=2))
        print("\n| phase | agents connected | events | p50 ms | p99 ms | max ms | missing |")
        print("|---|---|---|---|---|---|---|")
        for row in rows:
            print(
                f"| {row['phase']} | {connected} | {row['events']} | {row['p50_ms']} | {row['p99_ms']} "
                f"| {row['max_ms']} | {row['missing']} |"
            )
        for task in tasks:
            task.cancel()
    finally:
        if server.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                ask("quit")
            server.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--rate", type=float, default=20.0, help="steady phase: pops per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="steady phase: duration")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.agents)
        return
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
