"""Migration 0011: recordings a verifier marked invalid before it are looked at once more."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from callcenter.db.migrate import downgrade, upgrade

CALL = """INSERT INTO call (id, channel, external_id, direction, from_raw, from_valid, to_raw, caller_name,
    created_at, started_at, ivr_path, priority, disposition)
    VALUES (1, 'asterisk', '1.1', 'inbound', '13800138000', 1, '100', '', '2026-11-01 08:00:00.000000',
    '2026-11-01 08:00:00.000000', '[]', 0, 'answered')"""
RECORDING = """INSERT INTO recording (id, call_id, source, external_id, kind, uri, status, verified_at,
    created_at) VALUES (?, 1, ?, ?, 'call', ?, ?, ?, '2026-11-01 08:00:00.000000')"""
CHECKED = "2026-11-01 08:10:00.000000"


def test_invalid_recordings_are_due_again_after_the_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "migrate.db"
    url = f"sqlite:///{path}"
    upgrade(url, "0010")
    with sqlite3.connect(path) as connection:
        connection.execute(CALL)
        for n, (source, status, checked) in enumerate(
            [
                ("asterisk", "invalid", CHECKED),  # read mid-call before 0011: invalid for good
                ("asterisk", "verified", CHECKED),
                ("asterisk", "pending", None),
                ("twilio", "invalid", CHECKED),  # Twilio downloads have their own retries
            ]
        ):
            connection.execute(RECORDING, (n + 1, source, f"{n}.wav", f"{n}.wav", status, checked))
    connection.close()
    upgrade(url)
    with sqlite3.connect(path) as connection:
        rows = connection.execute(
            "SELECT status, check_attempts, next_check_at FROM recording ORDER BY id"
        ).fetchall()
        triggers = {
            row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='trigger'")
        }
    connection.close()
    assert rows == [
        ("invalid", 1, CHECKED),
        ("verified", 1, None),
        ("pending", 0, None),
        ("invalid", 0, None),
    ]
    assert "recording_verified_update" in triggers  # migration 0010's triggers survive
    downgrade(url, "0010")
    upgrade(url)
