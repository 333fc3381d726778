"""The staff app refuses what it cannot safely take, never with a 500: request bodies over
``web.max_request_kb`` (413, forms included), ids past the INTEGER columns (404), NUL bytes (400)."""

from __future__ import annotations

import io
from datetime import datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from callcenter.db import Database
from callcenter.settings import Settings
from tests.web.factories import Account, MakeUser, csrf_token, login, make_call
from tests.web.test_web_cases import create_case, with_agent
from web import create_app
from web.limits import MAX_ID, parse_id

HUGE = "99999999999999999999"


def post_multipart(client: FlaskClient, path: str, fields: dict[str, object]) -> int:
    """A multipart POST encoded in memory (the test client spools big ones to a file it never closes)."""
    boundary, body = encode_multipart(fields)  # type: ignore[arg-type]
    content_type = f"multipart/form-data; boundary={boundary}"
    return client.post(path, data=body, content_type=content_type).status_code


@pytest.fixture
def app(web_settings: Settings, db: Database, now: datetime) -> Flask:
    app = create_app(web_settings, db, clock=lambda: now)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def boss(client: FlaskClient, make_user: MakeUser, db: Database, now: datetime) -> Account:
    account = make_user("boss", ("supervisor",))
    with_agent(db, account, now, "complaint")
    login(client, account)
    return account


def test_bodies_over_the_limit_get_413(client: FlaskClient, boss: Account, web_settings: Settings) -> None:
    limit = web_settings.web.max_request_kb * 1024
    token = csrf_token(client, "/cases/new")
    form = {"csrf_token": token, "title": "x" * (limit + 1)}
    assert client.post("/cases/new", data=form).status_code == 413
    multipart = {"csrf_token": token, "title": "x" * (limit + 1), "f": FileStorage(io.BytesIO(b"1"), "a.txt")}
    assert post_multipart(client, "/cases/new", multipart) == 413
    in_memory = {"csrf_token": token, "title": "x" * (limit - 1000)}  # under the body limit: parsed
    assert post_multipart(client, "/cases/new", in_memory) == 200  # the form again, with its errors
    login_form = {"username": "u" * (limit + 1), "password": "p"}
    assert client.post("/login", data=login_form).status_code == 413
    raw = client.post("/logout", data=b"x" * (limit + 1), content_type="application/octet-stream")
    assert raw.status_code in (400, 413)  # never read whole: refused by the limit or the CSRF check


def test_a_case_attachment_may_be_larger_than_other_requests(
    client: FlaskClient, boss: Account, web_settings: Settings
) -> None:
    case_id = create_case(client)
    size = web_settings.web.max_request_kb * 1024 + 10_000  # over the general limit, under the file's
    data: dict[str, object] = {
        "csrf_token": csrf_token(client, f"/cases/{case_id}"),
        "attach-file": FileStorage(io.BytesIO(b"%PDF-" + b"0" * size), "evidence.pdf"),
    }
    assert post_multipart(client, f"/cases/{case_id}/attach", data) == 302
    over = (web_settings.cases.attachment_max_mb + 2) * 1_000_000
    data["attach-file"] = FileStorage(io.BytesIO(b"0" * over), "big.pdf")
    data["csrf_token"] = csrf_token(client, f"/cases/{case_id}")
    assert post_multipart(client, f"/cases/{case_id}/attach", data) == 413


def test_ids_past_bigint_are_404(client: FlaskClient, boss: Account, db: Database, now: datetime) -> None:
    for path in (
        f"/calls/{HUGE}",
        f"/cases/{HUGE}",
        f"/cases/1/attachments/{HUGE}",
        f"/qa/samples/{HUGE}",
        f"/qa/recordings/{HUGE}/download",
        f"/calls/{MAX_ID + 1}",
    ):
        assert client.get(path).status_code == 404, path
    assert client.get(f"/calls/{MAX_ID}").status_code == 404  # the largest id: looked up, not there
    make_call(db, now, external_id="c-1", start=now)
    assert client.get("/calls", query_string={"before": HUGE}).status_code == 200
    assert client.get("/calls", query_string={"agent": HUGE, "queue": HUGE}).status_code == 200
    assert client.get("/cases/new", query_string={"call_id": HUGE}).status_code == 200
    assert client.get("/cases", query_string={"agent": HUGE}).status_code == 200


def test_nul_bytes_get_400(client: FlaskClient, boss: Account) -> None:
    assert client.get("/calls", query_string={"number": "138\x00"}).status_code == 400
    assert client.get("/calls", query_string={"name": "a\x00b"}).status_code == 400
    assert client.get("/cases", query_string={"q\x00": "x"}).status_code == 400
    assert client.get("/calls/asterisk/abc%00def").status_code == 400
    token = csrf_token(client, "/cases/new")
    assert client.post("/cases/new", data={"csrf_token": token, "title": "a\x00"}).status_code == 400
    anonymous = client.application.test_client()
    assert anonymous.post("/login", data={"username": "a\x00", "password": "x"}).status_code == 400


def test_parse_id_reads_only_database_ids() -> None:
    assert [parse_id(v) for v in ("1", " 42 ", str(MAX_ID))] == [1, 42, MAX_ID]
    for value in (None, "", "0", "-1", "1.5", "١٢", HUGE, str(MAX_ID + 1), "1e3", "0x10"):
        assert parse_id(value) is None, value
