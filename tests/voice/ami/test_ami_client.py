"""Our AMI client against the fake AMI server, one test per pyst2 ``asterisk.manager`` fault (DESIGN.md)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pytest

from callcenter.voice.ami.client import AmiClient, AmiError, Backoff
from callcenter.voice.ami.protocol import Message, Parser, ProtocolError, encode, event_time
from tests.voice.ami.conftest import SECRET, wait_for
from tests.voice.ami.fakeami import FakeAmi, wire

Build = Callable[..., AmiClient]


def connected(make_client: Build, server: FakeAmi, **options: object) -> AmiClient:
    client = make_client(server, **options)
    client.start()
    assert client.wait_connected(5), client.last_error
    return client


def collect(client: AmiClient) -> list[Message]:
    """Events the handler sees, without the FullyBooted that follows each login."""
    seen: list[Message] = []
    client.add_handler(lambda message: seen.append(message) if message.event != "FullyBooted" else None)
    return seen


# --- wire format ---------------------------------------------------------------------------------


def test_parser_gives_the_same_messages_whatever_the_chunking(capture: list[dict[str, str]]) -> None:
    stream = b"Asterisk Call Manager/10.0.0\r\n" + b"".join(wire(event) for event in capture)
    whole = Parser().feed(stream)
    bytewise = Parser()
    pieces = [message for byte in range(len(stream)) for message in bytewise.feed(stream[byte : byte + 1])]
    assert whole == pieces
    assert [message.as_dict() for message in whole] == capture
    assert bytewise.banner == "10.0.0"


def test_parser_keeps_a_latin1_caller_name_and_refuses_a_stranger() -> None:
    parser = Parser(expect_banner=False)
    (message,) = parser.feed(b"Event: Newchannel\r\nCallerIDName: Jos\xe9\r\n\r\n")
    assert message["CallerIDName"] == "José"
    with pytest.raises(ProtocolError):
        Parser().feed(b"SSH-2.0-OpenSSH_9.6\r\n")


def test_actions_are_encoded_one_header_per_value_and_refuse_line_breaks() -> None:
    assert encode({"Action": "Originate", "Variable": ["A=1", "B=2"]}) == (
        b"Action: Originate\r\nVariable: A=1\r\nVariable: B=2\r\n\r\n"
    )
    with pytest.raises(ValueError, match="line break"):
        encode({"Action": "Command", "Command": "core show version\r\nAction: Logoff"})


def test_event_timestamps_keep_their_microseconds() -> None:
    (message,) = Parser(expect_banner=False).feed(wire({"Event": "Hangup", "Timestamp": "1795424094.968805"}))
    at = event_time(message)
    assert at is not None and at.tzinfo is not None
    assert (int(at.timestamp()), at.microsecond) == (1795424094, 968805)


# --- the fault paths of pyst2's asterisk.manager ---------------------------------------------------


def test_login_sends_credentials_and_turns_events_on(fake_ami: FakeAmi, make_client: Build) -> None:
    client = connected(make_client, fake_ami)
    login = fake_ami.actions[0]
    assert (login["Action"], login["Username"], login["Secret"], login["Events"]) == (
        "Login",
        "callcenter",
        SECRET,
        "on",
    )
    assert client.banner == "10.0.0"


def test_chan_variable_headers_are_all_kept_and_later_actions_still_answer(
    fake_ami: FakeAmi, make_client: Build
) -> None:
    # pyst2: dict.has_key on the second ChanVariable raises in the reader; every later action hangs.
    client = connected(make_client, fake_ami)
    events = collect(client)
    fake_ami.send_raw(
        wire(
            [
                ("Event", "Newchannel"),
                ("Channel", "PJSIP/1001-00000001"),
                ("ChanVariable", "CC_CALL_ID=42"),
                ("ChanVariable", "CC_QUEUE=complaint"),
                ("ChanVariable", "CC_NOTE=a=b"),
            ]
        )
    )
    wait_for(lambda: any(event.event == "Newchannel" for event in events))
    event = next(event for event in events if event.event == "Newchannel")
    assert event.variables() == {"CC_CALL_ID": "42", "CC_QUEUE": "complaint", "CC_NOTE": "a=b"}
    assert len(event.getall("ChanVariable")) == 3
    assert client.send_action("Ping", timeout=2)["Ping"] == "Pong"


def test_every_action_gets_its_own_action_id(fake_ami: FakeAmi, make_client: Build) -> None:
    # pyst2: a mutable default dict makes keyword-only send_action calls reuse one ActionID.
    client = connected(make_client, fake_ami)
    for _ in range(3):
        client.send_action("Getvar", {"Variable": "X"})
    client.send_action("Ping")
    ids = [action["ActionID"] for action in fake_ami.actions]
    assert len(ids) == len(set(ids)) == 5


def test_concurrent_actions_from_8_threads_each_get_their_own_response(make_client: Build) -> None:
    # pyst2: responses go to whoever waits first (8 threads: 56 of 320 misrouted).
    server = FakeAmi(secret=SECRET, reorder=True).start()  # answers out of order
    try:
        client = connected(make_client, server)
        wrong: list[str] = []

        def worker(thread: int) -> None:
            for number in range(40):
                name = f"T{thread}_{number}"
                response = client.send_action("Getvar", {"Variable": name}, timeout=5)
                if response["Value"] != f"value-of-{name}":
                    wrong.append(f"{name} got {response['Value']}")

        threads = [threading.Thread(target=worker, args=(index,)) for index in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        assert wrong == []
        assert len(server.actions) == 1 + 8 * 40
    finally:
        server.stop()


def test_a_handler_that_raises_does_not_stop_dispatch(
    fake_ami: FakeAmi, make_client: Build, caplog: pytest.LogCaptureFixture
) -> None:
    # pyst2: one raising callback ends the event thread.
    client = make_client(fake_ami)
    calls: list[str] = []

    def flaky(message: Message) -> None:
        calls.append(message.event)
        if message.event == "Boom":
            raise RuntimeError("handler bug")

    later = collect(client)
    client.add_handler(flaky)
    client.start()
    assert client.wait_connected(5)
    fake_ami.send_events([{"Event": "Boom"}, {"Event": "After"}, {"Event": "Boom"}, {"Event": "Last"}])
    wait_for(lambda: "Last" in calls)
    assert calls.count("Boom") == 2 and "After" in calls
    assert [event.event for event in later if event.event != "FullyBooted"] == [
        "Boom",
        "After",
        "Boom",
        "Last",
    ]
    assert client.stats.handler_errors == 2
    assert "dispatch continues" in caplog.text


def test_list_action_collects_its_events_and_dispatches_interleaved_ones(
    fake_ami: FakeAmi, make_client: Build
) -> None:
    # pyst2: events after Status/QueueStatus are glued into the response.
    client = connected(make_client, fake_ami)
    events = collect(client)
    result = client.send_list_action("QueueStatus")
    assert result.response["Message"] == "Queue status will follow"
    assert [event.event for event in result.events] == ["QueueParams", "QueueMember"]
    client.send_action("Ping")  # everything before the Pong has been routed
    assert client.drain()
    assert [event.event for event in events] == ["Newexten"]


@pytest.mark.parametrize("old_format", [False, True], ids=["output-headers", "response-follows"])
def test_command_keeps_every_output_line(fake_ami: FakeAmi, make_client: Build, old_format: bool) -> None:
    # pyst2: command() keeps only the last line.
    fake_ami.old_command_format = old_format
    client = connected(make_client, fake_ami)
    assert client.command("pjsip show endpoints") == fake_ami.command_output
    assert client.send_action("Ping")["Ping"] == "Pong"  # the stream is still in step


def test_reads_are_buffered(fake_ami: FakeAmi, make_client: Build, capture: list[dict[str, str]]) -> None:
    # pyst2 reads one byte per system call (about 3,700 events/s).
    client = connected(make_client, fake_ami)
    count = 0
    done = threading.Event()
    total = 20 * len(capture)

    def counter(message: Message) -> None:
        nonlocal count
        if message.event != "FullyBooted":
            count += 1
            if count == total:
                done.set()

    client.add_handler(counter)
    reads_before, bytes_before = client.stats.reads, client.stats.bytes
    fake_ami.send_events(capture * 20)
    assert done.wait(10)
    reads = client.stats.reads - reads_before
    assert client.stats.bytes - bytes_before > 400_000
    assert reads < total / 10, f"{reads} reads for {total} events"


def test_close_returns_promptly_when_the_server_is_silent(make_client: Build) -> None:
    # pyst2: close() can hang forever.
    for server in (FakeAmi(greet=False).start(), FakeAmi(secret=SECRET, silent=True).start()):
        try:
            client = make_client(server, connect_timeout_s=30.0)
            client.start()
            wait_for(lambda server=server: server.connections >= 1)  # type: ignore[misc]
            time.sleep(0.05)
            started = time.monotonic()
            client.close(timeout=1.0)
            assert time.monotonic() - started < 1.0
        finally:
            server.stop()


def test_close_after_login_logs_off_and_returns_promptly(fake_ami: FakeAmi, make_client: Build) -> None:
    client = connected(make_client, fake_ami)
    started = time.monotonic()
    client.close()
    assert time.monotonic() - started < 1.0
    wait_for(lambda: fake_ami.logoffs == 1)
    with pytest.raises(AmiError, match="not connected"):
        client.send_action("Ping")


def test_a_dropped_connection_is_reconnected_and_the_gap_logged(
    fake_ami: FakeAmi, make_client: Build, caplog: pytest.LogCaptureFixture
) -> None:
    # pyst2: reconnecting raises.
    client = connected(make_client, fake_ami)
    events = collect(client)
    fake_ami.send_events([{"Event": "Before"}])
    wait_for(lambda: any(event.event == "Before" for event in events))
    failures: list[AmiError] = []

    def unanswered() -> None:
        try:
            client.send_action("Silence", timeout=5)
        except AmiError as exc:
            failures.append(exc)

    waiting = threading.Thread(target=unanswered)
    fake_ami.silent = True
    waiting.start()
    wait_for(lambda: fake_ami.actions[-1].get("Action") == "Silence")
    fake_ami.silent = False
    caplog.set_level(logging.WARNING)
    fake_ami.drop()
    waiting.join(5)
    assert not waiting.is_alive() and failures  # the waiting action failed with the drop, no hang
    fake_ami.wait_logins(2)
    assert client.wait_connected(5)
    fake_ami.send_events([{"Event": "After"}])
    wait_for(lambda: any(event.event == "After" for event in events))
    assert client.stats.drops == 1 and client.stats.connects == 2
    (gap,) = client.gaps
    assert gap.last_event_at is not None and gap.seconds is not None and gap.seconds > 0
    assert gap.first_event_at > gap.last_event_at
    assert "AMI event gap after reconnect" in caplog.text
    assert [r.levelname for r in caplog.records if "event gap" in r.message] == ["WARNING"]
    assert client.send_action("Ping")["Ping"] == "Pong"


def test_a_bad_secret_is_reported_clearly_and_retried_with_backoff(
    fake_ami: FakeAmi, make_client: Build, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(fake_ami, secret="wrong", backoff=Backoff(0.01, 0.04, jitter=0.0))
    client.start()
    wait_for(lambda: fake_ami.failed_logins >= 4)
    client.close()
    assert not client.connected and fake_ami.logins == 0
    assert client.last_error == "Authentication failed"
    assert "AMI login to 127.0.0.1" in caplog.text and "refused: Authentication failed" in caplog.text
    assert client.stats.retry_delays[:4] == [0.01, 0.02, 0.04, 0.04]


def test_a_silent_connection_is_detected_by_keepalive_pings(make_client: Build) -> None:
    server = FakeAmi(secret=SECRET, answer_pings=False).start()
    try:
        client = connected(make_client, server, keepalive_s=0.05, action_timeout_s=0.1)
        wait_for(lambda: client.stats.drops >= 1, timeout=5)
        server.wait_logins(2)
        assert any(action.get("Action") == "Ping" for action in server.actions)
    finally:
        server.stop()


def test_backoff_grows_to_its_ceiling_and_resets() -> None:
    backoff = Backoff(0.5, 30.0, rand=lambda: 1.0)  # +20 % jitter at the top
    delays = [backoff.next() for _ in range(9)]
    assert delays[:3] == [0.6, 1.2, 2.4] and delays[-1] == 30.0
    backoff.reset()
    assert backoff.next() == 0.6
