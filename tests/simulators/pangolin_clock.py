"""The Pangolin simulator's clock: real time plus an offset that tests can advance.

Part of the Pangolin simulator (``tests/simulators/pangolin.py`` puts the parts together).
Everything the simulator stamps or schedules reads this clock: ``createdAt`` of orgs and
keys, the request log's timestamps, its 5-second write buffer, the 300-second cache of
an org's retention setting and the 3-hourly retention cleanup. Left alone it runs with
real time, so nothing changes for code that never touches it; ``advance(seconds)``
moves it forward at once (never backward) and then lets the simulator apply what has
become due, so a test sees a buffer flush or a cleanup without sleeping. ``freeze()``
stops real time from moving it (only ``advance`` does then), for a test that needs the
exact second; ``reset()`` returns to real time.
"""

import time
from datetime import datetime, timezone


class SimClock:
    """``now()`` = ``time.time()`` + an offset; ``advance()`` grows the offset.

    ``on_advance`` (set by the simulator) is called after each advance, under no lock of
    the clock's own: the simulator takes its lock there and applies what is due.
    """

    def __init__(self, on_advance=None):
        self.offset = 0.0
        self.frozen_at = None  # real time at which freeze() stopped the clock
        self.on_advance = on_advance

    def now(self):
        """Seconds since the epoch, as a float (``Date.now() / 1000``)."""
        return (time.time() if self.frozen_at is None else self.frozen_at) + self.offset

    def freeze(self):
        """Stop following real time: ``now()`` moves only by ``advance()`` from here."""
        if self.frozen_at is None:
            self.frozen_at = time.time()
        return self.now()

    def unfreeze(self):
        """Follow real time again, from where the clock stands (it does not jump back)."""
        if self.frozen_at is not None:
            self.offset += self.frozen_at - time.time()
            self.frozen_at = None

    def advance(self, seconds):
        """Move the clock forward by ``seconds`` (>= 0), then apply what became due."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self.offset += seconds
        if self.on_advance is not None:
            self.on_advance()
        return self.now()

    def reset(self):
        """Back to real time (the simulator's ``reset()``: a fresh server)."""
        self.offset = 0.0
        self.frozen_at = None

    def iso(self):
        """``new Date().toISOString()``: milliseconds and a ``Z``."""
        return datetime.fromtimestamp(self.now(), timezone.utc).isoformat(
            timespec="milliseconds").replace("+00:00", "Z")
