"""PostgreSQL failing under a gunicorn node's steady mixed load (events in, galleries out):
every backend of the app terminated, then the database unreachable for a few seconds.
Requests answer 503 problem+json with `Retry-After`, never a 500 or a hang; the pool and
the actor cache's listener recover by themselves; every event a 200 reported accepted is
stored once. A 503 claims nothing: its batch may or may not be stored (a COMMIT can become
durable just as its connection is cut, and no client can tell), so the client resends it
with the same event ids and each event ends up stored exactly once."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, make_url, select, text

from app.db import owner_sessionmaker
from app.models import Event
from tests.support import APP_ROLE, Tenant, as_administrator
from tests.support.events import event
from tests.support.keys import create_ingest_key
from tests.support.nodes import Node, node_env, start_node
from tests.support.proxy import Proxy

pytestmark = pytest.mark.slow  # ~20 s: a gunicorn start and two faults under load
BATCH = 20
WORKER_TIMEOUT = 30  # gunicorn.conf.py: no answer may take this long


@dataclass
class Answer:
    kind: str
    at: float
    status: int | None  # None: no answer at all
    problem: bool = False
    retry_after: bool = False
    batch: list[dict[str, Any]] = field(default_factory=list)
    took: float = 0.0


@dataclass
class Load:
    """Senders of event batches and readers of a gallery list, until stopped."""

    node: Node
    tenant: Tenant
    key_headers: dict[str, str]
    answers: list[Answer] = field(default_factory=list)
    stopped: threading.Event = field(default_factory=threading.Event)

    def run(self, kind: str) -> None:
        while not self.stopped.is_set():
            batch: list[dict[str, Any]] = []
            start = time.monotonic()
            try:
                if kind == "events":
                    batch = [event(event_id=str(uuid.uuid4())) for _ in range(BATCH)]
                    response = self.send(batch)
                else:
                    response = requests.get(f"{self.node.url}{self.tenant.site_path}/galleries",
                                            headers=self.tenant["member"].headers,
                                            timeout=WORKER_TIMEOUT + 5)
                answer = Answer(kind, start, response.status_code,
                                response.headers.get("Content-Type", "").startswith(
                                    "application/problem+json"),
                                "Retry-After" in response.headers, batch)
            except requests.RequestException:
                answer = Answer(kind, start, None, batch=batch)
            answer.took = time.monotonic() - start
            self.answers.append(answer)

    def send(self, batch: list[dict[str, Any]]) -> requests.Response:
        return requests.post(f"{self.node.url}/v1/events/batch", json={"events": batch},
                             headers=self.key_headers, timeout=WORKER_TIMEOUT + 5)

    def ok_since(self, moment: float) -> int:
        return len([a for a in self.answers if a.at > moment and a.status == 200])


@pytest.fixture
def proxy(database_url: str) -> Iterator[Proxy]:
    url = make_url(database_url)
    road = Proxy((url.host or "127.0.0.1", url.port or 5432))
    road.resume()
    yield road
    road.refuse()


@pytest.fixture(autouse=True)
def _fresh_pool(app: Any) -> Iterator[None]:
    """This process's pool meets the terminations too: later tests start afresh."""
    yield
    app.extensions["db.engine"].dispose()


@pytest.fixture
def node(app: Any, database_url: str, s3_endpoint: str, proxy: Proxy,
         tmp_path: Any) -> Iterator[Node]:
    if not database_url.startswith("postgresql"):
        pytest.skip("the faults are PostgreSQL's")
    env = node_env(app, database_url, s3_endpoint, tmp_path, WEB_CONCURRENCY="2",
                   RATELIMIT_ENABLED="0")
    via_proxy = make_url(env["DATABASE_URL"]).set(host="127.0.0.1", port=proxy.port)
    env["DATABASE_URL"] = via_proxy.render_as_string(hide_password=False)
    started = start_node(env, tmp_path / "node.log")
    yield started
    started.stop()


def wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def stored_ids(app: Any, tenant: Tenant) -> list[str]:
    with owner_sessionmaker(app)() as session:
        return [str(i) for i in session.scalars(
            select(Event.id).where(Event.site_id == tenant.site.id))]


def terminate_app_backends(database_url: str) -> int:
    engine = create_engine(as_administrator(database_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            return conn.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE usename = :role AND datname = current_database()"
            ), {"role": APP_ROLE}).scalar_one()
    finally:
        engine.dispose()


def test_the_database_failing_under_load_is_503_and_loses_no_event(
        app, client, tenant, node, proxy, database_url):
    key = create_ingest_key(client, tenant)
    load = Load(node, tenant, key.headers)
    threads = [threading.Thread(target=load.run, args=(kind,))
               for kind in ("events", "events", "galleries")]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: load.ok_since(0) >= 10, 30, "the node never took the load")

        # 1. Every backend of the app terminated (pool and listener alike).
        killed_at = time.monotonic()
        assert terminate_app_backends(database_url) >= 1
        wait_for(lambda: load.ok_since(killed_at + 0.5) >= 10, 15, "the pool never recovered")

        # 2. The database unreachable for 3 s, then back.
        cut_at = time.monotonic()
        proxy.refuse()
        time.sleep(3)
        proxy.resume()
        wait_for(lambda: load.ok_since(cut_at + 3.2) >= 10, 20, "no recovery after the outage")
        during = [a for a in load.answers if cut_at + 0.2 < a.at < cut_at + 2.8]
    finally:
        load.stopped.set()
        for thread in threads:
            thread.join(timeout=WORKER_TIMEOUT + 10)

    statuses = {a.status for a in load.answers}
    assert statuses <= {200, 503}, statuses
    assert during and {a.status for a in during} == {503}  # refused fast, not hung
    for answer in load.answers:
        assert answer.took < WORKER_TIMEOUT
        if answer.status == 503:
            assert answer.problem and answer.retry_after
    def ids(status: int) -> set[str]:
        return {e["event_id"] for a in load.answers if a.kind == "events" and a.status == status
                for e in a.batch}

    accepted = ids(200)
    assert accepted <= set(stored_ids(app, tenant))
    # What a 503 answered is resent as a client would: stored once, whatever its first fate.
    resent = [a.batch for a in load.answers if a.kind == "events" and a.status == 503]
    assert resent
    for batch in resent:
        response = load.send(batch)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["accepted"] + body["duplicates"] == len(batch) and not body["rejected"]
    stored = stored_ids(app, tenant)
    assert len(stored) == len(set(stored))
    assert set(stored) == accepted | ids(503)

    # The listener came back: a role removed now (by another process) is refused at once.
    galleries = f"{node.url}{tenant.site_path}/galleries"
    member = tenant["member"]
    for _ in range(2):
        assert requests.get(galleries, headers=member.headers, timeout=10).status_code == 200
    for _ in range(3):  # this process's own pool met the fault too: it answers 503 once
        r = client.delete(f"{tenant.org_path}/members/{member.id}",
                          headers=tenant["org_admin"].headers)
        if r.status_code != 503:
            break
    assert r.status_code == 204
    wait_for(lambda: requests.get(galleries, headers=member.headers, timeout=10).status_code
             == 404, 1.0, "the revocation was not honoured within 1 s")

