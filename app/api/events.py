"""Event ingestion (keys) and reading (members)."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from flask import Response, request
from flask.views import MethodView

from app import db, metrics
from app.api import Blueprint
from app.api.helpers import page, settings
from app.auth.current import actor
from app.authz import authorize, authorized, condition
from app.errors import ApiError, Forbidden
from app.models import Event, Site
from app.needs import Credential
from app.pagination import Page
from app.pipeline import batch_body
from app.ratelimit import consume
from app.services import events, ingest, tenancy
from schemas.events import (
    EventBatchSchema,
    EventListArgs,
    EventPageSchema,
    IngestResultSchema,
    StatsArgs,
    StatsSchema,
)

blp = Blueprint("events", __name__, description="Analytics events")
log = logging.getLogger("app.events")


def _target_site() -> Site:
    """The one site the calling key works in: the key decides, never the body."""
    home = actor().home_site()
    if home is None:  # nothing names a site: an organization-wide key
        raise Forbidden("Send events with an ingest key or a site-scoped API key.")
    # Resolving the key found its site live, and deleting a site drops cached keys: no
    # need to read the site again on this hot path.
    site = Site(id=home[0], org_id=home[1])
    authorize(actor(), "write_events", site)
    return site


def _check_origin() -> None:
    allowed = actor().allowed_origins
    if allowed and request.headers.get("Origin") not in allowed:
        raise Forbidden("This key does not accept events from this origin.")


def _store(site: Site, rows: list[tuple[Any, ...]]) -> int:
    """Store the rows and commit them before answering: what the answer reports accepted
    is stored. On PostgreSQL the scope, the INSERT and its commit go in one round trip."""
    if not rows:
        return 0
    unit = db.current_unit()
    if unit.pipelines:
        with unit.pipelined() as conn:
            inserted = ingest.insert_batch(conn, site.org_id, site.id, rows, datetime.now(UTC))
        return int(inserted.rowcount)
    stored = ingest.write(unit.session, site.org_id, site.id, rows, datetime.now(UTC))
    unit.commit_now()
    return stored


@blp.route("/v1/events/batch")
class EventBatch(MethodView):
    @blp.needs(credentials=frozenset(Credential), cors=True, beacon=True,
               checks=("write_events Site",))
    @blp.doc(
        requestBody={
            "required": True,
            "content": {
                "application/json": {"schema": EventBatchSchema},
                "text/plain": {"schema": EventBatchSchema},
            },
            "description": "The same JSON as `application/json` or `text/plain` (any charset: "
            "what `navigator.sendBeacon` and CORS-simple `fetch` send); gzip accepted "
            "(`Content-Encoding: gzip`).",
        },
        # The key goes in `Authorization: Bearer`, or, from a browser's beacon that can set
        # no header, in the body's `key` field (an ingest key only; never both, never the URL).
        security=[{"bearerAuth": []}, {}],
    )
    @blp.response(200, IngestResultSchema)
    @blp.alt_response(413, description="Too many events or bytes.")
    @blp.alt_response(429, description="The key's event budget is spent; see `Retry-After`.")
    @blp.alt_response(503, description="Storage unavailable; nothing was stored.")
    def post(self) -> Response:
        """Store a batch of events for the key's site. Valid events are stored even when
        others are rejected; an event retried with the same `event_id` is stored once.

        Every event received, rejected or not, counts against the key's budget."""
        site = _target_site()
        _check_origin()
        config = settings()
        body = batch_body()
        received = ingest.events_of(body, config.ingest_max_events)
        # Every event received costs, valid or not: rejected ones cost validation too, and
        # a key must not be able to send them for free. Spent before validating them.
        # Without the counters it fails open: losing analytics is worse than a key sending
        # past its budget for a while (the body and batch limits still bound each request).
        wait = consume(config.ingest_rate_limit, "events", str(actor().id), len(received),
                       fails_open=True)
        if wait is not None:
            raise ApiError.of(429, "The event budget of this key is spent.",
                              headers={"Retry-After": str(wait)})
        batch = ingest.prepare(received, datetime.now(UTC), body)
        stored = _store(site, batch.rows)
        result = {
            "accepted": stored,
            "duplicates": len(batch.rows) - stored,
            "rejected": batch.rejected,
        }
        metrics.events_received(stored, len(batch.rows) - stored, len(batch.rejected))
        return Response(orjson.dumps(result), status=200, mimetype="application/json")


@blp.route("/v1/orgs/<uuid:org_id>/sites/<uuid:site_id>/events")
class Events(MethodView):
    @blp.needs(checks=("read_events Site",), lists=("read Event",))
    @blp.arguments(EventListArgs, location="query")
    @blp.response(200, EventPageSchema)
    def get(
        self, args: dict[str, Any], org_id: uuid.UUID, site_id: uuid.UUID
    ) -> Page[Event]:
        """Events of the site, newest first (member): filter by name, distinct_id, time."""
        site = tenancy.get_site(db.session(), org_id, site_id)
        authorize(actor(), "read_events", site)
        stmt = authorized(events.filtered(site, args), actor(), "read", Event)
        return page(stmt, args)


@blp.route("/v1/orgs/<uuid:org_id>/sites/<uuid:site_id>/events/stats")
class EventStats(MethodView):
    @blp.needs(checks=("read_events Site",), lists=("read Event",))
    @blp.arguments(StatsArgs, location="query")
    @blp.response(200, StatsSchema)
    def get(
        self, args: dict[str, Any], org_id: uuid.UUID, site_id: uuid.UUID
    ) -> dict[str, Any]:
        """Event counts per name per hour or day over a window (member), paginated."""
        site = tenancy.get_site(db.session(), org_id, site_id)
        authorize(actor(), "read_events", site)
        read = condition(actor(), "read", Event)
        page = events.stats(db.session(), site, args, read, secret=settings().secret_key,
                            scope=request.path)
        return {"interval": args["interval"], "rows": page.items, "next_cursor": page.next_cursor}
