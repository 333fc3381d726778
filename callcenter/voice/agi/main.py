"""Wiring of the FastAGI process: settings → database, flows, recorder → scripts → server."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from callcenter.db import Database
from callcenter.ivr.engine import Rules
from callcenter.ivr.flow import load_flows
from callcenter.ivr.hours import DailyHours
from callcenter.services.journal import recorder_for
from callcenter.settings import Settings
from callcenter.voice.agi.hotline import HotlineScript
from callcenter.voice.agi.protocol import Limits
from callcenter.voice.agi.server import Fallback, FastAGIServer, Router


def engine_rules(settings: Settings) -> Rules:
    return Rules(
        max_retries=settings.ivr.max_retries,
        default_queue=settings.ivr.default_queue,
        vip_priority=settings.ivr.vip_priority,
        hours=DailyHours(settings.hours.open, settings.hours.close, settings.zone),
    )


def build_router(settings: Settings, db: Database, clock: Callable[[], datetime]) -> Router:
    """The table of AGI scripts, from the validated flow files."""
    flows = load_flows(settings.path(settings.ivr.flows_dir))
    rules = engine_rules(settings)
    recorder = recorder_for(settings, db, clock)
    region = settings.organisation.phone_region
    router = Router()
    language = settings.organisation.default_language
    router.register("hotline", HotlineScript(flows["hotline"], rules, recorder, db, region, clock, language))
    return router


def build_server(
    settings: Settings, db: Database, clock: Callable[[], datetime], *, port: int | None = None
) -> FastAGIServer:
    agi = settings.agi
    return FastAGIServer(
        (agi.host, agi.port if port is None else port),
        build_router(settings, db, clock),
        Fallback(settings.ivr.default_queue, recorder_for(settings, db, clock), clock),
        limits=Limits(max_line_bytes=agi.max_line_bytes, max_env_lines=agi.max_env_lines),
        env_timeout_s=agi.env_timeout_s,
        reply_timeout_s=agi.reply_timeout_s,
    )
