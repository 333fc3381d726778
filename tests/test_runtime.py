"""``settle``: what a server process does once before it forks its workers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import gc
import callcenter.models
from callcenter.db.base import Base
from callcenter.runtime import settle

mappers = list(Base.registry.mappers)
before = sum(mapper.configured for mapper in mappers)
settle("CN")
print(len(mappers), before, sum(mapper.configured for mapper in mappers), gc.get_freeze_count() > 0)
"""


def test_settle_configures_the_orm_and_freezes_the_heap_before_workers_fork() -> None:
    # A fresh interpreter: in the test process other tests have configured the mappers long ago.
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    mappers, before, after, frozen = int(out[0]), int(out[1]), int(out[2]), out[3]
    assert mappers > 10
    assert before == 0  # the first query of every worker would have configured them
    assert after == mappers and frozen == "True"
