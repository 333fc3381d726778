"""Who hears recordings and how each listening is audited: once, on the audio request that starts it
(never on the page that shows the player), whatever ``Range`` the request asks for."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import URLSafeSerializer
from sqlalchemy import select

from callcenter.db import Database
from callcenter.models import AuditLog
from callcenter.services.users import create_user
from tests.qa.conftest import Scene
from tests.qa.test_web_flow import fetch, player_source
from tests.web.factories import PASSWORD, Account, login, logout
from web.qa import LISTENING_SALT


def plays(db: Database) -> list[tuple[str, str, str]]:
    with db.read() as s:
        rows = s.execute(
            select(AuditLog.action, AuditLog.username, AuditLog.object_id).order_by(AuditLog.id)
        ).all()
    return [tuple(row) for row in rows]


def token_url(app: Flask, user_id: int, recording_id: int, issued: datetime, key: str = "k1") -> str:
    """A playback token made as the app makes one (to try other users', recordings' and old ones)."""
    serializer = URLSafeSerializer(app.secret_key, salt=LISTENING_SALT)
    token = serializer.dumps({"u": user_id, "r": recording_id, "k": key, "t": int(issued.timestamp())})
    return f"/qa/recordings/{recording_id}/audio?listening={token}"


def test_opening_the_workspace_writes_no_playback(client: FlaskClient, scene: Scene, db: Database) -> None:
    login(client, scene.qa1)
    for _ in range(3):
        page = client.get(f"/qa/samples/{scene.sample_id}").get_data(as_text=True)
        assert 'preload="none"' in page  # the browser fetches nothing until the user presses play
    assert plays(db) == []


@pytest.mark.parametrize("first", [None, "bytes=0-", "bytes=00-", "bytes=1-", "bytes=000-9", "bytes=100-199"])
def test_a_listening_is_audited_once_whatever_range_starts_it(
    client: FlaskClient, scene: Scene, db: Database, first: str | None
) -> None:
    login(client, scene.qa1)
    audio = player_source(client, f"/qa/samples/{scene.sample_id}")
    headers = {"Range": first} if first else {}
    assert fetch(client, audio, **headers).status_code in (200, 206)
    assert plays(db) == [("recording.play", "qa1", str(scene.recording_id))]
    for later in ("bytes=0-", "bytes=00-", "bytes=5000-", "bytes=-10"):
        assert fetch(client, audio, Range=later).status_code == 206
    assert fetch(client, audio).status_code == 200  # the player starting over: the same listening
    assert len(plays(db)) == 1
    again = player_source(client, f"/qa/samples/{scene.sample_id}")  # the page opened again
    assert fetch(client, again, Range="bytes=1-").status_code == 206
    assert [row[0] for row in plays(db)] == ["recording.play", "recording.play"]


def test_audio_without_a_valid_playback_token_is_refused_and_not_served(
    client: FlaskClient, app: Flask, scene: Scene, db: Database, now: datetime
) -> None:
    login(client, scene.qa1)
    bare = f"/qa/recordings/{scene.recording_id}/audio"
    for headers in ({}, {"Range": "bytes=00-"}, {"Range": "bytes=1-"}):
        assert fetch(client, bare, **headers).status_code == 403
    assert fetch(client, bare + "?listening=forged").status_code == 403
    assert fetch(client, token_url(app, scene.qa2.id, scene.recording_id, now)).status_code == 403
    assert fetch(client, token_url(app, scene.qa1.id, scene.recording_id + 1, now)).status_code in (403, 404)
    old = now - timedelta(minutes=481)  # web.session_minutes: a token lives as long as a session
    assert fetch(client, token_url(app, scene.qa1.id, scene.recording_id, old)).status_code == 403
    assert fetch(client, token_url(app, scene.qa1.id, scene.recording_id, now)).status_code == 200
    assert [row[0] for row in plays(db)] == ["recording.play"]


def test_a_token_does_not_open_a_recording_to_someone_not_allowed(
    client: FlaskClient, app: Flask, scene: Scene, db: Database, now: datetime
) -> None:
    login(client, scene.qa2)  # a QA user the sample is not assigned to
    assert fetch(client, token_url(app, scene.qa2.id, scene.recording_id, now)).status_code == 403
    assert plays(db) == []


def test_an_admin_alone_hears_no_recording(
    client: FlaskClient, app: Flask, scene: Scene, db: Database, now: datetime
) -> None:
    with db.transaction() as s:
        admin = create_user(s, "root", PASSWORD, ("admin",), now=now)
        account = Account(admin.id, admin.username, PASSWORD)
    login(client, account)
    page = client.get(f"/qa/samples/{scene.sample_id}")
    assert page.status_code == 200  # admins keep the QA pages (scorecards, audit) …
    text = page.get_data(as_text=True)
    assert "<audio" not in text and "/download" not in text  # … but no player
    assert fetch(client, token_url(app, admin.id, scene.recording_id, now)).status_code == 403
    assert fetch(client, f"/qa/recordings/{scene.recording_id}/download").status_code == 403
    assert plays(db) == []
    logout(client)
    login(client, scene.supervisor)  # a supervisor (REQUIREMENTS B16) hears it
    assert fetch(client, player_source(client, f"/qa/samples/{scene.sample_id}")).status_code == 200
    assert plays(db) == [("recording.play", "boss", str(scene.recording_id))]
