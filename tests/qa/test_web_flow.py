"""The QA loop through real HTTP: queue, workspace, Range streaming, scoring, the agent's answer,
access rules and the audit log."""

from __future__ import annotations

import html
import re
from datetime import datetime

from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from callcenter.db import Database
from callcenter.models import AuditLog, QAEvaluation, QAResponse
from callcenter.services.qa_default import DEFAULT_SCORECARD
from tests.qa.conftest import Scene
from tests.web.factories import csrf_token, login, logout


def fetch(client: FlaskClient, path: str, **headers: str) -> TestResponse:
    """A GET whose body is read and whose file is closed (streamed files must be)."""
    response = client.get(path, headers=headers)
    response.get_data()
    response.close()
    return response


def player_source(client: FlaskClient, path: str) -> str:
    """The audio URL (with its playback token) of the player on a page."""
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'<audio[^>]*preload="none" src="([^"]+)"', page)
    assert match, f"no player on {path}"
    return html.unescape(match.group(1))


def full_answers(client: FlaskClient, scene: Scene, path: str) -> dict[str, str]:
    page = client.get(path).get_data(as_text=True)
    card = re.search(r'name="scorecard_id" value="(\d+)"', page)
    assert card, "no scorecard on the form"
    data = {
        "csrf_token": csrf_token(client, path),
        "scorecard_id": card.group(1),
        "comments": "语速偏快",
        "suggestions": "多确认客户诉求",
    }
    for section in DEFAULT_SCORECARD["sections"]:
        for item in section["items"]:
            data[f"item-{item['key']}"] = "pass" if item["kind"] == "check" else str(item["points"])
    return data


def test_the_assigned_evaluator_streams_scores_and_the_agent_acknowledges(
    client: FlaskClient, scene: Scene, db: Database, now: datetime
) -> None:
    login(client, scene.qa1)
    queue = client.get("/qa/").get_data(as_text=True)
    assert f'data-sample-id="{scene.sample_id}"' in queue
    page = client.get(f"/qa/samples/{scene.sample_id}").get_data(as_text=True)
    assert "138****8000" in page and "+8613800138000" not in page  # masked for QA
    assert "Σ" in page and "工作态度 Work attitude — 30 %" in page  # the formula and weights on the form

    audio = player_source(client, f"/qa/samples/{scene.sample_id}")
    whole = fetch(client, audio)
    assert whole.status_code == 200 and whole.data == scene.wav
    assert whole.headers["Accept-Ranges"] == "bytes"
    part = fetch(client, audio, Range="bytes=100-199")
    assert part.status_code == 206
    assert part.data == scene.wav[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(scene.wav)}"
    tail = fetch(client, audio, Range="bytes=-10")
    assert tail.status_code == 206 and tail.data == scene.wav[-10:]
    beyond = fetch(client, audio, Range=f"bytes={len(scene.wav) + 5}-")
    assert beyond.status_code == 416
    assert beyond.headers["Content-Range"] == f"bytes */{len(scene.wav)}"
    download = fetch(client, f"/qa/recordings/{scene.recording_id}/download")
    assert download.status_code == 200 and "attachment" in download.headers["Content-Disposition"]

    answers = full_answers(client, scene, f"/qa/samples/{scene.sample_id}")
    answers["item-politeness"] = "6"
    answers["item-mandarin"] = "fail"
    answers["case_material"] = "on"
    saved = client.post(f"/qa/assignments/{scene.assignment_id}/evaluate", data=answers)
    assert saved.status_code == 302
    followed = client.get(saved.headers["Location"]).get_data(as_text=True)
    assert "已保存" in followed or "Evaluation saved" in followed, followed[
        followed.find("<main>") : followed.find("<main>") + 400
    ]
    again = client.post(f"/qa/assignments/{scene.assignment_id}/evaluate", data=answers)
    assert again.status_code == 302  # refused with a message: an evaluation is never edited in place
    with db.read() as s:
        evaluation = s.execute(select(QAEvaluation)).scalar_one()
        # attitude: 52 points possible, 4 + 2 lost → 46/52; knowledge and ability full
        assert evaluation.total == round(30 * 46 / 52 + 30 + 40, 2) == 96.54
        assert evaluation.failed_items == ["politeness", "mandarin"] and evaluation.case_material
        plays = s.execute(select(AuditLog.action, AuditLog.username).order_by(AuditLog.id)).all()
    # one listening (one playback token): its first request is audited, the player's later Range
    # requests are the same listening
    assert plays == [("recording.play", "qa1"), ("recording.download", "qa1")]
    logout(client)

    login(client, scene.agent)
    mine = client.get("/qa/mine").get_data(as_text=True)
    assert f'data-evaluation-id="{evaluation.id}"' in mine and "多确认客户诉求" in mine
    own_audio = fetch(client, player_source(client, "/qa/mine"), Range="bytes=0-9")
    assert own_audio.status_code == 206  # the handling agent hears their own call
    token = csrf_token(client, "/qa/mine")
    assert (
        client.post(f"/qa/evaluations/{evaluation.id}/acknowledge", data={"csrf_token": token}).status_code
        == 302
    )
    with db.read() as s:
        assert s.execute(select(QAResponse.kind)).scalars().all() == ["acknowledge"]


def test_other_qa_users_and_other_agents_cannot_open_or_play_it(
    client: FlaskClient, scene: Scene, db: Database
) -> None:
    for account in (scene.qa2, scene.other_agent):
        login(client, account)
        assert fetch(client, f"/qa/recordings/{scene.recording_id}/audio").status_code == 403
        assert fetch(client, f"/qa/recordings/{scene.recording_id}/download").status_code == 403
        logout(client)
    login(client, scene.qa2)
    assert client.get(f"/qa/samples/{scene.sample_id}").status_code == 403
    logout(client)
    login(client, scene.other_agent)
    assert client.get(f"/qa/samples/{scene.sample_id}").status_code == 403  # not a QA role at all
    logout(client)
    login(client, scene.supervisor)
    assert fetch(client, player_source(client, f"/qa/samples/{scene.sample_id}")).status_code == 200
    assert client.get(f"/qa/samples/{scene.sample_id}").status_code == 200
    audit_page = client.get("/qa/audit").get_data(as_text=True)
    assert "recording.play" in audit_page and "boss" in audit_page
    with db.read() as s:
        assert s.execute(select(AuditLog.username)).scalars().all() == ["boss"]  # refusals play nothing


def test_anonymous_requests_are_sent_to_the_login_page(client: FlaskClient, scene: Scene) -> None:
    response = client.get(f"/qa/recordings/{scene.recording_id}/audio")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
