"""pyst2's AGI class, made safe to drive over a FastAGI socket from worker threads.

pyst2 0.5.1 was written for AGI over stdin/stdout in its own process. Over a socket, in a thread, it
breaks in known ways; ``SocketAGI`` keeps pyst2's command methods (answer, stream_file, set_variable,
get_variable, verbose, hangup, …) and replaces the parts that break:

* the constructor installs a SIGHUP handler (ValueError outside the main thread) → not called;
* it writes ``str`` to the socket and decodes input as strict UTF-8 → we write UTF-8 bytes and
  decode input as UTF-8, falling back to Latin-1 (a Latin-1 caller name is kept, not fatal);
* the unsolicited ``HANGUP`` line leaves replies out of step → it is consumed and remembered;
* ``511`` (dead channel) and ``100 Trying`` become AGIUnknownError, ``result=-1`` becomes
  AGIAppError → dead channel and -1 on channel commands raise :class:`AgiHangup`; 100 is skipped;
* a usage reply (520) cut off by a closed socket loops forever → EOF raises, lines are bounded;
* arguments are not escaped (a quote and newline inject a command) → values are escaped, and any
  command containing CR/LF is refused;
* ``get_data`` drops the ``(timeout)`` flag and the reply parser misses empty results → our parser
  keeps empty values and parenthesised data;
* lines are read with a length limit and an env block with a line limit, so oversized or garbage
  input ends one session with a clear error instead of exhausting memory;
* the whole env block has one deadline (:class:`DeadlineReader`), not a timeout per read: a sender
  trickling a byte now and then cannot hold a session thread longer than the deadline.
"""

from __future__ import annotations

import io
import logging
import re
import socket
import time
from dataclasses import dataclass
from typing import Any, Protocol

from asterisk.agi import AGI, AGIError, AGIHangup, AGIInvalidCommand, AGIUnknownError, AGIUsageError

from callcenter.exceptions import ProtocolError

log = logging.getLogger(__name__)

# Commands whose ``result=-1`` means the channel hung up (Asterisk's res_agi returns -1 on hang-up).
CHANNEL_COMMANDS = frozenset(
    {
        "ANSWER",
        "STREAM FILE",
        "CONTROL STREAM FILE",
        "GET DATA",
        "GET OPTION",
        "WAIT FOR DIGIT",
        "RECORD FILE",
        "SAY DIGITS",
        "SAY NUMBER",
        "SAY ALPHA",
        "SAY PHONETIC",
        "SAY DATE",
        "SAY TIME",
        "SAY DATETIME",
        "EXEC",
    }
)
MAX_USAGE_LINES = 64
_RESULT_PAIR = re.compile(r"(\w+)=(\S*)(?:\s*\(([^)]*)\))?")


class LineReader(Protocol):
    def readline(self, size: int = -1, /) -> bytes: ...


class ByteWriter(Protocol):
    def write(self, data: bytes, /) -> int: ...

    def flush(self) -> None: ...


class AgiHangup(AGIHangup):  # type: ignore[misc]
    """The caller hung up or the channel is dead; the session ends cleanly."""


class BadEnvironment(ProtocolError):
    """The ``agi_*`` block was cut off or malformed; ``env`` holds what did arrive."""

    def __init__(self, message: str, env: dict[str, str]) -> None:
        super().__init__(message)
        self.env = env


class AgiCommandFailed(AGIError):  # type: ignore[misc]
    """A channel command failed (``result=-1``) but the caller is still there."""


@dataclass(frozen=True)
class Limits:
    max_line_bytes: int = 8192
    max_env_lines: int = 200


class DeadlineReader(io.RawIOBase):
    """A socket's bytes for an :class:`io.BufferedReader`, with an optional overall deadline.

    While ``deadline`` (a :func:`time.monotonic` instant) is set, each ``recv`` waits at most until it
    and a read after it raises :class:`TimeoutError`, however the bytes trickle in (a buffered
    ``readline`` may call ``recv`` many times). Without a deadline the socket's own timeout applies to
    each read.
    """

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self._sock = sock
        self.deadline: float | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.deadline is not None:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("deadline passed")
            self._sock.settimeout(remaining)
        return self._sock.recv_into(buffer)


def decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def escape(value: object) -> str:
    """Quote one AGI argument the way Asterisk's parser reads it back, with no line breaks."""
    text = str(value).replace("\r", " ").replace("\n", " ")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_reply(response: str) -> dict[str, tuple[str, str]]:
    """``result=1 (value) endpos=3404`` → {'result': ('1', 'value'), 'endpos': ('3404', '')}."""
    pairs = {key: (value, data or "") for key, value, data in _RESULT_PAIR.findall(response)}
    pairs.setdefault("result", ("", ""))
    return pairs


class SocketAGI(AGI):  # type: ignore[misc]
    """pyst2's AGI over one FastAGI connection (binary file objects from the socket)."""

    def __init__(self, rfile: LineReader, wfile: ByteWriter, limits: Limits | None = None) -> None:
        # Deliberately not calling AGI.__init__: it installs a signal handler and reads sys.stdin.
        self.rfile = rfile
        self.wfile = wfile
        self.limits = limits or Limits()
        self.env: dict[str, str] = {}
        self.hung_up = False
        self.last_command = ""
        self.ignored_env_lines = 0
        self._got_sighup = False
        self._read_env()

    # -- reading ---------------------------------------------------------------------------------

    def read_line(self) -> str:
        raw = self.rfile.readline(self.limits.max_line_bytes + 1)
        if not raw:
            raise AgiHangup("connection closed by Asterisk")
        if len(raw) > self.limits.max_line_bytes and not raw.endswith(b"\n"):
            raise ProtocolError(f"line longer than {self.limits.max_line_bytes} bytes")
        return decode(raw).rstrip("\r\n")

    def _read_env(self) -> None:
        for _ in range(self.limits.max_env_lines):
            try:
                line = self.read_line()
            except AgiHangup:
                raise BadEnvironment(
                    f"AGI environment cut off after {len(self.env)} variables", self.env
                ) from None
            except ProtocolError as exc:
                raise BadEnvironment(str(exc), self.env) from exc
            except TimeoutError:
                raise BadEnvironment(
                    f"AGI environment not complete in time ({len(self.env)} variables arrived)", self.env
                ) from None
            if not line.strip():
                if self.env:
                    return
                continue  # tolerate blank lines before the block
            key, sep, value = line.partition(":")
            key = key.strip()
            if not sep or not key.startswith("agi_") or not key.replace("_", "").isalnum():
                self.ignored_env_lines += 1
                continue
            self.env[key] = value.strip()
        raise BadEnvironment(f"AGI environment longer than {self.limits.max_env_lines} lines", self.env)

    def get_result(self, stdin: Any = None) -> dict[str, tuple[str, str]]:
        line = self._next_reply_line()
        code_text, _, response = line.partition(" ")
        if not code_text.isdigit():
            code_text, response = line[:3], line[4:]
            if not code_text.isdigit():
                raise AGIUnknownError(0, f"not an AGI reply: {line[:80]!r}")
        code = int(code_text[:3])
        if code == 200:
            result = parse_reply(response)
            value, data = result["result"]
            if data == "hangup":
                self.hung_up = True
                raise AgiHangup(f"{self.last_command}: caller hung up")
            if value == "-1" and self.last_command in CHANNEL_COMMANDS:
                self._hung_up_or_failed(self.last_command)
            return result
        if code == 511:
            self.hung_up = True
            raise AgiHangup(f"{self.last_command}: channel is dead")
        if code == 510:
            raise AGIInvalidCommand(response)
        if code == 520:
            raise AGIUsageError(self._read_usage(line))
        raise AGIUnknownError(code, f"unexpected reply {line[:80]!r}")

    def _hung_up_or_failed(self, command: str) -> None:
        """``result=-1`` means a hang-up or a failure (e.g. a missing sound file: same reply).

        Asterisk sends its ``HANGUP`` line before the reply to the next command once the channel is
        gone, so a NOOP tells the two apart.
        """
        if not self.hung_up:
            self.execute("NOOP")
        if self.hung_up:
            raise AgiHangup(f"{command}: caller hung up")
        raise AgiCommandFailed(f"{command} failed on a live channel (missing sound file?)")

    def _next_reply_line(self) -> str:
        while True:
            line = self.read_line()
            if line == "HANGUP":
                # Asterisk announces the hang-up out of band; the real reply follows.
                self.hung_up = True
                continue
            if line.startswith("100 "):
                continue
            return line

    def _read_usage(self, first: str) -> str:
        lines = [first]
        for _ in range(MAX_USAGE_LINES):
            line = self.read_line()
            lines.append(line)
            if line.startswith("520 "):
                break
        return "\n".join(lines)

    # -- writing ---------------------------------------------------------------------------------

    def send_command(self, command: str, *args: Any) -> None:
        line = " ".join([command.strip(), *(str(arg) for arg in args)]).strip()
        if "\n" in line or "\r" in line:
            raise ProtocolError(f"refusing to send a command with a line break: {line[:60]!r}")
        self.last_command = command.strip().upper()
        self.wfile.write(line.encode("utf-8") + b"\n")
        self.wfile.flush()

    def execute(self, command: str, *args: Any) -> dict[str, tuple[str, str]]:
        try:
            self.send_command(command, *args)
        except (BrokenPipeError, ConnectionResetError) as exc:
            self.hung_up = True
            raise AgiHangup("connection closed by Asterisk") from exc
        result: dict[str, tuple[str, str]] = self.get_result()
        return result

    def _quote(self, string: Any) -> str:
        return escape(string)

    def test_hangup(self) -> None:  # pyst2 hook; SIGHUP is not used over FastAGI
        return None

    # -- commands whose pyst2 versions lose information --------------------------------------------

    def get_data_ex(self, filename: str, timeout_ms: int, max_digits: int) -> tuple[str, bool]:
        """GET DATA: (digits, timed_out). Digits come back as themselves (``200 result=12``)."""
        value, data = self.execute("GET DATA", filename, int(timeout_ms), int(max_digits))["result"]
        digits = "".join(ch for ch in value if ch in "0123456789*#")
        return digits, "timeout" in data

    def stream_file_ex(self, filename: str, escape_digits: str = "") -> str:
        """STREAM FILE: the key pressed to interrupt (Asterisk replies with its ASCII code), or ''."""
        value, _ = self.execute("STREAM FILE", filename, escape(escape_digits), 0)["result"]
        if value in ("", "0"):
            return ""
        try:
            return chr(int(value))
        except ValueError as exc:
            raise AGIError(f"unexpected STREAM FILE result {value!r}") from exc

    def record_file_ex(
        self, filename: str, fmt: str, escape_digits: str, max_s: int, silence_s: int, *, beep: bool = True
    ) -> str:
        """RECORD FILE: the key that ended the recording, or '' (timeout or silence).

        A hang-up while recording is ``200 result=-1 (hangup) endpos=…`` (AgiHangup; Asterisk keeps
        the file); a file that cannot be written is ``200 result=-1 (writefile)`` (AgiCommandFailed).
        """
        args = [filename, fmt, escape(escape_digits), int(max_s * 1000)]
        if beep:
            args.append("BEEP")
        args.append(f"s={int(silence_s)}")
        value, data = self.execute("RECORD FILE", *args)["result"]
        if value == "-1":
            raise AgiCommandFailed(f"RECORD FILE failed ({data or 'no reason'})")
        if "dtmf" in data:
            try:
                return chr(int(value))
            except ValueError as exc:
                raise AGIError(f"unexpected RECORD FILE result {value!r}") from exc
        return ""

    def get_variable_or_none(self, name: str) -> str | None:
        """GET VARIABLE: the value, or None when the variable is not set (``200 result=0``)."""
        value, data = self.execute("GET VARIABLE", escape(name))["result"]
        return data if value == "1" else None
