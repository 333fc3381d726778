"""The navigation bar and each role's desk (the page ``/`` opens), from one table each.

Who may open a page is said once, by its view's ``roles_required``; the bar shows an entry only when
``can_open`` says the user's roles pass that check, so a link and its page cannot disagree (a test
follows every link each demo user sees). An entry whose endpoint is not registered is left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, current_app, request
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from flask_login import current_user

REQUIRED_ROLES = "required_roles"  # the attribute web.auth.roles_required sets on a view


def required_roles(view: Callable[..., object] | None) -> frozenset[str] | None:
    """The roles ``roles_required`` gave ``view``, or None for a view without it."""
    roles = getattr(view, REQUIRED_ROLES, None)
    return roles if isinstance(roles, frozenset) else None


def can_open(endpoint: str) -> bool:
    """Whether the signed-in user's roles open ``endpoint`` (templates hide links that would 403)."""
    view = current_app.view_functions.get(endpoint)
    if view is None or not current_user.is_authenticated:
        return False
    roles = required_roles(view)
    return roles is None or bool(current_user.has_role(*roles))


@dataclass(frozen=True)
class NavItem:
    endpoint: str
    title: LazyString
    # Endpoint prefixes that mark the entry as the current page (default: the endpoint's blueprint).
    current: tuple[str, ...] = ()

    def is_current(self, endpoint: str | None) -> bool:
        prefixes = self.current or (self.endpoint.split(".")[0] + ".",)
        return endpoint is not None and (endpoint == self.endpoint or endpoint.startswith(prefixes))


NAV: tuple[NavItem, ...] = (
    NavItem("console.index", _l("Console"), ("console.index", "console.unlogged")),
    NavItem("console.shift", _l("Shift"), ("console.shift",)),
    NavItem("calls.index", _l("Calls")),
    NavItem("cases.index", _l("Cases")),
    NavItem("campaigns.callbacks", _l("My callbacks"), ("campaigns.callbacks", "campaigns.callback_screen")),
    NavItem("campaigns.index", _l("Callbacks")),
    NavItem(
        "qa.index",
        _l("Quality"),
        ("qa.index", "qa.sample", "qa.scorecards", "qa.edit_scorecard", "qa.report", "qa.audit"),
    ),
    NavItem("qa.mine", _l("My evaluations"), ("qa.mine",)),
    NavItem("admin.users", _l("Administration")),
)

# Each role's desk, most specific first: a user holding several roles lands on the first desk their
# roles give. Several endpoints for one role: the first one registered and open to the user.
DESKS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("agent_consultation", ("console.index",)),
    ("agent_complaint", ("console.index",)),
    ("callback_specialist", ("campaigns.callbacks", "campaigns.index")),
    ("qa", ("qa.index",)),
    ("team_leader", ("console.shift",)),
    ("supervisor", ("console.shift",)),
    ("complaint_head", ("cases.index",)),
    ("department_handler", ("cases.index",)),
    ("manager", ("cases.index",)),
    ("admin", ("admin.users",)),
)


def _registered(endpoint: str) -> bool:
    return endpoint in current_app.view_functions


def nav_items() -> list[NavItem]:
    """The entries the signed-in user may open, in the table's order."""
    return [item for item in NAV if _registered(item.endpoint) and can_open(item.endpoint)]


def desk_endpoint() -> str | None:
    """The signed-in user's desk; else the first entry of the bar they may open; else None."""
    for role, endpoints in DESKS:
        if not current_user.has_role(role):
            continue
        for endpoint in endpoints:
            if _registered(endpoint) and can_open(endpoint):
                return endpoint
    items = nav_items()
    return items[0].endpoint if items else None


def navigation() -> list[tuple[NavItem, bool]]:
    """The bar for templates: each entry and whether it is the page shown."""
    return [(item, item.is_current(request.endpoint)) for item in nav_items()]


def install(app: Flask) -> None:
    app.context_processor(lambda: {"navigation": navigation})
