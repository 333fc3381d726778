"""Process start-up for long-running servers: load the big tables once, then freeze the heap.

A full garbage collection walks every container object; with phonenumbers' geocoder tables loaded
(about 100 MB of dicts and tuples) one pass takes tens of milliseconds, and a webhook or an AGI
command that happens to trigger it waits that long. ``settle`` loads those tables up front and moves
everything alive at start-up into the collector's permanent generation (``gc.freeze``), so later
collections only walk what the requests create. It also configures SQLAlchemy's mappers, which the
ORM otherwise does on the first query of every worker. Call it once per server process, after
building the application and before forking workers (gunicorn preloads the app, so workers share the
frozen heap).
"""

from __future__ import annotations

import gc

from sqlalchemy.orm import configure_mappers

from callcenter.phone import warm_up


def settle(region: str) -> None:
    warm_up(region)
    # The ORM configures its mappers on the first query; done here, once, instead of in the first
    # request of every worker (that request took 170-200 ms on the 2-core node).
    configure_mappers()
    gc.collect()
    gc.freeze()
