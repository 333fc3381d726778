"""Sign-in, sign-out, CSRF, the deny-by-default login guard, roles and the ``next`` redirect."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from callcenter.db import Database
from tests.web.factories import (
    PASSWORD,
    Account,
    MakeUser,
    csrf_token,
    login,
    logout,
    update_user,
    web_settings_for,
)
from web import create_app
from web.auth import PUBLIC_ENDPOINTS, is_safe_next, roles_required

GENERIC_FAILURE = "用户名或密码错误"


def signed_in(client: FlaskClient) -> bool:
    response = client.get("/calls")
    return response.status_code == 200


def test_login_page_is_public(client: FlaskClient) -> None:
    response = client.get("/login")
    assert response.status_code == 200
    assert 'name="csrf_token"' in response.get_data(as_text=True)


def test_login_with_the_right_password_opens_the_users_desk(client: FlaskClient, make_user: MakeUser) -> None:
    account = make_user()  # a consultation agent: the console
    response = login(client, account)
    assert response.status_code == 302
    assert response.headers["Location"] == "/console"
    assert signed_in(client)


def test_login_makes_the_session_permanent(client: FlaskClient, make_user: MakeUser) -> None:
    login(client, make_user())
    cookie = client.get_cookie("callcenter_session")
    assert cookie is not None
    assert cookie.expires is not None  # a permanent session expires after settings.web.session_minutes


@pytest.mark.parametrize(
    ("username", "password"), [("agent", "wrong-password"), ("nobody", PASSWORD), ("AGENT", PASSWORD)]
)
def test_failed_login_shows_one_generic_message(
    client: FlaskClient, make_user: MakeUser, username: str, password: str
) -> None:
    make_user("agent")
    response = login(client, Account(0, username, password))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert GENERIC_FAILURE in page
    assert not signed_in(client)


def test_inactive_user_cannot_log_in(client: FlaskClient, make_user: MakeUser) -> None:
    account = make_user(active=False)
    response = login(client, account)
    assert GENERIC_FAILURE in response.get_data(as_text=True)
    assert not signed_in(client)


def test_login_without_csrf_token_is_rejected(client: FlaskClient, make_user: MakeUser) -> None:
    account = make_user()
    client.get("/login")
    response = client.post("/login", data={"username": account.username, "password": account.password})
    assert response.status_code == 400
    assert not signed_in(client)


def test_login_with_a_forged_csrf_token_is_rejected(client: FlaskClient, make_user: MakeUser) -> None:
    account = make_user()
    client.get("/login")
    data = {"username": account.username, "password": account.password, "csrf_token": "forged"}
    assert client.post("/login", data=data).status_code == 400
    assert not signed_in(client)


def test_logout_is_a_post_with_csrf(client: FlaskClient, make_user: MakeUser) -> None:
    login(client, make_user())
    assert client.get("/logout").status_code == 405  # a link or an <img> cannot sign anyone out
    assert client.post("/logout").status_code == 400  # nor can another site's form
    assert signed_in(client)
    response = logout(client)
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    assert not signed_in(client)


def test_logged_in_user_visiting_login_goes_to_their_desk(client: FlaskClient, make_user: MakeUser) -> None:
    login(client, make_user())
    response = client.get("/login")
    assert response.status_code == 302
    assert response.headers["Location"] == "/console"


def test_deactivated_user_is_signed_out(client: FlaskClient, make_user: MakeUser, db: Database) -> None:
    account = make_user()
    login(client, account)
    update_user(db, account, active=False)
    response = client.get("/calls")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_public_endpoints_are_only_these() -> None:
    # Widening this list is a security decision: make it in web/auth.py and here, on purpose.
    assert frozenset({"auth.login", "health.healthz", "static"}) == PUBLIC_ENDPOINTS


def test_every_other_route_sends_anonymous_visitors_to_login(app: Flask, client: FlaskClient) -> None:
    checked = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        built = rule.build(dict.fromkeys(rule.arguments, 1))
        assert built is not None
        path = built[1]
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            response = client.open(path, method=method)
            assert response.status_code == 302, (method, path)
            assert response.headers["Location"].startswith("/login"), (method, path)
            checked.append(rule.endpoint)
    assert {"calls.home", "calls.index", "calls.detail", "auth.logout"} <= set(checked)


def test_unknown_paths_also_ask_for_login(client: FlaskClient) -> None:
    response = client.get("/admin/secret")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_login_returns_to_the_page_asked_for(client: FlaskClient, make_user: MakeUser) -> None:
    first = client.get("/calls?before=5")
    assert first.headers["Location"] == "/login?next=/calls?before%3D5"
    response = login(client, make_user(), next_path="/calls?before=5")
    assert response.headers["Location"] == "/calls?before=5"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example.com/",
        "//evil.example.com/",
        "///evil.example.com/",
        "/\\evil.example.com",
        "\\\\evil.example.com",
        "/\t/evil.example.com",
        "javascript:alert(1)",
        "http:evil.example.com",
        "calls",
        "",
    ],
)
def test_login_refuses_to_redirect_off_site(client: FlaskClient, make_user: MakeUser, target: str) -> None:
    response = login(client, make_user(), next_path=target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/console"


@pytest.mark.parametrize(
    ("target", "safe"),
    [
        ("/calls/3", True),
        ("/calls?before=9", True),
        ("//evil.example.com", False),
        ("/\\evil.example.com", False),
        ("/\nevil", False),
        ("https://evil.example.com", False),
        ("", False),
        (None, False),
    ],
)
def test_is_safe_next(target: str | None, safe: bool) -> None:
    assert is_safe_next(target) is safe


def test_roles_required_gives_403_to_other_roles(tmp_path: Path, db: Database, make_user: MakeUser) -> None:
    app = create_app(web_settings_for(tmp_path, db.url), db)

    @app.get("/supervision")
    @roles_required("supervisor", "manager")
    def supervision() -> str:
        return "supervision desk"

    agent, supervisor = make_user("agent"), make_user("boss", ("supervisor",))
    agent_client, supervisor_client = app.test_client(), app.test_client()
    assert agent_client.get("/supervision").headers["Location"].startswith("/login")
    login(agent_client, agent)
    denied = agent_client.get("/supervision")
    assert denied.status_code == 403
    assert "无权访问" in denied.get_data(as_text=True)
    login(supervisor_client, supervisor)
    allowed = supervisor_client.get("/supervision")
    assert allowed.status_code == 200
    assert allowed.get_data(as_text=True) == "supervision desk"


def test_roles_required_refuses_unknown_roles() -> None:
    with pytest.raises(ValueError, match="supervsior"):
        roles_required("supervsior")
    with pytest.raises(ValueError, match="at least one role"):
        roles_required()


def test_csrf_token_differs_between_sessions(client: FlaskClient, app: Flask) -> None:
    assert csrf_token(client) != csrf_token(app.test_client())
