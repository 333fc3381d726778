"""The scheduler behind the lease, in process: one leads, the other waits and takes over."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from callcenter.cli import utc_now
from callcenter.db import Database
from scheduler.leader import LeaderScheduler
from tests.conftest import make_settings

pytestmark = pytest.mark.slow


def test_one_scheduler_leads_the_other_takes_over(db: Database, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, db.url, dialler={"lease_seconds": 6})
    first = LeaderScheduler(settings, db, utc_now, holder="first")
    second = LeaderScheduler(settings, db, utc_now, holder="second")
    try:
        first.start()
        assert first.became_leader.wait(20)
        assert "dial_callbacks" in {job.id for job in first.get_jobs()}
        second.start()
        time.sleep(1.0)
        assert first.leading and not second.leading and second.get_jobs() == []
        first.shutdown()  # releases the lease: the standby takes over at its next try
        assert second.became_leader.wait(20)
        assert second.leading
    finally:
        first.shutdown()
        second.shutdown()
