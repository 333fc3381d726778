"""FastAGI throughput and per-command latency: the hotline server against a bare-socket baseline.

Both servers run as their own processes; the load generator (this process) plays simulated
Asterisk sessions with N concurrent callers. The baseline server reads the same environment block
and sends the same commands as the hotline script, with no flow engine, no pyst2 and no database.
Per-command latency is measured from Asterisk's side: from sending a reply to receiving the next
command. Usage: python -m bench.agi [--sessions 2000] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import os
import socket
import socketserver
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
HOTLINE_COMMANDS = [
    'GET VARIABLE "CHANNEL(linkedid)"',
    "ANSWER",
    'STREAM FILE callcenter/hotline/zh/welcome "129" 0',
    "GET DATA callcenter/hotline/zh/main_menu 6000 1",
    'STREAM FILE callcenter/hotline/zh/to_complaint "" 0',
    'SET VARIABLE "CC_QUEUE" "complaint"',
    'SET VARIABLE "CC_BRANCH" "complaint"',
    'SET VARIABLE "CC_PRIORITY" "0"',
    'SET VARIABLE "CC_CALL_ID" "1"',
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


def run_bare(port: int) -> None:
    BareServer(("127.0.0.1", port), BareHandler).serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--bare-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        run_bare(args.bare_server)
        return

    with tempfile.TemporaryDirectory() as scratch:
        env = {
            **os.environ,
            "CALLCENTER_SETTINGS": str(ROOT / "settings.toml"),
            "CALLCENTER_DATABASE__URL": f"sqlite:///{scratch}/bench.db",
            "CALLCENTER_STORAGE__VAR_DIR": scratch,
            "CALLCENTER_STORAGE__SPOOL_DIR": f"{scratch}/spool",
        }
        cli = [sys.executable, "-m", "callcenter.cli", "--log-level", "WARNING"]
        subprocess.run([*cli, "migrate"], env=env, check=True, capture_output=True)
        subprocess.run([*cli, "seed-demo"], env=env, check=True, capture_output=True)
        results = {}
        for name in ("baseline", "hotline"):
            port = free_port()
            command = (
                [sys.executable, "-m", "bench.agi", "--bare-server", str(port)]
                if name == "baseline"
                else [*cli, "agi", "--port", str(port)]
            )
            server = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
            try:
                wait_for(port)
                load(port, min(200, args.sessions), args.concurrency)  # warm-up
                results[name] = load(port, args.sessions, args.concurrency)
                results[name]["rss_mb"] = rss_mb(server.pid)
            finally:
                server.terminate()
                server.wait(10)

    base, ours = results["baseline"], results["hotline"]
    print(f"FastAGI, {args.sessions} sessions, {args.concurrency} concurrent, SQLite, {os.cpu_count()} cores")
    print(f"{'server':10} {'sessions/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'peak RSS MB':>12}")
    for name, row in results.items():
        rate, p50, p99, rss = row["sessions_per_s"], row["p50_ms"], row["p99_ms"], row["rss_mb"]
        print(f"{name:10} {rate:11.0f} {p50:8.2f} {p99:8.2f} {rss:12.0f}")
    print(f"ratio sessions/s hotline/baseline: {ours['sessions_per_s'] / base['sessions_per_s']:.2f}")
    print(f"p99 per-command overhead above baseline: {ours['p99_ms'] - base['p99_ms']:.2f} ms")


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
