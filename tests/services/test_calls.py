from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from callcenter.db import Database
from callcenter.models import Call, Caller, CallEvent
from callcenter.services.calls import (
    CallSeen,
    Entry,
    get_call,
    id_for_key,
    recent_calls,
    record_call,
    record_calls,
)
from callcenter.services.demo import seed_demo
from callcenter.services.journal import Recorder, Spool


def seen(now: datetime, external_id: str = "1795424087.4", **kw: str) -> CallSeen:
    return CallSeen(
        channel="asterisk",
        external_id=external_id,
        at=now,
        from_raw=kw.get("from_raw", "13800138000"),
        caller_name=kw.get("caller_name", "张三"),
    )


def route_entries(now: datetime, uniqueid: str = "1795424087.5") -> list[Entry]:
    return [
        Entry(f"agi:{uniqueid}:0", "ivr.node", now, "agi", "welcome", 0, {"type": "play"}),
        Entry(f"agi:{uniqueid}:1", "ivr.node", now, "agi", "main_menu", 1, {"type": "menu"}),
        Entry(
            f"agi:{uniqueid}:2",
            "ivr.input",
            now + timedelta(seconds=4),
            "agi",
            "main_menu",
            2,
            {"digits": "2", "outcome": "option"},
        ),
        Entry(
            f"agi:{uniqueid}:3",
            "ivr.node",
            now + timedelta(seconds=4),
            "agi",
            "route_complaint",
            3,
            {"type": "queue"},
        ),
        Entry(
            f"agi:{uniqueid}:4",
            "ivr.route",
            now + timedelta(seconds=4),
            "agi",
            "route_complaint",
            4,
            {"queue": "complaint", "branch": "complaint", "priority": 0},
        ),
    ]


def counts(db: Database) -> tuple[int, int, int]:
    with db.sessions() as session:
        return (
            session.scalar(select(func.count()).select_from(Call)) or 0,
            session.scalar(select(func.count()).select_from(CallEvent)) or 0,
            session.scalar(select(func.count()).select_from(Caller)) or 0,
        )


def test_a_call_is_recorded_with_its_summary(db: Database, now: datetime) -> None:
    with db.transaction() as session:
        seed_demo(session, now=now, admin_password="admin-password")
    with db.transaction() as session:
        call = record_call(session, seen(now), route_entries(now), region="CN", now=now)
        call_id = call.id
    with db.sessions() as session:
        call = get_call(session, call_id)
        assert call.from_e164 == "+8613800138000" and call.from_valid
        assert call.caller is not None and call.caller.name == "张三" and call.caller.tier == "vip"
        assert call.ivr_path == ["welcome", "main_menu", "route_complaint"]
        assert (call.ivr_branch, call.queue_name, call.disposition) == ("complaint", "complaint", "queued")
        assert call.queue is not None and call.queue.title_zh == "投诉建议"
        assert call.started_at == now
        assert [event.kind for event in call.events][-1] == "ivr.route"


def test_replays_and_partial_reports_change_nothing(db: Database, now: datetime) -> None:
    entries = route_entries(now)
    for batch in (entries[:2], entries, entries[2:], entries):
        with db.transaction() as session:
            record_call(session, seen(now), batch, region="CN", now=now)
    assert counts(db) == (1, 5, 1)
    with db.sessions() as session:
        call = session.execute(select(Call)).scalar_one()
        assert call.disposition == "queued" and call.ivr_branch == "complaint"


def test_out_of_order_reports_agree(db: Database, now: datetime) -> None:
    entries = route_entries(now)
    with db.transaction() as session:
        record_call(session, seen(now + timedelta(seconds=4)), entries[2:], region="CN", now=now)
    with db.transaction() as session:
        record_call(session, seen(now), entries[:2], region="CN", now=now)
    with db.sessions() as session:
        call = session.execute(select(Call)).scalar_one()
        assert call.started_at == now
        assert call.ivr_path == ["welcome", "main_menu", "route_complaint"]


def test_garbage_number_is_kept_and_flagged(db: Database, now: datetime) -> None:
    with db.transaction() as session:
        call = record_call(session, seen(now, from_raw="<script>1</script>"), [], region="CN", now=now)
        assert (call.from_raw, call.from_e164, call.from_valid, call.caller_id) == (
            "<script>1</script>",
            None,
            False,
            None,
        )
    assert counts(db) == (1, 0, 0)


def test_caller_name_is_bounded_and_kept_as_text(db: Database, now: datetime) -> None:
    with db.transaction() as session:
        call = record_call(
            session, seen(now, caller_name="<b>X</b>\x07" + "名" * 300), [], region="CN", now=now
        )
        assert call.caller_name.startswith("<b>X</b>名") and len(call.caller_name) == 128


def test_recent_calls_newest_first_with_keyset_paging(db: Database, now: datetime) -> None:
    for index in range(5):
        with db.transaction() as session:
            record_call(
                session,
                seen(now + timedelta(minutes=index), external_id=f"c{index}"),
                [],
                region="CN",
                now=now,
            )
    with db.sessions() as session:
        first = recent_calls(session, limit=3)
        assert [call.external_id for call in first] == ["c4", "c3", "c2"]
        rest = recent_calls(session, limit=3, before_id=first[-1].id)
        assert [call.external_id for call in rest] == ["c1", "c0"]


def test_spooled_reports_are_replayed_once(db: Database, now: datetime, tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    down = Recorder(
        Database("postgresql+psycopg://nobody@127.0.0.1:1/none"), spool, region="CN", clock=lambda: now
    )
    assert down.record(seen(now), route_entries(now)) is None
    assert down.record(seen(now), route_entries(now)) is None  # the same report twice
    assert len(spool.pending()) == 2
    (tmp_path / "spool" / "zz-broken.json").write_text("{not json", encoding="utf-8")
    up = Recorder(db, spool, region="CN", clock=lambda: now)
    result = up.replay()
    assert (result.applied, result.failed, result.remaining) == (2, 1, 0)
    assert spool.pending() == []
    assert (tmp_path / "spool" / "zz-broken.bad").exists()
    assert counts(db)[:2] == (1, 5)


def test_replay_stops_while_the_database_is_still_down(now: datetime, tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    down = Recorder(
        Database("postgresql+psycopg://nobody@127.0.0.1:1/none"), spool, region="CN", clock=lambda: now
    )
    down.record(seen(now), route_entries(now))
    result = down.replay()
    assert (result.applied, result.remaining) == (0, 1)
    assert len(spool.pending()) == 1


def test_a_report_the_database_refuses_is_set_aside_and_later_ones_still_apply(
    db: Database, now: datetime, tmp_path: Path
) -> None:
    spool = Spool(tmp_path / "spool")
    down = Recorder(
        Database("postgresql+psycopg://nobody@127.0.0.1:1/none"), spool, region="CN", clock=lambda: now
    )
    refused = CallSeen(channel=None, external_id="x", at=now)  # type: ignore[arg-type]  # NOT NULL violation
    down.record(refused, [])
    down.record(seen(now), route_entries(now))
    result = Recorder(db, spool, region="CN", clock=lambda: now).replay()
    assert (result.applied, result.failed, result.remaining) == (1, 1, 0)
    assert len(list((tmp_path / "spool").glob("*.failed"))) == 1
    assert counts(db)[0] == 1


def _snapshot(db: Database, channel: str) -> list[tuple[object, ...]]:
    """Every call of ``channel`` with its columns (no ids, no channel) and its timeline keys.
    ``next_contact_at`` is left out: it points to the number's next call on any channel."""
    with db.sessions() as session:
        calls = session.execute(select(Call).where(Call.channel == channel).order_by(Call.external_id))
        rows = []
        for call in calls.scalars():
            columns = {
                name: getattr(call, name)
                for name in Call.__table__.columns.keys()  # noqa: SIM118 - a Table's column names
                if name not in ("id", "channel", "created_at", "next_contact_at")
            }
            keys = sorted((event.key, event.kind, event.at) for event in call.events)
            rows.append((call.external_id, sorted(columns.items()), keys))
        return rows


def test_one_batch_gives_the_records_of_one_report_at_a_time(db: Database, now: datetime) -> None:
    with db.transaction() as session:
        seed_demo(session, now=now, admin_password="admin-password")
    entries = route_entries(now)
    later = now + timedelta(seconds=9)

    def reports(channel: str) -> list[tuple[CallSeen, list[Entry]]]:
        def at(when: datetime, external_id: str, **kw: str) -> CallSeen:
            return CallSeen(channel=channel, external_id=external_id, at=when, **kw)

        hangup = Entry("h", "ivr.hangup", later, "agi", "main_menu", 9, {"reason": "caller hung up"})
        return [
            (at(now, "a", from_raw="13800138000", caller_name="张三"), entries[:2]),  # seeded VIP
            (at(now, "b", from_raw="13912345678"), entries),  # a caller met for the first time
            (at(later, "a"), entries[2:]),  # the same call again: merged, its number kept
            (at(now, "c", from_raw="<script>1</script>"), []),  # no callable number
            (at(now, "b", from_raw="13912345678"), entries),  # a replay
            (at(now, "d", direction="outbound", to_raw="13700137000"), entries[:1]),
            (at(later, "e", from_raw=""), [hangup]),  # number unknown at first ...
            (at(now, "e", from_raw="13600136000", caller_name="李四"), entries[:2]),  # ... then known
        ]

    for seen_, batch in reports("asterisk"):  # one at a time, each in its own transaction
        with db.transaction() as session:
            record_call(session, seen_, batch, region="CN", now=now)
    with db.transaction() as session:  # e was on record before: known and new calls in one batch
        record_call(session, *reports("twilio")[6], region="CN", now=now)
    with db.transaction() as session:
        ids = record_calls(session, reports("twilio"), region="CN", now=now)
    assert _snapshot(db, "twilio") == _snapshot(db, "asterisk")
    assert len(set(ids)) == 5 and ids[0] == ids[2] and ids[1] == ids[4]
    with db.sessions() as session:
        assert [call_id for call_id in ids] == [
            id_for_key(session, "twilio", key) for key in ("a", "b", "a", "c", "b", "d", "e", "e")
        ]


def test_a_large_batch_of_new_calls_goes_in_whole_in_several_inserts(db: Database, now: datetime) -> None:
    # 87 new calls: inserts of 64, 16, 4, 1, 1 and 1 rows; two are replays of calls already on record.
    with db.transaction() as session:
        record_call(session, seen(now, "call-3", from_raw="13800000003"), [], region="CN", now=now)
        record_call(session, seen(now, "call-70", from_raw="13800000070"), [], region="CN", now=now)
    reports = [
        (seen(now + timedelta(seconds=n), f"call-{n}", from_raw=f"138{n:08d}"), route_entries(now, f"u{n}"))
        for n in range(87)
    ]
    with db.transaction() as session:
        ids = record_calls(session, reports, region="CN", now=now)
    with db.sessions() as session:
        assert ids == [id_for_key(session, "asterisk", f"call-{n}") for n in range(87)]
        calls = {c.external_id: c for c in session.execute(select(Call)).scalars()}
    assert len(set(ids)) == 87
    assert all(calls[f"call-{n}"].queue_name == "complaint" for n in range(87))  # summaries of both paths
    assert calls["call-86"].from_e164 == "+8613800000086"
