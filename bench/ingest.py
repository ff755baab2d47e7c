"""Event ingestion end to end (gunicorn + PostgreSQL) next to the raw COPY limit.

One run, one throwaway database:

1. seed an organization, a site and an ingest key;
2. start gunicorn (gunicorn.conf.py, `wsgi:app`) on a free loopback port, rate limits in
   Redis as in production (memory:// when no Redis answers);
3. in each of `--rounds` rounds, three phases of `--duration` seconds, alternated so that
   drift on a shared machine hits each:
   - end to end: client processes POST pre-built 100-event batches over HTTP/1.1
     (http.client, keep-alive when the worker class allows it): events/s;
   - a bare Flask endpoint (bench/_bare.py) under the same gunicorn settings, sent batches
     of the same kind: it passes each body to the same INSERT as the administrator, with
     no key, limit, validation or row-level security: what any Flask app under gunicorn
     would reach, doing nothing but storing;
   - the raw limit: the same batches written straight to PostgreSQL with COPY (one
     transaction per batch, no HTTP, no validation) by as many processes as gunicorn has
     workers: events/s;
   the figures are the medians over the rounds, the ratio the median of each round's;
4. where the time goes: CPU per request in the gunicorn workers, PostgreSQL and the
   clients during the HTTP phase, then an in-process breakdown of one request and a
   cProfile of the same request.

Every event id is unique (the 8 leading hex digits are rewritten per request), so every
event is a real insert. The rate limiter stays on with a budget too large to bite.
Cleanup (gunicorn, clients, the database) runs even when a step fails.

    .venv/bin/python bench/ingest.py [--duration 6] [--rounds 3] [--workers 4] [--clients 6]
                                     [--worker-class sync|gthread] [--threads 1]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import http.client
import importlib
import io
import json
import multiprocessing as mp
import os
import pstats
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
from sqlalchemy import create_engine, make_url, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from app.auth.keys import KeyRing  # noqa: E402
from app.db import conninfo  # noqa: E402
from app.models import Organization, Site  # noqa: E402
from app.services import credentials  # noqa: E402
from app.services.audit import Author  # noqa: E402
from bench._common import children, cpu_of, cpu_seconds, cpu_since, postgres_pids  # noqa: E402
from tests.support import as_administrator, throwaway_database  # noqa: E402

BATCH = 100
TEMPLATES = 64  # distinct pre-built batches
TAG = b"eeeeeeee"  # leading hex digits of every event id, rewritten per request
APP_ROLE = os.environ.get("APP_DB_ROLE", "tenant_api_app")
COLUMNS = "org_id, site_id, event_id, name, ts, received_at, distinct_id, properties"
NAMES = ["$pageview", "page.view", "click", "signup", "add_to_cart", "purchase"]


# -- the batches --------------------------------------------------------------------------------


def build_events(rng: random.Random, template: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    events = []
    for i in range(BATCH):
        events.append({
            "event_id": f"{TAG.decode()}-{template:04x}-4{i:03x}-8{rng.getrandbits(12):03x}-"
                        f"{rng.getrandbits(48):012x}",
            "name": rng.choice(NAMES),
            "timestamp": (now - timedelta(seconds=rng.randrange(3600))).isoformat(
                timespec="milliseconds"),
            "distinct_id": f"visitor-{rng.randrange(100_000)}",
            "properties": {
                "path": f"/products/{rng.randrange(5000)}",
                "referrer": rng.choice(["https://www.google.com/", "", "https://news.example/"]),
                "screen": {"w": 1920, "h": 1080},
                "utm": {"source": "newsletter", "campaign": f"spring-{rng.randrange(9)}"},
                "price": round(rng.uniform(1, 500), 2),
                "items": [{"sku": f"SKU-{rng.randrange(999)}", "qty": rng.randrange(1, 4)}],
                "logged_in": rng.random() < 0.3,
            },
        })
    return events


def _copy_field(value: str) -> str:
    return (value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
            .replace("\r", "\\r"))


def copy_rows(events: list[dict[str, Any]], org_id: uuid.UUID, site_id: uuid.UUID) -> bytes:
    """The same events as COPY text rows (what the endpoint would store), not validated."""
    received = datetime.now(UTC).isoformat()
    lines = []
    for e in events:
        fields = [str(org_id), str(site_id), e["event_id"], e["name"], e["timestamp"], received,
                  e["distinct_id"], orjson.dumps(e["properties"]).decode()]
        lines.append("\t".join(_copy_field(f) for f in fields) + "\n")
    return "".join(lines).encode()


def stamp(template: bytes, worker: int, seq: int) -> bytes:
    return template.replace(TAG, b"%02x%06x" % (worker, seq & 0xFFFFFF))


# -- processes ----------------------------------------------------------------------------------


def http_client(index: int, port: int, bodies: list[bytes], headers: dict[str, str],
                warm_from: float, start: float, end: float, results: Any) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    seq = accepted = warm_accepted = requests = warm_requests = reconnects = 0
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    while time.time() < warm_from:
        time.sleep(0.001)
    while True:
        sent_at = time.time()
        if sent_at >= end:
            break
        body = stamp(bodies[seq % len(bodies)], index, seq) if bodies else None
        seq += 1
        began = time.perf_counter()
        try:
            if body is None:  # the floor: a public no-op endpoint
                conn.request("GET", "/healthz")
            else:
                conn.request("POST", "/v1/events/batch", body, headers)
            response = conn.getresponse()
            data = response.read()
        except (http.client.HTTPException, ConnectionError):
            conn.close()
            reconnects += 1
            continue
        took = time.perf_counter() - began
        count = orjson.loads(data).get("accepted", 0) if response.status == 200 else 0
        if sent_at < start:
            warm_accepted += count
            warm_requests += 1
            continue
        statuses[response.status] += 1
        accepted += count
        requests += 1
        latencies.append(took)
    conn.close()
    results.put({"accepted": accepted, "warm_accepted": warm_accepted, "requests": requests,
                 "warm_requests": warm_requests,
                 "statuses": dict(statuses), "latencies": latencies, "reconnects": reconnects,
                 "cpu": _own_cpu()})


def copy_writer(index: int, conninfo: str, rows: list[bytes], warm_from: float, start: float,
                end: float, results: Any) -> None:
    import psycopg

    written = seq = 0
    with psycopg.connect(conninfo) as conn:
        while time.time() < warm_from:
            time.sleep(0.001)
        cpu_began = _own_cpu()
        while True:
            began = time.time()
            if began >= end:
                break
            data = stamp(rows[seq % len(rows)], index, seq)
            seq += 1
            with conn.cursor() as cur, cur.copy(f"COPY events ({COLUMNS}) FROM STDIN") as copy:
                copy.write(data)
            conn.commit()
            if began >= start:
                written += BATCH
        backend_cpu = cpu_seconds(conn.info.backend_pid)  # this connection's whole life
    results.put({"written": written, "batches": seq, "pg_cpu": backend_cpu,
                 "cpu": _own_cpu() - cpu_began})


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def run_processes(target: Any, args_for: list[tuple], start_in: float, warmup: float,
                  duration: float) -> tuple[list[dict[str, Any]], float, float]:
    """Start one process per args tuple; they warm up, then measure [start, end)."""
    ctx = mp.get_context("fork")
    results = ctx.Queue()
    start = time.time() + start_in + warmup
    end = start + duration
    procs = [ctx.Process(target=target, args=(*a, start - warmup, start, end, results))
             for a in args_for]
    try:
        for p in procs:
            p.start()
        out = [results.get(timeout=start_in + warmup + duration + 60) for _ in procs]
        for p in procs:
            p.join(timeout=10)
        return out, start, end
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)


# -- setup --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def runtime_url(owner_url: str) -> tuple[str, str]:
    """The role the app runs as: the row-level-security role when it exists and was
    granted the tables by the migrations, else the owner."""
    engine = create_engine(owner_url)
    try:
        with engine.connect() as conn:
            granted = conn.execute(text(
                "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = :r) AND "
                "has_table_privilege(:r, 'events', 'INSERT')"
            ), {"r": APP_ROLE}).scalar()
    finally:
        engine.dispose()
    if granted:
        url = make_url(owner_url).set(username=APP_ROLE).render_as_string(hide_password=False)
        return url, f"{APP_ROLE} (row-level security applies)"
    return owner_url, "the tables' owner (no row-level security)"


def seed(owner_url: str) -> tuple[uuid.UUID, uuid.UUID, str]:
    engine = create_engine(owner_url)
    try:
        with Session(engine) as session, session.begin():
            org = Organization(id=uuid.uuid4(), name="Bench")
            session.add(org)
            session.flush()
            site = Site(id=uuid.uuid4(), org_id=org.id, name="Bench site")
            session.add(site)
            session.flush()
            _, secret = credentials.create_ingest_key(
                session, site, name="bench", allowed_origins=[], by=Author("bench", None, None)
            )
            return org.id, site.id, secret
    finally:
        engine.dispose()


def count_events(owner_url: str) -> int:
    engine = create_engine(owner_url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM events")).scalar_one()
    finally:
        engine.dispose()


def truncate_events(owner_url: str) -> None:
    engine = create_engine(owner_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("TRUNCATE events"))
    finally:
        engine.dispose()


def app_env(owner_url: str, url: str, instance: str, jwt_keys: str, port: int,
            args: argparse.Namespace) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "MIGRATION_DATABASE_URL": owner_url,
        "INSTANCE_PATH": instance,
        "JWT_KEYS": jwt_keys,
        "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": str(args.workers),
        "GUNICORN_WORKER_CLASS": args.worker_class,
        "GUNICORN_THREADS": str(args.threads),
        "GUNICORN_MAX_REQUESTS": "0",  # no worker restarts inside the window
        "LOG_LEVEL": "WARNING",  # one access line per request would be measured too
        "INGEST_RATE_LIMIT": "1000000000 per minute",  # the limiter runs; it never bites
        "RATELIMIT_STORAGE_URI": args.ratelimit_storage,
        "PYTHONPATH": str(ROOT),
    }


def default_limiter_storage() -> str:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
    except OSError:
        return "memory://"
    return "redis://127.0.0.1:6379/15"


def start_gunicorn(env: dict[str, str], port: int,
                   target: str = "wsgi:app") -> subprocess.Popen[bytes]:
    gunicorn = Path(sys.executable).with_name("gunicorn")
    proc = subprocess.Popen(
        [str(gunicorn), "-c", "gunicorn.conf.py", target], cwd=ROOT, env=env,
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return proc
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer /healthz within 60 s")


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)  # the master we started, and its workers
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


# -- where the time goes (in process) -----------------------------------------------------------


STEPS = [  # (label, module, attribute): the first is the whole request
    ("whole request (WSGI app)", "flask.app", "Flask.wsgi_app"),
    ("authenticate (ingest key, cached actor)", "app.pipeline", "authenticate"),
    ("row-level security scope", "app.db", "UnitOfWork.scope"),
    ("site lookup (+ set_config) + authorize", "app.api.events", "_target_site"),
    ("  of which Polar authorize", "app.api.events", "authorize"),
    ("allowed origins", "app.api.events", "_check_origin"),
    ("read the body + decode (msgspec, typed)", "app.services.ingest", "decode_body"),
    ("validate 100 events (prepare)", "app.services.ingest", "prepare"),
    ("rate limit (consume)", "app.api.events", "consume"),
    ("store (scope + INSERT + COMMIT, pipelined)", "app.api.events", "_store"),
]


def _timed(func: Any, total: list[float]) -> Any:
    def timed(*args: Any, **kwargs: Any) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return func(*args, **kwargs)
        finally:
            total[0] += time.perf_counter() - wall
            total[1] += time.process_time() - cpu

    return timed


def properties_rules(events: list[dict[str, Any]]) -> None:
    """The properties' part of a valid batch's validation: each encoded, all tested at once."""
    from app import events_spec as spec

    spec.all_fit([spec.properties_json(e["properties"]) for e in events])


def per_call_us(func: Any, rounds: int) -> tuple[float, float]:
    """(median wall time, mean CPU time of this process) per call, in microseconds."""
    samples = []
    cpu_began = time.process_time()
    for _ in range(rounds):
        began = time.perf_counter()
        func()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples) * 1e6, (time.process_time() - cpu_began) / rounds * 1e6


def in_process(owner_url: str, url: str, instance: str, jwt_keys: str, org_id: uuid.UUID,
               site_id: uuid.UUID, secret: str, batches: list[list[dict[str, Any]]],
               bodies: list[bytes], rounds: int) -> None:
    from sqlalchemy import event as sa_event

    from app import create_app, db
    from app.services import ingest

    app = create_app({
        "database_url": url, "migration_database_url": owner_url, "instance_path": instance,
        "jwt_keys": json.loads(jwt_keys), "log_level": "WARNING",
        "ingest_rate_limit": "1000000000 per minute",
    })
    client = app.test_client()
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    seq = [0]

    def request() -> None:
        seq[0] += 1
        body = stamp(bodies[seq[0] % len(bodies)], 0xFE, seq[0])
        response = client.post("/v1/events/batch", data=body, headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)

    for _ in range(50):
        request()
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split())[:60])

    engine = app.extensions["db.engine"]
    sa_event.listen(engine, "before_cursor_execute", count)
    request()
    sa_event.remove(engine, "before_cursor_execute", count)

    whole, whole_cpu = per_call_us(request, rounds)
    raw = bodies[0]
    events = batches[0]
    now = datetime.now(UTC)
    body = ingest.decode_body(raw, "", 1 << 20)
    typed = ingest.events_of(body, BATCH)  # what the view validates: msgspec's Structs
    rows = ingest.prepare(events, now).rows
    with app.app_context():
        unit = db.current_unit()
        unit.scope(org_id=org_id, user_id=None)

        # Fresh ids made beforehand: making them (~0.18 ms a batch) is not the store's cost.
        batches_left = [[(uuid.uuid4(), *r[1:]) for r in rows] for _ in range(rounds)]

        def write_commit() -> None:
            with unit.pipelined() as conn:
                ingest.insert_batch(conn, org_id, site_id, batches_left.pop(),
                                    datetime.now(UTC))

        write_us = per_call_us(write_commit, rounds)
    parts = [
        ("decode: msgspec, typed, of the body", per_call_us(lambda: ingest.decode_body(
            raw, "", 1 << 20), rounds)),
        ("validate 100 events (prepare)", per_call_us(lambda: ingest.prepare(typed, now, body),
                                                      rounds)),
        ("  of which properties: JSON + all_fit", per_call_us(
            lambda: properties_rules(events), rounds)),
        ("store: scope + INSERT + COMMIT, one trip", write_us),
    ]
    print(f"\nin-process, one request of {BATCH} events ({len(raw):,} bytes), {rounds} rounds"
          " (wall: median; CPU: of this Python process, mean):")
    print(f"  {'':44} {'wall us':>8} {'CPU us':>8} {'CPU share':>9}")
    print(f"  {'whole request (Flask test client)':44} {whole:8.0f} {whole_cpu:8.0f} {1:9.0%}")
    for label, (wall, cpu) in parts:
        print(f"  {label:44} {wall:8.0f} {cpu:8.0f} {cpu / whole_cpu:9.0%}")
    top = [p for p in parts if not p[0].startswith("  ")]
    rest_wall = whole - sum(wall for _, (wall, _) in top)
    rest_cpu = whole_cpu - sum(cpu for _, (_, cpu) in top)
    print(f"  {'rest: Flask, auth, authz, scope, limiter':44} {rest_wall:8.0f} {rest_cpu:8.0f} "
          f"{rest_cpu / whole_cpu:9.0%}")
    print(f"  SQL statements through SQLAlchemy per request: {len(statements)} "
          f"({'; '.join(statements)}; the pipelined write bypasses its events)")

    # Each step timed by a wrapper around the function the view calls (a few us of
    # overhead per step, unlike a profiler, whose cost grows with the number of calls).
    timings: dict[str, list[float]] = {label: [0.0, 0.0] for label, _, _ in STEPS}
    originals = []
    for label, module_name, path in STEPS:
        owner: Any = importlib.import_module(module_name)
        *classes, attr = path.split(".")
        for name in classes:
            owner = getattr(owner, name)
        original = getattr(owner, attr)
        originals.append((owner, attr, original))
        setattr(owner, attr, _timed(original, timings[label]))
    try:
        for _ in range(rounds):
            request()
    finally:
        for module, attr, original in originals:
            setattr(module, attr, original)
    print(f"\nper step, {rounds} in-process requests (wrappers around what the view calls):")
    print(f"  {'':44} {'wall us':>8} {'CPU us':>8} {'CPU share':>9}")
    whole_wall, whole_cpu = (x / rounds * 1e6 for x in timings[STEPS[0][0]])
    for label, _, _ in STEPS:
        wall, cpu = (x / rounds * 1e6 for x in timings[label])
        print(f"  {label:44} {wall:8.0f} {cpu:8.0f} {cpu / whole_cpu:9.0%}")
    inner = [label for label, _, _ in STEPS[1:] if not label.startswith("  ")]
    rest_wall = whole_wall - sum(timings[label][0] / rounds * 1e6 for label in inner)
    rest_cpu = whole_cpu - sum(timings[label][1] / rounds * 1e6 for label in inner)
    print(f"  {'rest: Flask/werkzeug/smorest, test client':44} {rest_wall:8.0f} {rest_cpu:8.0f} "
          f"{rest_cpu / whole_cpu:9.0%}")

    profile = cProfile.Profile()
    profile.enable()
    for _ in range(rounds):
        request()
    profile.disable()
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(15)
    print(f"\ncProfile of {rounds} in-process requests, top functions by own (wall) time:")
    lines = out.getvalue().splitlines()
    begin = next(i for i, line in enumerate(lines) if "ncalls" in line)
    for line in lines[begin:begin + 16]:
        print("  " + line.replace(str(ROOT) + "/", "").replace(
            str(Path(sys.executable).parent.parent) + "/lib/python3.11/site-packages/", "")[:140])
    app.extensions["actor_cache"].close()
    engine.dispose()


# -- the two phases -----------------------------------------------------------------------------


def http_phase(number: int, port: int, bodies: list[bytes], headers: dict[str, str],
               owner_url: str, gunicorn: subprocess.Popen[bytes], args: Any) -> dict[str, Any]:
    """Clients POST batches through gunicorn; every accepted event must be stored once."""
    workers = children(gunicorn.pid)
    backends_before, background = postgres_pids(owner_url)
    bg_before, be_before, gu_before = cpu_of(background), cpu_of(backends_before), cpu_of(workers)
    stored_before = count_events(owner_url)
    first = 0x10 * (number + 1)  # event ids unique across rounds (see stamp)
    results, _, _ = run_processes(
        http_client, [(first + i, port, bodies, headers) for i in range(args.clients)],
        start_in=1.0, warmup=args.warmup, duration=args.duration,
    )
    backends, _ = postgres_pids(owner_url)
    # Backends born during the phase count from 0: all their CPU was spent in it.
    pg_cpu = cpu_since({p: be_before.get(p, 0.0) for p in backends}) + cpu_since(bg_before)
    requests = sum(r["requests"] for r in results)
    # CPU is read over warm-up + window: divide by the requests of both.
    all_requests = requests + sum(r["warm_requests"] for r in results)
    accepted = sum(r["accepted"] for r in results)
    return {
        "rate": accepted / args.duration,
        "requests": requests,
        "all_requests": all_requests,
        "statuses": sum((Counter(r["statuses"]) for r in results), Counter()),
        "reconnects": sum(r["reconnects"] for r in results),
        "latencies": [x for r in results for x in r["latencies"]],
        "sent": accepted + sum(r["warm_accepted"] for r in results),
        "stored": count_events(owner_url) - stored_before,
        "workers_cpu": cpu_since(gu_before),
        "pg_cpu": pg_cpu,
        "clients_cpu": sum(r["cpu"] for r in results),
    }


def writers(args: Any) -> int:
    """The raw phase's COPY processes: as many as the requests gunicorn serves at once, so
    that a worker class with threads is not compared with a baseline of fewer writers."""
    return int(args.workers * args.threads)


def raw_phase(number: int, owner_url: str, rows: list[bytes], args: Any) -> dict[str, Any]:
    first = 0x80 + 0x10 * number  # event ids unique across rounds and apart from HTTP's
    # The server's own processes (WAL writer, checkpointer, autovacuum) work for both
    # phases: counted in both, as http_phase does.
    bg_before = cpu_of(postgres_pids(owner_url)[1])
    results, _, _ = run_processes(
        copy_writer, [(first + i, conninfo(as_administrator(owner_url)), rows)
                      for i in range(writers(args))],
        start_in=0.5, warmup=args.warmup, duration=args.duration,
    )
    bg_cpu = cpu_since(bg_before)
    return {
        "rate": sum(r["written"] for r in results) / args.duration,
        "batches": sum(r["batches"] for r in results),
        "pg_cpu": sum(r["pg_cpu"] for r in results) + bg_cpu,
        "writers_cpu": sum(r["cpu"] for r in results),
    }


Phases = tuple[dict[str, Any] | None, dict[str, Any] | None, dict[str, Any]]  # http, bare, raw


def report(rounds: list[Phases], args: Any, floor_cpu: float) -> None:
    raws = [raw for _, _, raw in rounds]
    raw_rate = statistics.median(r["rate"] for r in raws)
    batches = sum(r["batches"] for r in raws)
    raw_pg = sum(r["pg_cpu"] for r in raws) / batches * 1e3
    raw_own = sum(r["writers_cpu"] for r in raws) / batches * 1e3
    https = [http for http, _, _ in rounds if http is not None]
    print(f"\nraw (median of {len(raws)} rounds): {raw_rate:,.0f} events/s; CPU per batch: "
          f"PostgreSQL {raw_pg:.2f} ms, writers {raw_own:.2f} ms")
    if not https:
        return
    http_rate = statistics.median(h["rate"] for h in https)
    requests = sum(h["all_requests"] for h in https)
    workers, pg, clients = (sum(h[k] for h in https) / requests * 1e3
                            for k in ("workers_cpu", "pg_cpu", "clients_cpu"))
    latencies = sorted(x for h in https for x in h["latencies"])
    statuses = sum((h["statuses"] for h in https), Counter())
    stored, sent = sum(h["stored"] for h in https), sum(h["sent"] for h in https)
    print(f"end to end (median of {len(https)} rounds): {http_rate:,.0f} events/s; "
          f"{sum(h['requests'] for h in https):,} requests, statuses {dict(statuses)}, "
          f"reconnects {sum(h['reconnects'] for h in https)}")
    print(f"  latency p50 {latencies[len(latencies) // 2] * 1e3:.1f} ms, "
          f"p99 {latencies[int(len(latencies) * 0.99)] * 1e3:.1f} ms")
    print(f"  stored rows {stored:,} == accepted {sent:,}: {stored == sent}")
    print(f"  CPU per request: gunicorn workers {workers:.2f} ms, PostgreSQL {pg:.2f} ms, "
          f"clients {clients:.2f} ms (goal: workers <= PostgreSQL)")
    bares = [bare for _, bare, _ in rounds if bare is not None]
    bare_requests = sum(b["all_requests"] for b in bares)
    bare_workers, bare_pg = (sum(b[k] for b in bares) / bare_requests * 1e3
                             for k in ("workers_cpu", "pg_cpu"))
    print(f"bare Flask endpoint (median of {len(bares)} rounds): "
          f"{statistics.median(b['rate'] for b in bares):,.0f} events/s; CPU per request: "
          f"gunicorn workers {bare_workers:.2f} ms, PostgreSQL {bare_pg:.2f} ms")
    ratios = sorted(h["rate"] / r["rate"] for h, _, r in rounds if h is not None)
    print(f"\nend to end / raw = {statistics.median(ratios):.0%} (per round: "
          f"{', '.join(f'{x:.0%}' for x in ratios)}; goal: >= 65% over >= 2 rounds)")
    for label, pairs in (("bare / raw", [(b, r) for _, b, r in rounds]),
                         ("end to end / bare", [(h, b) for h, b, _ in rounds])):
        share = sorted(x["rate"] / y["rate"] for x, y in pairs if x is not None and y)
        print(f"{label} = {statistics.median(share):.0%} (per round: "
              f"{', '.join(f'{x:.0%}' for x in share)})")
    cores = os.cpu_count() or 1
    e2e_cpu, raw_cpu = workers + pg + clients, raw_pg + raw_own
    print(f"CPU per {BATCH} events: end to end {e2e_cpu:.2f} ms, raw {raw_cpu:.2f} ms; on "
          f"{cores} idle cores that caps end to end at {cores * 1e3 / e2e_cpu * BATCH:,.0f} "
          f"events/s and raw at {cores * 1e3 / raw_cpu * BATCH:,.0f} events/s (ratio "
          f"{raw_cpu / e2e_cpu:.0%}; load average now {os.getloadavg()[0]:.1f})")
    # The same bound for workers that spent on a batch no more than on the floor's no-op:
    # what is left is PostgreSQL's and the clients' share, which the app does not set.
    print(f"with workers as cheap per batch as per /healthz ({floor_cpu * 1e3:.2f} ms), the "
          f"CPU would cap the ratio at {raw_cpu / (floor_cpu * 1e3 + pg + clients):.0%}")


# -- main ---------------------------------------------------------------------------------------


def main() -> None:
    global BATCH
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per phase")
    parser.add_argument("--rounds", type=int, default=3, choices=range(1, 7))
    parser.add_argument("--ratelimit-storage", default=default_limiter_storage(),
                        help="default: Redis (production's storage) when it answers")
    parser.add_argument("--warmup", type=float, default=2.0)
    cores = os.cpu_count() or 1
    parser.add_argument("--workers", type=int, default=2 * cores,
                        help="gunicorn workers (default: gunicorn.conf.py's, 2 per core)")
    parser.add_argument("--clients", type=int, default=2 * cores + 2)
    parser.add_argument("--worker-class", default="sync")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--profile-rounds", type=int, default=300)
    parser.add_argument("--floor-seconds", type=float, default=4.0)
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--batch", type=int, default=100, help="events per request")
    args = parser.parse_args()
    BATCH = args.batch  # read by the forked processes too

    rng = random.Random(6)
    batches = [build_events(rng, t) for t in range(TEMPLATES)]
    bodies = [orjson.dumps({"events": b}) for b in batches]
    print(f"cores: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.2f}; "
          f"batches of {BATCH} events, {statistics.mean(map(len, bodies)) / BATCH:.0f} "
          f"bytes/event of JSON")
    gunicorn = bare = None
    with throwaway_database("bench_ingest") as owner_url, \
            tempfile.TemporaryDirectory() as instance:
        try:
            url, role = runtime_url(owner_url)
            org_id, site_id, secret = seed(owner_url)
            jwt_keys = json.dumps({"keys": [KeyRing.generate_key()]})
            headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
            rows = [copy_rows(b, org_id, site_id) for b in batches]
            # The bare phase's batches: more of the same kind, with event ids of their own
            # (the template number is part of each id).
            bare_bodies = [orjson.dumps({"events": build_events(rng, t)})
                           for t in range(TEMPLATES, 2 * TEMPLATES)]
            bare_headers = {"X-Org": str(org_id), "X-Site": str(site_id),
                            "Content-Type": "application/json"}
            port, bare_port = free_port(), free_port()
            floor_cpu = 0.0  # the workers' CPU per /healthz request
            if not args.skip_http:
                env = app_env(owner_url, url, instance, jwt_keys, port, args)
                gunicorn = start_gunicorn(env, port)
                bare = start_gunicorn({**env, "BIND": f"127.0.0.1:{bare_port}",
                                       "BARE_DATABASE_URL": conninfo(as_administrator(
                                           owner_url))}, bare_port, "bench._bare:app")
                floor_before = cpu_of(children(gunicorn.pid))
                floor, _, _ = run_processes(
                    http_client, [(i, port, [], {}) for i in range(args.clients)],
                    start_in=0.5, warmup=1.0, duration=args.floor_seconds,
                )
                floor_cpu = cpu_since(floor_before) / sum(
                    r["requests"] + r["warm_requests"] for r in floor)
                print(f"\nHTTP: gunicorn {args.workers} x {args.worker_class} worker(s)"
                      f"{f' x {args.threads} threads' if args.threads > 1 else ''}, "
                      f"{args.clients} client processes, app connects as {role}, rate limits "
                      f"in {env['RATELIMIT_STORAGE_URI']}, LOG_LEVEL=WARNING")
                floor_rate = sum(r["requests"] for r in floor) / args.floor_seconds
                print(f"  floor: GET /healthz (public, no database) at {floor_rate:,.0f} "
                      f"requests/s: {floor_rate * BATCH:,.0f} events/s if each carried {BATCH}; "
                      f"workers' CPU {floor_cpu * 1e3:.2f} ms per request")
            print(f"raw: COPY by {writers(args)} processes as the server's administrator (COPY "
                  f"refuses the owner, whom row-level security applies to), one transaction "
                  f"per batch of {BATCH}, no HTTP, no validation")
            # Rounds alternate the phases, so that drift on a shared machine hits each.
            rounds: list[Phases] = []
            for number in range(args.rounds):
                http = bare_http = None
                if gunicorn is not None and bare is not None:
                    http = http_phase(number, port, bodies, headers, owner_url, gunicorn, args)
                    bare_http = http_phase(number, bare_port, bare_bodies, bare_headers,
                                           owner_url, bare, args)
                raw = raw_phase(number, owner_url, rows, args)
                rounds.append((http, bare_http, raw))
                e2e = "" if http is None or bare_http is None else (
                    f"end to end {http['rate']:,.0f} events/s, bare "
                    f"{bare_http['rate']:,.0f} events/s, ")
                ratio = f", ratio {http['rate'] / raw['rate']:.0%}" if http else ""
                print(f"  round {number + 1}: {e2e}raw {raw['rate']:,.0f} events/s{ratio}")
            for server in (gunicorn, bare):
                stop(server)
            gunicorn = bare = None
            report(rounds, args, floor_cpu)
            truncate_events(owner_url)
            if args.profile_rounds > 0:
                in_process(owner_url, url, instance, jwt_keys, org_id, site_id, secret, batches,
                           bodies, args.profile_rounds)
        finally:
            stop(gunicorn)
            stop(bare)


if __name__ == "__main__":
    main()
