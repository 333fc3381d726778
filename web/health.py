"""Liveness for load balancers and monitors: no login, no page, just whether the database answers."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import SQLAlchemyError

from callcenter.db import Database
from web.context import web_context

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


def database_answers(db: Database) -> bool:
    try:
        db.ping()
    except SQLAlchemyError:
        log.exception("health check: database unavailable")
        return False
    return True


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    if database_answers(web_context().db):
        return jsonify(status="ok")
    return jsonify(status="error", error="database unavailable"), 503
