"""The paced dialler: claim due tasks under the lease, record the intent, dial, record the outcome.

One pass (``tick``) does, in order:

1. **resolve** attempts still open (``intent``/``sent``) that this leader is not dialling itself
   (a previous leader crashed, or Twilio has not told us the outcome yet) through the channel's
   ``lookup``: an attempt in doubt is resolved, never blindly redialled;
2. **claim** due tasks per group (a campaign, or owed callbacks) as its pace allows: a locking read
   (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite transactions are ``BEGIN IMMEDIATE``), the rules
   (window in the callee's zone, holidays, DNC, lockout, attempts) decide, every decision is audited,
   and a dialled task gets its attempt row (state ``intent``, key ``cb-<task>-<n>``, unique per task
   and attempt number) in the *same* transaction, after re-checking the lease's fencing token;
3. **dial** outside the transaction on a worker thread, with the attempt key as the idempotency key,
   and write the outcome (``finish``): reached → done; failed → back-off or, after the last attempt,
   ``unreachable`` (unreachable by phone: another channel takes over).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, exists, func, not_, select
from sqlalchemy.orm import Session

from callcenter.db import Database
from callcenter.dialler import rules
from callcenter.dialler.channels import AttemptView, Channel, DialReport, DialRequest
from callcenter.dialler.lease import Lease
from callcenter.dialler.policy import (
    MARKETING_KINDS,
    Group,
    callbacks_group,
    campaign_group,
    dnc_numbers,
    lockouts,
)
from callcenter.ivr.hours import business_hours
from callcenter.models import AuditLog, CallbackAttempt, CallbackTask, Campaign, CampaignMember
from callcenter.settings import Settings

log = logging.getLogger(__name__)

ACTOR = "scheduler"
BURST_S = 5.0  # after a stall (a slow pass, a busy CPU) a group catches up at most this much of its pace
RESOLVE_BATCH = 500
LOOKUP_WORKERS = 8


def audit(session: Session, now: datetime, action: str, task: CallbackTask, reason: str, **data: Any) -> None:
    """One dialler decision for the supervisor's audit (``audit_log``, object ``callback_task``)."""
    session.add(
        AuditLog(
            at=now,
            username=ACTOR,
            action=action,
            object_type="callback_task",
            object_id=str(task.id),
            reason=reason,
            data={key: value for key, value in data.items() if value not in (None, "")},
        )
    )


def attempt_key(task_id: int, number: int) -> str:
    return f"cb-{task_id}-{number}"


@dataclass
class TickStats:
    dialled: int = 0
    deferred: int = 0
    stopped: int = 0
    resolved: int = 0
    decisions: dict[str, int] = field(default_factory=dict)


def _due_tasks(group: Group, now: datetime, limit: int) -> Select[tuple[CallbackTask]]:
    query = select(CallbackTask).where(CallbackTask.status == "pending", CallbackTask.due_at <= now)
    member = select(CampaignMember.task_id).where(CampaignMember.task_id == CallbackTask.id)
    if group.campaign_id is None:
        query = query.where(not_(exists(member)))
    else:
        query = query.join(CampaignMember, CampaignMember.task_id == CallbackTask.id).where(
            CampaignMember.campaign_id == group.campaign_id
        )
        if group.mode == "preview":  # an agent clicks to dial: only released members go
            query = query.where(CampaignMember.released_at.is_not(None))
    order = (
        CallbackTask.priority.desc(),
        func.coalesce(CallbackTask.enqueued_at, CallbackTask.due_at),
        CallbackTask.id,
    )
    return query.order_by(*order).limit(limit).with_for_update(skip_locked=True, of=CallbackTask)


class Dialler:
    """The dialler of one scheduler process. ``tick`` is what the scheduler job runs."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        clock: Callable[[], datetime],
        channel: Channel,
        lease: Lease,
        *,
        sleep: Callable[[float], None] = time.sleep,
        workers: int = 32,
        synchronous: bool = False,
    ) -> None:
        self.settings, self.db, self.clock, self.channel, self.lease = settings, db, clock, channel, lease
        self.sleep = sleep
        self.hours = business_hours(settings)
        self.synchronous = synchronous  # tests: dial on the calling thread
        # Dials have their own threads: a slow look-up never delays a paced dial.
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dial")
        self._lookups = ThreadPoolExecutor(max_workers=LOOKUP_WORKERS, thread_name_prefix="lookup")
        self._next_slot: dict[int | None, datetime] = {}
        self._lock = threading.Lock()
        self._dialling: set[str] = set()  # attempt keys our own workers are dialling
        self._resolving: set[str] = set()  # attempt keys being looked up

    # --- the pass --------------------------------------------------------------------------------

    def tick(self, budget_s: float = 0.0) -> TickStats:
        """Resolve open attempts, then dial as the pace allows for ``budget_s`` seconds (0: one pass)."""
        stats = TickStats()
        token = self.lease.token
        if token is None:
            return stats
        stats.resolved += self.resolve(token)
        deadline = time.monotonic() + budget_s
        groups = self.groups()  # once per pass: a campaign started meanwhile waits for the next pass
        while True:
            now = self.clock()
            wait = 0.05
            for group in groups:
                wait = min(wait, self._dial_group(group, token, now, stats))
            if time.monotonic() + wait >= deadline:
                return stats
            self.sleep(max(wait, 0.002))

    def close(self, wait: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
        self._lookups.shutdown(wait=wait, cancel_futures=not wait)

    def groups(self) -> list[Group]:
        with self.db.read() as session:
            campaigns = session.execute(select(Campaign).where(Campaign.status == "active")).scalars()
            found = [campaign_group(self.settings, self.hours, campaign) for campaign in campaigns]
        return [callbacks_group(self.settings, self.hours), *found]

    # --- pacing ----------------------------------------------------------------------------------

    def _slots(self, group: Group, session: Session, now: datetime) -> tuple[int, float]:
        """How many calls the group may start now, and seconds until its next slot."""
        interval = timedelta(seconds=60.0 / group.calls_per_minute)
        start = self._next_slot.get(group.campaign_id)
        if start is None:
            last = session.execute(
                select(func.max(CallbackAttempt.started_at)).where(
                    CallbackAttempt.campaign_id.is_(None)
                    if group.campaign_id is None
                    else CallbackAttempt.campaign_id == group.campaign_id
                )
            ).scalar_one_or_none()
            start = now if last is None else last + interval  # a new campaign starts paced, no burst
        start = max(start, now - timedelta(seconds=BURST_S))
        self._next_slot[group.campaign_id] = start
        if start > now:
            return 0, (start - now).total_seconds()
        paced = int((now - start) / interval) + 1
        busy = session.execute(
            select(func.count())
            .select_from(CallbackAttempt)
            .where(
                CallbackAttempt.state.in_(("intent", "sent")),
                CallbackAttempt.campaign_id.is_(None)
                if group.campaign_id is None
                else CallbackAttempt.campaign_id == group.campaign_id,
            )
        ).scalar_one()
        return max(0, min(paced, group.max_concurrent - busy)), interval.total_seconds()

    # --- claim, decide, record intent ------------------------------------------------------------

    def _dial_group(self, group: Group, token: int, now: datetime, stats: TickStats) -> float:
        intents: list[tuple[DialRequest, CallbackAttempt]] = []
        with self.db.transaction() as session:
            if not self.lease.holds(session, token):
                return 0.05
            slots, wait = self._slots(group, session, now)
            for _ in range(4):  # deferred tasks free their slot: look again, a few times
                if len(intents) >= slots:
                    break
                tasks = list(session.execute(_due_tasks(group, now, slots - len(intents))).scalars())
                if not tasks:
                    break
                intents.extend(self._decide_all(session, group, tasks, token, now, stats))
            # One flush for all: the unique (task, attempt number) still stops any second dialler here.
            session.flush()
            requests = [(request, attempt.id) for request, attempt in intents]
            if requests:
                interval = timedelta(seconds=60.0 / group.calls_per_minute)
                self._next_slot[group.campaign_id] += interval * len(requests)
        for request, attempt_id in requests:
            with self._lock:
                self._dialling.add(request.key)
            if self.synchronous:
                self._dial(request, attempt_id)
            else:
                self._pool.submit(self._dial, request, attempt_id)
        return wait if not requests else 0.0

    def _decide_all(
        self,
        session: Session,
        group: Group,
        tasks: list[CallbackTask],
        token: int,
        now: datetime,
        stats: TickStats,
    ) -> list[tuple[DialRequest, CallbackAttempt]]:
        numbers = [task.number_e164 or "" for task in tasks]
        blocked = dnc_numbers(session, numbers)
        locked = lockouts(session, numbers, now, self.settings.dialler.lockout_hours)
        out: list[tuple[DialRequest, CallbackAttempt]] = []
        for task in tasks:
            facts = rules.TaskFacts(
                number=task.number_e164,
                attempts=task.attempts,
                on_dnc_list=(task.number_e164 or "") in blocked and group.campaign_id is not None,
                locked_until=locked.get(task.number_e164 or ""),
                marketing=group.campaign_id is not None and task.kind in MARKETING_KINDS,
                marketing_allowed=group.marketing,
            )
            decision = rules.decide(group.policy, facts, now)
            stats.decisions[decision.reason] = stats.decisions.get(decision.reason, 0) + 1
            where = {
                "zone": decision.zone,
                "zone_note": decision.zone_note,
                "local_time": decision.local_time,
            }
            if decision.action is rules.Action.DIAL:
                out.append(self._intent(session, group, task, token, now, where))
                stats.dialled += 1
            elif decision.action is rules.Action.DEFER:
                retry = decision.retry_at or now + timedelta(hours=1)
                task.due_at, task.updated_at = retry, now
                audit(
                    session, now, "dialler.skip", task, decision.reason, retry_at=retry.isoformat(), **where
                )
                stats.deferred += 1
            else:
                self._stop(session, task, decision.reason, now, campaign=group.campaign_id)
                stats.stopped += 1
        return out

    def _intent(
        self,
        session: Session,
        group: Group,
        task: CallbackTask,
        token: int,
        now: datetime,
        where: dict[str, str],
    ) -> tuple[DialRequest, CallbackAttempt]:
        assert task.number_e164 is not None
        task.attempts += 1
        task.status, task.updated_at = "dialling", now
        # Numbered by rows, not by ``attempts``: a dial that was never placed keeps its row and key.
        number = int(task.data.get("attempt_rows", 0)) + 1
        task.data = {**task.data, "attempt_rows": number}
        key = attempt_key(task.id, number)
        attempt = CallbackAttempt(
            key=key,
            task_id=task.id,
            number=number,
            campaign_id=group.campaign_id,
            channel=self.channel.name,
            e164=task.number_e164,
            state="intent",
            lease_token=token,
            started_at=now,
        )
        session.add(attempt)
        audit(session, now, "dialler.dial", task, "dialled", attempt=key, channel=self.channel.name, **where)
        ring = max(15, self.settings.dialler.ring_timeout_s)
        survey = group.mode == "survey" or task.kind == "survey"
        return DialRequest(key, task.id, task.number_e164, survey, task.language, ring), attempt

    def _stop(self, session: Session, task: CallbackTask, reason: str, now: datetime, **data: Any) -> None:
        if reason in (rules.Reason.DNC, rules.Reason.NOT_MARKETING):
            task.status = "cancelled"
        else:
            task.status = "unreachable"
            task.data = {**task.data, "unreachable_by_phone": True, "alternative_channel": "sms"}
        task.updated_at = now
        audit(session, now, "dialler.skip", task, reason, status=task.status, **data)

    # --- dial and record the outcome -------------------------------------------------------------

    def _dial(self, request: DialRequest, attempt_id: int) -> None:
        try:
            report = self.channel.dial(request)
        except Exception:  # the attempt stays open and is resolved by lookup: never redialled blind
            log.exception("dialling %s failed", request.key)
            return
        finally:
            with self._lock:
                self._dialling.discard(request.key)
        try:
            self.apply(attempt_id, report)
        except Exception:
            log.exception("recording the outcome of %s failed; it will be resolved", request.key)

    def apply(self, attempt_id: int, report: DialReport) -> None:
        """Write what the channel said about an attempt (idempotent: a closed attempt stays closed)."""
        now = self.clock()
        with self.db.transaction() as session:
            attempt = session.execute(
                select(CallbackAttempt).where(CallbackAttempt.id == attempt_id).with_for_update()
            ).scalar_one()
            if attempt.state == "done":
                return
            task = session.execute(
                select(CallbackTask).where(CallbackTask.id == attempt.task_id).with_for_update()
            ).scalar_one()
            if report.external_id:
                attempt.external_id = report.external_id
            if report.state == "sent":
                attempt.state, attempt.sent_at = "sent", attempt.sent_at or now
                attempt.detail = report.detail or attempt.detail
                return
            if report.state == "not_placed":
                self._not_placed(session, attempt, task, report, now)
                return
            self.finish(session, attempt, task, report, now)

    def _not_placed(
        self,
        session: Session,
        attempt: CallbackAttempt,
        task: CallbackTask,
        report: DialReport,
        now: datetime,
    ) -> None:
        attempt.state, attempt.ended_at, attempt.detail = "done", now, report.detail or "not placed"
        task.attempts = max(0, task.attempts - 1)  # it never rang: it does not count
        retry = timedelta(seconds=self.settings.dialler.not_placed_retry_s)
        task.status, task.due_at, task.updated_at = "pending", now + retry, now
        audit(
            session, now, "dialler.not_placed", task, "not_placed", attempt=attempt.key, detail=report.detail
        )

    def finish(
        self,
        session: Session,
        attempt: CallbackAttempt,
        task: CallbackTask,
        report: DialReport,
        now: datetime,
    ) -> None:
        result = report.result or "error"
        attempt.state, attempt.result, attempt.ended_at = "done", result, now
        attempt.abandoned = report.abandoned
        attempt.detail = report.detail or attempt.detail
        task.updated_at = now
        task.data = {**task.data, "last_result": result}
        audit(session, now, "dialler.result", task, result, attempt=attempt.key, detail=report.detail)
        if result == "reached":
            task.status = "done"
            return
        limit = self._max_attempts(session, task)
        if task.attempts >= limit:
            self._stop(session, task, rules.Reason.MAX_ATTEMPTS, now, attempts=task.attempts)
            return
        backoff = rules.backoff_after(callbacks_group(self.settings, self.hours).policy, task.attempts)
        task.status, task.due_at = "pending", now + backoff

    def _max_attempts(self, session: Session, task: CallbackTask) -> int:
        limit = session.execute(
            select(Campaign.max_attempts)
            .join(CampaignMember, CampaignMember.campaign_id == Campaign.id)
            .where(CampaignMember.task_id == task.id)
        ).scalar_one_or_none()
        return limit or self.settings.dialler.max_attempts

    # --- attempts in doubt -----------------------------------------------------------------------

    def resolve(self, token: int) -> int:
        """Look up open attempts nobody here is dialling (on the worker pool, so a slow channel never
        holds the pace back); returns how many lookups were started (settled, when synchronous)."""
        now = self.clock()
        with self._lock:
            busy = self._dialling | self._resolving
        with self.db.read() as session:
            rows = session.execute(
                select(CallbackAttempt)
                .where(CallbackAttempt.state.in_(("intent", "sent")))
                .order_by(CallbackAttempt.id)
                .limit(RESOLVE_BATCH)
            ).scalars()
            open_attempts = [
                (
                    row.id,
                    AttemptView(row.key, row.task_id, row.e164, row.state, row.external_id, row.started_at),
                )
                for row in rows
                if row.key not in busy and (row.lease_token != token or row.state == "sent")
            ]
        settled = 0
        for attempt_id, view in open_attempts:
            with self._lock:
                self._resolving.add(view.key)
            if self.synchronous:
                settled += self._resolve_one(attempt_id, view, now)
            else:
                self._lookups.submit(self._resolve_one, attempt_id, view, now)
                settled += 1
        return settled

    def _resolve_one(self, attempt_id: int, view: AttemptView, now: datetime) -> int:
        try:
            with self.db.read() as session:
                report = self.channel.lookup(session, view, now)
            if report is None or (report.state == "sent" and view.state == "sent"):
                return 0
            log.info(
                "attempt %s (%s) resolved: %s %s", view.key, view.state, report.state, report.result or ""
            )
            self.apply(attempt_id, report)
            return 1
        except Exception:
            log.exception("looking up attempt %s failed; trying again later", view.key)
            return 0
        finally:
            with self._lock:
                self._resolving.discard(view.key)
