"""FastAGI throughput and per-command latency: the hotline server against a bare-socket baseline.

Both servers run as their own processes, a fresh one (and for the hotline a fresh SQLite database)
for every concurrency level; the load generator (this process) plays simulated Asterisk sessions
with N concurrent callers. The baseline server reads the same environment block and sends the same
commands as the hotline script, with no flow engine, no pyst2 and no database. Per-command latency
is measured from Asterisk's side: from sending a reply to receiving the next command. Peak RSS is
the server process's VmHWM after the run (warm-up included).
Usage: python -m bench.agi [--sessions 2000] [--concurrency 50 200] [--date 2026-11-23]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import socketserver
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from callcenter.voice.agi.simulate import CallScript, FakeAsterisk, Simulation

ROOT = Path(__file__).resolve().parent.parent
# What the hotline script sends for a caller who presses 2 (tests/voice checks the same transcript).
HOTLINE_COMMANDS = [
    'GET VARIABLE "CHANNEL(linkedid)"',
    "ANSWER",
    'STREAM FILE callcenter/hotline/zh/welcome "01289" 0',
    "GET DATA callcenter/hotline/zh/main_menu 6000 1",
    'STREAM FILE callcenter/hotline/zh/to_complaint "" 0',
    'SET VARIABLE "CC_QUEUE" "complaint"',
    'SET VARIABLE "CC_NEXT" "queue"',
    'SET VARIABLE "CC_BRANCH" "complaint"',
    'SET VARIABLE "CC_PRIORITY" "0"',
    'SET VARIABLE "CC_QUEUE_TIMEOUT" "600"',
    'SET VARIABLE "CC_ENQUEUED_AT" "1795399200.000"',
    'SET VARIABLE "CC_LANGUAGE" "zh"',
    'SET VARIABLE "CC_CALL_ID" "1795436661.448"',
]


class BareHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        while self.rfile.readline().strip():
            pass
        for command in HOTLINE_COMMANDS:
            self.wfile.write(command.encode() + b"\n")
            self.wfile.flush()
            if not self.rfile.readline():
                return


class BareServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512


class TimedAsterisk(FakeAsterisk):
    """The simulated Asterisk, noting when each command arrives after the previous reply."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.gaps: list[float] = []
        self._replied_at: float | None = None

    def _answer(self, line: str, result: Simulation) -> str:
        arrived = time.perf_counter()
        if self._replied_at is not None:
            self.gaps.append(arrived - self._replied_at)
        reply = super()._answer(line, result)
        self._replied_at = time.perf_counter()
        return reply


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port}")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def load(port: int, sessions: int, concurrency: int) -> dict[str, float]:
    def one(index: int) -> list[float]:
        script = CallScript(inputs=["2"], caller_number=f"+86139{index:08d}")
        asterisk = TimedAsterisk("127.0.0.1", port, script, timeout_s=60)
        asterisk.run()
        return asterisk.gaps

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        gaps = [gap for result in pool.map(one, range(sessions)) for gap in result]
    elapsed = time.perf_counter() - started
    quantiles = statistics.quantiles(gaps, n=100)
    return {
        "sessions_per_s": sessions / elapsed,
        "p50_ms": quantiles[49] * 1000,
        "p99_ms": quantiles[98] * 1000,
    }


def thousands(value: float) -> str:
    return f"{value:,.0f}".replace(",", " ")  # as docs/performance.md writes them


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_bare(port: int) -> None:
    BareServer(("127.0.0.1", port), BareHandler).serve_forever()


def measure(name: str, sessions: int, concurrency: int, scratch: Path) -> dict[str, float]:
    """Start a fresh server process, warm it up, load it; its figures and peak RSS."""
    env = {
        **os.environ,
        "CALLCENTER_SETTINGS": str(ROOT / "settings.toml"),
        "CALLCENTER_DATABASE__URL": f"sqlite:///{scratch}/bench.db",
        "CALLCENTER_STORAGE__VAR_DIR": str(scratch),
        "CALLCENTER_STORAGE__SPOOL_DIR": f"{scratch}/spool",
        # Open around the clock: the sessions press 2 at the main menu at any hour of the day.
        **{
            f"CALLCENTER_HOURS__{day}{edge}": value
            for day in ("", "REST_DAYS__", "HOLIDAYS__")
            for edge, value in (("OPEN", "00:00"), ("CLOSE", "23:59:59.999999"))
        },
    }
    cli = [sys.executable, "-m", "callcenter.cli", "--log-level", "WARNING"]
    port = free_port()
    if name == "baseline":
        command = [sys.executable, "-m", "bench.agi", "--bare-server", str(port)]
    else:
        subprocess.run([*cli, "migrate"], env=env, check=True, capture_output=True)
        subprocess.run([*cli, "seed-demo"], env=env, check=True, capture_output=True)
        command = [*cli, "agi", "--port", str(port)]
    log_path = scratch / "server.log"  # not the terminal: the readiness probe alone logs a warning
    with log_path.open("wb") as log:
        server = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
    row: dict[str, float] = {}
    try:
        wait_for(port)
        load(port, min(200, sessions), concurrency)  # warm-up
        cpu_before, started = cpu_s(server.pid), time.perf_counter()
        row = load(port, sessions, concurrency)
        row["cpu"] = (cpu_s(server.pid) - cpu_before) / (time.perf_counter() - started)
        row["rss_mb"] = rss_mb(server.pid)
    finally:
        stopping = time.perf_counter()
        server.terminate()  # the server drains its writer before it exits
        server.wait(60)
        drain_s = time.perf_counter() - stopping
    if "sessions_per_s" in row:
        # Sustained rate: until the last session's record is written, not just answered.
        row["sustained_per_s"] = sessions / (sessions / row["sessions_per_s"] + drain_s)
        row["drain_s"] = drain_s
    errors = [line for line in log_path.read_text(errors="replace").splitlines() if " ERROR " in line]
    for line in errors[:5]:
        print(f"{name} server: {line}", file=sys.stderr)
    if name == "hotline":
        spooled = list((scratch / "spool").glob("*.json")) if (scratch / "spool").is_dir() else []
        row["spooled"] = len(spooled)
        with contextlib.closing(sqlite3.connect(scratch / "bench.db")) as db:
            recorded = db.execute("SELECT count(*) FROM call WHERE disposition = 'queued'").fetchone()[0]
        expected = min(200, sessions) + sessions
        if recorded != expected:  # every session's route must be on record once the server has stopped
            print(f"warning: {recorded} routed calls on record, expected {expected}", file=sys.stderr)
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--date", default=time.strftime("%Y-%m-%d"), help="for the markdown rows")
    parser.add_argument("--bare-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        run_bare(args.bare_server)
        return

    table: list[str] = []
    for concurrency in args.concurrency:
        results = {}
        for name in ("baseline", "hotline"):
            with tempfile.TemporaryDirectory() as scratch:
                results[name] = measure(name, args.sessions, concurrency, Path(scratch))
        base, ours = results["baseline"], results["hotline"]
        print(f"FastAGI, {args.sessions} sessions, {concurrency} concurrent, SQLite, {os.cpu_count()} cores")
        print(f"{'server':10} {'sessions/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'peak RSS MB':>12} {'CPU':>6}")
        for name, row in results.items():
            rate, p50, p99, rss = row["sessions_per_s"], row["p50_ms"], row["p99_ms"], row["rss_mb"]
            print(f"{name:10} {rate:11.0f} {p50:8.2f} {p99:8.2f} {rss:12.0f} {row['cpu']:6.0%}")
        ratio = ours["sessions_per_s"] / base["sessions_per_s"]
        overhead = ours["p99_ms"] - base["p99_ms"]
        print(f"ratio sessions/s hotline/baseline: {ratio:.2f}")
        print(f"p99 per-command overhead above baseline: {overhead:.2f} ms")
        sustained = ours["sustained_per_s"]
        print(
            f"sustained (until every record is written; the stop drained for {ours['drain_s']:.2f} s): "
            f"hotline {sustained:.0f}/s, {sustained / base['sustained_per_s']:.2f}×"
        )
        if ours.get("spooled"):
            print(f"warning: {ours['spooled']:.0f} reports went to the spool")
        print()
        for name, row in results.items():
            table.append(
                f"| {args.date} | {concurrency} | {name} | {thousands(row['sessions_per_s'])} | "
                f"{row['p50_ms']:.2f} ms | {row['p99_ms']:.2f} ms | "
                + (f"{overhead:+.2f} ms ({ratio:.2f}×) | " if name == "hotline" else "— | ")
                + f"{row['rss_mb']:.0f} MB |"
            )
    print(
        "| date | concurrent | server | sessions/s | p50 per command | p99 per command | p99 overhead "
        "(ratio) | peak RSS |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(table))


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
