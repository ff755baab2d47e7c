"""Soak: mixed traffic at a steady rate for minutes, against gunicorn (2 sync workers) on
PostgreSQL and Redis, on loopback. Not a test: it prints figures, and exits 1 on any
error response (or none at all).

    .venv/bin/python bench/soak.py [--minutes 5] [--rate 20] [--clients 8]
                                   (DATABASE_URL may name the PostgreSQL server)

One throwaway database (dropped at the end): an organization, a site, 200 galleries, an
ingest key, and a member with a real password. gunicorn runs the app as production does
(its runtime role under row-level security; rate limits on, counted in Redis database 11,
budgets too large to bite; no worker recycling, so RSS is the workers' own). Requests are
scheduled at `--rate` per second, open loop (a slow answer does not slow the schedule),
mixed: 45% reads (the gallery list, one gallery), 15% writes (a new gallery), 35%
ingestion (a 20-event batch), 5% logins (argon2, on purpose). Each access token used comes
from the latest login.

Printed per minute: requests, errors, p50/p99 per kind and overall (ms, from the request's
send), and each worker's RSS (MiB) at the minute's end. Goal (issue 18): no error, RSS
growth under 10% after the first minute, p99 flat.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import redis  # noqa: E402
from sqlalchemy import create_engine  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from app.auth.keys import KeyRing  # noqa: E402
from app.auth.passwords import hash_password  # noqa: E402
from app.db import conninfo  # noqa: E402
from app.models import Site  # noqa: E402
from app.services import credentials  # noqa: E402
from app.services.audit import Author  # noqa: E402
from bench._common import children  # noqa: E402
from tests.support import (  # noqa: E402
    APP_ROLE,
    as_administrator,
    as_role,
    throwaway_database,
)

PASSWORD = "soak password, long enough"  # the seeded member's, this run only
REDIS_URL = "redis://127.0.0.1:6379/11"
GALLERIES = 200
BATCH = 20
MIX = [("read", 45), ("write", 15), ("ingest", 35), ("login", 5)]


# -- setup -----------------------------------------------------------------------------------


def seed(owner_url: str) -> dict[str, object]:
    now = datetime.now(UTC)
    org, site, user = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    email = f"soak-{user.hex[:8]}@bench.test"
    galleries = [uuid.uuid4() for _ in range(GALLERIES)]
    with psycopg.connect(conninfo(as_administrator(owner_url))) as conn, conn.cursor() as cur:
        def copy(table: str, columns: str, rows: object) -> None:
            with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as cp:
                for row in rows:  # type: ignore[attr-defined]
                    cp.write_row(row)

        copy("users", "id, email, password_hash, display_name, email_verified_at, created_at,"
             " updated_at", [(user, email, hash_password(PASSWORD), "Soak", now, now, now)])
        copy("organizations", "id, name, created_at, updated_at", [(org, "soak", now, now)])
        copy("sites", "id, org_id, name, created_at, updated_at", [(site, org, "s", now, now)])
        copy("org_memberships", "id, org_id, user_id, role, created_at, updated_at",
             [(uuid.uuid4(), org, user, "member", now, now)])
        copy("galleries", "id, org_id, site_id, title, description, cover_asset_id, created_by,"
             " item_count, created_at, updated_at",
             ((g, org, site, f"gallery {n}", "", None, user, 0, now - timedelta(seconds=n), now)
              for n, g in enumerate(galleries)))
        conn.commit()
        cur.execute("ANALYZE")
    engine = create_engine(owner_url)
    try:
        with Session(engine) as session, session.begin():
            row = session.get(Site, site)
            assert row is not None
            _, key = credentials.create_ingest_key(session, row, name="soak",
                                                   allowed_origins=[],
                                                   by=Author("user", user, None))
    finally:
        engine.dispose()
    return {"org": org, "site": site, "email": email, "key": key, "gallery": galleries[7]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:app"],
            cwd=ROOT, env={**os.environ, **env, "BIND": f"127.0.0.1:{port}"},
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200 and len(children(proc.pid)) == 2:
                conn.close()
                return proc
        time.sleep(0.2)  # a server starting: no expiry is being waited on
    stop(proc)
    raise RuntimeError(f"gunicorn did not start:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def rss_mib(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# -- the traffic -----------------------------------------------------------------------------


@dataclass
class Results:
    started: float
    latencies: dict[int, dict[str, list[float]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list)))
    errors: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, at: float, kind: str, took_ms: float, error: str | None) -> None:
        minute = int((at - self.started) // 60)
        with self.lock:
            self.latencies[minute][kind].append(took_ms)
            if error is not None:
                self.errors[minute].append(error)


class Traffic:
    def __init__(self, port: int, ids: dict[str, object], results: Results) -> None:
        self.port, self.ids, self.results = port, ids, results
        self.token = ""
        self.local = threading.local()
        site = f"/v1/orgs/{ids['org']}/sites/{ids['site']}"
        self.paths = {"list": f"{site}/galleries?limit=20", "one": f"{site}/galleries/"
                      f"{ids['gallery']}", "create": f"{site}/galleries"}
        self.rng = random.Random(18)

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                                timeout=30)
        return conn

    def request(self, method: str, path: str, body: object | None,
                headers: dict[str, str]) -> tuple[int, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {**headers, **({"Content-Type": "application/json"} if data else {})}
        for attempt in (1, 2):  # sync workers close idle keep-alive connections
            conn = self._conn()
            try:
                conn.request(method, path, body=data, headers=headers)
                response = conn.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, ConnectionError):
                conn.close()
                self.local.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def login(self) -> None:
        status, data = self.request("POST", "/v1/auth/login", {
            "email": self.ids["email"], "password": PASSWORD}, {})
        if status != 200:
            raise Failure(f"login {status}: {data[:200]!r}")
        self.token = json.loads(data)["access_token"]

    def one(self, kind: str) -> None:
        """One request of `kind`; a Failure for any answer but the expected one."""
        auth = {"Authorization": f"Bearer {self.token}"}
        if kind == "login":
            self.login()
            return
        if kind == "read":
            path = self.paths["list"] if self.rng.random() < 0.7 else self.paths["one"]
            status, data = self.request("GET", path, None, auth)
            expected = 200
        elif kind == "write":
            status, data = self.request("POST", self.paths["create"], {
                "title": f"soak {uuid.uuid4().hex[:8]}"}, auth)
            expected = 201
        else:
            now = datetime.now(UTC).isoformat(timespec="milliseconds")
            events = [{"event_id": str(uuid.uuid4()), "name": "page.view", "timestamp": now,
                       "distinct_id": f"v-{self.rng.randrange(1000)}",
                       "properties": {"path": f"/p/{self.rng.randrange(100)}"}}
                      for _ in range(BATCH)]
            status, data = self.request("POST", "/v1/events/batch", {"events": events},
                                        {"Authorization": f"Bearer {self.ids['key']}"})
            expected = 200
            if status == 200 and json.loads(data)["accepted"] != BATCH:
                raise Failure(f"ingest accepted {json.loads(data)['accepted']} of {BATCH}")
        if status != expected:
            raise Failure(f"{kind} {status}: {data[:200]!r}")

    def timed(self, kind: str) -> None:
        began = time.monotonic()
        error: str | None = None
        try:
            self.one(kind)
        except Failure as exc:
            error = str(exc)
        except (OSError, http.client.HTTPException) as exc:
            error = f"{kind}: no answer ({type(exc).__name__})"
        self.results.add(began, kind, (time.monotonic() - began) * 1000, error)


class Failure(Exception):
    pass


def pct(samples: list[float], q: int) -> float:
    if len(samples) < 2:
        return samples[0] if samples else float("nan")
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def report(results: Results, minute: int, pids: list[int]) -> tuple[float, list[float]]:
    kinds = results.latencies[minute]
    every = [ms for samples in kinds.values() for ms in samples]
    rss = [rss_mib(pid) for pid in pids]
    parts = [f"{kind} {pct(kinds[kind], 50):.0f}/{pct(kinds[kind], 99):.0f}"
             for kind, _ in MIX if kinds.get(kind)]
    print(f"minute {minute + 1}: {len(every)} requests, {len(results.errors[minute])} errors; "
          f"p50/p99 ms all {pct(every, 50):.1f}/{pct(every, 99):.1f} ({', '.join(parts)}); "
          f"RSS MiB " + ", ".join(f"worker {pid} {mib:.1f}" for pid, mib in zip(pids, rss,
                                                                              strict=True)),
          flush=True)
    return pct(every, 99), rss


def run(port: int, master: int, ids: dict[str, object], args: argparse.Namespace) -> int:
    results = Results(time.monotonic())
    traffic = Traffic(port, ids, results)
    traffic.login()
    kinds = [kind for kind, weight in MIX for _ in range(weight)]
    schedule = random.Random(5)
    interval = 1 / args.rate
    pids = children(master)
    print(f"gunicorn master {master}, workers {pids}; {args.rate} requests/s for "
          f"{args.minutes} min, mix {dict(MIX)} (%)", flush=True)
    p99s: list[float] = []
    rss_by_minute: list[list[float]] = []

    def reporter() -> None:
        """Each minute's figures 5 s after it ends (its last requests answer meanwhile),
        from a thread of its own: the schedule never waits for a report."""
        for minute in range(args.minutes):
            time.sleep(max(0.0, results.started + (minute + 1) * 60 + 5 - time.monotonic()))
            p99, rss = report(results, minute, pids)
            p99s.append(p99)
            rss_by_minute.append(rss)

    printer = threading.Thread(target=reporter)
    printer.start()
    with ThreadPoolExecutor(max_workers=args.clients) as pool:
        n = 0
        end = results.started + args.minutes * 60
        while (due := results.started + n * interval) < end:
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(traffic.timed, schedule.choice(kinds))
            n += 1
    printer.join()
    errors = [e for minute in sorted(results.errors) for e in results.errors[minute]]
    if children(master) != pids:
        errors.append(f"workers changed: {pids} -> {children(master)} (a worker died?)")
    if len(rss_by_minute) > 1:
        growth = [(last - first) / first * 100 for first, last in
                  zip(rss_by_minute[0], rss_by_minute[-1], strict=True)]
        print("RSS growth after the first minute: "
              + ", ".join(f"worker {pid} {g:+.1f}%" for pid, g in zip(pids, growth,
                                                                       strict=True)))
        print(f"p99 per minute (ms): {', '.join(f'{p:.0f}' for p in p99s)}; "
              f"last/first {p99s[-1] / p99s[0]:.2f}")
    print(f"{n} requests, {len(errors)} errors")
    for error in errors[:20]:
        print("  error:", error)
    return 1 if errors else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=5)
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second")
    parser.add_argument("--clients", type=int, default=8, help="concurrent requests at most")
    args = parser.parse_args()
    redis.Redis.from_url(REDIS_URL).flushdb()
    keys = {"keys": [KeyRing.generate_key()]}
    with throwaway_database("soak") as url, tempfile.TemporaryDirectory() as tmp:
        ids = seed(url)
        port = free_port()
        log = Path(tmp) / "gunicorn.log"
        proc = serve({
            "DATABASE_URL": as_role(url, APP_ROLE), "MIGRATION_DATABASE_URL": url,
            "JWT_KEYS": json.dumps(keys), "INSTANCE_PATH": tmp,
            "SECRET_KEY": "soak-secret-key-soak-secret-key-0123456789",
            "WEB_CONCURRENCY": "2", "GUNICORN_MAX_REQUESTS": "0", "LOG_LEVEL": "WARNING",
            "RATELIMIT_STORAGE_URI": REDIS_URL, "RATELIMIT_PER_IP": "1000000 per minute",
            "RATELIMIT_PER_ACCOUNT": "1000000 per minute",
            "INGEST_RATE_LIMIT": "1000000000 per minute",
        }, port, log)
        try:
            status = run(port, proc.pid, ids, args)
        finally:
            stop(proc)
        if status:
            print("gunicorn's log (last lines):\n" + log.read_text()[-2000:])
    return status


if __name__ == "__main__":
    sys.exit(main())
