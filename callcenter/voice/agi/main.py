"""Wiring of the FastAGI process: settings → database, flows, recorder → scripts → server."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from callcenter.db import Database
from callcenter.ivr.flow import load_flows
from callcenter.ivr.rules import engine_rules
from callcenter.services import callers
from callcenter.services.journal import Recorder, recorder_for
from callcenter.settings import Settings
from callcenter.voice.agi.hotline import FlowScript
from callcenter.voice.agi.protocol import Limits
from callcenter.voice.agi.server import Fallback, FastAGIServer, Router

# ${QUEUESTATUS} values after which the dialplan hands the caller to after-hours as a missed call.
QUEUE_GAVE_UP = ("queue-timeout", "TIMEOUT", "FULL", "JOINEMPTY", "LEAVEEMPTY", "JOINUNAVAIL", "LEAVEUNAVAIL")


def build_router(
    settings: Settings, db: Database, clock: Callable[[], datetime], recorder: Recorder | None = None
) -> Router:
    """The table of AGI scripts, from the validated flow files (docs/asterisk.md lists them)."""
    flows = load_flows(settings.path(settings.ivr.flows_dir))
    rules = engine_rules(settings)
    recorder = recorder or recorder_for(settings, db, clock)
    vips = callers.VipDirectory(db, clock)

    def script(flow: str, **variant: Any) -> FlowScript:
        return FlowScript(
            flows[flow],
            rules,
            recorder,
            db,
            settings.organisation.phone_region,
            clock,
            language=settings.organisation.default_language,
            queue_timeout_s=settings.ivr.queue_timeout_s,
            asterisk_monitor_dir=settings.storage.asterisk_monitor_dir,
            vips=vips,
            **variant,
        )

    router = Router()
    router.register("hotline", script("hotline"))
    missed = dict.fromkeys(QUEUE_GAVE_UP, "missed")
    router.register("after-hours", script("hotline", entry="after_hours", entry_by_argument=missed))
    router.register("queue-callback", script("hotline", entry="queue_callback", queue_exit="CALLBACK"))
    router.register("outbound", script("outbound", direction="outbound"))
    return router


def build_server(
    settings: Settings, db: Database, clock: Callable[[], datetime], *, port: int | None = None
) -> FastAGIServer:
    agi = settings.agi
    recorder = recorder_for(settings, db, clock)  # one writer for the process; the server closes it
    return FastAGIServer(
        (agi.host, agi.port if port is None else port),
        build_router(settings, db, clock, recorder),
        Fallback(settings.ivr.default_queue, recorder, clock),
        limits=Limits(max_line_bytes=agi.max_line_bytes, max_env_lines=agi.max_env_lines),
        env_timeout_s=agi.env_timeout_s,
        reply_timeout_s=agi.reply_timeout_s,
        max_sessions=agi.max_sessions,
    )
