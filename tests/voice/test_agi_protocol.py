"""SocketAGI against the replies a real Asterisk 22 sends (shared/captures), one pyst2 fault at a time."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from asterisk.agi import AGI, AGIInvalidCommand, AGIUnknownError, AGIUsageError

from callcenter.exceptions import ProtocolError
from callcenter.voice.agi.protocol import AgiCommandFailed, AgiHangup, Limits, SocketAGI, escape, parse_reply
from callcenter.voice.agi.simulate import split_args

ENV = (
    b"agi_network: yes\nagi_network_script: hotline\nagi_request: agi://127.0.0.1:4573/hotline\n"
    b"agi_channel: Local/100@hotline-00000000;2\nagi_language: en\nagi_type: Local\n"
    b"agi_uniqueid: 1795424056.1\nagi_version: 22.10.1\nagi_callerid: +8613800138000\n"
    b"agi_calleridname: Test\nagi_callingpres: 0\nagi_callingani2: 0\nagi_callington: 0\n"
    b"agi_callingtns: 0\nagi_dnid: unknown\nagi_rdnis: unknown\nagi_context: hotline\n"
    b"agi_extension: 100\nagi_priority: 6\nagi_enhanced: 0.0\nagi_accountcode: \n"
    b"agi_threadid: 140596748375744\n\n"
)


@contextmanager
def session(
    *replies: str, env: bytes = ENV, close: bool = False, limits: Limits | None = None
) -> Iterator[tuple[SocketAGI, socket.socket]]:
    """An AGI session whose Asterisk side has already sent ``env`` and ``replies``."""
    ours, theirs = socket.socketpair()
    data = env + "".join(reply + "\n" for reply in replies).encode("utf-8")

    def feed() -> None:  # from a thread: a large block would fill the socket buffer
        try:
            theirs.sendall(data)
            if close:
                theirs.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # our side stopped reading and closed, as it should for oversized input

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    if not close:
        feeder.join(timeout=0.5 if len(data) < 65536 else 0)
    ours.settimeout(2)
    try:
        yield SocketAGI(ours.makefile("rb"), ours.makefile("wb"), limits), theirs
    finally:
        ours.close()
        theirs.close()


def sent(theirs: socket.socket) -> list[str]:
    theirs.settimeout(0.2)
    data = b""
    try:
        while chunk := theirs.recv(65536):
            data += chunk
    except TimeoutError:
        pass
    return data.decode("utf-8").splitlines()


def test_environment_block_is_read_like_asterisk_sends_it() -> None:
    with session() as (agi, _):
        assert agi.env["agi_uniqueid"] == "1795424056.1"
        assert agi.env["agi_network_script"] == "hotline"
        assert agi.env["agi_accountcode"] == ""
        assert agi.env["agi_request"] == "agi://127.0.0.1:4573/hotline"  # colons inside values kept
        assert len(agi.env) == 22


def test_get_data_returns_the_digits() -> None:
    with session("200 result=2") as (agi, theirs):
        assert agi.get_data_ex("silence/1", 6000, 1) == ("2", False)
        assert sent(theirs) == ["GET DATA silence/1 6000 1"]


def test_get_data_keeps_the_timeout_flag() -> None:
    with session("200 result= (timeout)") as (agi, _):
        assert agi.get_data_ex("silence/1", 6000, 1) == ("", True)


def test_stream_file_reports_the_pressed_key_from_its_ascii_code() -> None:
    with session("200 result=0 endpos=3404", "200 result=50 endpos=1200") as (agi, theirs):
        assert agi.stream_file_ex("beep", "0123456789") == ""
        assert agi.stream_file_ex("beep", "0123456789") == "2"
        assert sent(theirs) == ['STREAM FILE beep "0123456789" 0'] * 2


def test_hangup_during_get_data_then_the_unsolicited_hangup_line_keeps_replies_in_step() -> None:
    # fastagi-hangup-during-get-data.txt: result=-1, then "HANGUP" before the next reply (here: the
    # NOOP probe SocketAGI sends to tell a hang-up from a failed command).
    replies = ("200 result=-1", "HANGUP", "200 result=0", "200 result=1", "200 result=1 (+8613800138000)")
    with session(*replies) as (agi, theirs):
        with pytest.raises(AgiHangup):
            agi.get_data_ex("silence/1", 6000, 1)
        agi.set_variable("ROUTE", "consultation")
        assert agi.get_variable_or_none("CALLERID(num)") == "+8613800138000"
        assert agi.hung_up
        assert sent(theirs)[:2] == ["GET DATA silence/1 6000 1", "NOOP"]


def test_result_minus_one_on_a_live_channel_is_a_failed_command_not_a_hangup() -> None:
    # A missing sound file: res_agi answers -1, but no HANGUP line follows.
    with session("200 result=-1 endpos=0", "200 result=0") as (agi, _):
        with pytest.raises(AgiCommandFailed, match="missing sound file"):
            agi.stream_file_ex("callcenter/hotline/zh/welcome")
        assert not agi.hung_up


def test_dead_channel_511_is_a_hangup_not_an_unknown_error() -> None:
    with (
        session("511 Command Not Permitted on a dead channel or intercept routine") as (agi, _),
        pytest.raises(AgiHangup),
    ):
        agi.stream_file_ex("beep")


def test_100_trying_is_skipped() -> None:
    with session("100 result=0 Trying...", "200 result=0") as (agi, _):
        agi.answer()


def test_invalid_command_and_usage_replies() -> None:
    usage = [
        "520-Invalid command syntax.  Proper usage follows:",
        "Usage: SET VARIABLE <name> <value>",
        "520 End of proper usage.",
    ]
    with session("510 Invalid or unknown command", *usage, "200 result=1") as (agi, _):
        with pytest.raises(AGIInvalidCommand):
            agi.execute("FOO")
        with pytest.raises(AGIUsageError, match="Proper usage follows"):
            agi.execute("SET VARIABLE")
        agi.verbose("still in step")


def test_usage_cut_off_by_a_closed_socket_ends_instead_of_looping() -> None:
    done = threading.Event()

    def run() -> None:
        usage = "520-Invalid command syntax.  Proper usage follows:"
        with session(usage, close=True) as (agi, _), pytest.raises(AgiHangup):
            agi.execute("SET VARIABLE")
        done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert done.wait(5), "pyst2 loops forever here; SocketAGI must not"


def test_garbage_reply_is_an_error_not_a_crash() -> None:
    with session("hello there") as (agi, _), pytest.raises(AGIUnknownError, match="not an AGI reply"):
        agi.answer()


def test_values_are_escaped_so_nothing_can_be_injected() -> None:
    evil = 'x" \nSET VARIABLE CC_QUEUE "vip\\'
    with session("200 result=1") as (agi, theirs):
        agi.set_variable("NOTE", evil)
        lines = sent(theirs)
    assert len(lines) == 1
    assert split_args(lines[0].removeprefix("SET VARIABLE")) == ["NOTE", 'x"  SET VARIABLE CC_QUEUE "vip\\']
    assert escape("a b") == '"a b"'


def test_commands_with_line_breaks_are_refused() -> None:
    with session() as (agi, theirs):
        with pytest.raises(ProtocolError, match="line break"):
            agi.stream_file_ex("beep\nHANGUP")
        assert sent(theirs) == []


def test_latin1_caller_name_is_kept() -> None:
    env = ENV.replace(b"agi_calleridname: Test", "agi_calleridname: José".encode("latin-1"))
    with session(env=env) as (agi, _):
        assert agi.env["agi_calleridname"] == "José"


def test_oversized_line_is_refused_without_reading_it_all() -> None:
    env = ENV.replace(b"agi_calleridname: Test", b"agi_calleridname: " + b"A" * 1_000_000)
    with pytest.raises(ProtocolError, match="longer than 8192 bytes"), session(env=env):
        pass


def test_malformed_environment_lines_are_skipped_and_counted() -> None:
    env = ENV.replace(b"agi_type: Local\n", b"agi_type: Local\nthis is not a header\n: empty key\n")
    with session(env=env) as (agi, _):
        assert agi.ignored_env_lines == 2
        assert agi.env["agi_uniqueid"] == "1795424056.1"


def test_truncated_or_endless_environment_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="cut off"), session(env=ENV[:200], close=True):
        pass
    endless = b"".join(f"agi_x{i}: {i}\n".encode() for i in range(300))
    with pytest.raises(ProtocolError, match="longer than 200 lines"), session(env=endless):
        pass


def test_a_closed_connection_is_a_hangup() -> None:
    with session(close=True) as (agi, _), pytest.raises(AgiHangup):
        agi.answer()


def test_pyst2_itself_cannot_be_constructed_in_a_thread() -> None:
    """The fault SocketAGI avoids: AGI() installs a SIGHUP handler (main thread only)."""
    errors: list[BaseException] = []

    def construct() -> None:
        try:
            AGI(stdin=None, stdout=None, stderr=None)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=construct)
    thread.start()
    thread.join()
    assert errors and isinstance(errors[0], ValueError)


def test_parse_reply() -> None:
    assert parse_reply("result=1 (hello world) endpos=5") == {
        "result": ("1", "hello world"),
        "endpos": ("5", ""),
    }
    assert parse_reply("result= (timeout)") == {"result": ("", "timeout")}
    assert parse_reply("") == {"result": ("", "")}


SIMULATED_LINKEDID = (
    "from callcenter.voice.agi.simulate import CallScript\n"
    "script = CallScript()\n"
    "script.environment('h', 1)\n"
    "print(script.linkedid)"
)


def test_simulator_processes_started_in_the_same_second_name_different_calls() -> None:
    def linkedid() -> str:
        run = subprocess.run(
            [sys.executable, "-c", SIMULATED_LINKEDID], capture_output=True, text=True, check=True
        )
        return run.stdout

    assert len({linkedid() for _ in range(3)}) == 3
