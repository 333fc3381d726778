"""Reviews: scoring, re-scoring after a dispute (a new version, by another evaluator), the dispute
window and limit, acknowledgement, calibration spread, round-robin assignment with a daily cap."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from callcenter.db import Database
from callcenter.models import Notice, QAAssignment, QAEvaluation, QAResponse, QASample, User
from callcenter.services import qa_reviews, qa_scorecards
from callcenter.services.qa_assignment import assign_pending
from callcenter.services.qa_default import DEFAULT_SCORECARD
from callcenter.services.qa_reviews import ReviewError, Viewer
from callcenter.services.qa_sampling import SamplingParams, draw
from callcenter.settings import Settings
from tests.qa.conftest import Scene, build_scene
from tests.qa.factories import make_agent, make_recorded_call, make_staff
from tests.qa.test_sampling import DAY, ZONE, at
from tests.web.factories import PASSWORD, Account

WINDOW = timedelta(days=7)


def answers(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        item["key"]: ("pass" if item["kind"] == "check" else item["points"])
        for section in DEFAULT_SCORECARD["sections"]
        for item in section["items"]
    }
    return {**base, **changes}


def viewer(account: Account, *roles: str) -> Viewer:
    return Viewer(account.id, account.username, frozenset(roles))


def score(db: Database, assignment_id: int, who: Viewer, now: datetime, **changes: object) -> QAEvaluation:
    with db.transaction() as s:
        card = qa_scorecards.current(s)
        assert card is not None
        return qa_reviews.submit(
            s,
            assignment_id,
            who,
            scorecard_id=card.id,
            answers=answers(**changes),
            comments="",
            suggestions="",
            case_material=False,
            now=now,
        )


@pytest.fixture
def scene(db: Database, settings: Settings, now: datetime) -> Scene:
    return build_scene(db, settings, now)


def test_a_dispute_sends_the_call_to_another_evaluator_whose_score_is_a_new_version(
    db: Database, scene: Scene, now: datetime
) -> None:
    qa1, qa2 = viewer(scene.qa1, "qa"), viewer(scene.qa2, "qa")
    agent = viewer(scene.agent, "agent_complaint")
    first = score(db, scene.assignment_id, qa1, now, politeness=2)
    with db.transaction() as s, pytest.raises(ReviewError, match="say why"):
        qa_reviews.dispute(s, first.id, agent, reason=" ", now=now, zone=ZONE, window=WINDOW, max_disputes=1)
    with db.transaction() as s, pytest.raises(ReviewError, match="not about your calls"):
        qa_reviews.dispute(
            s,
            first.id,
            viewer(scene.other_agent),
            reason="x",
            now=now,
            zone=ZONE,
            window=WINDOW,
            max_disputes=1,
        )
    with db.transaction() as s:
        response = qa_reviews.dispute(
            s,
            first.id,
            agent,
            reason="客户要求我打断",
            now=now + timedelta(days=2),
            zone=ZONE,
            window=WINDOW,
            max_disputes=1,
        )
        assert (response.rescorer_id, response.to_lead) == (scene.qa2.id, False)
        rescore = s.get(QAAssignment, response.response.rescore_assignment_id)
        assert rescore is not None and (rescore.user_id, rescore.purpose) == (scene.qa2.id, "rescore")
        notice = s.execute(select(Notice)).scalar_one()  # the re-scorer hears of it
        assert (notice.user_id, notice.kind, notice.data["sample_id"]) == (
            scene.qa2.id,
            "qa_rescore",
            scene.sample_id,
        )
    with db.transaction() as s, pytest.raises(ReviewError, match="dispute is open"):
        qa_reviews.acknowledge(s, first.id, agent, now=now)
    second = score(db, rescore.id, qa2, now + timedelta(days=3))
    with db.read() as s:
        rows = s.execute(select(QAEvaluation).order_by(QAEvaluation.id)).scalars().all()
        assert [(e.version, e.purpose, e.supersedes_id) for e in rows] == [
            (1, "review", None),
            (2, "rescore", first.id),
        ]
        assert rows[0].total == first.total and rows[0].answers["politeness"] == 2  # untouched
        assert qa_reviews.current_evaluation(s, scene.sample_id).id == second.id  # type: ignore[union-attr]
        dispute = s.execute(select(QAResponse)).scalar_one()
        assert (dispute.status, dispute.resolved_by_id) == ("rescored", second.id)
    with db.transaction() as s, pytest.raises(ReviewError, match="no disputes left"):
        qa_reviews.dispute(
            s,
            second.id,
            agent,
            reason="again",
            now=now + timedelta(days=3),
            zone=ZONE,
            window=WINDOW,
            max_disputes=1,
        )
    with db.transaction() as s, pytest.raises(ReviewError, match="re-scored"):
        qa_reviews.acknowledge(s, first.id, agent, now=now)
    with db.transaction() as s:
        qa_reviews.acknowledge(s, second.id, agent, now=now + timedelta(days=4))
        with pytest.raises(ReviewError, match="acknowledged already"):
            qa_reviews.acknowledge(s, second.id, agent, now=now + timedelta(days=4))


def _only_qa1_evaluates(db: Database, scene: Scene) -> None:
    with db.transaction() as s:
        other = s.get(User, scene.qa2.id)
        assert other is not None
        other.active = False


def _dispute(db: Database, evaluation_id: int, scene: Scene, now: datetime, lead: str) -> qa_reviews.Dispute:
    with db.transaction() as s:
        return qa_reviews.dispute(
            s,
            evaluation_id,
            viewer(scene.agent, "agent_complaint"),
            reason="不同意",
            now=now,
            zone=ZONE,
            window=WINDOW,
            max_disputes=1,
            lead=lead,
        )


def test_a_dispute_nobody_else_may_rescore_goes_to_the_qa_lead_with_a_notice(
    db: Database, scene: Scene, now: datetime
) -> None:
    first = score(db, scene.assignment_id, viewer(scene.qa1, "qa"), now)
    _only_qa1_evaluates(db, scene)  # qa1 scored it: no other evaluator is left
    sent = _dispute(db, first.id, scene, now, lead="boss")
    assert (sent.rescorer_id, sent.to_lead) == (scene.supervisor.id, True)
    with db.read() as s:
        rescore = s.get(QAAssignment, sent.response.rescore_assignment_id)
        assert rescore is not None and (rescore.user_id, rescore.purpose) == (scene.supervisor.id, "rescore")
        notice = s.execute(select(Notice)).scalar_one()
        assert (notice.user_id, notice.kind) == (scene.supervisor.id, "qa_dispute_lead")
    second = score(db, rescore.id, viewer(scene.supervisor, "supervisor"), now + timedelta(hours=1))
    assert (second.version, second.supersedes_id) == (2, first.id)


@pytest.mark.parametrize("lead", ["", "nobody", "zhangwei"])
def test_a_dispute_without_rescorer_or_lead_is_refused_and_nothing_is_promised(
    db: Database, scene: Scene, now: datetime, lead: str
) -> None:
    first = score(db, scene.assignment_id, viewer(scene.qa1, "qa"), now)
    _only_qa1_evaluates(db, scene)
    # No lead, an unknown one, or the agent whose call it is: refused, nothing written.
    with pytest.raises(ReviewError, match="no QA lead"):
        _dispute(db, first.id, scene, now, lead=lead)
    with db.read() as s:
        assert s.execute(select(QAResponse)).first() is None
        assert s.execute(select(Notice)).first() is None
        assert s.execute(select(QAAssignment).where(QAAssignment.purpose == "rescore")).first() is None


def test_the_dispute_window_closes(db: Database, scene: Scene, now: datetime) -> None:
    evaluation = score(db, scene.assignment_id, viewer(scene.qa1, "qa"), now)
    with db.transaction() as s, pytest.raises(ReviewError, match="window has closed"):
        qa_reviews.dispute(
            s,
            evaluation.id,
            viewer(scene.agent),
            reason="late",
            now=now + WINDOW + timedelta(seconds=1),
            zone=ZONE,
            window=WINDOW,
            max_disputes=3,
        )


def test_only_the_assignee_scores_and_only_once(db: Database, scene: Scene, now: datetime) -> None:
    with pytest.raises(ReviewError, match="not assigned to you"):
        score(db, scene.assignment_id, viewer(scene.qa2, "qa"), now)
    score(db, scene.assignment_id, viewer(scene.qa1, "qa"), now)
    with pytest.raises(ReviewError, match="scored already"):
        score(db, scene.assignment_id, viewer(scene.qa1, "qa"), now)


def test_calibration_shows_the_spread_of_independent_scores(
    db: Database, scene: Scene, now: datetime
) -> None:
    qa3 = make_staff(db, now, "qa3", ("qa",), PASSWORD)
    score(db, scene.assignment_id, viewer(scene.qa1, "qa"), now)  # 100
    with db.transaction() as s:
        made = qa_reviews.calibrate(s, scene.sample_id, [scene.qa2.id, qa3], now=now, zone=ZONE)
        with pytest.raises(ReviewError):
            qa_reviews.calibrate(s, scene.sample_id, [scene.agent.id], now=now, zone=ZONE)
    score(db, made[0].id, viewer(scene.qa2, "qa"), now, politeness=0)
    score(db, made[1].id, Viewer(qa3, "qa3", frozenset({"qa"})), now, no_rudeness="fail")  # critical: 0
    with db.read() as s:
        spread = qa_reviews.spread(s, scene.sample_id)
        current = qa_reviews.current_evaluation(s, scene.sample_id)
    politeness_total = round(30 * 42 / 52 + 70, 2)
    assert (spread.count, spread.low, spread.high, spread.range) == (3, 0.0, 100.0, 100.0)
    assert spread.mean == round((100 + politeness_total) / 3, 2)
    assert current is not None and current.total == 100.0  # calibration never replaces the score


def test_playback_rights_follow_the_roles(db: Database, scene: Scene) -> None:
    with db.read() as s:
        sample = s.get(QASample, scene.sample_id)
        assert sample is not None
        rec = sample.recording
        assert qa_reviews.can_play(s, viewer(scene.qa1, "qa"), rec)
        assert not qa_reviews.can_play(s, viewer(scene.qa2, "qa"), rec)
        assert qa_reviews.can_play(s, viewer(scene.agent, "agent_complaint"), rec)  # the handling agent
        assert not qa_reviews.can_play(s, viewer(scene.other_agent, "agent_complaint"), rec)
        for role in ("supervisor", "team_leader", "manager"):
            assert qa_reviews.can_play(s, viewer(scene.other_agent, role), rec)
        # REQUIREMENTS B16 names no admin: administering accounts is no licence to hear customers
        assert not qa_reviews.can_play(s, viewer(scene.other_agent, "admin"), rec)


def test_assignment_is_round_robin_capped_per_day_and_never_to_the_handling_agent(
    db: Database, now: datetime
) -> None:
    first_qa = make_staff(db, now, "q1", ("qa",), PASSWORD)
    second_qa = make_staff(db, now, "q2", ("qa", "agent_complaint"), PASSWORD)
    with db.transaction() as s:
        own = make_agent(s, "q2 as agent", user=s.get(User, second_qa), now=now)
        others = [make_agent(s, f"a{i}", now=now) for i in range(3)]
        for n, agent in enumerate([*others, own] * 2):
            make_recorded_call(s, agent_id=agent.id, queue="consultation", start=at(8) + timedelta(minutes=n))
        draw(
            s,
            start=DAY,
            end=DAY + timedelta(days=1),
            params=SamplingParams(per_stratum=2),
            zone=ZONE,
            now=now,
            seed=3,
        )
        assert assign_pending(s, now=now, zone=ZONE, cap=3) == 6
        rows = s.execute(
            select(QAAssignment.user_id, QASample.agent_id).join(QASample).order_by(QAAssignment.id)
        ).all()
    # the rotation starts with the first QA account; q2's own calls go to q1; each stops at the cap
    assert [u for u, _ in rows] == [first_qa, first_qa, second_qa, first_qa, second_qa, second_qa]
    assert all(u != second_qa for u, a in rows if a == own.id)
    with db.transaction() as s:
        assert assign_pending(s, now=now, zone=ZONE, cap=3) == 0  # both at the cap; two wait
        waiting = s.execute(select(QASample.id).where(~QASample.assignments.any())).scalars().all()
        assert len(waiting) == 2
        assert assign_pending(s, now=now + timedelta(days=1), zone=ZONE, cap=3) == 2  # next day
        assert s.execute(
            select(QAAssignment.assigned_on).order_by(QAAssignment.id.desc())
        ).scalars().first() == date(2026, 11, 24)
