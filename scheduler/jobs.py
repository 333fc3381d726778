"""The scheduler's jobs, registered by name in one table. Each is a few lines around a service call."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from callcenter.db import Database
from callcenter.ivr.hours import business_hours
from callcenter.services import callback_results, callbacks, qa_jobs
from callcenter.services import cases as case_service
from callcenter.services.journal import recorder_for
from callcenter.settings import Settings
from callcenter.voice.twilio.main import enabled as twilio_enabled
from recordings.media import MonitorFolderMissing
from recordings.twilio import fetch_recordings as fetch_twilio_recording_files
from recordings.verify import verify_recordings as verify_recording_files
from scheduler.dialling import DiallerRuntime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    db: Database
    clock: Callable[[], datetime]


@dataclass(frozen=True)
class JobSpec:
    func: Callable[[Runtime], object]
    seconds: int
    description: str


_runtime: Runtime | None = None
_dialling: DiallerRuntime | None = None


def bind(runtime: Runtime) -> None:
    """Hand the process's dependencies to the jobs (called once by the scheduler's main)."""
    global _runtime  # noqa: PLW0603 - the one process-wide binding APScheduler's stored jobs need
    _runtime = runtime


def bind_dialling(dialling: DiallerRuntime | None) -> None:
    """Hand the leader's dialler to the ``dial_callbacks`` job (scheduler.leader)."""
    global _dialling  # noqa: PLW0603 - as bind(): the one binding the stored job needs
    _dialling = dialling


def dial_callbacks(runtime: Runtime) -> object:
    return None if _dialling is None else _dialling.tick()


def collect_survey_answers(runtime: Runtime) -> object:
    with runtime.db.transaction() as session:
        added = callback_results.record_survey_answers(session, runtime.clock())
    if added:
        log.info("survey answers recorded: %s", added)
    return added


def sweep_queue_abandons(runtime: Runtime) -> object:
    dialler = runtime.settings.dialler
    with runtime.db.transaction() as session:
        result = callbacks.sweep_abandoned(
            session,
            runtime.clock(),
            hours=business_hours(runtime.settings),
            grace=timedelta(minutes=dialler.abandon_grace_minutes),
            lookback=timedelta(hours=dialler.abandon_lookback_hours),
        )
    if result.created:
        log.info("queue abandons: %s", result)
    return result


def replay_spool(runtime: Runtime) -> object:
    result = recorder_for(runtime.settings, runtime.db, runtime.clock).replay()
    if result.applied or result.failed or result.remaining:
        log.info("spool replay: %s", result)
    return result


def verify_recordings(runtime: Runtime) -> object:
    # A few batches per run keep one run short; a backlog is worked off over the next runs.
    try:
        result = verify_recording_files(runtime.settings, runtime.db, runtime.clock(), max_batches=5)
    except MonitorFolderMissing as exc:  # recordings wait; nothing is marked missing
        log.warning("recordings not verified: %s", exc)
        return None
    if result.claimed:
        log.info("recordings: %s", result)
    return result


def fetch_twilio_recordings(runtime: Runtime) -> object:
    if not twilio_enabled(runtime.settings):
        return None
    result = fetch_twilio_recording_files(runtime.settings, runtime.db, runtime.clock())
    if result.claimed:
        log.info("twilio recordings: %s", result)
    return result


def sweep_cases(runtime: Runtime) -> object:
    policy = case_service.CasePolicy.from_settings(runtime.settings)
    with runtime.db.transaction() as session:
        result = case_service.sweep(session, policy=policy, now=runtime.clock())
    if result.delayed or result.first_reply_overdue or result.warnings:
        log.info("case sweep: %s", result)
    return result


def draw_qa_sample(runtime: Runtime) -> object:
    # Idempotent: the hourly run draws the day once and hands out what is still unassigned.
    result = qa_jobs.daily_draw(runtime.settings, runtime.db, runtime.clock())
    if result.created or result.assigned:
        log.info("qa sample: %s", result)
    return result


JOBS: dict[str, JobSpec] = {
    "dial_callbacks": JobSpec(
        dial_callbacks, 1, "dial due callbacks and campaign tasks: paced, in the callee's window, once each"
    ),
    "collect_survey_answers": JobSpec(
        collect_survey_answers, 60, "automated surveys: the key pressed (1-5) becomes the callback's result"
    ),
    "sweep_queue_abandons": JobSpec(
        sweep_queue_abandons,
        60,
        "a missed-call callback for each caller who hung up waiting in a queue (unless followed up)",
    ),
    "replay_spool": JobSpec(replay_spool, 60, "apply call reports spooled while the database was down"),
    "verify_recordings": JobSpec(
        verify_recordings,
        60,
        "check the recordings of ended calls (file present, duration, sha256); look again at invalid ones",
    ),
    "fetch_twilio_recordings": JobSpec(
        fetch_twilio_recordings, 30, "download Twilio recordings into the store, verify, optionally delete"
    ),
    "sweep_cases": JobSpec(
        sweep_cases, 60, "cases: mark overdue ones delayed, late first replies, warn of promised replies"
    ),
    "draw_qa_sample": JobSpec(
        draw_qa_sample, 3600, "draw yesterday's QA sample once (strata agent × queue) and assign it"
    ),
}


def run(name: str) -> object:
    """The callable stored in the job store: look the job up by name and run it."""
    if _runtime is None:
        raise RuntimeError("scheduler jobs are not bound to a runtime; start them through scheduler.main")
    spec = JOBS[name]
    return spec.func(_runtime)
