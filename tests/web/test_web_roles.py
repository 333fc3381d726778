"""Every endpoint checks its roles: the URL map walked for anonymous, unauthorised and allowed users."""

from __future__ import annotations

from collections.abc import Iterator

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete
from werkzeug.routing import Rule

from callcenter.db import Database
from callcenter.models.user import ROLES, UserRole
from tests.web.factories import MakeUser, csrf_token, login
from web.auth import PUBLIC_ENDPOINTS, SIGNED_IN_ENDPOINTS
from web.calls import CALL_LOG_ROLES
from web.nav import required_roles

# The roles table of docs/web.md: endpoint -> roles. A new page must be added here on purpose.
# REQUIREMENTS B16: QA, team leaders, supervisors, managers and the handling agent; no admin.
RECORDING_ROLES = frozenset(
    {
        "qa",
        "team_leader",
        "supervisor",
        "manager",
        "agent_consultation",
        "agent_complaint",
        "callback_specialist",
    }
)
EXPECTED_ROLES = {
    "qa.audio": RECORDING_ROLES,
    "qa.download": RECORDING_ROLES,
    "calls.index": frozenset(CALL_LOG_ROLES),
    "calls.detail": frozenset(CALL_LOG_ROLES),
    "calls.by_key": frozenset(CALL_LOG_ROLES),
    **{
        f"admin.{name}": frozenset({"admin"})
        for name in (
            "index",
            "users",
            "new_user",
            "edit_user",
            "reset_password",
            "agents",
            "edit_agent",
            "queues",
            "new_queue",
            "edit_queue",
            "departments",
            "audit",
        )
    },
}


def guarded_rules(app: Flask) -> Iterator[tuple[Rule, str, str]]:
    """(rule, method, path) of every endpoint that is not public."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        built = rule.build({name: 1 for name in rule.arguments})
        assert built is not None
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield rule, method, built[1]


def roles_of(app: Flask) -> dict[str, frozenset[str]]:
    """Every endpoint with ``roles_required`` and its roles (other engineers' pages included)."""
    found = {endpoint: required_roles(view) for endpoint, view in app.view_functions.items()}
    return {endpoint: roles for endpoint, roles in found.items() if roles is not None}


def test_every_endpoint_is_public_open_to_the_signed_in_or_has_roles(app: Flask) -> None:
    unchecked = []
    for endpoint, view in app.view_functions.items():
        if endpoint in PUBLIC_ENDPOINTS:
            continue
        roles = required_roles(view)
        if endpoint in SIGNED_IN_ENDPOINTS:
            assert roles is None, endpoint
        elif not roles:
            unchecked.append(endpoint)
    assert unchecked == [], "give these views roles_required (or list them in SIGNED_IN_ENDPOINTS)"


def test_the_roles_table_of_the_docs_holds(app: Flask) -> None:
    assert {endpoint: roles_of(app).get(endpoint) for endpoint in EXPECTED_ROLES} == EXPECTED_ROLES


def test_anonymous_visitors_are_sent_to_login_everywhere(app: Flask, client: FlaskClient) -> None:
    for rule, method, path in guarded_rules(app):
        response = client.open(path, method=method)
        assert response.status_code == 302, (rule.endpoint, method, path)
        assert response.headers["Location"].startswith("/login"), (rule.endpoint, method, path)


def test_a_user_without_the_roles_gets_403_on_every_method(app: Flask, make_user: MakeUser) -> None:
    by_roles: dict[frozenset[str], list[str]] = {}
    for endpoint, roles in roles_of(app).items():
        by_roles.setdefault(roles, []).append(endpoint)
    checked = set()
    for index, (roles, endpoints) in enumerate(sorted(by_roles.items(), key=lambda item: sorted(item[0]))):
        client = app.test_client()
        login(client, make_user(f"outsider{index}", tuple(sorted(set(ROLES) - roles))))
        token = csrf_token(client, "/no-such-page")  # the sign-out form in the header of every page
        for rule, method, path in guarded_rules(app):
            if rule.endpoint not in endpoints:
                continue
            data = {"csrf_token": token} if method == "POST" else None
            response = client.open(path, method=method, data=data)
            assert response.status_code == 403, (rule.endpoint, method, path)
            assert "您的角色无权访问此页面" in response.get_data(as_text=True)
            checked.add(rule.endpoint)
    assert set(EXPECTED_ROLES) <= checked


def test_each_allowed_role_gets_past_the_check(app: Flask, make_user: MakeUser) -> None:
    guarded = roles_of(app)
    for role in ROLES:
        client = app.test_client()
        login(client, make_user(f"insider_{role}", (role,)))
        for rule, method, path in guarded_rules(app):
            if method == "GET" and role in guarded.get(rule.endpoint, ()):
                assert client.get(path).status_code in (200, 302, 404), (role, path)


def test_the_signed_in_endpoints_need_no_role(
    app: Flask, client: FlaskClient, make_user: MakeUser, db: Database
) -> None:
    handler = make_user("handler", ("department_handler",))
    login(client, handler)
    assert client.get("/").headers["Location"] == "/cases"  # their desk
    with db.transaction() as session:  # roles taken away since: no page of theirs
        session.execute(delete(UserRole).where(UserRole.user_id == handler.id))
    page = client.get("/")
    assert page.status_code == 200  # a welcome page, not a 403
    assert "您的角色目前没有可访问的页面" in page.get_data(as_text=True)
    assert 'href="/calls"' not in page.get_data(as_text=True)  # no link that would answer 403
    assert client.post("/logout", data={"csrf_token": csrf_token(client, "/")}).status_code == 302
