"""Requests per second of four endpoints under gunicorn (2 sync workers, loopback), each
against a bare Flask app (bench/_bare.py) answering the same JSON with hand-written SQL,
served the same way in the same run. Not a test: it prints figures.

    .venv/bin/python bench/endpoints.py    (DATABASE_URL may name the PostgreSQL server)

Seeds a throwaway database (dropped at the end): one organization, one site with 5,000
galleries (30% with a cover) and 1,000 ready assets, and a member of the organization who
reads and creates galleries. The app runs as production does (its runtime role, under
row-level security, rate limits off); the bare app as the administrator. Each endpoint is
loaded by CLIENTS processes, one connection per request (sync workers close them), for
SECONDS, alternating app and bare, ROUNDS times; the medians are printed, with the CPU
each request cost the gunicorn workers and PostgreSQL (its backends and background
processes), from /proc.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from app import create_app  # noqa: E402
from app.auth.keys import KeyRing  # noqa: E402
from app.db import conninfo  # noqa: E402
from bench._common import children, cpu_of, cpu_since, postgres_pids  # noqa: E402
from tests.support import APP_ROLE, as_administrator, as_role, throwaway_database  # noqa: E402

GALLERIES, ASSETS = 5_000, 1_000
CLIENTS, SECONDS, ROUNDS = 4, 3.0, 3


def seed(url: str) -> dict:
    rnd = random.Random(5)
    now = datetime.now(UTC)
    org, site, user, session = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assets = [uuid.uuid4() for _ in range(ASSETS)]
    galleries = [uuid.uuid4() for _ in range(GALLERIES)]
    with psycopg.connect(conninfo(url)) as conn, conn.cursor() as cur:
        def copy(table: str, columns: str, rows) -> None:
            with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as cp:
                for row in rows:
                    cp.write_row(row)

        copy("users", "id, email, password_hash, display_name, created_at, updated_at",
             [(user, f"{user.hex}@bench.test", "-", "Bench", now, now)])
        copy("organizations", "id, name, created_at, updated_at", [(org, "org", now, now)])
        copy("sites", "id, org_id, name, created_at, updated_at", [(site, org, "s", now, now)])
        copy("org_memberships", "id, org_id, user_id, role, created_at, updated_at",
             [(uuid.uuid4(), org, user, "member", now, now)])
        copy("assets", "id, org_id, site_id, key, filename, content_type, size_bytes, status,"
             " tags, created_by, completed_at, created_at, updated_at",
             ((a, org, site, f"orgs/{org}/sites/{site}/assets/{a}", f"{n}.jpg", "image/jpeg",
               1000 + n, "ready", "[]", user, now, now, now) for n, a in enumerate(assets)))
        copy("galleries", "id, org_id, site_id, title, description, cover_asset_id, created_by,"
             " item_count, created_at, updated_at",
             ((g, org, site, f"gallery {n}", "", rnd.choice(assets) if n % 10 < 3 else None,
               user, 0, now - timedelta(seconds=n), now) for n, g in enumerate(galleries)))
        copy("auth_sessions", "id, user_id, last_used_at, expires_at, user_agent, ip,"
             " created_at, updated_at",
             [(session, user, now, now + timedelta(days=1), "", "", now, now)])
        conn.commit()
        cur.execute("ANALYZE")
    return {"org": org, "site": site, "user": user, "session": session,
            "gallery": galleries[2]}  # one with a cover (n % 10 < 3)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(target: str, port: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    env = {**os.environ, **env, "BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "2",
           "LOG_LEVEL": "WARNING"}
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), target],
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def _request(port: int, method: str, path: str, headers: dict, body: bytes | None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _wait(port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{log.read_text()}")
        try:
            _request(port, "GET", "/", {}, None)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not start:\n{log.read_text()}")


def _client(args: tuple) -> int:
    port, method, path, headers, body, until = args
    done = 0
    while time.monotonic() < until:
        status, _ = _request(port, method, path, headers, body)
        assert status in (200, 201), status
        done += 1
    return done


def _rate(pool, server: Server, method: str, path: str, headers: dict,
          body: bytes | None) -> tuple[float, float, float]:
    """(requests/s, worker CPU ms per request, PostgreSQL CPU ms per request)."""
    backends, background = postgres_pids(server.owner_url)
    workers, postgres = cpu_of(children(server.master)), cpu_of(backends + background)
    start = time.monotonic()
    until = start + SECONDS
    done = sum(pool.map(_client, [(server.port, method, path, headers, body, until)] * CLIENTS))
    elapsed = time.monotonic() - start
    worker_cpu, pg_cpu = cpu_since(workers), cpu_since(postgres)
    return done / elapsed, worker_cpu / done * 1000, pg_cpu / done * 1000


@dataclass(frozen=True)
class Server:
    master: int  # the gunicorn master's pid
    port: int
    owner_url: str  # the database's, to find PostgreSQL's processes


def main() -> None:
    started = time.perf_counter()
    keys = {"keys": [KeyRing.generate_key()]}
    with throwaway_database("bench_endpoints") as url, tempfile.TemporaryDirectory() as tmp:
        ids = seed(as_administrator(url))
        app = create_app({"database_url": url, "instance_path": tmp, "jwt_keys": keys,
                          "log_level": "WARNING"})
        token, _ = app.extensions["tokens"].issue_access_token(ids["user"], ids["session"])
        app.extensions["db.engine"].dispose()
        app_port, bare_port = _port(), _port()
        app_log, bare_log = Path(tmp) / "app.log", Path(tmp) / "bare.log"
        servers = [
            (_serve("wsgi:app", app_port, {
                "DATABASE_URL": as_role(url, APP_ROLE), "JWT_KEYS": json.dumps(keys),
                "INSTANCE_PATH": tmp, "RATELIMIT_ENABLED": "0",
                "SECRET_KEY": "bench-secret-key-bench-secret-key-0123456789"}, app_log),
             app_port, app_log),
            (_serve("bench._bare:app", bare_port,
                    {"BARE_DATABASE_URL": conninfo(as_administrator(url))}, bare_log),
             bare_port, bare_log),
        ]
        try:
            for proc, port, log in servers:
                _wait(port, proc, log)
            owner = as_administrator(url)
            run(ids, token, Server(servers[0][0].pid, app_port, owner),
                Server(servers[1][0].pid, bare_port, owner))
        finally:
            for proc, _, _ in servers:
                proc.terminate()
            for proc, _, _ in servers:
                proc.wait(timeout=30)
    print(f"\ntotal {time.perf_counter() - started:.0f}s")


def run(ids: dict, token: str, app: Server, bare: Server) -> None:
    site = f"/orgs/{ids['org']}/sites/{ids['site']}/galleries"
    auth = {"Authorization": f"Bearer {token}"}
    me = {"X-User": str(ids["user"])}
    create_body = json.dumps({"title": "bench", "description": "made by the bench"}).encode()
    json_type = {"Content-Type": "application/json"}
    cases = [  # label, method, app path, bare path, app headers, bare headers, body
        ("GET galleries (page of 20)", "GET", f"/v1{site}", site, auth, {}, None),
        ("GET one gallery", "GET", f"/v1{site}/{ids['gallery']}", f"{site}/{ids['gallery']}",
         auth, {}, None),
        ("POST galleries (create)", "POST", f"/v1{site}", site, {**auth, **json_type},
         {**me, **json_type}, create_body),
        ("GET /v1/me", "GET", "/v1/me", "/me", auth, me, None),
    ]
    for label, method, app_path, bare_path, app_headers, bare_headers, body in cases:
        ours = _request(app.port, method, app_path, app_headers, body)
        theirs = _request(bare.port, method, bare_path, bare_headers, body)
        assert ours[0] == theirs[0] and ours[0] in (200, 201), (label, ours, theirs)
        ours_json, bare_json = json.loads(ours[1]), json.loads(theirs[1])
        if method == "GET":  # the same answer (URLs and cursors are signed differently)
            assert _shape(ours_json) == _shape(bare_json), label
        else:
            assert set(ours_json) == set(bare_json), label

    results = []
    with multiprocessing.get_context("fork").Pool(CLIENTS) as pool:
        for label, method, app_path, bare_path, app_headers, bare_headers, body in cases:
            ours, baseline = [], []
            for _ in range(ROUNDS):
                ours.append(_rate(pool, app, method, app_path, app_headers, body))
                baseline.append(_rate(pool, bare, method, bare_path, bare_headers, body))
            results.append((label, [statistics.median(r) for r in zip(*ours, strict=True)],
                            [statistics.median(r) for r in zip(*baseline, strict=True)]))

    print(f"\ngunicorn, 2 sync workers each, {CLIENTS} client processes, {ROUNDS} rounds of "
          f"{SECONDS:.0f}s per endpoint and app (medians)\n")
    print(f"{'endpoint':<30} {'app req/s':>10} {'bare req/s':>11} {'app / bare':>11}"
          f"   CPU ms per request: workers app / bare, PostgreSQL app / bare")
    for label, (rate, workers, pg), (bare_rate, bare_workers, bare_pg) in results:
        print(f"{label:<30} {rate:10.0f} {bare_rate:11.0f} {rate / bare_rate:10.0%}"
              f"   {workers:5.2f} / {bare_workers:4.2f}, {pg:4.2f} / {bare_pg:4.2f}")
    print("goal: every endpoint at >= 50% of the bare Flask app's requests per second")


def _shape(body):
    """A GET's JSON without what is signed per app: cover URLs' signatures, cursors."""
    if isinstance(body, dict):
        return {k: (v is not None if k in ("cover_url", "next_cursor") else _shape(v))
                for k, v in body.items()}
    if isinstance(body, list):
        return [_shape(v) for v in body]
    return body


if __name__ == "__main__":
    main()
