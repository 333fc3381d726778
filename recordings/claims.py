"""Claiming recording rows for work, so that several workers (processes, hosts) never take the same one.

The rows are selected ``FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite serialises writers with
``BEGIN IMMEDIATE``) and stamped in the same short transaction; the slow part (reading or
downloading a file) happens after it, outside any transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, Select, update

from callcenter.db import Database
from callcenter.models import Recording


def claim_rows(db: Database, query: Select[Any], **stamp: Any) -> Sequence[Row[Any]]:
    """Lock the rows ``query`` selects (it selects ``Recording.id``), set ``stamp`` on them, return them."""
    with db.transaction() as session:
        rows = session.execute(query.with_for_update(of=Recording, skip_locked=True)).all()
        if rows:
            session.execute(
                update(Recording)
                .where(Recording.id.in_([row.id for row in rows]))
                .values(**stamp)
                .execution_options(synchronize_session=False)
            )
    return rows
