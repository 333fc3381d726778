"""Scorecard templates: validation, the scoring formula, versions.

A template is data (stored as JSON on ``QAScorecard.definition``)::

    {"sections": [{"key": "attitude", "title": "工作态度", "weight": 30,
                   "items": [{"key": "politeness", "title": "礼貌用语", "kind": "points",
                              "points": 10, "na_allowed": false, "critical": false}, …]}, …]}

``kind`` is ``points`` (0 … points) or ``check`` (pass = all points, fail = 0). A ``critical`` item
that fails makes the whole evaluation 0 (auto-fail). Weights are whole percentages summing to 100.

The formula (shown on the form, ``FORMULA``)::

    section % = Σ points given / Σ points possible      (items answered N/A left out of both)
    total     = Σ weight × section % / Σ weight          (over sections with an applicable item)
    total     = 0 if a critical item failed

Sections whose every item is N/A drop out and the others' weights are scaled up, so N/A never
lowers a score. The total is rounded to 2 decimals.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callcenter.exceptions import CallcenterError
from callcenter.models import QAScorecard
from callcenter.services.qa_default import DEFAULT_SCORECARD, DEFAULT_TITLE

KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
KINDS = ("points", "check")
NA, PASS, FAIL = "na", "pass", "fail"
DEFAULT_NAME = "default"
FORMULA = (
    "section % = Σ points given ÷ Σ points possible (N/A items left out); "
    "total = Σ (weight × section %) ÷ Σ weight of sections with an applicable item × 100; "
    "a failed critical item makes the total 0"
)


class ScorecardError(CallcenterError):
    """A template or a set of answers that does not fit the rules; the message names the part."""


@dataclass(frozen=True)
class Item:
    key: str
    title: str
    kind: str
    points: int
    na_allowed: bool
    critical: bool
    hint: str = ""


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    weight: int
    items: tuple[Item, ...]


@dataclass(frozen=True)
class Template:
    sections: tuple[Section, ...]

    def items(self) -> list[tuple[Section, Item]]:
        return [(section, item) for section in self.sections for item in section.items]


@dataclass(frozen=True)
class Score:
    total: float
    section_scores: dict[str, float | None]  # section key → percent, None when all N/A
    critical_failed: bool
    failed_items: list[str]  # item keys that failed (check: fail, points: below full marks)
    answers: dict[str, int | str]


def _item(data: Mapping[str, Any], where: str) -> Item:
    key = str(data.get("key", ""))
    if not KEY.match(key):
        raise ScorecardError(f"{where}: item key {key!r} must be lower-case letters, digits, _")
    kind = str(data.get("kind", "points"))
    if kind not in KINDS:
        raise ScorecardError(f"{where}.{key}: kind must be one of {', '.join(KINDS)}")
    points = data.get("points")
    if not isinstance(points, int) or isinstance(points, bool) or not 1 <= points <= 100:
        raise ScorecardError(f"{where}.{key}: points must be a whole number from 1 to 100")
    critical = bool(data.get("critical", False))
    if critical and kind != "check":
        raise ScorecardError(f"{where}.{key}: a critical item must be a pass/fail check")
    return Item(
        key=key,
        title=str(data.get("title") or key),
        kind=kind,
        points=points,
        na_allowed=bool(data.get("na_allowed", False)),
        critical=critical,
        hint=str(data.get("hint", "")),
    )


def parse_template(definition: Mapping[str, Any]) -> Template:
    """Validate a template; raises :class:`ScorecardError` naming the first problem."""
    raw_sections = definition.get("sections")
    if not isinstance(raw_sections, list) or not raw_sections:
        raise ScorecardError("a scorecard needs at least one section")
    sections: list[Section] = []
    seen: set[str] = set()
    for raw in raw_sections:
        if not isinstance(raw, Mapping):
            raise ScorecardError("every section must be a table")
        key = str(raw.get("key", ""))
        if not KEY.match(key):
            raise ScorecardError(f"section key {key!r} must be lower-case letters, digits, _")
        weight = raw.get("weight")
        if not isinstance(weight, int) or isinstance(weight, bool) or not 1 <= weight <= 100:
            raise ScorecardError(f"section {key}: weight must be a whole percentage from 1 to 100")
        raw_items = raw.get("items")
        if not isinstance(raw_items, list) or not raw_items:
            raise ScorecardError(f"section {key}: needs at least one item")
        items = tuple(_item(item, f"section {key}") for item in raw_items)
        for name in [key, *(item.key for item in items)]:
            if name in seen:
                raise ScorecardError(f"key {name!r} is used twice")
            seen.add(name)
        sections.append(Section(key, str(raw.get("title") or key), weight, items))
    total_weight = sum(section.weight for section in sections)
    if total_weight != 100:
        raise ScorecardError(f"section weights must sum to 100 %, not {total_weight} %")
    return Template(tuple(sections))


def _given(item: Item, answer: object) -> int | str:
    """The checked answer for one item: points given, or PASS/FAIL/NA."""
    if answer == NA:
        if not item.na_allowed:
            raise ScorecardError(f"{item.key}: N/A is not allowed")
        return NA
    if item.kind == "check":
        if answer not in (PASS, FAIL):
            raise ScorecardError(f"{item.key}: answer pass or fail")
        return str(answer)
    if isinstance(answer, str) and answer.strip().isdigit():
        answer = int(answer.strip())
    if not isinstance(answer, int) or isinstance(answer, bool) or not 0 <= answer <= item.points:
        raise ScorecardError(f"{item.key}: give 0 to {item.points} points")
    return answer


def score(template: Template, answers: Mapping[str, object]) -> Score:
    """Apply the formula to ``answers`` (item key → points, ``pass``/``fail`` or ``na``); every item
    must be answered and no unknown key given."""
    known = {item.key for _, item in template.items()}
    unknown = sorted(set(answers) - known)
    if unknown:
        raise ScorecardError(f"unknown items: {', '.join(unknown)}")
    missing = [item.key for _, item in template.items() if item.key not in answers]
    if missing:
        raise ScorecardError(f"not answered: {', '.join(missing)}")
    checked: dict[str, int | str] = {}
    failed: list[str] = []
    critical_failed = False
    weighted = weights = 0.0
    section_scores: dict[str, float | None] = {}
    for section in template.sections:
        given = possible = 0
        for item in section.items:
            answer = _given(item, answers[item.key])
            checked[item.key] = answer
            if answer == NA:
                continue
            points = item.points if answer == PASS else 0 if answer == FAIL else int(answer)
            given, possible = given + points, possible + item.points
            if points < item.points:
                failed.append(item.key)
                critical_failed = critical_failed or item.critical
        if possible == 0:
            section_scores[section.key] = None
            continue
        fraction = given / possible
        section_scores[section.key] = round(fraction * 100, 2)
        weighted += section.weight * fraction
        weights += section.weight
    total = 0.0 if critical_failed or weights == 0 else round(weighted / weights * 100, 2)
    return Score(total, section_scores, critical_failed, failed, checked)


# --- versions ------------------------------------------------------------------------------------


def current(session: Session, name: str = DEFAULT_NAME) -> QAScorecard | None:
    return session.execute(
        select(QAScorecard).where(QAScorecard.name == name).order_by(QAScorecard.version.desc()).limit(1)
    ).scalar_one_or_none()


def save_version(
    session: Session,
    name: str,
    definition: Mapping[str, Any],
    *,
    title: str,
    now: datetime,
    user_id: int | None = None,
) -> QAScorecard:
    """Store ``definition`` as the next version of ``name`` (validated first). Old versions stay as
    they are, so evaluations made with them keep their template."""
    parse_template(definition)
    latest = session.execute(
        select(func.max(QAScorecard.version)).where(QAScorecard.name == name)
    ).scalar_one()
    card = QAScorecard(
        name=name,
        version=(latest or 0) + 1,
        title=title,
        definition=dict(definition),
        created_by_id=user_id,
        created_at=now,
    )
    session.add(card)
    session.flush()
    return card


def ensure_default(session: Session, *, now: datetime) -> QAScorecard:
    """The organisation's scorecard, version 1, unless some version of it exists already."""
    existing = current(session)
    if existing is not None:
        return existing
    return save_version(session, DEFAULT_NAME, DEFAULT_SCORECARD, title=DEFAULT_TITLE, now=now)
