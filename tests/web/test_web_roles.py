"""Every endpoint checks its roles: the URL map walked for anonymous, unauthorised and allowed users."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule

from callcenter.models.user import ROLES
from tests.web.factories import MakeUser, csrf_token, login
from web.auth import PUBLIC_BLUEPRINTS, PUBLIC_ENDPOINTS, SIGNED_IN_ENDPOINTS, required_roles
from web.calls import CALL_LOG_ROLES

# The roles table of docs/web.md: endpoint -> roles. A new page must be added here on purpose.
EXPECTED_ROLES = {
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
        if rule.endpoint in PUBLIC_ENDPOINTS or rule.endpoint.split(".")[0] in PUBLIC_BLUEPRINTS:
            continue
        built = rule.build({name: 1 for name in rule.arguments})
        assert built is not None
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield rule, method, built[1]


def test_every_endpoint_is_public_open_to_the_signed_in_or_has_roles(app: Flask) -> None:
    unchecked = []
    for endpoint, view in app.view_functions.items():
        if endpoint in PUBLIC_ENDPOINTS or endpoint.split(".")[0] in PUBLIC_BLUEPRINTS:
            continue
        roles = required_roles(view)
        if endpoint in SIGNED_IN_ENDPOINTS:
            assert roles is None, endpoint
        elif roles is None:
            unchecked.append(endpoint)
        else:
            assert roles == EXPECTED_ROLES.get(endpoint), endpoint
    assert unchecked == [], "give these views roles_required (or list them in SIGNED_IN_ENDPOINTS)"
    assert set(EXPECTED_ROLES) <= set(app.view_functions)


def test_anonymous_visitors_are_sent_to_login_everywhere(app: Flask, client: FlaskClient) -> None:
    for rule, method, path in guarded_rules(app):
        response = client.open(path, method=method)
        assert response.status_code == 302, (rule.endpoint, method, path)
        assert response.headers["Location"].startswith("/login"), (rule.endpoint, method, path)


@pytest.mark.parametrize("endpoint", sorted(EXPECTED_ROLES))
def test_a_user_without_the_roles_gets_403(
    app: Flask, client: FlaskClient, make_user: MakeUser, endpoint: str
) -> None:
    allowed = EXPECTED_ROLES[endpoint]
    login(client, make_user("outsider", tuple(sorted(set(ROLES) - allowed))))
    token = csrf_token(client, "/no-such-page")  # the sign-out form in the header of every page
    for rule, method, path in guarded_rules(app):
        if rule.endpoint != endpoint:
            continue
        data = {"csrf_token": token} if method == "POST" else None
        response = client.open(path, method=method, data=data)
        assert response.status_code == 403, (method, path)
        assert "您的角色无权访问此页面" in response.get_data(as_text=True)


@pytest.mark.parametrize("endpoint", sorted(EXPECTED_ROLES))
def test_each_allowed_role_gets_past_the_check(
    app: Flask, client: FlaskClient, make_user: MakeUser, endpoint: str
) -> None:
    for index, role in enumerate(sorted(EXPECTED_ROLES[endpoint])):
        fresh = app.test_client()
        login(fresh, make_user(f"insider{index}", (role,)))
        for rule, method, path in guarded_rules(app):
            if rule.endpoint == endpoint and method == "GET":
                assert fresh.get(path).status_code in (200, 302, 404), (role, path)


def test_the_signed_in_endpoints_need_no_role(app: Flask, client: FlaskClient, make_user: MakeUser) -> None:
    login(client, make_user("handler", ("department_handler",)))
    page = client.get("/")
    assert page.status_code == 200  # no page of theirs yet: a welcome page, not a 403
    assert "您的角色目前没有可访问的页面" in page.get_data(as_text=True)
    assert 'href="/calls"' not in page.get_data(as_text=True)  # no link that would answer 403
    assert client.post("/logout", data={"csrf_token": csrf_token(client, "/")}).status_code == 302
