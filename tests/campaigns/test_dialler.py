"""The dialler against the database (SQLite and PostgreSQL) and the local fake Twilio / fake AMI."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from callcenter.db import Database
from callcenter.dialler.channels import AmiChannel, DialRequest, TwilioChannel
from callcenter.dialler.engine import attempt_key
from callcenter.dialler.lease import Lease
from callcenter.models import AuditLog, CallbackAttempt, CallbackTask, DoNotCall, SchedulerLease
from callcenter.services import campaigns
from callcenter.settings import Settings
from callcenter.voice.ami.client import AmiClient, Backoff
from callcenter.voice.twilio.rest import make_client
from tests.campaigns.conftest import Clock, MakeDialler, add_tasks, staff_agent, twilio_section
from tests.campaigns.fake_twilio import FakeTwilio
from tests.conftest import make_settings
from tests.voice.ami.fakeami import FakeAmi

NUMBERS = [f"+86138001380{index:02d}" for index in range(5)]


def tasks(db: Database) -> list[CallbackTask]:
    with db.read() as session:
        return list(session.execute(select(CallbackTask).order_by(CallbackTask.id)).scalars())


def audit(db: Database) -> list[tuple[str, str, str]]:
    with db.read() as session:
        rows = session.execute(select(AuditLog).order_by(AuditLog.id)).scalars()
        return [(row.action, row.object_id, row.reason) for row in rows]


def test_dials_each_due_task_once_through_twilio(
    db: Database, dial_settings: Settings, fake_twilio: FakeTwilio, clock: Clock, make_dialler: MakeDialler
) -> None:
    add_tasks(db, clock(), NUMBERS)
    dialler = make_dialler(dial_settings)
    assert dialler.tick().dialled == 0  # no lease, no dialling
    assert dialler.lease.acquire() is not None
    assert dialler.tick().dialled == 1  # a new group starts paced: one now, the rest at 100/s
    clock.advance(seconds=0.04)
    assert dialler.tick().dialled == 4
    clock.advance(seconds=1)
    assert dialler.tick().resolved == 4  # Twilio says completed (the first one was, last pass)
    assert {task.status for task in tasks(db)} == {"done"}
    assert fake_twilio.dial_counts() == dict.fromkeys(NUMBERS, 1)
    assert "/twilio/outbound/" in fake_twilio.creates[0][2]
    actions = [action for action, _, _ in audit(db)]
    assert actions.count("dialler.dial") == 5 and actions.count("dialler.result") == 5
    for _ in range(3):
        clock.advance(minutes=10)
        dialler.tick()
    assert sum(fake_twilio.dial_counts().values()) == 5


def test_retries_with_backoff_then_unreachable(
    db: Database, dial_settings: Settings, fake_twilio: FakeTwilio, clock: Clock, make_dialler: MakeDialler
) -> None:
    fake_twilio.status = "no-answer"
    add_tasks(db, clock(), NUMBERS[:1])
    dialler = make_dialler(dial_settings)
    dialler.lease.acquire()
    dialler.tick()
    clock.advance(seconds=1)
    dialler.tick()
    [task] = tasks(db)
    assert (task.status, task.attempts) == ("pending", 1)
    assert task.due_at == clock() + timedelta(minutes=30)  # first back-off step
    clock.advance(minutes=29)
    dialler.lease.acquire()
    assert dialler.tick().dialled == 0
    for step in (1, 120, 120):
        clock.advance(minutes=step, seconds=1)
        dialler.lease.acquire()
        dialler.tick()
        clock.advance(seconds=1)
        dialler.tick()
    [task] = tasks(db)
    assert (task.status, task.attempts) == ("unreachable", 3)
    assert task.data["unreachable_by_phone"] is True
    assert fake_twilio.dial_counts() == {NUMBERS[0]: 3}
    with db.read() as session:
        results = session.execute(select(CallbackAttempt.result)).scalars().all()
    assert results == ["no_answer"] * 3
    assert ("dialler.skip", str(task.id), "max_attempts") in audit(db)


def test_dnc_and_outside_window_are_audited_not_dialled(
    db: Database, tmp_path: Path, fake_twilio: FakeTwilio, clock: Clock, make_dialler: MakeDialler
) -> None:
    settings = make_settings(tmp_path, db.url, twilio=twilio_section(fake_twilio))
    with db.transaction() as session:
        agent_id = staff_agent(session, clock(), "王五", skill_level="mid").id
        session.add(DoNotCall(e164=NUMBERS[0], reason="asked", added_at=clock()))
        session.flush()
        upload = campaigns.parse_upload("number\n" + "\n".join([*NUMBERS[:2], "+442079460000"]), "CN")
        spec = campaigns.CampaignSpec(
            "回访", "after_sale", "progressive", "Asia/Shanghai", clock(), 600, 10, 3, agent_ids=(agent_id,)
        )
        campaign = campaigns.create_campaign(session, spec, clock(), upload=upload)
        campaigns.set_status(session, campaign.id, "active", clock())
    dialler = make_dialler(settings)
    dialler.lease.acquire()
    stats = dialler.tick()
    assert stats.dialled == 1 and stats.stopped == 1 and stats.deferred == 1
    reasons = {reason for action, _, reason in audit(db) if action == "dialler.skip"}
    assert reasons == {"dnc", "outside_window"}
    assert set(fake_twilio.dial_counts()) == {NUMBERS[1]}


def test_lockout_after_an_abandoned_outbound_call(
    db: Database, dial_settings: Settings, clock: Clock, make_dialler: MakeDialler
) -> None:
    [first, second] = add_tasks(db, clock(), NUMBERS[:2])
    with db.transaction() as session:
        session.add(
            CallbackAttempt(
                key="old-1",
                task_id=first,
                number=9,
                channel="twilio",
                e164=NUMBERS[1],
                state="done",
                result="reached",
                abandoned=True,
                started_at=clock() - timedelta(hours=10),
                ended_at=clock() - timedelta(hours=10),
            )
        )
    dialler = make_dialler(dial_settings)
    dialler.lease.acquire()
    stats = dialler.tick()
    assert stats.dialled == 1 and stats.decisions.get("lockout") == 1
    locked = next(task for task in tasks(db) if task.id == second)
    assert locked.due_at == clock() + timedelta(hours=62)


def test_an_attempt_in_doubt_is_found_not_redialled(
    db: Database, dial_settings: Settings, fake_twilio: FakeTwilio, clock: Clock, make_dialler: MakeDialler
) -> None:
    """A leader died after Twilio accepted the call but before the CallSid was written."""
    [task_id] = add_tasks(db, clock(), NUMBERS[:1])
    crashed = make_dialler(dial_settings, holder="crashed")
    crashed.lease.acquire()
    crashed.synchronous = True
    crashed.channel.dial = lambda request: (_ for _ in ()).throw(SystemError("killed"))  # type: ignore[method-assign]
    # Simulate the crash: the intent is committed, the dial reaches Twilio, nothing else is written.
    crashed.tick()
    real = TwilioChannel(make_client(dial_settings), dial_settings, resolve_after_s=0, in_doubt_after_s=120)
    real.dial(DialRequest(attempt_key(task_id, 1), task_id, NUMBERS[0], False, "zh", 30))
    clock.advance(seconds=16)  # the lease expires
    successor = make_dialler(dial_settings, holder="successor")
    assert successor.lease.acquire() is not None
    successor.tick()
    clock.advance(seconds=1)
    successor.tick()
    assert fake_twilio.dial_counts() == {NUMBERS[0]: 1}
    [task] = tasks(db)
    assert (task.status, task.attempts) == ("done", 1)


def test_an_intent_never_placed_is_dialled_again_under_a_new_attempt(
    db: Database, dial_settings: Settings, fake_twilio: FakeTwilio, clock: Clock, make_dialler: MakeDialler
) -> None:
    add_tasks(db, clock(), NUMBERS[:1])
    crashed = make_dialler(dial_settings, holder="crashed")
    crashed.lease.acquire()
    crashed.channel.dial = lambda request: (_ for _ in ()).throw(SystemError("killed"))  # type: ignore[method-assign]
    crashed.tick()
    clock.advance(seconds=16)
    successor = make_dialler(dial_settings, holder="successor")
    successor.lease.acquire()
    successor.tick()  # resolves: Twilio never saw it → not placed, back to pending in a minute
    [task] = tasks(db)
    assert (task.status, task.attempts) == ("pending", 0)
    clock.advance(minutes=1, seconds=1)
    successor.lease.acquire()
    successor.tick()
    clock.advance(seconds=1)
    successor.tick()
    assert fake_twilio.dial_counts() == {NUMBERS[0]: 1}
    assert tasks(db)[0].status == "done"


def test_lease_one_holder_and_takeover(db: Database, clock: Clock) -> None:
    first, second = Lease(db, clock, ttl_s=15, holder="a"), Lease(db, clock, ttl_s=15, holder="b")
    assert first.acquire() == 1
    assert second.acquire() is None
    clock.advance(seconds=10)
    assert first.acquire() == 1  # renewed
    clock.advance(seconds=14)
    assert second.acquire() is None
    clock.advance(seconds=2)
    assert second.acquire() == 2  # expired: taken over, with a new fencing token
    assert first.acquire() is None and first.token is None
    second.release()
    assert first.acquire() == 3


def test_dials_through_the_fake_ami(
    db: Database, tmp_path: Path, clock: Clock, make_dialler: MakeDialler, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeAmi(secret="s3cret").start()
    client = AmiClient(
        "127.0.0.1",
        fake.port,
        "callcenter",
        "s3cret",
        clock=clock,
        backoff=Backoff(0.01, 0.05),
        events="call",
    )
    try:
        client.start()
        assert client.wait_connected(5)
        settings = make_settings(
            tmp_path, db.url, ami={"host": "127.0.0.1", "port": fake.port}, dialler={"calls_per_minute": 600}
        )
        add_tasks(db, clock(), NUMBERS[:2], kind="survey")
        dialler = make_dialler(settings, AmiChannel(client, settings, in_doubt_after_s=120))
        dialler.lease.acquire()
        assert dialler.tick().dialled == 1
        clock.advance(seconds=0.1)
        assert dialler.tick().dialled == 1
        originates = [action for action in fake.actions if action.get("Action") == "Originate"]
        assert sorted(action["ActionID"] for action in originates) == sorted(
            attempt_key(task.id, 1) for task in tasks(db)
        )
        assert all(int(action["Timeout"]) >= 15000 for action in originates)
        assert all("CC_FLOW_ENTRY=survey" in action["Variable"] for action in originates)
        assert {task.status for task in tasks(db)} == {"done"}
    finally:
        client.close(1.0)
        fake.stop()


@pytest.mark.parametrize("threads", [4])
def test_racing_claims_never_double_dial(
    db: Database,
    dial_settings: Settings,
    fake_twilio: FakeTwilio,
    clock: Clock,
    make_dialler: MakeDialler,
    threads: int,
) -> None:
    """Several dialler instances claiming at once (a stale leader included): one dial per task."""
    numbers = [f"+861390013{index:04d}" for index in range(200)]
    add_tasks(db, clock(), numbers)
    diallers = [make_dialler(dial_settings, holder=f"d{index}") for index in range(threads)]
    for dialler in diallers:  # force every one to believe it leads: only the row locks stop them
        dialler.lease.acquire()
        dialler.lease.token = 1
        dialler.tick()
    clock.advance(seconds=2)  # every dialler may now start up to 200 calls at once
    with db.transaction() as session:
        session.execute(update(SchedulerLease).values(expires_at=clock() + timedelta(hours=1)))
    barrier = threading.Barrier(threads)

    def run(index: int) -> None:
        barrier.wait()
        for _ in range(10):
            diallers[index].tick()

    workers = [threading.Thread(target=run, args=(index,)) for index in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    counts = fake_twilio.dial_counts()
    assert len(counts) > 50 and max(counts.values()) == 1
    with db.read() as session:
        keys = session.execute(select(CallbackAttempt.key)).scalars().all()
    assert len(keys) == len(set(keys)) == sum(counts.values())
