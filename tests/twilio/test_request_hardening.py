"""The webhooks' application refuses what it cannot safely take: unsigned JSON (403), oversized
bodies (413), NUL bytes (400), ids past the INTEGER columns (404), and a RecordingSid that is not
Twilio's (400), which never reaches the recording store; the store keeps every file inside itself."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, update

from callcenter.db import Database
from callcenter.models import CallEvent, Recording
from callcenter.settings import Settings
from recordings.twilio import Due, fetch_recordings, store_path, valid_recording_sid
from tests.twilio.conftest import (
    ACCOUNT,
    PUBLIC,
    Clock,
    FakeTwilio,
    SignedClient,
    call_params,
    sign,
    wav_bytes,
)
from tests.twilio.test_recordings import REC, SID, voicemail_callback

CRAFTED = ("../../../victim", "RE" + "5" * 31 + "/", "RE" + "g" * 32, "RE" + "5" * 33, "re" + "5" * 32)


def test_unsigned_or_falsely_signed_json_is_refused_not_a_500(twilio: SignedClient) -> None:
    body = json.dumps({"CallSid": "CA1", "From": "+8613800138000"})
    client = twilio.client
    for headers in (
        {},
        {"X-Twilio-Signature": "bogus"},
        {"X-Twilio-Signature": sign(PUBLIC + "/twilio/voice", {})},
    ):
        response = client.post("/twilio/voice", data=body, content_type="application/json", headers=headers)
        assert response.status_code == 403
    hashed = "/twilio/voice?bodySHA256=" + "0" * 64
    response = client.post(
        hashed, data=body, content_type="application/json", headers={"X-Twilio-Signature": "x"}
    )
    assert response.status_code == 403


def test_oversized_bodies_get_413(twilio: SignedClient) -> None:
    big = {**call_params(), "Padding": "x" * (1024 * 1024 + 1)}
    assert twilio.post("/twilio/voice", big).status_code == 413
    raw = twilio.client.post("/twilio/voice", data=b"x" * (2 * 1024 * 1024), content_type="application/json")
    assert raw.status_code in (403, 413)  # refused either way, never read whole


def test_nul_bytes_get_400(twilio: SignedClient) -> None:
    assert twilio.post("/twilio/voice", call_params(From="+86138\x0000138000")).status_code == 400
    assert twilio.post("/twilio/voice?s=a%00b", call_params()).status_code == 400


def test_ids_past_bigint_are_404(twilio: SignedClient) -> None:
    assert twilio.post("/twilio/outbound/99999999999999999999", call_params()).status_code == 404
    queue = "/twilio/dequeued?agent=99999999999999999999&q=complaint"
    assert twilio.post(queue, call_params()).status_code == 400  # no such agent: refused, not a 500


@pytest.mark.parametrize("sid", CRAFTED)
def test_a_crafted_recording_sid_is_refused_at_the_webhook(
    twilio: SignedClient, db: Database, sid: str
) -> None:
    assert not valid_recording_sid(sid)
    twilio.post("/twilio/voice", call_params())
    callback = {"AccountSid": ACCOUNT, "CallSid": SID, "RecordingSid": sid, "RecordingStatus": "completed"}
    assert twilio.post("/twilio/recording?kind=voicemail", callback).status_code == 400
    recorded = call_params(RecordingSid=sid, RecordingDuration="5", Digits="#")
    assert twilio.post("/twilio/recorded/voicemail?s=x", recorded).status_code == 400
    with db.read() as session:
        assert session.execute(select(Recording)).first() is None
    assert valid_recording_sid(REC)


def test_the_store_refuses_a_crafted_sid_that_reached_the_database(
    twilio: SignedClient, twilio_settings: Settings, db: Database, fake_api: FakeTwilio, clock: Clock
) -> None:
    """As if a row came by another path (an older release, plain SQL): nothing outside the store is
    written or deleted, and Twilio is not asked for it."""
    store = twilio_settings.path(twilio_settings.storage.recordings_dir)
    victim = store.parent / "victim.wav"
    victim.parent.mkdir(parents=True, exist_ok=True)
    victim.write_bytes(b"precious")
    crafted = "../../../victim"
    fake_api.recordings[crafted] = wav_bytes(1.0)
    voicemail_callback(twilio)
    with db.transaction() as session:
        session.execute(update(Recording).where(Recording.external_id == REC).values(external_id=crafted))
        session.execute(
            update(CallEvent)
            .where(CallEvent.key.endswith(f":recording:{REC}"))
            .values(key=f"twilio:{SID}:recording:{crafted}")
        )
    result = fetch_recordings(twilio_settings, db, clock(), sleep=lambda _: None)
    assert (result.claimed, result.invalid, result.verified) == (1, 1, 0)
    assert victim.read_bytes() == b"precious"
    assert [path for method, path, _ in fake_api.requests if method == "GET"] == []
    outside = [p for p in store.parent.rglob("*") if p.is_file() and not p.is_relative_to(store)]
    assert outside == [victim]
    with db.read() as session:
        row = session.execute(select(Recording)).scalar_one()
        assert (row.status, row.problem, row.uri) == ("invalid", "not a Twilio RecordingSid", row.uri)
        assert not (row.uri or "").startswith("twilio/")


def test_a_file_path_outside_the_store_is_refused(tmp_path: Path) -> None:
    now = datetime(2026, 11, 23, tzinfo=UTC)
    good = store_path(tmp_path, Due(1, REC, now, None, 3, 1), now)
    assert good is not None and good[1].is_relative_to(tmp_path.resolve())
    assert store_path(tmp_path, Due(1, "../../x", now, None, 3, 1), now) is None
