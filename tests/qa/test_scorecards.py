"""Scorecard templates: weights must sum to 100 %, the formula, N/A, critical items, versions."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

import pytest

from callcenter.db import Database
from callcenter.services import qa_scorecards
from callcenter.services.qa_default import DEFAULT_SCORECARD
from callcenter.services.qa_scorecards import ScorecardError, parse_template, save_version, score


def card(*sections: tuple[str, int, list[dict[str, Any]]]) -> dict[str, Any]:
    return {"sections": [{"key": k, "title": k, "weight": w, "items": items} for k, w, items in sections]}


def pts(key: str, points: int, **extra: Any) -> dict[str, Any]:
    return {"key": key, "kind": "points", "points": points, **extra}


def chk(key: str, points: int, **extra: Any) -> dict[str, Any]:
    return {"key": key, "kind": "check", "points": points, **extra}


SIMPLE = card(
    ("a", 30, [pts("a1", 10), chk("a2", 10, critical=True)]),
    ("b", 70, [pts("b1", 10, na_allowed=True), chk("b2", 10, na_allowed=True)]),
)


def test_the_default_scorecard_is_the_organisations() -> None:
    template = parse_template(DEFAULT_SCORECARD)
    assert [(s.title.split()[0], s.weight) for s in template.sections] == [
        ("工作态度", 30),
        ("专业知识掌握", 30),
        ("业务能力", 40),
    ]
    checks = {i.key for _, i in template.items() if i.kind == "check"}
    assert {"greeting", "three_rings", "mandarin", "no_vague_words", "no_rudeness", "privacy"} <= checks
    assert {i.key for _, i in template.items() if i.critical} == {"no_rudeness", "privacy"}


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        (card(("a", 30, [pts("a1", 5)]), ("b", 60, [pts("b1", 5)])), "sum to 100 %, not 90 %"),
        (card(("a", 100, [pts("a1", 5)]), ("b", 0, [pts("b1", 5)])), "weight must be"),
        (card(("a", 100, [pts("a1", 5, critical=True)])), "critical item must be a pass/fail"),
        (card(("a", 100, [pts("a1", 0)])), "points must be"),
        (card(("a", 50, [pts("x", 5)]), ("b", 50, [pts("x", 5)])), "used twice"),
        (card(("a", 100, [])), "at least one item"),
        ({"sections": []}, "at least one section"),
        (card(("A b", 100, [pts("a1", 5)])), "section key"),
    ],
)
def test_invalid_templates_are_refused_with_the_reason(definition: dict[str, Any], message: str) -> None:
    with pytest.raises(ScorecardError, match=message):
        parse_template(definition)


def test_the_formula_weights_sections_and_leaves_na_out() -> None:
    template = parse_template(SIMPLE)
    result = score(template, {"a1": 5, "a2": "pass", "b1": 10, "b2": "fail"})
    # a: 15/20 = 75 %, b: 10/20 = 50 % → 0.3·75 + 0.7·50 = 57.5
    assert result.total == 57.5 and result.section_scores == {"a": 75.0, "b": 50.0}
    assert result.failed_items == ["a1", "b2"] and not result.critical_failed
    with_na = score(template, {"a1": 5, "a2": "pass", "b1": "na", "b2": "fail"})
    assert with_na.total == round(0.3 * 75 + 0.7 * 0, 2)  # b: 0/10
    all_na = score(template, {"a1": 5, "a2": "pass", "b1": "na", "b2": "na"})
    assert all_na.total == 75.0 and all_na.section_scores["b"] is None  # b drops out, a carries 100 %


def test_a_failed_critical_item_fails_the_whole_evaluation() -> None:
    result = score(parse_template(SIMPLE), {"a1": 10, "a2": "fail", "b1": 10, "b2": "pass"})
    assert result.total == 0 and result.critical_failed and result.failed_items == ["a2"]


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"a1": 11, "a2": "pass", "b1": 1, "b2": "pass"}, "give 0 to 10"),
        ({"a1": "na", "a2": "pass", "b1": 1, "b2": "pass"}, "N/A is not allowed"),
        ({"a1": 1, "a2": "yes", "b1": 1, "b2": "pass"}, "pass or fail"),
        ({"a1": 1, "a2": "pass", "b1": 1}, "not answered: b2"),
        ({"a1": 1, "a2": "pass", "b1": 1, "b2": "pass", "zz": 1}, "unknown items: zz"),
    ],
)
def test_answers_that_do_not_fit_are_refused(answers: dict[str, object], message: str) -> None:
    with pytest.raises(ScorecardError, match=message):
        score(parse_template(SIMPLE), answers)


def test_editing_makes_a_new_version_and_old_versions_stay(db: Database, now: datetime) -> None:
    with db.transaction() as s:
        first = qa_scorecards.ensure_default(s, now=now)
        assert qa_scorecards.ensure_default(s, now=now).id == first.id  # seeded once
        edited = copy.deepcopy(DEFAULT_SCORECARD)
        edited["sections"][0]["weight"], edited["sections"][2]["weight"] = 20, 50
        second = save_version(s, "default", edited, title="v2", now=now + timedelta(days=1))
        with pytest.raises(ScorecardError):
            save_version(
                s,
                "default",
                {"sections": [{"key": "x", "weight": 99, "items": [pts("y", 1)]}]},
                title="bad",
                now=now,
            )
    with db.read() as s:
        latest = qa_scorecards.current(s)
        assert latest is not None and (latest.id, latest.version) == (second.id, 2)
        old = s.get(type(first), first.id)
        assert old is not None and old.version == 1 and old.definition == DEFAULT_SCORECARD
