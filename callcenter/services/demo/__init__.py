"""Demo data for a first run: ``make run`` brings every desk to life.

``seed_demo`` (people.py) makes the people: queues, agents, the other desks' accounts, callers (one
VIP), an admin. ``load_demo`` adds a few days of work on top, all through the services the rest of
the system uses: calls placed through the FastAGI hotline and the AMI listener's mapping with their
recordings in the monitor folder, verified by the recording verifier (calls.py, audio.py); then
cases, a campaign, the QA draw and a handover (desks.py). Everything takes ``now``; seeding twice
adds nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from callcenter.db import Database
from callcenter.services.demo.calls import place_calls
from callcenter.services.demo.desks import Desks, seed_desks
from callcenter.services.demo.people import ADMIN_USERNAME, DEMO_AGENT_PASSWORD, DemoLogin, seed_demo
from callcenter.settings import Settings

__all__ = [
    "ADMIN_USERNAME",
    "DEMO_AGENT_PASSWORD",
    "DemoLoad",
    "DemoLogin",
    "Verify",
    "load_demo",
    "seed_demo",
]

# The recording verifier (recordings/verify.py: verify_all), handed in by the composition root: the
# core does not import the recordings package.
Verify = Callable[[Database, Path, datetime], object]


@dataclass(frozen=True)
class DemoLoad:
    logins: list[DemoLogin]
    calls_placed: int
    audio_source: str  # "espeak-ng", or "tone" where espeak-ng is not installed
    desks: Desks


def load_demo(
    settings: Settings, db: Database, now: datetime, *, admin_password: str, verify: Verify
) -> DemoLoad:
    """People, calls with verified recordings, then the desks' work."""
    with db.transaction() as session:
        logins = seed_demo(session, now=now, admin_password=admin_password)
    placed = place_calls(settings, db, now)
    verify(db, settings.path(settings.storage.monitor_dir), now)
    desks = seed_desks(settings, db, now)
    return DemoLoad(logins, placed.placed, placed.audio_source, desks)
