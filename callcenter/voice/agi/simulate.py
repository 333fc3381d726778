"""A simulated Asterisk: connects to a FastAGI server and plays one call, as Asterisk 22 does.

It sends the ``agi_*`` environment block, answers each command the way res_agi does (replies taken
from real Asterisk 22 sessions: ``200 result=<digits>`` for GET DATA, ``200 result= (timeout)`` on
silence, ``200 result=-1`` then an unsolicited ``HANGUP`` line when the caller hangs up, ``511`` for
channel commands on a dead channel, ``510`` for unknown commands) and feeds the caller's inputs.

It is what ``callcenter simulate-call`` runs, and the tests' fake Asterisk.

Inputs are tokens, one per prompt that waits for a key: a key string (``2``), ``timeout`` (silence)
or ``hangup``. ``!2`` presses 2 during the announcement before the menu (barge-in); ``.`` listens to
an announcement to its end (so that a later ``hangup`` lands on a later prompt). At a RECORD
FILE the next token is ``hangup``, a key that ends the recording (``#``), or anything else for a
message that ends in silence. When the inputs run out, the caller stays silent.
"""

from __future__ import annotations

import contextlib
import itertools
import secrets
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from callcenter.exceptions import ProtocolError
from callcenter.voice.agi.protocol import LineReader

DEAD_CHANNEL_ALLOWED = frozenset(
    {"SET VARIABLE", "GET VARIABLE", "GET FULL VARIABLE", "VERBOSE", "HANGUP", "NOOP", "ASYNCAGI BREAK"}
)
KNOWN_COMMANDS = (
    "ANSWER",
    "STREAM FILE",
    "CONTROL STREAM FILE",
    "GET DATA",
    "GET OPTION",
    "WAIT FOR DIGIT",
    "SET VARIABLE",
    "GET FULL VARIABLE",
    "GET VARIABLE",
    "VERBOSE",
    "HANGUP",
    "EXEC",
    "NOOP",
    "RECORD FILE",
    "SAY DIGITS",
    "SAY NUMBER",
    "SET MUSIC",
)
# Asterisk numbers channels <epoch>.<counter>; a random start keeps two simulator processes started in
# the same second from naming the same call.
_counter = itertools.count(secrets.randbelow(1_000_000) * 2 + 1)


def split_args(text: str) -> list[str]:
    """Split AGI arguments as res_agi's parse_args does: spaces separate, quotes group, \\ escapes."""
    args: list[str] = []
    current: list[str] = []
    quoted = escaped = have = False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = have = True
        elif char == '"':
            quoted = not quoted
            have = True
        elif char in " \t" and not quoted:
            if have:
                args.append("".join(current))
                current, have = [], False
        else:
            current.append(char)
            have = True
    if have:
        args.append("".join(current))
    return args


def parse_command(line: str) -> tuple[str, list[str]]:
    upper = line.upper()
    for name in KNOWN_COMMANDS:
        if upper == name or upper.startswith(name + " "):
            return name, split_args(line[len(name) :])
    return "", split_args(line)


# Where docs/asterisk/extensions.conf runs each script: (context, extension, priority). A real
# Asterisk 22 sends these in the agi_* block (tests/captures/scenarios): several sessions on one
# channel (the hotline, then after-hours or queue-callback) are told apart by them.
DIALPLAN_LINES = {
    "hotline": ("callcenter-inbound", "100", "6"),
    "after-hours": ("callcenter-inbound", "100", "14"),
    "queue-callback": ("callcenter-queue-exit", "1", "2"),
    "outbound": ("callcenter-outbound", "s", "5"),
}


@dataclass
class CallScript:
    caller_number: str = "+8613800138000"
    caller_name: str = "Test"
    inputs: Sequence[str] = ()
    extension: str | None = None  # None: where the shipped dialplan runs ``script`` (DIALPLAN_LINES)
    context: str | None = None
    script: str = "hotline"
    uniqueid: str | None = None
    linkedid: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    missing_sounds: frozenset[str] = frozenset()  # prompts this PBX has no file for
    channel_vars: dict[str, str] = field(default_factory=dict)  # set by the dialplan before AGI()

    def environment(self, host: str, port: int) -> list[tuple[str, str]]:
        serial = next(_counter)
        stamp = int(time.time())
        linkedid = self.linkedid or f"{stamp}.{serial * 2}"
        uniqueid = self.uniqueid or f"{stamp}.{serial * 2 + 1}"
        self.linkedid, self.uniqueid = linkedid, uniqueid
        context, extension, priority = DIALPLAN_LINES.get(self.script, DIALPLAN_LINES["hotline"])
        context, extension = self.context or context, self.extension or extension
        env = [
            ("agi_network", "yes"),
            ("agi_network_script", self.script),
            ("agi_request", f"agi://{host}:{port}/{self.script}"),
            ("agi_channel", f"Local/{extension}@{context}-{serial:08x};2"),
            ("agi_language", "zh"),  # the dialplan's Set(CHANNEL(language)=zh)
            ("agi_type", "Local"),
            ("agi_uniqueid", uniqueid),
            ("agi_version", "22.10.1"),
            ("agi_callerid", self.caller_number),
            ("agi_calleridname", self.caller_name),
            ("agi_callingpres", "0"),
            ("agi_callingani2", "0"),
            ("agi_callington", "0"),
            ("agi_callingtns", "0"),
            ("agi_dnid", "unknown"),
            ("agi_rdnis", "unknown"),
            ("agi_context", context),
            ("agi_extension", extension),
            ("agi_priority", priority),
            ("agi_enhanced", "0.0"),
            ("agi_accountcode", ""),
            ("agi_threadid", str(140596748375744 + serial)),
        ]
        overridden = dict(env) | self.extra_env
        return list(overridden.items())


@dataclass
class Simulation:
    """What the simulated Asterisk saw: the commands, its replies and the channel variables set."""

    linkedid: str
    uniqueid: str
    variables: dict[str, str] = field(default_factory=dict)
    transcript: list[tuple[str, str]] = field(default_factory=list)
    hung_up: bool = False
    prompts: list[str] = field(default_factory=list)
    recordings: list[str] = field(default_factory=list)  # RECORD FILE file names

    @property
    def queue(self) -> str | None:
        return self.variables.get("CC_QUEUE")

    @property
    def call_id(self) -> str | None:
        return self.variables.get("CC_CALL_ID")

    @property
    def commands(self) -> list[str]:
        return [command for command, _ in self.transcript]


class FakeAsterisk:
    """Plays one :class:`CallScript` against a FastAGI server over TCP."""

    def __init__(self, host: str, port: int, script: CallScript, *, timeout_s: float = 30.0) -> None:
        self.host, self.port, self.script, self.timeout_s = host, port, script, timeout_s
        self._inputs = list(script.inputs)
        self._hangup_announced = False
        self._channel_vars: dict[str, str] = {}

    def run(self) -> Simulation:
        env = self.script.environment(self.host, self.port)
        assert self.script.linkedid and self.script.uniqueid
        result = Simulation(linkedid=self.script.linkedid, uniqueid=self.script.uniqueid)
        self._channel_vars = {
            "CHANNEL(linkedid)": self.script.linkedid,
            "CHANNEL(uniqueid)": self.script.uniqueid,
            "CALLERID(num)": self.script.caller_number,
            "CALLERID(name)": self.script.caller_name,
            **self.script.channel_vars,
        }
        with socket.create_connection((self.host, self.port), timeout=self.timeout_s) as sock:
            block = "".join(f"{key}: {value}\n" for key, value in env) + "\n"
            sock.sendall(block.encode("utf-8"))
            reader = sock.makefile("rb")
            for line in self._lines(reader):
                already_hung_up = result.hung_up
                reply = self._answer(line, result)
                result.transcript.append((line, reply))
                out = reply + "\n"
                if already_hung_up and not self._hangup_announced:
                    out = "HANGUP\n" + out  # as res_agi does: before the next reply after a hang-up
                    self._hangup_announced = True
                try:
                    sock.sendall(out.encode("utf-8"))
                except (BrokenPipeError, ConnectionResetError):
                    break
                if line.upper().startswith("HANGUP") and not result.hung_up:
                    result.hung_up = True
            # The app closed its side. res_agi writes HANGUP before closing its own: once if the
            # channel is still up, twice if it was hung up (by the script's HANGUP or the caller).
            with contextlib.suppress(OSError):
                sock.sendall(b"HANGUP\nHANGUP\n" if result.hung_up else b"HANGUP\n")
        return result

    def _lines(self, reader: LineReader) -> Iterable[str]:
        while True:
            raw = reader.readline()
            if not raw:
                return
            yield raw.decode("utf-8", "replace").rstrip("\r\n")

    def _next_input(self) -> str:
        return self._inputs.pop(0) if self._inputs else "timeout"

    def _answer(self, line: str, result: Simulation) -> str:
        name, args = parse_command(line)
        if not name:
            return "510 Invalid or unknown command"
        if result.hung_up and name not in DEAD_CHANNEL_ALLOWED:
            return "511 Command Not Permitted on a dead channel or intercept routine"
        handler = getattr(self, "_cmd_" + name.lower().replace(" ", "_"), None)
        if handler is None:
            return "200 result=0"
        reply: str = handler(args, result)
        return reply

    # -- commands, with Asterisk 22's replies ----------------------------------------------------

    def _cmd_answer(self, args: list[str], result: Simulation) -> str:
        return "200 result=0"

    def _cmd_verbose(self, args: list[str], result: Simulation) -> str:
        return "200 result=1"

    def _cmd_noop(self, args: list[str], result: Simulation) -> str:
        return "200 result=0"

    def _cmd_stream_file(self, args: list[str], result: Simulation) -> str:
        if len(args) < 2:
            return "520 Invalid command syntax.  Proper usage not available."
        result.prompts.append(args[0])
        if args[0] in self.script.missing_sounds:
            return "200 result=-1 endpos=0"  # what res_agi answers when the file cannot be opened
        upcoming = self._inputs[0] if self._inputs else ""
        if upcoming == "hangup":
            self._inputs.pop(0)
            result.hung_up = True
            return "200 result=-1 endpos=0"
        if upcoming == ".":
            self._inputs.pop(0)
        elif upcoming.startswith("!") and upcoming[1:2] in args[1]:
            self._inputs.pop(0)
            return f"200 result={ord(upcoming[1])} endpos=1600"
        return "200 result=0 endpos=3404"

    def _cmd_get_data(self, args: list[str], result: Simulation) -> str:
        if not args:
            return "520 Invalid command syntax.  Proper usage not available."
        result.prompts.append(args[0])
        if args[0] in self.script.missing_sounds:
            return "200 result=-1"
        token = self._next_input().lstrip("!")
        if token == "hangup":
            result.hung_up = True
            return "200 result=-1"
        if token == "timeout" or not token:
            return "200 result= (timeout)"
        max_digits = int(args[2]) if len(args) > 2 and args[2].isdigit() else 1024
        return f"200 result={token[:max_digits]}"

    def _cmd_set_variable(self, args: list[str], result: Simulation) -> str:
        if len(args) != 2:
            return (
                "520-Invalid command syntax.  Proper usage follows:\n"
                "Usage: SET VARIABLE <variablename> <value>\n"
                "520 End of proper usage."
            )
        result.variables[args[0]] = args[1]
        self._channel_vars[args[0]] = args[1]
        return "200 result=1"

    def _cmd_get_variable(self, args: list[str], result: Simulation) -> str:
        value = self._channel_vars.get(args[0]) if args else None
        return "200 result=0" if value is None else f"200 result=1 ({value})"

    def _cmd_get_full_variable(self, args: list[str], result: Simulation) -> str:
        name = args[0].removeprefix("${").removesuffix("}") if args else ""
        value = self._channel_vars.get(name)
        return "200 result=0" if value is None else f"200 result=1 ({value})"

    def _cmd_record_file(self, args: list[str], result: Simulation) -> str:
        if len(args) < 4:
            return "520 Invalid command syntax.  Proper usage not available."
        result.recordings.append(f"{args[0]}.{args[1]}")
        token = self._next_input().lstrip("!")
        if token == "hangup":
            result.hung_up = True
            return "200 result=-1 (hangup) endpos=48000"
        if token[:1] and token[:1] in args[2]:
            return f"200 result={ord(token[0])} (dtmf) endpos=64000"
        return "200 result=0 (timeout) endpos=80000"

    def _cmd_hangup(self, args: list[str], result: Simulation) -> str:
        return "200 result=1"

    def _cmd_exec(self, args: list[str], result: Simulation) -> str:
        return "200 result=0"


def simulate_call(host: str, port: int, script: CallScript, *, timeout_s: float = 30.0) -> Simulation:
    try:
        return FakeAsterisk(host, port, script, timeout_s=timeout_s).run()
    except OSError as exc:
        raise ProtocolError(f"could not reach the FastAGI server at {host}:{port}: {exc}") from exc


def parse_inputs(digits: str | None, inputs: str | None) -> list[str]:
    """``--digits 2`` → ['2']; ``--inputs timeout,9,2`` → ['timeout', '9', '2']."""
    tokens = [token.strip() for token in (inputs or "").split(",") if token.strip()]
    if digits:
        tokens.append(digits)
    return tokens
