"""Killing the scheduler process mid-campaign (SIGKILL) and starting it again: 0 lost, 0 dialled twice.

A real ``callcenter scheduler`` subprocess dials through the local fake Twilio; a second one started
at the same time waits for the lease; the first is killed; the second (and then a restarted one)
takes over and settles the attempts the dead one left in doubt.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from callcenter.cli import utc_now
from callcenter.db import Database
from callcenter.models import CallbackAttempt, CallbackTask
from tests.campaigns.conftest import add_tasks
from tests.campaigns.fake_twilio import ACCOUNT, TOKEN, FakeTwilio, running_fake_twilio
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

TASKS = 60


def settings_file(tmp: Path, url: str, fake: FakeTwilio) -> Path:
    path = tmp / "settings.toml"
    path.write_text(
        f"""
[database]
url = "{url}"
[storage]
var_dir = "{tmp}/var"
spool_dir = "{tmp}/var/spool"
recordings_dir = "{tmp}/var/recordings"
monitor_dir = "{tmp}/var/monitor"
[ivr]
flows_dir = "{ROOT}/ivr_flows"
[twilio]
account_sid = "{ACCOUNT}"
public_base_url = "https://cc.example.com"
api_base_url = "{fake.base_url}"
caller_id = "+864008123123"
[dialler]
calls_per_minute = 300
max_concurrent = 20
lease_seconds = 2
resolve_after_s = 0
in_doubt_after_s = 5
not_placed_retry_s = 0
window_start = "00:00"
window_end = "23:59:59"
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def start_scheduler(tmp_path: Path) -> Iterator[Callable[[Path], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    logs: list[Any] = []

    def start(settings: Path) -> subprocess.Popen[bytes]:
        env = {**os.environ, "CALLCENTER_TWILIO__AUTH_TOKEN": TOKEN}
        log = (tmp_path / f"scheduler-{len(started)}.log").open("wb")
        logs.append(log)
        process = subprocess.Popen(
            [sys.executable, "-m", "callcenter.cli", "--settings", str(settings), "scheduler"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
    for log in logs:
        log.close()


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def finished(db: Database) -> int:
    with db.read() as session:
        return session.execute(
            select(func.count()).select_from(CallbackTask).where(CallbackTask.status == "done")
        ).scalar_one()


def test_sigkill_mid_campaign_loses_nothing_and_dials_nothing_twice(
    db: Database, tmp_path: Path, start_scheduler: Callable[[Path], subprocess.Popen[bytes]]
) -> None:
    if not (ROOT / "callcenter" / "cli.py").exists():
        pytest.skip("no source tree")
    with running_fake_twilio() as fake:
        numbers = [f"+861380013{index:04d}" for index in range(TASKS)]
        add_tasks(db, utc_now(), numbers)
        settings = settings_file(tmp_path, db.url, fake)
        first = start_scheduler(settings)
        wait_for(lambda: len(fake.creates) >= TASKS // 3, 60, "the first dials")
        standby = start_scheduler(settings)  # waits for the lease
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        dialled_when_killed = len(fake.creates)
        assert dialled_when_killed < TASKS, "the campaign ended before the kill: make it slower"
        wait_for(lambda: len(fake.creates) > dialled_when_killed, 60, "the standby to take over")
        standby.send_signal(signal.SIGKILL)  # and once more, then a fresh start finishes the work
        standby.wait(10)
        start_scheduler(settings)
        wait_for(lambda: finished(db) == TASKS, 120, "every task to finish")
        time.sleep(1.0)
        counts = fake.dial_counts()
    assert sorted(counts) == sorted(numbers)  # 0 lost
    assert set(counts.values()) == {1}  # 0 dialled twice
    with db.read() as session:
        open_attempts = session.execute(
            select(func.count()).select_from(CallbackAttempt).where(CallbackAttempt.state != "done")
        ).scalar_one()
    assert open_attempts == 0
