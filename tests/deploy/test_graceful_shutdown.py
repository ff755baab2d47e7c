"""SIGTERM to gunicorn under ingest load: the requests its workers took are answered, every
event an answer reported accepted is stored once, and a request left unanswered stored
nothing (so its sender may safely retry it)."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from sqlalchemy import select

from app.db import owner_sessionmaker
from app.models import Event
from tests.support import Tenant
from tests.support.events import event
from tests.support.keys import create_ingest_key
from tests.support.nodes import node_env, start_node

pytestmark = pytest.mark.slow  # ~10 s: a gunicorn start and a few seconds of load
SENDERS = 4
BATCH = 50


@dataclass
class Sent:
    ids: list[str]
    status: int | None = None  # None: no answer (refused, reset or cut off)
    accepted: int = 0


@dataclass
class Load:
    sent: list[Sent] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def sender(self, url: str, headers: dict[str, str]) -> None:
        while not self.stop.is_set():
            batch = [event(event_id=str(uuid.uuid4())) for _ in range(BATCH)]
            sent = Sent([e["event_id"] for e in batch])
            try:
                response = requests.post(url, json={"events": batch}, headers=headers,
                                         timeout=30)
                sent.status = response.status_code
                if response.status_code == 200:
                    sent.accepted = response.json()["accepted"]
            except requests.RequestException:
                pass
            with self.lock:
                self.sent.append(sent)


def stored_ids(app: Any, tenant: Tenant) -> list[str]:
    with owner_sessionmaker(app)() as session:
        return [str(i) for i in session.scalars(
            select(Event.id).where(Event.site_id == tenant.site.id))]


def test_sigterm_under_load_answers_what_it_took_and_loses_no_event(
        app, client, tenant, database_url, s3_endpoint, tmp_path):
    if not database_url.startswith("postgresql"):
        pytest.skip("gunicorn in production runs on PostgreSQL")
    env = node_env(app, database_url, s3_endpoint, tmp_path, WEB_CONCURRENCY="2",
                   RATELIMIT_ENABLED="0")
    node = start_node(env, tmp_path / "node.log")
    try:
        key = create_ingest_key(client, tenant)
        load = Load()
        threads = [threading.Thread(target=load.sender, args=(
            f"{node.url}/v1/events/batch", key.headers)) for _ in range(SENDERS)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while len([s for s in load.sent if s.status == 200]) < 20:  # under load now
            assert time.monotonic() < deadline, "the node never took the load"
            time.sleep(0.05)
        os.kill(node.process.pid, signal.SIGTERM)  # the master: a graceful stop
        assert node.process.wait(timeout=30) == 0, node.log.read_text()[-4000:]
        load.stop.set()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        node.stop()

    stored = stored_ids(app, tenant)
    assert len(stored) == len(set(stored))  # once each
    stored_set = set(stored)
    answered = [s for s in load.sent if s.status is not None]
    assert {s.status for s in answered} == {200}, {s.status for s in answered}
    for sent in answered:
        assert sent.accepted == BATCH and set(sent.ids) <= stored_set
    unanswered = [s for s in load.sent if s.status is None]
    assert unanswered, "the load went on past the stop: some requests found no server"
    for sent in unanswered:  # never taken, or rolled back: nothing of it was kept
        assert not set(sent.ids) & stored_set
    assert len(stored_set) == BATCH * len(answered)
