"""Exactly one active scheduler: the jobs run only in the process holding the leader lease.

Every process renews or tries to take the lease every ``lease_seconds / 3``. A process that takes it
starts APScheduler (the jobs of ``scheduler.jobs.JOBS``, persistent job store in our database) and
the dialler; one that loses it (paused too long, database unreachable) stops them at once. A second
``callcenter scheduler`` therefore waits, and takes over within one lease period of the first one's
death (at once when the first stops cleanly and releases the lease).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from apscheduler.job import Job
from apscheduler.schedulers.background import BackgroundScheduler

from callcenter.db import Database
from callcenter.dialler.lease import Lease
from callcenter.exceptions import ConfigurationError
from callcenter.settings import Settings
from scheduler import jobs
from scheduler.dialling import DiallerRuntime, build_dialling
from scheduler.main import build_scheduler

log = logging.getLogger(__name__)


class LeaderScheduler:
    """APScheduler behind the leader lease; ``start``/``shutdown``/``get_jobs`` like a scheduler."""

    def __init__(
        self, settings: Settings, db: Database, clock: Callable[[], datetime], *, holder: str | None = None
    ) -> None:
        self.settings, self.db, self.clock = settings, db, clock
        self.lease = Lease(db, clock, ttl_s=settings.dialler.lease_seconds, holder=holder)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._scheduler: BackgroundScheduler | None = None
        self._dialling: DiallerRuntime | None = None
        self.became_leader = threading.Event()

    @property
    def leading(self) -> bool:
        return self._scheduler is not None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="scheduler-lease", daemon=True)
        self._thread.start()

    def get_jobs(self) -> list[Job]:
        return [] if self._scheduler is None else list(self._scheduler.get_jobs())

    def shutdown(self, wait: bool = True) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._step_down(wait=wait)
        try:
            self.lease.release()
        except Exception:
            log.exception("releasing the scheduler lease failed; it expires by itself")

    def _run(self) -> None:
        period = self.settings.dialler.lease_seconds / 3
        while not self._stop.is_set():
            try:
                token = self.lease.acquire()
            except Exception:
                log.exception("scheduler lease: database unreachable")
                token = None
            if token is not None and self._scheduler is None:
                self._lead()
            elif token is None and self._scheduler is not None:
                log.warning("scheduler lease lost: stopping the jobs")
                self._step_down(wait=False)
            self._stop.wait(period)

    def _lead(self) -> None:
        try:
            self._dialling = build_dialling(self.settings, self.db, self.clock, self.lease)
        except ConfigurationError as exc:  # the other jobs still run; the dialler waits for settings
            log.error("dialler not started: %s", exc)
            self._dialling = DiallerRuntime(None)
        jobs.bind_dialling(self._dialling)
        scheduler = build_scheduler(self.settings, self.db, self.clock)
        scheduler.start()
        self._scheduler = scheduler
        self.became_leader.set()
        log.info(
            "scheduler leading (%s): %s", self.lease.holder, ", ".join(job.id for job in scheduler.get_jobs())
        )

    def _step_down(self, *, wait: bool) -> None:
        scheduler, dialling = self._scheduler, self._dialling
        self._scheduler = self._dialling = None
        if scheduler is not None:
            scheduler.shutdown(wait=wait)
        if dialling is not None:
            dialling.close()
