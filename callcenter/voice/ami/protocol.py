"""The AMI wire format: ``Key: Value`` lines ending in CRLF, one blank line after each message.

Parsing is incremental over a byte buffer (the reader hands over whatever ``recv`` returned, up to
64 KiB at a time) and keeps every header in order, repeated keys included (``ChanVariable``,
``Variable``, ``Output``), so nothing a message carries is lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

CRLF = b"\r\n"
END = b"\r\n\r\n"
BANNER_PREFIX = "Asterisk Call Manager/"
END_COMMAND = "--END COMMAND--"
MAX_MESSAGE_BYTES = 1 << 20  # a message larger than this is a broken stream, not a big event


class ProtocolError(Exception):
    """The other side does not speak AMI (no banner, an oversized message)."""


@dataclass(frozen=True)
class Message:
    """One AMI message: a response to an action or an event. Headers keep their order and repeats."""

    headers: tuple[tuple[str, str], ...]
    data: tuple[str, ...] = ()  # lines without ``Key: Value`` form (old ``Response: Follows`` output)
    _first: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for key, value in self.headers:
            self._first.setdefault(key, value)

    def get(self, key: str, default: str = "") -> str:
        """The first value of ``key`` (header names are case-sensitive, as Asterisk sends them)."""
        return self._first.get(key, default)

    def __getitem__(self, key: str) -> str:
        return self._first[key]

    def __contains__(self, key: object) -> bool:
        return key in self._first

    def getall(self, key: str) -> list[str]:
        """Every value of a repeated header, in order."""
        return [value for name, value in self.headers if name == key]

    def variables(self, prefix: str = "ChanVariable") -> dict[str, str]:
        """``ChanVariable: NAME=value`` headers (also ``ChanVariable(chan): …``) as a dict; all kept."""
        found: dict[str, str] = {}
        for name, value in self.headers:
            if name == prefix or name.startswith(prefix + "("):
                key, _, val = value.partition("=")
                found[key.strip()] = val
        return found

    @property
    def event(self) -> str:
        return self.get("Event")

    @property
    def is_event(self) -> bool:
        return "Event" in self._first

    @property
    def is_response(self) -> bool:
        return "Response" in self._first and "Event" not in self._first

    @property
    def action_id(self) -> str:
        return self.get("ActionID")

    def as_dict(self) -> dict[str, str]:
        return dict(self._first)


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # a Latin-1 caller name is kept, not dropped


def parse_message(lines: Sequence[str]) -> Message:
    headers: list[tuple[str, str]] = []
    data: list[str] = []
    for line in lines:
        key, sep, value = line.partition(":")
        if sep and key and not data and " " not in key:
            headers.append((key, value.strip()))
        else:
            data.append(line)
    return Message(tuple(headers), tuple(data))


class Parser:
    """Turns a byte stream into the banner version and then messages. Feed it any chunks."""

    def __init__(self, *, expect_banner: bool = True) -> None:
        self._buffer = bytearray()
        self.banner: str | None = None if expect_banner else ""

    def feed(self, chunk: bytes) -> list[Message]:
        self._buffer += chunk
        messages: list[Message] = []
        if self.banner is None:
            newline = self._buffer.find(CRLF)
            if newline < 0:
                if len(self._buffer) > 4096:
                    raise ProtocolError("no AMI banner in the first 4 KiB")
                return messages
            line = _decode(bytes(self._buffer[:newline]))
            if not line.startswith(BANNER_PREFIX):
                raise ProtocolError(f"not an Asterisk manager: {line[:80]!r}")
            self.banner = line[len(BANNER_PREFIX) :]
            del self._buffer[: newline + 2]
        start = 0
        buffer = self._buffer
        while True:
            end = buffer.find(END, start)
            if end < 0:
                break
            block = bytes(buffer[start:end])
            if block.startswith(b"Response: Follows") and END_COMMAND.encode() not in block:
                # Old-style command output may hold blank lines: wait for the end marker.
                marker = buffer.find(END_COMMAND.encode(), end)
                if marker < 0:
                    break
                end = buffer.find(END, marker)
                if end < 0:
                    break
                block = bytes(buffer[start:end])
            start = end + 4
            text = _decode(block).lstrip("\r\n")
            if text:
                messages.append(parse_message(text.split("\r\n")))
        if start:
            del buffer[:start]
        if len(buffer) > MAX_MESSAGE_BYTES:
            raise ProtocolError(f"AMI message longer than {MAX_MESSAGE_BYTES} bytes")
        return messages


HeaderValue = str | int | Sequence[str]


def encode(headers: Mapping[str, HeaderValue] | Iterable[tuple[str, str]]) -> bytes:
    """One action on the wire. A sequence value is sent as one header per item (``Variable``)."""
    pairs: Iterable[tuple[str, HeaderValue]] = headers.items() if isinstance(headers, Mapping) else headers
    lines: list[str] = []
    for key, value in pairs:
        values = [value] if isinstance(value, str | int) else list(value)
        for item in values:
            text = f"{key}: {item}"
            if "\r" in text or "\n" in text:
                raise ValueError(f"AMI header {key!r} holds a line break")
            lines.append(text)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def event_time(message: Message) -> datetime | None:
    """The event's ``Timestamp`` (``timestampevents = yes``) as aware UTC, microseconds exact."""
    stamp = message.get("Timestamp")
    if not stamp:
        return None
    seconds, _, fraction = stamp.partition(".")
    try:
        whole = int(seconds)
        micros = int((fraction + "000000")[:6]) if fraction else 0
    except ValueError:
        return None
    return datetime.fromtimestamp(whole, UTC) + timedelta(microseconds=micros)
