"""The scheduler process: APScheduler 3.11 with its job store in our database.

Jobs are registered in one table (``scheduler.jobs.JOBS``). The persistent job store keeps only a
textual reference to ``scheduler.jobs:run`` and the job's name; the live dependencies (database,
settings, clock) are handed in by :func:`scheduler.main.build_scheduler`, once per process.
"""
