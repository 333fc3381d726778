"""Campaign dialler: pacing, double dials and lost tasks with several scheduler processes on PostgreSQL.

A fresh PostgreSQL database gets N due tasks in one active survey campaign (calling window all day,
``--rate`` calls per minute, ``--concurrent`` calls at most in flight). ``--schedulers`` real
``callcenter scheduler`` processes start at once against it and dial through a local fake Twilio
REST API (the one the tests use: a fresh CallSid per ``calls.create``, the call's final status on
fetch). One of them holds the lease and dials; the others wait. With ``--kill-leader`` the process
that dials is killed with SIGKILL halfway, and a waiting one takes over.

Measured at the fake (when each ``calls.create`` arrived):

* pacing: the achieved rate from the first to the last dial, and per 10 s window, against ``--rate``
  (error = |achieved − configured| / configured); with ``--kill-leader`` the takeover gap is left out
  of the windows (it is reported as the gap);
* double dials: numbers dialled more than once (must be 0);
* lost: tasks not ``done`` when the run ends (must be 0).

Usage: python -m bench.campaigns [--tasks 10000] [--rate 6000] [--schedulers 3] [--kill-leader]
Needs PostgreSQL (CALLCENTER_TEST_POSTGRES_URL, default postgresql+psycopg://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from sqlalchemy import func, select

from callcenter.db import Database, insert_ignoring_duplicates
from callcenter.db.migrate import upgrade
from callcenter.models import CallbackAttempt, CallbackTask, Campaign, CampaignMember, SchedulerLease
from tests.campaigns.fake_twilio import ACCOUNT, TOKEN, FakeTwilio, running_fake_twilio

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get(
    "CALLCENTER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
WINDOW_S = 10.0


def create_database() -> tuple[str, str]:
    name = f"callcenter_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(
        ADMIN_URL.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    ) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    return name, url


def drop_database(name: str) -> None:
    with psycopg.connect(
        ADMIN_URL.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    ) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def seed(db: Database, tasks: int, rate: float, concurrent: int) -> list[str]:
    now = datetime.now(UTC)
    numbers = [f"+86139{index:08d}" for index in range(tasks)]
    with db.transaction() as session:
        campaign = Campaign(
            name="bench",
            kind="survey",
            mode="survey",
            status="active",
            timezone="Asia/Shanghai",
            calls_per_minute=rate,
            max_concurrent=concurrent,
            max_attempts=3,
            due_from=now,
            created_at=now,
            updated_at=now,
        )
        session.add(campaign)
        session.flush()
        rows: list[dict[str, object]] = [
            {
                "key": f"bench:{number}",
                "kind": "survey",
                "status": "pending",
                "number_raw": number,
                "number_e164": number,
                "caller_id": None,
                "call_id": None,
                "queue_name": None,
                "language": "zh",
                "priority": 0,
                "due_at": now,
                "enqueued_at": None,
                "attempts": 0,
                "note": "",
                "data": {},
                "created_at": now,
                "updated_at": now,
            }
            for number in numbers
        ]
        for start in range(0, len(rows), 1000):
            insert_ignoring_duplicates(session, CallbackTask, rows[start : start + 1000], ["key"])
        ids = session.execute(select(CallbackTask.id)).scalars().all()
        members = [
            {"task_id": task_id, "campaign_id": campaign.id, "agent_id": None, "released_at": None}
            for task_id in ids
        ]
        for start in range(0, len(members), 1000):
            insert_ignoring_duplicates(session, CampaignMember, members[start : start + 1000], ["task_id"])
    return numbers


def settings_file(folder: Path, url: str, fake: FakeTwilio) -> Path:
    path = folder / "settings.toml"
    path.write_text(
        f"""
[database]
url = "{url}"
pool_size = 5
[storage]
var_dir = "{folder}/var"
spool_dir = "{folder}/var/spool"
recordings_dir = "{folder}/var/recordings"
monitor_dir = "{folder}/var/monitor"
[ivr]
flows_dir = "{ROOT}/ivr_flows"
[twilio]
account_sid = "{ACCOUNT}"
public_base_url = "https://cc.example.com"
api_base_url = "{fake.base_url}"
caller_id = "+864008123123"
[dialler]
lease_seconds = 10
resolve_after_s = 0
in_doubt_after_s = 10
not_placed_retry_s = 0
window_start = "00:00"
window_end = "23:59:59"
""",
        encoding="utf-8",
    )
    return path


def start(settings: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CALLCENTER_TWILIO__AUTH_TOKEN": TOKEN}
    command = [
        sys.executable,
        "-m",
        "callcenter.cli",
        "--settings",
        str(settings),
        "--log-level",
        "WARNING",
        "scheduler",
    ]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"))


def status(db: Database) -> tuple[int, int, str]:
    with db.read() as session:
        done = session.execute(
            select(func.count()).select_from(CallbackTask).where(CallbackTask.status == "done")
        ).scalar_one()
        open_attempts = session.execute(
            select(func.count()).select_from(CallbackAttempt).where(CallbackAttempt.state != "done")
        ).scalar_one()
        holder = session.execute(select(SchedulerLease.holder)).scalar_one_or_none() or ""
    return done, open_attempts, holder


def takeover(creates: list[float], killed_at: float) -> tuple[float, float]:
    """The silence around the kill: the longest pause between two dials near it (requests already on
    their way still arrive just after the SIGKILL)."""
    near = [moment for moment in creates if moment >= killed_at - 2.0]
    pauses = [(later - earlier, earlier, later) for earlier, later in itertools.pairwise(near)]
    _, last_before, first_after = max(pauses) if pauses else (0.0, killed_at, killed_at)
    return last_before, first_after


def windows(times: list[float], rate_per_s: float, skip: tuple[float, float] | None) -> list[float]:
    """Relative pacing error of each full 10 s window (windows overlapping ``skip`` left out)."""
    errors: list[float] = []
    start, end = times[0], times[-1]
    edge = start
    while edge + WINDOW_S <= end:
        if skip is None or edge + WINDOW_S <= skip[0] or edge >= skip[1]:
            count = sum(1 for moment in times if edge <= moment < edge + WINDOW_S)
            errors.append(abs(count / WINDOW_S - rate_per_s) / rate_per_s)
        edge += WINDOW_S
    return errors


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=1200.0, help="calls per minute")
    parser.add_argument("--concurrent", type=int, default=1000)
    parser.add_argument("--schedulers", type=int, default=3)
    parser.add_argument("--kill-leader", action="store_true")
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    name, url = create_database()
    processes: list[subprocess.Popen[bytes]] = []
    db = Database(url)
    try:
        numbers = seed(db, args.tasks, args.rate, args.concurrent)
        with tempfile.TemporaryDirectory() as tmp, running_fake_twilio() as fake:
            folder = Path(tmp)
            settings = settings_file(folder, url, fake)
            processes = [
                start(settings, folder / f"scheduler-{index}.log") for index in range(args.schedulers)
            ]
            began = time.monotonic()
            killed_at: float | None = None
            resumed_at: float | None = None
            while True:
                done, open_attempts, holder = status(db)
                if args.kill_leader and killed_at is None and len(fake.creates) >= args.tasks // 2:
                    pid = int(holder.split(":")[1])
                    leader = next(process for process in processes if process.pid == pid)
                    leader.send_signal(signal.SIGKILL)
                    killed_at = time.monotonic()
                    print(f"killed the leader (pid {pid}) after {len(fake.creates)} dials", file=sys.stderr)
                if done == args.tasks and open_attempts == 0:
                    break
                if time.monotonic() - began > args.timeout:
                    print(f"timed out: {done} of {args.tasks} done", file=sys.stderr)
                    break
                time.sleep(0.5)
            creates = sorted(moment for moment, _, _ in fake.creates)
            if killed_at is not None:
                killed_at, resumed_at = takeover(creates, killed_at)
            with db.read() as session:
                leaders = session.execute(select(SchedulerLease.token)).scalar_one()
            counts = fake.dial_counts()
            for process in processes:
                if process.poll() is None:
                    process.terminate()
                    process.wait(15)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        db.dispose()
        drop_database(name)
    report(args, numbers, creates, counts, done, killed_at, resumed_at)
    print(f"leaders over the run (lease token): {leaders}")


def report(
    args: argparse.Namespace,
    numbers: list[str],
    creates: list[float],
    counts: dict[str, int],
    done: int,
    killed_at: float | None,
    resumed_at: float | None,
) -> None:
    rate_s = args.rate / 60.0
    span = creates[-1] - creates[0]
    gap = (resumed_at - killed_at) if killed_at is not None and resumed_at is not None else 0.0
    achieved = (len(creates) - 1) / (span - gap) if span > gap else float("nan")
    skip = (
        (killed_at - WINDOW_S, resumed_at + WINDOW_S)
        if killed_at is not None and resumed_at is not None
        else None
    )
    errors = windows(creates, rate_s, skip)
    double = sum(1 for count in counts.values() if count > 1)
    lost = len(numbers) - done
    missing = len(set(numbers) - set(counts))
    print(
        f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )
    print(
        f"tasks {len(numbers)}, schedulers {args.schedulers}, configured {args.rate:.0f}/min, "
        f"kill leader: {args.kill_leader}"
    )
    print(f"dials {len(creates)} over {span:.1f} s" + (f" (takeover gap {gap:.1f} s)" if gap else ""))
    print(f"achieved {achieved * 60:.0f}/min: pacing error {abs(achieved - rate_s) / rate_s * 100:.2f} %")
    if errors:
        print(
            f"10 s windows: {len(errors)}, mean error {sum(errors) / len(errors) * 100:.2f} %, "
            f"worst {max(errors) * 100:.2f} %"
        )
    print(f"double dials {double}, never dialled {missing}, lost (not done) {lost}")
    print("")
    print(
        "| tasks | schedulers | configured/min | achieved/min | pacing error | worst 10 s window "
        "| double dials | lost |"
    )
    print(
        f"| {len(numbers)} | {args.schedulers}{' (leader killed)' if args.kill_leader else ''} | "
        f"{args.rate:.0f} | "
        f"{achieved * 60:.0f} | {abs(achieved - rate_s) / rate_s * 100:.2f} % | "
        f"{(max(errors) * 100 if errors else 0):.2f} % | {double} | {lost} |"
    )


if __name__ == "__main__":
    main()
