"""The replay fixture: a fake AMI server, the real AMI listener and FastAGI server, one capture clock."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from callcenter.db import Database
from callcenter.models import Agent, Call, CallbackTask, Caller, CallEvent, MissedRing, Queue, Recording
from callcenter.settings import Settings
from callcenter.voice.agi.main import build_server
from callcenter.voice.agi.server import RunningServer
from callcenter.voice.ami.main import build_ami
from recordings.verify import verify_all
from tests.conftest import FIXED_NOW, _truncate, make_settings
from tests.replay.harness import AmiMessage, Delivery, Player, ReplayClock, Scenario, epoch, wav
from tests.voice.ami.fakeami import FakeAmi, wire

SECRET = "replay-secret"
CALLER = "+8613800138000"
AGENTS = {  # the capture's queue members (queues.conf of the test PBX)
    "张伟": "Local/1001@agents-sim/n",
    "李娜": "Local/1002@agents-sim/n",
    "王芳": "Local/1003@agents-sim/n",
}
OPEN_ALL_DAY = {"open": "00:00", "close": "23:59"}
# The app ran with hours 00:00–23:59 (environment overrides) unless a scenario says otherwise.
HOURS_OPEN = {**OPEN_ALL_DAY, "rest_days": OPEN_ALL_DAY, "holidays": OPEN_ALL_DAY}


def seed(db: Database) -> None:
    with db.transaction() as session:
        for name, title in (("consultation", "业务咨询"), ("complaint", "投诉建议")):
            session.add(Queue(name=name, title_zh=title, title_en=name, created_at=FIXED_NOW))
        for name, interface in AGENTS.items():
            session.add(Agent(name=name, extension=interface, created_at=FIXED_NOW))
        # The captured hotline sessions set CC_PRIORITY 10 (ivr.vip_priority): 张三 is a VIP.
        session.add(Caller(e164=CALLER, name="张三", tier="vip", created_at=FIXED_NOW, updated_at=FIXED_NOW))


@dataclass
class Snapshot:
    """What the replay left in the database, without ids and write times."""

    call: dict[str, Any]
    agent: str | None
    entries: list[
        tuple[str, str, str | None, datetime, int, dict[str, Any]]
    ]  # key, kind, node, at, seq, data
    recordings: list[dict[str, Any]]
    callbacks: list[dict[str, Any]]
    missed_rings: list[dict[str, Any]]
    calls: int

    def comparable(self) -> dict[str, Any]:
        return {
            "call": self.call,
            "agent": self.agent,
            "entries": sorted(self.entries, key=lambda entry: entry[0]),
            "recordings": self.recordings,
            "callbacks": self.callbacks,
            "missed_rings": self.missed_rings,
            "calls": self.calls,
        }


CALL_COLUMNS = (
    "channel", "external_id", "direction", "from_raw", "from_e164", "to_raw", "to_e164", "caller_name",
    "started_at", "answered_at", "ended_at", "wait_s", "talk_s", "disposition", "end_reason",
    "hangup_side", "ivr_branch", "queue_name", "priority", "ivr_path", "agent_interface", "transfers",
)  # fmt: skip


def snapshot(db: Database) -> Snapshot:
    with db.read() as session:
        calls = session.execute(select(Call).order_by(Call.id)).scalars().all()
        assert calls, "the replay left no call"
        call = calls[0]
        agent = session.get(Agent, call.agent_id) if call.agent_id else None
        events = session.execute(
            select(CallEvent).where(CallEvent.call_id == call.id).order_by(CallEvent.at, CallEvent.seq)
        ).scalars()
        recordings = session.execute(select(Recording).order_by(Recording.external_id)).scalars()
        tasks = session.execute(select(CallbackTask).order_by(CallbackTask.key)).scalars()
        rings = session.execute(select(MissedRing).order_by(MissedRing.at, MissedRing.id)).scalars()
        missed = [
            {
                "agent_id": ring.agent_id,
                "interface": ring.interface,
                "member": ring.member,
                "queue_name": ring.queue_name,
                "ring_s": ring.ring_s,
                "at": ring.at,
            }
            for ring in rings
        ]
        return Snapshot(
            call={column: getattr(call, column) for column in CALL_COLUMNS},
            agent=agent.name if agent else None,
            entries=[(e.key, e.kind, e.node, e.at, e.seq, e.data) for e in events],
            recordings=[
                {
                    "path": r.external_id,
                    "kind": r.kind,
                    "status": r.status,
                    "duration_s": r.duration_s,
                    "size_bytes": r.size_bytes,
                    "started_at": r.started_at,
                }
                for r in recordings
            ],
            callbacks=[
                {
                    "kind": t.kind,
                    "queue_name": t.queue_name,
                    "due_at": t.due_at,
                    "enqueued_at": t.enqueued_at,
                    "status": t.status,
                    "number_e164": t.number_e164,
                    "priority": t.priority,
                }
                for t in tasks
            ],
            missed_rings=missed,
            calls=len(calls),
        )


@dataclass
class Replay:
    """Runs captures into a fresh AMI listener + FastAGI server on the test database."""

    db: Database
    tmp_path: Path
    monkeypatch: pytest.MonkeyPatch
    extra: list[str] = field(default_factory=list)

    def settings(self, fake: FakeAmi, **sections: dict[str, Any]) -> Settings:
        self.monkeypatch.setenv("CALLCENTER_AMI__SECRET", SECRET)
        ami = {"host": "127.0.0.1", "port": fake.port, "reconnect_min_s": 0.01, "reconnect_max_s": 0.05}
        base: dict[str, dict[str, Any]] = {
            "ami": ami,
            "agi": {"env_timeout_s": 2.0, "reply_timeout_s": 5.0},
            "hours": HOURS_OPEN,
        }
        for name, values in sections.items():
            base[name] = {**base.get(name, {}), **values}
        return make_settings(self.tmp_path, self.db.url, **base)

    def run(
        self,
        scenario: Scenario,
        plays: Sequence[list[Delivery]],
        *,
        files: dict[str, int] | None = None,
        on_response: Callable[[Database, Settings, AmiMessage], None] | None = None,
        **sections: dict[str, Any],
    ) -> list[Snapshot]:
        """Play each delivery list in turn (same services); after each, verify recordings and snapshot."""
        _truncate(self.db)
        seed(self.db)
        fake = FakeAmi(secret=SECRET).start()
        settings = self.settings(fake, **sections)
        first = plays[0][0].at if plays and plays[0] else Decimal(0)
        clock = ReplayClock(epoch(first))
        service = build_ami(settings, self.db, clock)
        assert service is not None
        server = build_server(settings, self.db, clock, port=0)
        monitor = settings.path(settings.storage.monitor_dir)
        monitor.mkdir(parents=True, exist_ok=True)
        for path, data_bytes in (files or {}).items():
            target = monitor / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(wav(data_bytes))
        snapshots: list[Snapshot] = []
        try:
            service.start()
            fake.wait_logins(1)
            with RunningServer(server):
                for deliveries in plays:
                    player = Player(
                        scenario,
                        clock,
                        server.port,
                        send_ami=lambda batch: _send(service.client, fake, batch),
                        agi_flush=lambda: _flushed(server.fallback.recorder.flush()),
                        on_response=(
                            (lambda message: on_response(self.db, settings, message)) if on_response else None
                        ),
                    )
                    player.play(deliveries)
                    self.extra += player.extra
                    verify_all(self.db, monitor, clock() + timedelta(minutes=1))
                    snapshots.append(snapshot(self.db))
        finally:
            service.stop()
            fake.stop()
        return snapshots


def _flushed(done: bool) -> None:
    assert done, "the FastAGI recorder did not write its reports"


def _send(client: Any, fake: FakeAmi, batch: Sequence[AmiMessage]) -> None:
    expected = client.stats.events + len(batch)
    fake.send_raw(b"".join(wire(event) for event in batch))
    deadline = time.monotonic() + 5.0
    while client.stats.events < expected:  # polled finely: a replay makes dozens of these round trips
        assert time.monotonic() < deadline, "AMI events not received"
        time.sleep(0.0002)
    assert client.drain()


@pytest.fixture
def replay(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Replay]:
    yield Replay(db, tmp_path, monkeypatch)


Runner = Callable[..., Snapshot]
