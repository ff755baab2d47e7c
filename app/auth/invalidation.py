"""Cached actors and live sites, and telling every process when they change.

Resolving an actor (session still live? which roles?) costs queries; doing it on every
request is what a cache avoids. Correctness comes from invalidation, not expiry: whatever
revokes a session or changes a grant calls `user_changed()` (or `everyone_changed()`) in
the same transaction. On PostgreSQL that is a `NOTIFY`, delivered at commit to a
listener thread in every process, which drops the entries. The process that made the
change drops them at once. A process whose listener is not connected does not cache.
SQLite has no such channel, so there the cache stays off.

The same cache remembers which sites were found live (of a live organization): every site
route starts by checking that. A site or organization is only ever deleted, never brought
back, and deleting one calls `everyone_changed()`, which forgets them all.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

if TYPE_CHECKING:  # annotations only: nothing here can test an actor's class
    from app.authz.actors import Principal

log = logging.getLogger("app.auth.cache")

CHANNEL = "auth_changed"
EVERYONE = "*"
_caches: weakref.WeakSet[ActorCache] = weakref.WeakSet()


def user_changed(session: Session, subject_id: object) -> None:
    """The sessions, grants or key of `subject_id` (a user or key id) changed."""
    _notify(session, str(subject_id))


def everyone_changed(session: Session) -> None:
    """Grants of many actors changed at once (an organization or site was deleted)."""
    _notify(session, EVERYONE)


def _notify(session: Session, payload: str) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_notify(CHANNEL, payload)))
    for cache in list(_caches):
        cache.invalidate(payload)


class ActorCache:
    """subject id -> {credential id -> (actor, expiry)}, per process."""

    def __init__(self, conninfo: str | None, ttl: float, max_entries: int = 50_000) -> None:
        self.conninfo = conninfo  # None: no notification channel, so no caching
        self.ttl = ttl
        self.max_entries = max_entries
        self.entries: dict[str, dict[object, tuple[Principal, float]]] = {}
        self.live_sites: dict[tuple[object, object], float] = {}  # (org id, site id) -> expiry
        self.size = 0
        self.generation = 0
        self.lock = threading.Lock()
        self.listening = False
        self.pid: int | None = None
        self.stopped = threading.Event()
        _caches.add(self)

    @property
    def enabled(self) -> bool:
        return self.conninfo is not None and self.ttl > 0

    def get(self, subject: object, credential: object) -> Principal | None:
        if not self.enabled:
            return None
        self._ensure_listener()
        if not self.listening:
            return None
        entry = self.entries.get(str(subject), {}).get(credential)
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def put(
        self, subject: object, credential: object, actor: Principal, generation: int
    ) -> None:
        """Cache `actor` unless an invalidation happened since `generation` was read."""
        if not self.enabled:
            return
        with self.lock:
            if not self.listening or generation != self.generation:
                return
            if self.size >= self.max_entries:
                self.entries.clear()
                self.size = 0
            self.entries.setdefault(str(subject), {})[credential] = (
                actor, time.monotonic() + self.ttl
            )
            self.size += 1

    def site_is_live(self, org_id: object, site_id: object) -> bool:
        """Whether the site was found live (`note_live_site`) since the last deletion."""
        if not self.enabled:
            return False
        self._ensure_listener()
        expiry = self.live_sites.get((org_id, site_id))
        return self.listening and expiry is not None and expiry >= time.monotonic()

    def note_live_site(self, org_id: object, site_id: object, generation: int) -> None:
        """Remember the site live unless an invalidation happened since `generation`."""
        if not self.enabled:
            return
        with self.lock:
            if not self.listening or generation != self.generation:
                return
            if len(self.live_sites) >= self.max_entries:
                self.live_sites.clear()
            self.live_sites[org_id, site_id] = time.monotonic() + self.ttl

    def invalidate(self, payload: str) -> None:
        with self.lock:
            self.generation += 1
            if payload == EVERYONE:
                self.entries.clear()
                self.live_sites.clear()
                self.size = 0
            else:
                self.size -= len(self.entries.pop(payload, {}))

    def _ensure_listener(self) -> None:
        # Started lazily, and again in a forked child: threads do not survive fork.
        if self.pid == os.getpid():
            return
        with self.lock:
            if self.pid == os.getpid():
                return
            self.pid = os.getpid()
            self.listening = False
            threading.Thread(target=self._listen, name="actor-cache", daemon=True).start()

    def _listen(self) -> None:
        import psycopg

        conninfo = self.conninfo
        if conninfo is None:  # no channel: `get` never starts a listener then
            return
        pid = os.getpid()
        while not self.stopped.is_set() and self.pid == pid:
            try:
                with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.invalidate(EVERYONE)  # anything may have changed while deaf
                    self.listening = True
                    while not self.stopped.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self.invalidate(note.payload)
            except Exception:  # any failure: stop caching, then reconnect
                if not self.stopped.is_set():
                    log.warning("actor cache listener disconnected", exc_info=True)
            finally:
                self.listening = False
                self.invalidate(EVERYONE)
            self.stopped.wait(1.0)

    def close(self) -> None:
        self.stopped.set()
