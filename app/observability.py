"""Request ids and JSON logs: one object per line, one line per request.

The access line is the app's own (`app.access`, written at pipeline step 9): it knows
what gunicorn's access log cannot, the route template, the request id and the actor.
It carries the client's address as `TRUSTED_PROXY_HOPS` resolved it, the method, the
path without its query string (cursors, signed parameters, a presigned URL's signature
stay out), the status, the duration and the user agent; never a header's credential.
Under gunicorn its own lines (start, workers, timeouts) are JSON too, with their `pid`
(`ProcessJsonFormatter`, set by gunicorn.conf.py's `JsonLogger`).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime

from flask import Request, Response, g, has_request_context, request

from app import metrics, tracing

REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,128}")
access_log = logging.getLogger("app.access")


class JsonFormatter(logging.Formatter):
    """Formats records as JSON. Callers pass structured `extra={"fields": {...}}`."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if has_request_context() and "request_id" in g:
            entry["request_id"] = g.request_id
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


USER_AGENT_MAX = 256  # a client sets it: long enough to tell browsers apart, no longer


class ProcessJsonFormatter(JsonFormatter):
    """JSON lines that name their process: gunicorn's master and workers."""

    def format(self, record: logging.LogRecord) -> str:
        record.fields = {**getattr(record, "fields", {}), "pid": record.process}
        return super().format(record)


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        root.handlers = [handler]
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
    # botocore's DEBUG output carries request signatures, presigned URLs' included.
    logging.getLogger("botocore").setLevel(max(logging.INFO, root.level))


def request_id_of(request: Request) -> str:
    """The client's `X-Request-ID` when well-formed, else a new one (pipeline step 1)."""
    g.started = time.perf_counter()
    incoming = request.headers.get("X-Request-ID", "")
    return incoming if REQUEST_ID_PATTERN.fullmatch(incoming) else uuid.uuid4().hex


# The only answers that tell a client when to come back (README, Errors).
RETRY_STATUSES = (429, 503)
# Scripts on other origins may read these (CORS hides them otherwise).
EXPOSED = "Retry-After, X-Request-ID"


def finish(response: Response, *, cors: bool) -> Response:
    """The request id on the answer, CORS for the routes that declare it, one access log
    line (pipeline step 9)."""
    request_id = g.get("request_id") or uuid.uuid4().hex
    response.headers["X-Request-ID"] = request_id
    tracing.tag_request(request_id)
    if response.status_code not in RETRY_STATUSES:  # whatever set it: it would mislead
        response.headers.pop("Retry-After", None)
    origin = request.headers.get("Origin")
    if cors and origin:
        # Browsers call these cross-origin: let them read every answer, errors included.
        # Which origins a credential accepts is the view's business (an ingest key's list).
        response.headers["Access-Control-Allow-Origin"] = origin
        response.vary.add("Origin")
        response.headers["Access-Control-Expose-Headers"] = EXPOSED
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Methods"] = "POST"
            response.headers["Access-Control-Allow-Headers"] = (
                "Authorization, Content-Type, Content-Encoding"
            )
            response.headers["Access-Control-Max-Age"] = "600"
    actor = g.get("actor")
    seconds = time.perf_counter() - g.get("started", time.perf_counter())
    route = metrics.route_of()
    metrics.observe_request(request.method, route, response.status_code, seconds)
    if not access_log.isEnabledFor(logging.INFO):
        return response  # the line below is not logged: not built either
    # The path only: query strings may carry cursors or signed parameters.
    access_log.info(
        "request",
        extra={
            "fields": {
                "client": request.remote_addr,
                "method": request.method,
                "path": request.path,
                "route": route,
                "status": response.status_code,
                "duration_ms": round(seconds * 1000, 2),
                "actor": str(actor.id) if actor is not None else None,
                "user_agent": request.headers.get("User-Agent", "")[:USER_AGENT_MAX],
            }
        },
    )
    return response
