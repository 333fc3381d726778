"""The README tour's printed output is what the commands print: its code blocks are read and the
real commands' output is matched against them, line by line (numbers that change are wildcards)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from callcenter.cli import _banner, cli
from callcenter.db import Database
from callcenter.models import Call
from callcenter.services.demo import seed_demo
from callcenter.settings import Settings, load_settings
from callcenter.voice.agi.main import build_server
from callcenter.voice.agi.server import RunningServer

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
LINKEDID = "1795424056.2"  # the README's example linkedid
OPEN_AT = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
CLOSED_AT = datetime(2026, 11, 23, 15, 30, tzinfo=UTC)  # Monday 23:30 in Shanghai


def blocks() -> list[list[str]]:
    """Every fenced code block of the README, its lines without the list's indentation."""
    found = re.findall(r"^( *)```[a-z]*\n(.*?)^\1```", README, flags=re.S | re.M)
    return [[line[len(indent) :] for line in body.splitlines()] for indent, body in found]


def block_with(prefix: str) -> list[str]:
    for block in blocks():
        if block and block[0].startswith(prefix):
            return block
    raise AssertionError(f"no README block starts with {prefix!r}")


def pattern(line: str) -> re.Pattern[str]:
    """A README output line as a pattern: the example linkedid and "…" stand for any text."""
    parts = [re.escape(part) for part in line.split(LINKEDID)]
    text = r"\S+".join(parts).replace(re.escape("…"), ".*")
    return re.compile(text)


def assert_printed(expected: list[str], output: str) -> None:
    printed = [line for line in output.splitlines() if line.strip()]
    assert len(printed) == len(expected), (expected, printed)
    for want, got in zip(expected, printed, strict=True):
        assert pattern(want).fullmatch(got), (want, got)


@pytest.fixture
def tour_env(tmp_path: Path, db: Database, monkeypatch: pytest.MonkeyPatch, now: datetime) -> Settings:
    monkeypatch.setenv("CALLCENTER_SETTINGS", str(ROOT / "settings.toml"))
    monkeypatch.setenv("CALLCENTER_DATABASE__URL", db.url)
    monkeypatch.setenv("CALLCENTER_STORAGE__VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CALLCENTER_STORAGE__SPOOL_DIR", str(tmp_path / "var" / "spool"))
    with db.transaction() as session:
        seed_demo(session, now=now, admin_password="admin-password")
    return load_settings(ROOT / "settings.toml", overrides={"database": {"url": db.url}})


@contextmanager
def server_at(settings: Settings, db: Database, when: datetime) -> Iterator[int]:
    server = build_server(settings, db, lambda: when, port=0)
    with RunningServer(server):
        yield server.port
    assert server.fallback.recorder.flush()


def simulate(port: int, *args: str) -> str:
    result = CliRunner().invoke(
        cli, ["simulate-call", *args, "--port", str(port)], obj={}, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_the_simulated_call_prints_what_the_readme_shows(tour_env: Settings, db: Database) -> None:
    block = block_with(".venv/bin/callcenter simulate-call --from +8613800138000 --digits 2")
    command, expected = block[0], [line.removeprefix("# ") for line in block[1:]]
    args = command.split()[2:]
    with server_at(tour_env, db, OPEN_AT) as port:
        output = simulate(port, *args)
    assert_printed(expected, output)
    with db.read() as session:  # the archive's name went as CallerIDName
        assert session.execute(select(Call.caller_name)).scalar_one() == "张三"


def test_a_call_at_night_prints_what_the_readme_shows(tour_env: Settings, db: Database) -> None:
    expected = block_with("the hotline is closed now")
    with server_at(tour_env, db, CLOSED_AT) as port:
        output = simulate(port, "--from", "+8613800138000", "--digits", "2")
    assert_printed(expected, output)


def test_the_banner_is_what_the_readme_shows(
    tour_env: Settings, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    expected = [line.strip() for line in block_with("  web:") if line.strip()]
    settings = load_settings(
        ROOT / "settings.toml", overrides={"storage": {"var_dir": str(tmp_path / "var")}}
    )
    (tmp_path / "var").mkdir(exist_ok=True)
    (tmp_path / "var" / "demo-logins.txt").write_text("admin / secret\n", encoding="utf-8")
    _banner(settings, 4573)
    printed = [line.strip() for line in capsys.readouterr().out.splitlines() if line.strip()]
    for want in expected:  # the README shows the banner's first lines
        assert any(pattern(want).match(got) for got in printed), (want, printed)
    _banner(settings, 4573, always_open=True)
    night = re.search(r"the banner then says `([^`]+)`", README)
    assert night is not None
    assert night.group(1).strip() in capsys.readouterr().out
