"""Twilio webhook latency and throughput: the incoming-call and Gather webhooks against bare Flask.

One gunicorn server (gthread, 2 workers × 16 threads, as ``callcenter web``; access log off) serves
both, on a fresh SQLite database: our app (signature check with RequestValidator, engine, VIP lookup,
the call written through the Recorder before answering) and, under ``/bare``, a bare Flask app
answering a fixed TwiML document. Requests are signed in advance, one distinct CallSid each, so
every incoming call is a new call on record and every Gather a new step of it.

* saturation: wrk (``apt-get install wrk``), 2 threads, N connections, for each endpoint in turn.
  Our webhooks answer before their records are written (the Recorder writes behind the answer), so
  the rate that counts is the *sustained* one: the requests wrk completed divided by the time from
  the start of the run until every one of their calls is on record (polled in the database);
* steady load: a constant-rate generator in its own process (default 200 req/s; one asyncio loop on
  32 keep-alive connections, another opened whenever none is free, so a slow answer never holds a
  request back), for the bare endpoint as well as ours. Latency is measured from the moment the
  request is written to the socket (what a client elsewhere, Twilio, sees) and also from the
  intended send time; the difference is the generator's own lateness (asyncio wakes timers up to a
  millisecond late, and on a 2-core machine the generator waits for a core behind the server),
  reported as its own column so a generator that fell behind its schedule shows.

Usage: python -m bench.twilio [--duration 10] [--connections 32] [--rate 200] [--steady 10]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import gc
import json
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response
from gunicorn.app.base import BaseApplication
from twilio.request_validator import RequestValidator
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from callcenter.cli import utc_now
from callcenter.db.migrate import upgrade
from callcenter.ivr import engine
from callcenter.ivr.flow import load_flows
from callcenter.ivr.rules import engine_rules
from callcenter.runtime import settle
from callcenter.settings import Settings, load_settings
from callcenter.voice.twilio.hotline import encode_token
from web import create_app

WRITTEN_TIMEOUT_S = 180.0  # the writers must have caught up by then, or the bench fails
WARM_UP_S, WARM_UP_CONNECTIONS = 2, 4
WARM_UP_CALLS = 6000  # more than a warm-up run gets through
# Each run's calls (and callers' numbers, +86138 and the last 8 digits) start here: none repeats.
WARM_UP_FIRST, STEADY_FIRST = 70_000_000, 80_000_000

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "AC" + "0123456789abcdef" * 2
TOKEN = "bench-auth-token"
PUBLIC = "https://cc.example.com"
FIXED_TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?><Response><Gather action="/g" input="dtmf" numDigits="1" '
    'timeout="6"><Say language="zh-CN">您好</Say></Gather></Response>'
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Open around the clock, so the Gather benchmark (a menu choice) runs at any hour of the day.
ALL_DAY = {"open": "00:00", "close": "23:59:59.999999"}


def bench_settings(folder: Path) -> Settings:
    return load_settings(
        ROOT / "settings.toml",
        overrides={
            "database": {"url": f"sqlite:///{folder / 'bench.db'}"},
            "storage": {
                "var_dir": str(folder),
                "spool_dir": str(folder / "spool"),
                "recordings_dir": str(folder / "recordings"),
            },
            "ivr": {"flows_dir": str(ROOT / "ivr_flows")},
            "web": {"secret_key": "bench-secret"},
            "twilio": {"account_sid": ACCOUNT, "auth_token": TOKEN, "public_base_url": PUBLIC},
            "hours": {**ALL_DAY, "rest_days": ALL_DAY, "holidays": ALL_DAY},
        },
    )


def serve(folder: Path, port: int, workers: int, threads: int) -> None:
    """The server process: our app, and the bare app under /bare, in one gunicorn."""
    settings = bench_settings(folder)
    bare = Flask("bare")

    @bare.post("/")
    def fixed() -> Response:
        return Response(FIXED_TWIML, mimetype="text/xml")

    ours = create_app(settings)
    ours.wsgi_app = DispatcherMiddleware(ours.wsgi_app, {"/bare": bare})  # type: ignore[method-assign]
    settle(settings.organisation.phone_region)  # as `callcenter web` does

    class Gunicorn(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"127.0.0.1:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("backlog", 2048)
            self.cfg.set("loglevel", "warning")

        def load(self) -> Any:
            return ours

    Gunicorn().run()


def signed(path: str, params: dict[str, str]) -> tuple[str, str, str]:
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + path, params)
    return path, urlencode(params), signature


def prepare(calls: int, start: int) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """Signed incoming-call and Gather requests for ``calls`` distinct CallSids."""
    settings = bench_settings(Path(tempfile.gettempdir()))
    flows = load_flows(ROOT / "ivr_flows")
    step = engine.start(flows["hotline"], engine_rules(settings), utc_now(), language="zh")
    token = encode_token({"k": "", "s": step.state.to_dict()})
    assert step.state.node == "main_menu", "the bench's hotline must be open (ALL_DAY)"
    voice, gather = [], []
    for number in range(start, start + calls):
        base = {
            "AccountSid": ACCOUNT,
            "CallSid": f"CA{number:032x}",
            "From": f"+86138{number % 100000000:08d}",
            "To": "+864008123123",
            "Direction": "inbound",
            "CallStatus": "ringing",
        }
        voice.append(signed("/twilio/voice", base))
        gather.append(signed(f"/twilio/gather/main_menu?s={token}", {**base, "Digits": "2"}))
    return voice, gather


LUA = """
local reqs = {%s}
local counter = 0
function setup(thread)
  thread:set("offset", counter)
  counter = counter + 1
end
function init(args)
  i = offset * math.floor(#reqs / 2)
end
request = function()
  i = i %% #reqs + 1
  local r = reqs[i]
  return wrk.format("POST", r[1], {["Content-Type"] = "application/x-www-form-urlencoded",
    ["X-Twilio-Signature"] = r[3]}, r[2])
end
"""


def lua_script(requests: list[tuple[str, str, str]], folder: Path, name: str) -> Path:
    rows = ",".join("{" + ",".join(json.dumps(part) for part in request) + "}" for request in requests)
    path = folder / f"{name}.lua"
    path.write_text(LUA % rows)
    return path


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


# What a request leaves on record: an incoming call a new call; a Gather (pressing 2) a call routed
# to the complaint queue (the incoming-call run created most of them, the Gather moves them on).
ON_RECORD = {
    "voice": "SELECT count(*) FROM call",
    "gather": "SELECT count(*) FROM call WHERE disposition = 'queued'",
}


def on_record(database: Path, kind: str) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)) as db:
        return int(db.execute(ON_RECORD[kind]).fetchone()[0])


def wait_written(database: Path, kind: str, target: int) -> float:
    """Block until ``target`` requests of ``kind`` are on record; the moment (perf_counter) they were."""
    deadline = time.perf_counter() + WRITTEN_TIMEOUT_S
    while (seen := on_record(database, kind)) < target:
        if time.perf_counter() > deadline:
            raise RuntimeError(f"only {seen} of {target} {kind} requests on record")
        time.sleep(0.02)
    return time.perf_counter()


def saturate(
    url: str, script: Path, duration: int, connections: int, database: Path | None, kind: str = ""
) -> dict[str, float]:
    """A wrk run; with ``database``, also the rate counted until every answered request is on record."""
    before = on_record(database, kind) if database is not None else 0
    row = wrk(url, script, duration, connections)
    if database is None:
        row["sustained"], row["drain_s"] = row["rps"], 0.0
        return row
    answered = time.perf_counter()
    row["drain_s"] = wait_written(database, kind, before + int(row["requests"])) - answered
    # From wrk's first request (its own clock; loading the Lua script comes before) to the last record.
    row["sustained"] = row["requests"] / (row["seconds"] + row["drain_s"])
    return row


def wrk(url: str, script: Path, duration: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if os.environ.get("BENCH_VERBOSE"):
        print(out, file=sys.stderr)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    done = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    assert done is not None, out
    completed, seconds = int(done.group(1)), float(done.group(2)) / (1000 if done.group(3) == "ms" else 1)
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.MULTILINE))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rate,
        "requests": float(completed),
        "seconds": seconds,
        "p50": _ms(latency["50"]),
        "p99": _ms(latency["99"]),
        "errors": float(errors.group(1)) if errors else 0.0,
    }


def steady(port: int, requests: list[tuple[str, str, str]], rate: float, duration: float) -> dict[str, float]:
    """Constant-rate load (run in its own process): latency from each request's intended send time.

    The generator's own garbage collector is kept out of the measurement: this process imports the
    application (and with it phonenumbers' tables), and one full collection of that heap stalled the
    event loop for about 120 ms, which showed up as the p99 of the *server*, bare endpoint included.
    """
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        return asyncio.run(_steady(port, requests, rate, duration))
    finally:
        gc.enable()


STEADY_CONNECTIONS = 32
Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _steady(
    port: int, requests: list[tuple[str, str, str]], rate: float, duration: float
) -> dict[str, float]:
    """One event loop sends each request at its time on a free keep-alive connection (opening
    another when none is free) and stamps the answer as soon as its last byte is read: no thread
    of the generator waits for the GIL between the answer and its timestamp."""
    total = int(rate * duration)
    raw = [_http_request(port, *request) for request in requests]
    idle: collections.deque[Connection] = collections.deque()
    opened: list[asyncio.StreamWriter] = []
    latencies: list[float] = []  # from the write of the request
    scheduled: list[float] = []  # from its intended send time
    failures = 0
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.2

    async def exchange(connection: Connection, request: bytes) -> bytes:
        reader, writer = connection
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        if length:
            await reader.readexactly(int(length.group(1)))
        return head

    async def connect() -> Connection:
        connection = await asyncio.open_connection("127.0.0.1", port)
        opened.append(connection[1])
        return connection

    async def send(index: int, intended: float) -> None:
        nonlocal failures
        connection = idle.popleft() if idle else await connect()
        request = raw[index % len(raw)]
        sent = loop.time()
        try:
            head = await exchange(connection, request)
        except (asyncio.IncompleteReadError, ConnectionError):  # the server closed an idle connection
            connection = await connect()
            sent = loop.time()
            head = await exchange(connection, request)
        done = loop.time()
        latencies.append((done - sent) * 1000)
        scheduled.append((done - intended) * 1000)
        failures += not head.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200"))
        idle.append(connection)  # used in turn (FIFO), so none idles past the server's keep-alive

    for _ in range(STEADY_CONNECTIONS):
        idle.append(await connect())
    tasks = []
    for index in range(total):
        intended = start + index / rate
        delay = intended - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(index, intended)))
    await asyncio.gather(*tasks)
    for writer in opened:
        writer.close()
    latencies.sort()
    scheduled.sort()
    return {
        "rps": rate,
        "p50": statistics.median(latencies),
        "p99": latencies[int(len(latencies) * 0.99) - 1],
        "p99_scheduled": scheduled[int(len(scheduled) * 0.99) - 1],
        "errors": float(failures),
    }


def _http_request(port: int, path: str, body: str, signature: str) -> bytes:
    payload = body.encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        + (f"X-Twilio-Signature: {signature}\r\n" if signature else "")
        + f"Content-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


def wait_for(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server did not start on {port}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of each saturation run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second of the steady runs")
    parser.add_argument("--steady", type=float, default=10.0, help="seconds of each steady run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--steady-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve), args.port, args.workers, args.threads)
        return
    if args.steady_file:
        requests = [tuple(item) for item in json.loads(Path(args.steady_file).read_text())]
        print(json.dumps(steady(args.port, requests, args.rate, args.steady)))  # type: ignore[arg-type]
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    folder = Path(tempfile.mkdtemp(prefix="bench-twilio-"))
    settings = bench_settings(folder)
    upgrade(settings.database_url)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.twilio", "--serve", str(folder), "--port", str(port),
         "--workers", str(args.workers), "--threads", str(args.threads)],
        cwd=ROOT,
        env=env,
    )  # fmt: skip
    results: dict[str, dict[str, float]] = {}
    database = folder / "bench.db"
    try:
        wait_for(port)
        # Distinct CallSids for every request of a run, with room for each wrk thread's half.
        per_run = int(args.duration * 6000) + 1000
        voice, gather = prepare(per_run, 0)
        bare = [("/bare/", body, "") for _, body, _ in voice[:1000]]
        base = f"http://127.0.0.1:{port}"
        # Every endpoint warmed up first (each worker's first requests open its database connections
        # and read the VIP list), with calls of their own, and their records written before we start.
        warm_voice, warm_gather = prepare(WARM_UP_CALLS, WARM_UP_FIRST)
        warm_up = [
            ("bare", "", bare),
            ("warm-voice", "voice", warm_voice),
            ("warm-gather", "gather", warm_gather),
        ]
        for name, kind, requests in warm_up:
            script = lua_script(requests, folder, name)
            saturate(base, script, WARM_UP_S, WARM_UP_CONNECTIONS, database if kind else None, kind)
        bare_script = lua_script(bare, folder, "bare")
        bare_row = saturate(base, bare_script, args.duration, args.connections, None)
        results["bare Flask, fixed TwiML"] = bare_row
        results["incoming call /twilio/voice"] = saturate(
            base, lua_script(voice, folder, "voice"), args.duration, args.connections, database, "voice"
        )
        results["Gather /twilio/gather/main_menu"] = saturate(
            base, lua_script(gather, folder, "gather"), args.duration, args.connections, database, "gather"
        )
        steady_voice, steady_gather = prepare(int(args.rate * args.steady) + 10, STEADY_FIRST)
        for name, kind, requests in (
            ("bare Flask, steady", None, bare),
            ("incoming call, steady", "voice", steady_voice),
            ("Gather, steady", "gather", steady_gather),
        ):
            file = folder / "steady.json"
            file.write_text(json.dumps(requests))
            before = on_record(database, kind) if kind else 0
            out = subprocess.run(
                [sys.executable, "-m", "bench.twilio", "--steady-file", str(file), "--port", str(port),
                 "--rate", str(args.rate), "--steady", str(args.steady)],
                cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, check=True,
            ).stdout  # fmt: skip
            answered = time.perf_counter()
            row = json.loads(out)
            target = before + int(args.rate * args.steady)
            row["drain_s"] = wait_written(database, kind, target) - answered if kind else 0.0
            row["sustained"] = row["rps"]
            results[f"{name} {args.rate:.0f} req/s"] = row
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)
    report(results, args)


def report(results: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    bare_rps = results["bare Flask, fixed TwiML"]["rps"]
    print(f"\ncpus: {os.cpu_count()}, gunicorn gthread {args.workers}×{args.threads}, SQLite, "
          f"wrk -t2 -c{args.connections} -d{args.duration}s; sustained = answered requests / time "
          "until every one is on record")  # fmt: skip
    print("steady rows: p50/p99 from the write of each request, in brackets the p99 from its intended time")
    print("| endpoint | answered req/s | sustained req/s | × bare | written after | p50 | p99 | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, row in results.items():
        ratio = f"{row['sustained'] / bare_rps:.2f}" if "steady" not in name else "–"
        cells = [
            f"{row['rps']:.0f}",
            f"{row['sustained']:.0f}",
            ratio,
            f"{row['drain_s']:.2f} s",
            f"{row['p50']:.2f} ms",
            f"{row['p99']:.2f} ms" + (f" ({row['p99_scheduled']:.2f} ms)" if "p99_scheduled" in row else ""),
            f"{row['errors']:.0f}",
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
