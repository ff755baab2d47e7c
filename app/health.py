"""What this process knows of a dependency it cannot serve some requests without (the
rate-limit counters' Redis, the file storage): up or down, as its real calls or a probe
last said, trusted for `ttl` seconds.

While a dependency is known to be down, requests that need it are answered at once (a 503,
or let through where that was decided) instead of each waiting for a timeout; past `ttl`
the next request tries it again, so recovery is noticed without a restart. A change is
logged once per process as a WARNING whose message is a stable event name operators alert
on (`<name>.unavailable`, then `<name>.recovered`): one line per change, never one per
request of a flood.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

log = logging.getLogger("app.health")


class Health:
    def __init__(self, name: str, ttl: float, clock: Callable[[], float] = time.monotonic,
                 ) -> None:
        self.name = name  # the events' prefix: `ratelimit.storage`, `storage`
        self.ttl = ttl
        self.clock = clock
        self.up = True
        self._at = -math.inf  # when last told
        self._down_since = 0.0
        self._lock = threading.Lock()

    def known(self) -> bool | None:
        """Up or down as last told within `ttl` seconds; None when nothing recent is known."""
        if self.clock() - self._at > self.ttl:
            return None
        return self.up

    def retry_after(self) -> int:
        """Whole seconds until the dependency is tried again (at least 1): `Retry-After`."""
        left = self._at + self.ttl - self.clock()  # -inf: never told
        return max(1, math.ceil(left)) if math.isfinite(left) else 1

    def record(self, up: bool, reason: str = "") -> None:
        """What a real call or a probe just showed (`reason`: what failed, for the log);
        logs a change."""
        now = self.clock()
        with self._lock:
            changed, self.up, self._at = up != self.up, up, now
            if changed and not up:
                self._down_since = now
        if changed and not up:
            log.warning("%s", self.event("unavailable"), extra={"fields": {
                "event": self.event("unavailable"), "reason": reason,
                "retry_seconds": self.ttl}})
        elif changed:
            log.warning("%s", self.event("recovered"), extra={"fields": {
                "event": self.event("recovered"),
                "down_seconds": round(now - self._down_since, 1)}})

    def event(self, what: str) -> str:
        """`ratelimit.storage_unavailable`, `storage.unavailable`: one dot, a stable name."""
        return f"{self.name}_{what}" if "." in self.name else f"{self.name}.{what}"

    def check(self, probe: Callable[[], bool]) -> bool:
        """Up or down: what is known if recent, else what `probe` (which must not raise and
        must answer within its own short timeout) says now."""
        known = self.known()
        if known is not None:
            return known
        up = probe()
        self.record(up)
        return up
