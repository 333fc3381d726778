"""Instructions per Twilio webhook and per written call report, counted by valgrind (callgrind).

Wall-clock benchmarks on a shared 2-core machine drift by ±20 % from one minute to the next, which
hides any change smaller than that. Instruction counts do not drift: the same code on the same
inputs executes the same instructions whatever else the machine is doing. This bench counts them
for the two halves of a webhook's cost:

* the request path: a signed webhook through the application's WSGI callable (signature check,
  form, engine, TwiML), its report dropped at the recorder; against a bare Flask endpoint answering
  fixed TwiML through the same calls (the same-run baseline);
* the writer: the reports those webhooks hand over, written by ``Recorder`` in batches of the given
  sizes (at a light load a transaction carries a few reports, under saturation up to 200).

Each figure is the difference between two runs of one child process under callgrind, with and
without the measured loop (start-up, imports and migrations cancel out), divided by the loop's
count. Needs valgrind (``apt-get install valgrind``); a full run takes about ten minutes, two
children at a time.

Usage: python -m bench.instructions [--requests 1000] [--reports 600] [--batch 2 100]
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from flask import Flask

from bench.twilio import FIXED_TWIML, bench_settings, prepare, utc_now
from callcenter.db import Database
from callcenter.db.migrate import upgrade
from callcenter.services import journal
from web import create_app

ROOT = Path(__file__).resolve().parent.parent
WARM_UP = 50


def _environ(path: str, body: str, signature: str) -> dict[str, Any]:
    route, _, query = path.partition("?")
    data = body.encode()
    return {
        "REQUEST_METHOD": "POST", "PATH_INFO": route, "QUERY_STRING": query, "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(data), "wsgi.errors": sys.stderr,
        "CONTENT_LENGTH": str(len(data)), "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "HTTP_X_TWILIO_SIGNATURE": signature,
    }  # fmt: skip


def _answer(app: Any, environ: dict[str, Any]) -> None:
    def start_response(status: str, headers: object) -> None:
        assert status.startswith("200"), status

    b"".join(app(environ, start_response))


def child(kind: str, count: int, batch: int, measure: bool) -> None:
    """One measured process: set up, warm up, and (with ``measure``) run the loop being counted."""
    folder = Path(tempfile.mkdtemp(prefix="bench-instructions-"))
    settings = bench_settings(folder)
    upgrade(settings.database_url)
    handed: list[Any] = []
    journal.Recorder._enqueue = lambda self, report: handed.append(report) or True  # type: ignore[method-assign]
    app = create_app(settings)
    voice, gather = prepare(count + WARM_UP, 0)
    if kind in ("bare", "voice", "gather"):
        wsgi: Any = app.wsgi_app
        if kind == "bare":
            bare = Flask("bare")
            bare.post("/twilio/voice")(lambda: FIXED_TWIML)
            wsgi = bare.wsgi_app
        environs = [_environ(*request) for request in (gather if kind == "gather" else voice)]
        for environ in environs[:WARM_UP]:
            _answer(wsgi, environ)
        if measure:
            for environ in environs[WARM_UP:]:
                _answer(wsgi, environ)
        return
    # The writer: the reports of real webhooks, written as the Recorder's writer thread writes them.
    recorder = journal.Recorder(
        Database(settings.database_url), journal.Spool(folder / "spool"), region="CN", clock=utc_now
    )
    for request in voice:
        _answer(app.wsgi_app, _environ(*request))
    reports, handed[:] = list(handed), []
    if kind == "writer-gather":  # the calls on record first, then the menu choices to write
        for start in range(0, len(reports), 100):
            recorder._write(reports[start : start + 100])
        for request in gather:
            _answer(app.wsgi_app, _environ(*request))
        reports = list(handed)
    recorder._write(reports[:WARM_UP])
    if measure:
        rest = reports[WARM_UP:]
        for start in range(0, len(rest), batch):
            recorder._write(rest[start : start + batch])
    shutil.rmtree(folder, ignore_errors=True)


def instructions(kind: str, count: int, batch: int, measure: bool) -> int:
    """The instructions callgrind counted for one child process."""
    with tempfile.TemporaryDirectory() as folder:
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={folder}/callgrind.out",
             sys.executable, "-m", "bench.instructions", "--child", kind, "--count", str(count),
             "--batch", str(batch), *(["--measure"] if measure else [])],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, check=True,
        )  # fmt: skip
    collected = re.search(r"Collected : (\d+)", out.stderr)
    assert collected is not None, out.stderr[-2000:]
    return int(collected.group(1))


def per_item(job: tuple[str, int, int]) -> float:
    kind, count, batch = job
    return (instructions(kind, count, batch, True) - instructions(kind, count, batch, False)) / count


def jobs(args: argparse.Namespace) -> Iterator[tuple[str, str, int, int]]:
    for kind in ("bare", "voice", "gather"):
        yield f"request {kind}", kind, args.requests, 0
    for kind in ("writer-voice", "writer-gather"):
        for batch in args.batch:
            yield f"{kind} batch {batch}", kind, args.reports - WARM_UP, batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="webhooks counted per request kind")
    parser.add_argument("--reports", type=int, default=600, help="reports per writer measurement")
    parser.add_argument("--batch", type=int, nargs="+", default=[2, 100], help="reports per transaction")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.count, args.batch[0], args.measure)
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed: apt-get install valgrind")
    planned = list(jobs(args))
    with ThreadPoolExecutor(max_workers=2) as pool:  # callgrind counts are the same under load
        figures = list(pool.map(per_item, [(kind, count, batch) for _, kind, count, batch in planned]))
    bare = figures[0]
    print("| measured | instructions (millions) | × bare Flask request |")
    print("|---|---:|---:|")
    for (name, *_), figure in zip(planned, figures, strict=True):
        print(f"| {name} | {figure / 1e6:.3f} | {figure / bare:.2f} |")


if __name__ == "__main__":
    main()
