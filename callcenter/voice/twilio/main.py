"""Wiring of the Twilio channel: settings → flows, rules, recorder, voice → ``TwilioVoice``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from callcenter.db import Database
from callcenter.events import Bus
from callcenter.ivr.flow import load_flows
from callcenter.ivr.rules import engine_rules
from callcenter.services.agent_states import CallPresence
from callcenter.services.journal import Recorder, recorder_for
from callcenter.settings import Settings
from callcenter.voice.twilio.hotline import TwilioVoice
from callcenter.voice.twilio.twiml import Voice


def enabled(settings: Settings) -> bool:
    """Twilio is on when the account, its auth token and our public URL are configured."""
    twilio = settings.twilio
    return bool(twilio.account_sid and twilio.auth_token is not None and twilio.public_base_url)


def voice_for(settings: Settings) -> Voice:
    twilio = settings.twilio
    return Voice(
        say_voice=twilio.say_voice,
        say_voice_en=twilio.say_voice_en,
        prompts_base_url=twilio.prompts_base_url,
        hold_music_url=twilio.hold_music_url,
    )


def build_voice(
    settings: Settings,
    db: Database,
    clock: Callable[[], datetime],
    bus: Bus,
    recorder: Recorder | None = None,
) -> TwilioVoice:
    return TwilioVoice(
        flows=load_flows(settings.path(settings.ivr.flows_dir)),
        rules=engine_rules(settings),
        recorder=recorder or recorder_for(settings, db, clock),
        db=db,
        clock=clock,
        region=settings.organisation.phone_region,
        public_base_url=settings.twilio.public_base_url,
        voice=voice_for(settings),
        bus=bus,
        language=settings.organisation.default_language,
        record_calls=settings.twilio.record_calls,
        presence=CallPresence(db, settings.console, settings.zone, clock),
    )
