"""Process start-up for long-running servers: load the big tables once, then freeze the heap.

A full garbage collection walks every container object; with phonenumbers' geocoder tables loaded
(about 100 MB of dicts and tuples) one pass takes tens of milliseconds, and a webhook or an AGI
command that happens to trigger it waits that long. ``settle`` loads those tables up front and moves
everything alive at start-up into the collector's permanent generation (``gc.freeze``), so later
collections only walk what the requests create. Call it once per server process, after building the
application and before forking workers (gunicorn preloads the app, so workers share the frozen heap).
"""

from __future__ import annotations

import gc

from callcenter.phone import warm_up


def settle(region: str) -> None:
    warm_up(region)
    gc.collect()
    gc.freeze()
