"""What every request needs from the process: settings and the database, wired once in ``create_app``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flask import Flask, current_app
from sqlalchemy.orm import Session

from callcenter.db import Database
from callcenter.events import LocalBus
from callcenter.settings import Settings

EXTENSION_KEY = "callcenter"


@dataclass(frozen=True)
class WebContext:
    settings: Settings
    db: Database
    bus: LocalBus = field(default_factory=LocalBus)  # live events (screen-pops) for this process
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))  # aware UTC; tests fix it


def install(app: Flask, context: WebContext) -> None:
    app.extensions[EXTENSION_KEY] = context
    app.context_processor(lambda: {"organisation": context.settings.organisation})


def web_context() -> WebContext:
    context = current_app.extensions[EXTENSION_KEY]
    assert isinstance(context, WebContext)
    return context


@contextmanager
def reading() -> Iterator[Session]:
    """A short read-only unit of work. Views build plain view models inside it and render after it
    closes, so no session outlives its block; on SQLite it takes no write lock."""
    with web_context().db.read() as session:
        yield session
