"""The FastAGI server over TCP, driven by the simulated Asterisk, with the contact record checked."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bench.agi import HOTLINE_COMMANDS
from callcenter.db import Database
from callcenter.ivr import engine
from callcenter.models import Call, CallEvent
from callcenter.services.demo import seed_demo
from callcenter.services.journal import Recorder, Spool
from callcenter.settings import Settings
from callcenter.voice.agi.main import build_server
from callcenter.voice.agi.server import FastAGIServer, RunningServer
from callcenter.voice.agi.simulate import CallScript, Simulation, simulate_call
from tests.conftest import make_settings

from .test_agi_protocol import ENV

Place = Callable[..., Simulation]


def the_call(db: Database, linkedid: str) -> Call:
    with db.sessions() as session:
        call = session.execute(select(Call).where(Call.external_id == linkedid)).scalar_one()
        session.expunge(call)
        return call


def count(db: Database, model: type) -> int:
    with db.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


@pytest.mark.parametrize(("key", "queue"), [("1", "consultation"), ("2", "complaint")])
def test_menu_key_sets_the_queue_and_logs_the_call(call: Place, db: Database, key: str, queue: str) -> None:
    result = call(key, caller_number="+8615000150000")
    assert result.variables["CC_QUEUE"] == queue
    assert result.variables["CC_BRANCH"] == queue
    assert result.variables["CC_PRIORITY"] == "0"
    record = the_call(db, result.linkedid)
    assert result.call_id == result.linkedid == record.external_id  # CC_CALL_ID: the record's key
    assert (record.channel, record.ivr_branch, record.queue_name, record.disposition) == (
        "asterisk",
        queue,
        queue,
        "queued",
    )
    assert record.queue_id is not None
    assert record.ivr_path == ["welcome", "hours", "main_menu", f"route_{queue}"]
    assert record.from_e164 == "+8615000150000"
    assert result.prompts[:2] == ["callcenter/hotline/zh/welcome", "callcenter/hotline/zh/main_menu"]


def test_the_call_is_keyed_by_linkedid_not_the_agi_channels_uniqueid(call: Place, db: Database) -> None:
    result = call("2")
    assert result.linkedid != result.uniqueid
    assert the_call(db, result.linkedid).external_id == result.linkedid


@pytest.mark.parametrize(("inputs", "branch"), [(("timeout",) * 3, "timeout"), (("7", "5", "#"), "invalid")])
def test_three_failures_go_to_the_default_queue(
    call: Place, db: Database, inputs: tuple[str, ...], branch: str
) -> None:
    result = call(*inputs)
    assert (result.queue, result.variables["CC_BRANCH"]) == ("consultation", branch)
    assert [c for c in result.commands if c.startswith("GET DATA")] == [
        "GET DATA callcenter/hotline/zh/main_menu 6000 1"
    ] * 3
    record = the_call(db, result.linkedid)
    assert (record.ivr_branch, record.queue_name) == (branch, "consultation")


def test_repeat_and_barge_in(call: Place, db: Database) -> None:
    assert call("9", "2").queue == "complaint"
    barged = call("!1")
    assert barged.queue == "consultation"
    assert not any(c.startswith("GET DATA") for c in barged.commands)


def test_vip_caller_gets_priority(call: Place, db: Database) -> None:
    result = call("2", caller_number="+8613800138000")  # 张三, VIP in the demo data
    assert result.variables["CC_PRIORITY"] == "10"
    record = the_call(db, result.linkedid)
    assert record.priority == 10 and record.caller_id is not None


@pytest.mark.parametrize(
    ("inputs", "last_node"),
    [
        (("hangup",), "welcome"),
        ((".", "hangup"), "main_menu"),
        (("timeout", "hangup"), "main_menu"),
        (("5", "hangup"), "main_menu"),
    ],
)
def test_hangup_mid_menu_is_recorded_as_abandoned(
    call: Place, db: Database, inputs: tuple[str, ...], last_node: str
) -> None:
    result = call(*inputs)
    assert result.hung_up
    assert "CC_QUEUE" not in result.variables
    record = the_call(db, result.linkedid)
    assert record.disposition == "abandoned_in_ivr"
    assert record.last_node == last_node
    assert record.ended_at is not None and record.end_reason


def test_hangup_during_the_greeting(agi_server: FastAGIServer, db: Database) -> None:
    script = CallScript(inputs=["hangup"])
    # "hangup" as the first input hangs up during the first STREAM FILE (the welcome).
    result = simulate_call("127.0.0.1", agi_server.port, script)
    assert agi_server.fallback.recorder.flush()
    assert result.transcript[-2][1] == "200 result=-1 endpos=0"
    assert result.transcript[-1] == ("NOOP", "200 result=0")  # the probe that confirms the hang-up
    assert the_call(db, result.linkedid).disposition == "abandoned_in_ivr"


def test_replayed_session_changes_nothing(call: Place, db: Database) -> None:
    first = call("2")
    calls, events = count(db, Call), count(db, CallEvent)
    again = call("2", linkedid=first.linkedid, uniqueid=first.uniqueid)
    assert again.call_id == first.call_id
    assert (count(db, Call), count(db, CallEvent)) == (calls, events)


def raw_session(port: int, payload: bytes, read: bool = True) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        try:
            sock.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            return b""
        if not read:
            return b""
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
                if data.count(b"\n") >= 1:
                    break
        except (TimeoutError, ConnectionResetError):
            pass
        return data


def test_garbage_oversized_and_silent_clients_do_not_kill_the_server(
    agi_server: FastAGIServer, call: Place, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    raw_session(agi_server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    raw_session(agi_server.port, b"agi_callerid: " + b"9" * 1_000_000 + b"\n\n", read=False)
    raw_session(agi_server.port, b"\xff\xfe\x00garbage\n" * 50 + b"\n")
    with socket.create_connection(("127.0.0.1", agi_server.port), timeout=5) as silent:
        silent.settimeout(3)
        assert silent.recv(100) == b""  # closed by the server after env_timeout_s
    truncated = ENV[: ENV.index(b"agi_uniqueid")]
    raw_session(agi_server.port, truncated, read=False)
    assert call("2").queue == "complaint"  # still serving
    assert "dropped before the environment was read" in caplog.text


def test_malformed_environment_lines_are_skipped_and_the_call_goes_on(
    agi_server: FastAGIServer, call: Place
) -> None:
    result = call("1", extra_env={"not a header line": "", "agi_": "x"})
    assert result.queue == "consultation"


def test_unknown_script_falls_back_to_the_default_queue(call: Place, db: Database) -> None:
    result = call("2", script="no-such-script")
    assert result.variables == {
        "CC_QUEUE": "consultation",
        "CC_NEXT": "queue",
        "CC_BRANCH": "error",
        "CC_PRIORITY": "0",
    }
    record = the_call(db, result.uniqueid)
    assert (record.ivr_branch, record.queue_name) == ("error", "consultation")
    assert record.end_reason is not None and "no AGI script named 'no-such-script'" in record.end_reason


def test_a_failing_flow_still_sends_the_caller_to_a_queue(
    call: Place, db: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("flow bug")

    monkeypatch.setattr(engine, "on_digits", broken)
    result = call("2")
    assert result.variables["CC_QUEUE"] == "consultation"
    record = the_call(db, result.linkedid)
    assert record.ivr_branch == "error" and record.end_reason == "RuntimeError: flow bug"
    assert record.ivr_path == ["welcome", "hours", "main_menu"]  # what happened before the failure is kept
    assert f"call {result.linkedid} failed" in caplog.text


def test_garbage_reply_from_asterisk_falls_back(agi_server: FastAGIServer, db: Database) -> None:
    with socket.create_connection(("127.0.0.1", agi_server.port), timeout=5) as sock:
        sock.sendall(ENV)
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"GET VARIABLE")
        sock.sendall(b"what is this\n")
        lines = []
        for _ in range(2):
            lines.append(reader.readline().decode().strip())
            sock.sendall(b"200 result=1\n")
    assert lines == ['SET VARIABLE "CC_QUEUE" "consultation"', 'SET VARIABLE "CC_NEXT" "queue"']


def test_database_outage_still_routes_and_the_record_is_replayed(
    tmp_path: Path, db: Database, now: datetime, agi_settings: Settings
) -> None:
    down = Database("postgresql+psycopg://nobody@127.0.0.1:1/none")
    server = build_server(agi_settings, down, lambda: now, port=0)
    with RunningServer(server):
        result = simulate_call("127.0.0.1", server.port, CallScript(inputs=["2"]))
    # The caller is routed, and the record's key is set, though the database is down.
    assert result.queue == "complaint" and result.call_id == result.linkedid
    spool = Spool(agi_settings.path(agi_settings.storage.spool_dir))
    spooled = len(spool.pending())
    assert spooled in (1, 2)  # arrival and route, merged when the writer took them together
    replayed = Recorder(db, spool, region="CN", clock=lambda: now).replay()
    assert replayed.applied == spooled
    record = the_call(db, result.linkedid)
    assert (record.ivr_branch, record.disposition) == ("complaint", "queued")


def test_concurrent_calls_each_get_exactly_one_record(agi_server: FastAGIServer, db: Database) -> None:
    total = 200  # the figure: 200 concurrent calls, exactly 200 contact records
    scripts = [
        CallScript(inputs=[str(1 + index % 2)], caller_number=f"+86138{index:08d}") for index in range(total)
    ]
    with ThreadPoolExecutor(max_workers=total) as pool:
        results = list(
            pool.map(lambda s: simulate_call("127.0.0.1", agi_server.port, s, timeout_s=30), scripts)
        )
    assert agi_server.fallback.recorder.flush()
    assert all(r.call_id for r in results)
    assert len({r.call_id for r in results}) == total
    assert count(db, Call) == total
    assert sum(r.queue == "complaint" for r in results) == total // 2


def test_missing_sound_files_are_not_mistaken_for_a_hangup(call: Place, db: Database) -> None:
    """res_agi answers ``200 result=-1`` for a prompt it cannot open, as for a hang-up."""
    missing = frozenset({"callcenter/hotline/zh/welcome", "callcenter/hotline/zh/main_menu"})
    result = call("2", missing_sounds=missing)
    assert not result.hung_up
    assert result.queue == "consultation"  # every menu prompt failed: counted as silence, then the default
    assert result.commands.count("NOOP") == 4  # the probe after each -1
    record = the_call(db, result.linkedid)
    assert (record.ivr_branch, record.disposition) == ("timeout", "queued")


def test_only_the_greeting_missing_still_lets_the_caller_choose(call: Place) -> None:
    result = call("2", missing_sounds=frozenset({"callcenter/hotline/zh/welcome"}))
    assert result.queue == "complaint"


def test_a_real_hangup_after_result_minus_one_is_still_a_hangup(call: Place, db: Database) -> None:
    result = call("timeout", "hangup")
    assert result.transcript[-1] == ("NOOP", "200 result=0")
    assert the_call(db, result.linkedid).disposition == "abandoned_in_ivr"


def test_a_cut_off_session_that_named_its_call_is_on_record(agi_server: FastAGIServer, db: Database) -> None:
    truncated = ENV[: ENV.index(b"agi_dnid")]  # uniqueid and caller arrived, then the connection closed
    raw_session(agi_server.port, truncated, read=False)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not count(db, Call):
        time.sleep(0.05)
    record = the_call(db, "1795424056.1")
    assert record.from_e164 == "+8613800138000"
    assert record.end_reason is not None and "bad AGI session: AGI environment cut off" in record.end_reason


def test_the_benchmark_baseline_sends_what_the_hotline_sends(call: Place) -> None:
    """bench/agi.py's bare server must answer the same script, or its ratio means nothing."""
    result = call("2", caller_number="+8615000150000")
    shape = [command.split('" "')[0] for command in result.commands]
    assert shape == [command.split('" "')[0] for command in HOTLINE_COMMANDS]


# --- slow senders: one deadline for the whole environment block, a cap on sessions ---------------------


class Trickler:
    """Connections that send a byte now and then, never finishing the ``agi_*`` block; non-blocking,
    all driven from the test thread (so the test adds no threads of its own)."""

    def __init__(self, port: int, count: int, head: bytes = b"") -> None:
        self.started = time.monotonic()
        self.socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)]
        for sock in self.socks:
            if head:
                sock.sendall(head)
            sock.setblocking(False)
        self.closed_at: dict[int, float] = {}
        self.sent = 0

    def tick(self) -> None:
        byte = b"agi_network_script: hotline\n"[self.sent % 28 : self.sent % 28 + 1]
        self.sent += 1
        for index, sock in enumerate(self.socks):
            if index in self.closed_at:
                continue
            try:
                sock.send(byte)
                if sock.recv(1) == b"":
                    raise ConnectionResetError
            except BlockingIOError:
                continue
            except OSError:  # reset or broken pipe: the server closed it
                self.closed_at[index] = time.monotonic() - self.started

    def run(self, seconds: float, every: float = 0.05, watch: Callable[[], None] | None = None) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end and len(self.closed_at) < len(self.socks):
            self.tick()
            if watch is not None:
                watch()
            time.sleep(every)

    def close(self) -> None:
        for sock in self.socks:
            sock.close()


def session_threads() -> int:
    return sum(thread.name == "fastagi-session" for thread in threading.enumerate())


def test_a_trickling_sender_is_cut_at_the_deadline_for_the_whole_block(
    agi_server: FastAGIServer, db: Database
) -> None:
    """env_timeout_s = 0.5 for the block: a byte every 0.1 s never lets one read time out."""
    head = ENV[: ENV.index(b"agi_calleridname")]  # the call is named, then the rest trickles
    slow = Trickler(agi_server.port, 1, head=head)
    try:
        slow.run(5.0, every=0.1)
    finally:
        slow.close()
    assert 0 in slow.closed_at, "the server kept a trickling sender for 5 s"
    assert slow.closed_at[0] < 2.0  # the rest of the block would take about 40 s at this pace
    assert agi_server.fallback.recorder.flush()
    record = the_call(db, "1795424056.1")
    assert record.end_reason is not None and "AGI environment not complete in time" in record.end_reason


@pytest.fixture
def capped_server(tmp_path: Path, db: Database, now: datetime) -> Iterator[FastAGIServer]:
    with db.transaction() as session:
        seed_demo(session, now=now, admin_password="admin-password")
    settings = make_settings(
        tmp_path, db.url, agi={"env_timeout_s": 1.0, "reply_timeout_s": 5.0, "max_sessions": 10}
    )
    server = build_server(settings, db, lambda: now, port=0)
    with RunningServer(server):
        yield server


def test_fifty_slow_senders_hold_at_most_the_cap_and_only_until_the_deadline(
    capped_server: FastAGIServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="callcenter.voice.agi.server")
    peak = [0]

    def watch() -> None:
        peak[0] = max(peak[0], session_threads())

    slow = Trickler(capped_server.port, 50)
    try:
        slow.run(6.0, watch=watch)
    finally:
        slow.close()
    times = sorted(slow.closed_at.values())
    assert len(times) == 50, f"{50 - len(times)} slow senders still connected after 6 s"
    early = [t for t in times if t < 0.6]  # well before the 1 s deadline
    assert len(early) == 40  # over the cap: closed at once
    assert all(0.8 < t < 3.0 for t in times[40:])  # the 10 served ones: cut at the deadline
    assert peak[0] <= 10
    assert capped_server.refused == 40
    refusals = [r.getMessage() for r in caplog.records if "agi.max_sessions" in r.getMessage()]
    assert len(refusals) == 1, refusals  # rate-limited: one line for the burst
    assert "10 sessions in flight" in refusals[0] and "agi.max_sessions = 10" in refusals[0]
    deadline = time.monotonic() + 5
    while capped_server.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert capped_server.in_flight == 0
    result = simulate_call("127.0.0.1", capped_server.port, CallScript(inputs=["2"]), timeout_s=10)
    assert result.queue == "complaint"  # a normal session is served after the burst
