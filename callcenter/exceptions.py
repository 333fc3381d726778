"""Domain errors, in one place. Edges (AGI requests, webhooks, jobs) catch them; the core raises them."""

from __future__ import annotations


class CallcenterError(Exception):
    """Base of every error the core raises on purpose."""


class ConfigurationError(CallcenterError):
    """Settings or a flow file are unusable; the message names the file and key or node."""


class FlowError(ConfigurationError):
    """An IVR flow file is invalid."""

    def __init__(self, source: str, node: str | None, message: str) -> None:
        self.source = source
        self.node = node
        where = f"{source}: node {node!r}" if node else source
        super().__init__(f"{where}: {message}")


class ProtocolError(CallcenterError):
    """A peer (Asterisk, Twilio) sent something that does not follow its protocol."""


class ChannelHungUp(CallcenterError):
    """The caller hung up; the session ends cleanly."""


class NotFound(CallcenterError):
    """A record looked up by key does not exist."""
