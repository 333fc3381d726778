"""Wiring of the scheduler: APScheduler with a persistent SQLAlchemy job store in our database."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from callcenter.db import Database
from callcenter.settings import Settings
from scheduler import jobs

log = logging.getLogger(__name__)


def build_scheduler(settings: Settings, db: Database, clock: Callable[[], datetime]) -> BackgroundScheduler:
    """A scheduler with every job of ``jobs.JOBS`` (re)registered under its name."""
    jobs.bind(jobs.Runtime(settings=settings, db=db, clock=clock))
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=db.engine, tablename="apscheduler_jobs")},
        executors={"default": ThreadPoolExecutor(4)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
        timezone=settings.zone,
    )
    for name, spec in jobs.JOBS.items():
        scheduler.add_job(
            "scheduler.jobs:run",
            trigger="interval",
            seconds=spec.seconds,
            args=[name],
            id=name,
            name=spec.description,
            replace_existing=True,
        )
    return scheduler
