"""Prometheus metrics, served at `/metrics` to a scraper holding `METRICS_TOKEN`.

Off unless configured: without `METRICS_TOKEN`, `/metrics` answers 404 (in production
too: nothing about the traffic is shown to whoever asks). With it, the scrape must send
`Authorization: Bearer <METRICS_TOKEN>` (else 401).

Under gunicorn the workers are separate processes: each writes its samples to files in
`PROMETHEUS_MULTIPROC_DIR` (gunicorn.conf.py makes one when it is not set, before any
worker imports prometheus_client, and forgets a dead worker's live gauges in
`child_exit`), and a scrape, whichever worker answers it, adds up every worker's files.
Without that variable (the test client, `flask run`), the process's own registry is served.

What is measured (label values are bounded: the route is the URL rule, never the path):
- `tenant_api_http_requests_total` and `tenant_api_http_request_duration_seconds`, by
  method, route template and status;
- `tenant_api_authz_denials_total`, by the policy's action and resource type;
- `tenant_api_events_total`, events received by outcome (accepted, duplicate, rejected);
- `tenant_api_ratelimit_refusals_total`, by limit;
- `tenant_api_db_pool_checked_out` and `tenant_api_db_pool_size`: the runtime role's
  connection pools, summed over the live processes.
"""

from __future__ import annotations

import hmac
from typing import Any

from flask import Flask, Response, current_app, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from sqlalchemy import Engine, event

from app import errors

NAMESPACE = "tenant_api"
UNMATCHED = "<unmatched>"  # the route of a request no rule matched (a 404, a 405)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Whether this process writes its samples to files: prometheus-client decided it once, when
# it was imported, from MULTIPROC_ENV (a variable set later changes nothing, and must not
# make a scrape read files this process never wrote).
MULTIPROCESS = values.ValueClass is not values.MutexValue

# The process's registry: what a scrape shows outside multiprocess mode. In multiprocess
# mode the samples are read back from the files instead (see `exposition`).
REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "http_requests", "Requests answered, by method, route template and status.",
    ["method", "route", "status"], namespace=NAMESPACE, registry=REGISTRY,
)
LATENCY = Histogram(
    "http_request_duration_seconds", "Time to answer, by method, route template and status.",
    ["method", "route", "status"], namespace=NAMESPACE, registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
DENIALS = Counter(
    "authz_denials", "Requests the policy refused, by action and resource type.",
    ["action", "resource_type"], namespace=NAMESPACE, registry=REGISTRY,
)
EVENTS = Counter(
    "events", "Analytics events received, by outcome (accepted, duplicate, rejected).",
    ["outcome"], namespace=NAMESPACE, registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "ratelimit_refusals", "Budgets found spent (a 429, or a probe left unaudited), by limit.",
    ["limit"], namespace=NAMESPACE, registry=REGISTRY,
)
POOL_CHECKED_OUT = Gauge(
    "db_pool_checked_out", "Database connections in use (runtime role), all live processes.",
    namespace=NAMESPACE, registry=REGISTRY, multiprocess_mode="livesum",
)
POOL_SIZE = Gauge(
    "db_pool_size", "Database connections the pools keep (runtime role), all live processes "
    "(each may open as many again as overflow).",
    namespace=NAMESPACE, registry=REGISTRY, multiprocess_mode="livesum",
)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    labels = (method, route, str(status))
    REQUESTS.labels(*labels).inc()
    LATENCY.labels(*labels).observe(seconds)


def route_of() -> str:
    """The request's route template (`/v1/orgs/<uuid:org_id>`): ids stay out of labels."""
    return request.url_rule.rule if request.url_rule is not None else UNMATCHED


def denied(action: str, resource_type: str) -> None:
    DENIALS.labels(action, resource_type).inc()


def events_received(accepted: int, duplicates: int, rejected: int) -> None:
    for outcome, count in (("accepted", accepted), ("duplicate", duplicates),
                           ("rejected", rejected)):
        if count:
            EVENTS.labels(outcome).inc(count)


def rate_limited(limit: str) -> None:
    RATE_LIMITED.labels(limit).inc()


def watch_pool(engine: Engine) -> None:
    """Count the engine's connections in use as the pool hands them out and takes them
    back; its size once (a process has one runtime engine)."""
    size = getattr(engine.pool, "size", None)
    if callable(size):
        POOL_SIZE.set(size())
    event.listen(engine, "checkout", _checked_out)
    event.listen(engine, "checkin", _checked_in)


def _checked_out(*_: Any) -> None:
    POOL_CHECKED_OUT.inc()


def _checked_in(*_: Any) -> None:
    POOL_CHECKED_OUT.dec()


def exposition() -> bytes:
    """The text a scrape reads: every worker's samples in multiprocess mode."""
    if MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def scrape() -> Response:
    """GET /metrics (see the module doc: 404 unless configured, 401 without the token)."""
    token = current_app.extensions["settings"].metrics_token
    if not token:
        raise errors.NotFound()
    sent = request.headers.get("Authorization", "")
    expected = f"Bearer {token}"
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        raise errors.Unauthorized("Send the metrics token as `Authorization: Bearer ...`.")
    return Response(exposition(), content_type=CONTENT_TYPE_LATEST,
                    headers={"Cache-Control": "no-store"})


def init_app(app: Flask) -> None:
    app.add_url_rule("/metrics", "metrics", scrape, methods=["GET"])
    watch_pool(app.extensions["db.engine"])
