"""What authenticating a request costs, with and without the actor cache.

Prints per-request p50 latency (in-process WSGI, PostgreSQL) and SQL statements per
request for: a bare Flask endpoint (the baseline), the app's public /healthz, and an
authenticated GET /v1/orgs/{id} with the actor cache off and on. The cache is what lets
a revoked session fail at once without a query per request (see app/auth/invalidation.py).

    .venv/bin/python bench/auth_check.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from flask import Flask
from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import create_app
from app.auth.keys import KeyRing
from tests.support import World, throwaway_database

ROUNDS = 2000


def measure(client, path: str, headers: dict[str, str], engine=None) -> tuple[float, float]:
    statements = [0]
    if engine is not None:
        def count(*_args):
            statements[0] += 1
        event.listen(engine, "before_cursor_execute", count)
    for _ in range(200):  # warm up
        assert client.get(path, headers=headers).status_code == 200
    statements[0] = 0
    samples = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        response = client.get(path, headers=headers)
        samples.append(time.perf_counter() - started)
        assert response.status_code == 200
    if engine is not None:
        event.remove(engine, "before_cursor_execute", count)
    return statistics.median(samples) * 1e6, statistics.mean([statements[0] / ROUNDS])


def main() -> None:
    bare = Flask("bare")
    bare.add_url_rule("/ping", "ping", lambda: {"status": "ok"})
    rows = [("bare Flask endpoint", *measure(bare.test_client(), "/ping", {}))]
    with throwaway_database("bench_auth") as url, tempfile.TemporaryDirectory() as instance:
        keys = {"keys": [KeyRing.generate_key()]}
        for label, ttl in (("auth, cache off", 0), ("auth, cache on", 60)):
            app = create_app({
                "database_url": url, "instance_path": instance, "jwt_keys": keys,
                "auth_cache_ttl_seconds": ttl, "log_level": "ERROR",
            })
            world = World(app)
            person = world.user()
            org = world.org()
            world.grant_org(person, org, "viewer")
            client = app.test_client()
            engine = app.extensions["db.engine"]
            if ttl == 0:
                rows.append(("app /healthz (public)", *measure(client, "/healthz", {}, engine)))
            rows.append((f"GET /v1/orgs/{{id}}, {label}",
                         *measure(client, f"/v1/orgs/{org.id}", person.headers, engine)))
            app.extensions["actor_cache"].close()
            engine.dispose()
    baseline = rows[0][1]
    print(f"{'case':40} {'p50 us':>9} {'x bare':>7} {'SQL/req':>8}")
    for name, p50, sql in rows:
        print(f"{name:40} {p50:9.0f} {p50 / baseline:7.1f} {sql:8.2f}")


if __name__ == "__main__":
    main()
