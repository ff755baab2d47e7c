"""Load and loss: several threads send many batches at once through the real app on
PostgreSQL (retries and batches shared between threads included); afterwards every
accepted event is stored exactly once, and the counts the API gave add up."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import orjson
from sqlalchemy import func, select

from app.db import owner_sessionmaker
from app.models import Event
from tests.support.keys import create_api_key, create_ingest_key

THREADS = 6
BATCHES = 30  # per thread, each of BATCH_SIZE events
BATCH_SIZE = 100
INVALID_PER_BATCH = 2
RETRY_EVERY = 5  # every 5th batch is sent twice, as a client that lost the answer would
SHARED = 3  # batches every thread sends (at different moments): concurrent duplicates


def make_batch(rng: random.Random, now: datetime) -> tuple[bytes, set[str], int]:
    """A serialized batch, the ids of its valid events, and how many are invalid."""
    events: list[dict[str, Any]] = []
    valid: set[str] = set()
    for i in range(BATCH_SIZE):
        event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        event = {
            "event_id": event_id,
            "name": rng.choice(["page.view", "click", "signup", "$pageview"]),
            "timestamp": (now - timedelta(seconds=rng.randrange(3600))).isoformat(),
            "distinct_id": f"visitor-{rng.randrange(500)}",
            "properties": {"i": i, "path": f"/p/{rng.randrange(50)}", "tags": ["a", "b"]},
        }
        if i < INVALID_PER_BATCH:
            event["name"] = "-invalid"
        else:
            valid.add(event_id)
        events.append(event)
    rng.shuffle(events)
    return orjson.dumps({"events": events}), valid, INVALID_PER_BATCH


def test_concurrent_batches_are_stored_exactly_once(app, client, tenant):
    ingest_key = create_ingest_key(client, tenant)
    api_key = create_api_key(client, tenant, role="member", site_id=str(tenant.site.id))
    rng = random.Random(20261125)
    now = datetime.now(UTC)
    shared = [make_batch(rng, now) for _ in range(SHARED)]
    plans: list[list[tuple[bytes, set[str], int]]] = []
    for _ in range(THREADS):
        plan = [make_batch(rng, now) for _ in range(BATCHES)]
        for batch in shared:
            plan.insert(rng.randrange(len(plan)), batch)
        retried = [b for i, b in enumerate(plan) if i % RETRY_EVERY == 0]
        for batch in retried:
            plan.insert(plan.index(batch) + 1, batch)
        plans.append(plan)

    results: list[list[tuple[bytes, dict[str, Any]]]] = [[] for _ in range(THREADS)]
    failures: list[str] = []
    start = threading.Barrier(THREADS)

    def worker(n: int) -> None:
        own = app.test_client()
        key = ingest_key if n % 2 else api_key  # both kinds of key, concurrently
        headers = {**key.headers, "Content-Type": "application/json"}
        try:
            start.wait()
            for body, _, _ in plans[n]:
                response = own.post("/v1/events/batch", data=body, headers=headers)
                if response.status_code != 200:
                    failures.append(f"{response.status_code}: {response.get_data(as_text=True)}")
                    return
                results[n].append((body, response.get_json()))
        except Exception as exc:  # reported below, with the thread's number
            failures.append(f"thread {n}: {exc!r}")

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    elapsed = time.perf_counter() - started
    assert not failures, failures[:3]
    assert all(not t.is_alive() for t in threads)

    sent = [b for plan in plans for b in plan]
    responses = [r for per_thread in results for _, r in per_thread]
    assert len(responses) == len(sent)
    accepted = sum(r["accepted"] for r in responses)
    duplicates = sum(r["duplicates"] for r in responses)
    rejected = sum(len(r["rejected"]) for r in responses)
    unique_valid = set().union(*(valid for _, valid, _ in sent))

    with owner_sessionmaker(app)() as session:
        rows = session.scalar(select(func.count()).select_from(Event))
        stored_ids = {str(i) for i in session.scalars(select(Event.id))}
        repeated = session.execute(
            select(Event.id, func.count()).group_by(Event.id).having(func.count() > 1)
        ).all()
        sites = set(session.scalars(select(Event.site_id).distinct()))

    # Every accepted event is stored exactly once; nothing else is stored.
    assert repeated == []
    assert rows == accepted == len(unique_valid)
    assert stored_ids == unique_valid
    assert sites == {tenant.site.id}
    # Every valid event sent is either accepted or counted as a duplicate, once per send.
    assert accepted + duplicates == sum(len(valid) for _, valid, _ in sent)
    assert rejected == sum(invalid for _, _, invalid in sent)
    # Per batch body: over all its sends, its valid events were accepted exactly once.
    per_body: Counter[bytes] = Counter()
    for per_thread in results:
        for body, response in per_thread:
            per_body[body] += response["accepted"]
    assert all(per_body[body] == len(valid) for body, valid, _ in sent)
    # A retry right after its first send stores nothing new.
    for per_thread in results:
        for (body, first), (again, second) in pairwise(per_thread):
            if again == body:
                assert second["accepted"] == 0
                assert second["duplicates"] == first["accepted"] + first["duplicates"]
    print(f"\n{len(sent)} batches, {rows} events stored in {elapsed:.1f}s "
          f"({(accepted + duplicates) / elapsed:,.0f} events/s through the test client)")
