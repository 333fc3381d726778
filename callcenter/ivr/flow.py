"""IVR flows as versioned data: the model, the TOML loader and the validator.

A flow file names its prompts (texts per language) and its nodes. Node types:

``play``   play a prompt, go to ``next``
``menu``   play a prompt and gather one key; ``options`` map keys to nodes (or ``@repeat``);
           no-input and invalid input re-prompt, then go to ``on_no_input`` / ``on_invalid``
``hours``  go to ``open`` or ``closed`` by the hotline hours at ``now``
``queue``  optionally play a prompt, then enqueue in ``queue`` (``@default`` = the settings' default
           queue, ``@operator`` = its operator queue) recording ``branch`` on the call log; ends the IVR
``hangup`` optionally play a prompt, then hang up; ends the IVR
``language`` switch the caller's language to ``language``, go to ``next``
``callback`` owe the caller a callback of ``kind``, due ``now`` or at the ``next_opening``; optionally
           play a prompt; go to ``next``. A caller who came back from the queue keeps the time they
           joined it (their place in line).
``record`` play a prompt, record the caller (voicemail) for up to ``max_s`` seconds, go to ``next``

Besides ``start``, ``[flow.entries]`` names other entry points (``after_hours``, ``missed``,
``queue_callback``, ``survey``…) that AGI scripts and webhooks can start the flow at.

Validation happens once, at start-up; every error names the file and the node.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from callcenter.exceptions import FlowError

DTMF_KEYS = frozenset("0123456789*#")
REPEAT = "@repeat"
DEFAULT_QUEUE = "@default"
OPERATOR_QUEUE = "@operator"
CALLBACK_KINDS_FROM_IVR = ("after_hours", "missed_call", "queue_callback", "promised_reply")
NODE_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FlowHeader(_Model):
    name: str = Field(pattern=NODE_NAME_PATTERN)
    version: int = Field(ge=1)
    start: str
    languages: tuple[str, ...] = ("zh",)
    description: str = ""
    entries: dict[str, str] = Field(default_factory=dict)


class PlayNode(_Model):
    type: Literal["play"]
    prompt: str
    next: str


class MenuNode(_Model):
    type: Literal["menu"]
    prompt: str
    options: dict[str, str]
    timeout_s: float = Field(default=6.0, gt=0, le=60)
    no_input_prompt: str | None = None
    invalid_prompt: str | None = None
    on_no_input: str
    on_invalid: str
    max_retries: int | None = Field(default=None, ge=0, le=9)  # None: the settings' ivr.max_retries

    @field_validator("options")
    @classmethod
    def _keys_are_dtmf(cls, options: dict[str, str]) -> dict[str, str]:
        if not options:
            raise ValueError("a menu needs at least one option")
        for key in options:
            if len(key) != 1 or key not in DTMF_KEYS:
                raise ValueError(f"option key {key!r} is not a single DTMF key (0-9, *, #)")
        return options


class HoursNode(_Model):
    type: Literal["hours"]
    open: str
    closed: str


class QueueNode(_Model):
    type: Literal["queue"]
    queue: str = Field(min_length=1, max_length=64)
    branch: str = Field(min_length=1, max_length=32)
    prompt: str | None = None


class HangupNode(_Model):
    type: Literal["hangup"]
    reason: str = Field(min_length=1, max_length=32)
    prompt: str | None = None


class LanguageNode(_Model):
    type: Literal["language"]
    language: str = Field(min_length=2, max_length=8)
    next: str


class CallbackNode(_Model):
    type: Literal["callback"]
    kind: Literal["after_hours", "missed_call", "queue_callback", "promised_reply"]
    due: Literal["now", "next_opening"] = "next_opening"
    prompt: str | None = None
    next: str


class RecordNode(_Model):
    type: Literal["record"]
    prompt: str
    max_s: int = Field(default=120, ge=5, le=600)
    silence_s: int = Field(default=5, ge=1, le=60)  # stop after this much silence
    next: str


Node = Annotated[
    PlayNode | MenuNode | HoursNode | QueueNode | HangupNode | LanguageNode | CallbackNode | RecordNode,
    Field(discriminator="type"),
]


class Flow(_Model):
    """A validated flow. ``source`` is the file it came from (for messages)."""

    flow: FlowHeader
    prompts: dict[str, dict[str, str]]
    nodes: dict[str, Node]
    source: str = "<memory>"

    @property
    def name(self) -> str:
        return self.flow.name

    @property
    def version(self) -> int:
        return self.flow.version

    def entry(self, name: str | None) -> str:
        """The node an entry point starts at (``None``: the flow's start)."""
        if name is None:
            return self.flow.start
        try:
            return self.flow.entries[name]
        except KeyError:
            raise FlowError(self.source, None, f"no entry point {name!r}") from None

    def node(self, name: str) -> Node:
        try:
            return self.nodes[name]
        except KeyError:
            raise FlowError(self.source, name, "no such node") from None

    def text(self, prompt: str, language: str) -> str:
        texts = self.prompts[prompt]
        return texts.get(language) or texts[self.flow.languages[0]]


def _targets(node: Node) -> list[tuple[str, str]]:
    """(field, node name) pairs a node can go to."""
    if isinstance(node, PlayNode | LanguageNode | CallbackNode | RecordNode):
        return [("next", node.next)]
    if isinstance(node, MenuNode):
        pairs = [(f"options.{key}", target) for key, target in node.options.items() if target != REPEAT]
        return [*pairs, ("on_no_input", node.on_no_input), ("on_invalid", node.on_invalid)]
    if isinstance(node, HoursNode):
        return [("open", node.open), ("closed", node.closed)]
    return []


def _prompts(node: Node) -> list[tuple[str, str]]:
    fields = ("prompt", "no_input_prompt", "invalid_prompt")
    return [(name, value) for name in fields if isinstance(value := getattr(node, name, None), str)]


def _check_graph(flow: Flow) -> None:
    source = flow.source
    if flow.flow.start not in flow.nodes:
        raise FlowError(source, None, f"start node {flow.flow.start!r} does not exist")
    for entry, target in flow.flow.entries.items():
        if target not in flow.nodes:
            raise FlowError(source, None, f"entry {entry!r} goes to {target!r}, which does not exist")
    for name, node in flow.nodes.items():
        _check_node(flow, name, node)
    for prompt, texts in flow.prompts.items():
        missing = [lang for lang in flow.flow.languages if not texts.get(lang, "").strip()]
        if missing:
            raise FlowError(source, None, f"prompt {prompt!r} has no text for {', '.join(missing)}")
    _check_no_silent_loop(flow)
    unreachable = sorted(set(flow.nodes) - _reachable(flow))
    if unreachable:
        raise FlowError(source, unreachable[0], "is not reachable from the start node or an entry")


def _check_node(flow: Flow, name: str, node: Node) -> None:
    source = flow.source
    if not _valid_name(name):
        raise FlowError(source, name, "node names are lower-case letters, digits and _")
    for field, target in _targets(node):
        if target not in flow.nodes:
            raise FlowError(source, name, f"{field} goes to {target!r}, which does not exist")
    for field, prompt in _prompts(node):
        if prompt not in flow.prompts:
            raise FlowError(source, name, f"{field} {prompt!r} is not defined under [prompts]")
    if isinstance(node, LanguageNode) and node.language not in flow.flow.languages:
        raise FlowError(source, name, f"language {node.language!r} is not among flow.languages")


def _valid_name(name: str) -> bool:
    return bool(name) and name[0].isalpha() and name.islower() and all(c.isalnum() or c == "_" for c in name)


def _reachable(flow: Flow) -> set[str]:
    seen: set[str] = set()
    todo = [flow.flow.start, *flow.flow.entries.values()]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(target for _, target in _targets(flow.nodes[name]))
    return seen


def _check_no_silent_loop(flow: Flow) -> None:
    """A cycle must pass through a menu, or the engine would loop without ever waiting for the caller."""

    def visit(name: str, stack: tuple[str, ...]) -> None:
        node = flow.nodes[name]
        if isinstance(node, MenuNode):
            return
        if name in stack:
            raise FlowError(
                flow.source, name, f"loops back to itself with no menu: {' → '.join((*stack, name))}"
            )
        for _, target in _targets(node):
            visit(target, (*stack, name))

    for name in flow.nodes:
        visit(name, ())


def parse_flow(data: Mapping[str, object], source: str) -> Flow:
    """Validate already-parsed TOML data; raise FlowError naming the file and node."""
    try:
        flow = Flow.model_validate({**data, "source": source})
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = [str(part) for part in error["loc"]]
        node = loc[1] if len(loc) > 1 and loc[0] == "nodes" else None
        where = ".".join(loc[2:] if node else loc)
        raise FlowError(source, node, f"{where}: {error['msg']}") from exc
    _check_graph(flow)
    return flow


def load_flow(path: Path) -> Flow:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise FlowError(str(path), None, f"not valid TOML: {exc}") from exc
    except OSError as exc:
        raise FlowError(str(path), None, f"cannot be read: {exc.strerror}") from exc
    flow = parse_flow(data, str(path))
    if flow.name != path.stem:
        raise FlowError(str(path), None, f"flow.name {flow.name!r} must match the file name {path.stem!r}")
    return flow


def load_flows(folder: Path) -> dict[str, Flow]:
    """Load and validate every ``*.toml`` flow in ``folder``, keyed by flow name."""
    if not folder.is_dir():
        raise FlowError(str(folder), None, "flows folder does not exist")
    flows = {path.stem: load_flow(path) for path in sorted(folder.glob("*.toml"))}
    if not flows:
        raise FlowError(str(folder), None, "no *.toml flow files")
    return flows
