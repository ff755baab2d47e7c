"""Events: the ingestion contract and the read side."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from marshmallow import ValidationError, fields, validate, validates, validates_schema

from app import events_spec as spec
from app.models import Event
from schemas.common import NEXT_CURSOR, NO_NUL, StrictSchema, list_args, page_args, page_of


class EventSchema(StrictSchema):
    """One event. `event_id` makes retries idempotent: the same id is stored once."""

    event_id = fields.UUID(load_default=None, allow_none=True)
    name = fields.String(
        required=True,
        validate=validate.Regexp(spec.NAME.pattern + r"\Z", error="Not a valid event name."),
        metadata={"pattern": f"^{spec.NAME.pattern}$"},
    )
    timestamp = fields.AwareDateTime(required=True, format="iso")
    distinct_id = fields.String(
        required=True, validate=validate.Length(min=1, max=spec.DISTINCT_ID_MAX)
    )
    properties = fields.Dict(
        keys=fields.String(), load_default=dict,
        metadata={"description": (
            f"Any JSON object of at most {spec.MAX_PROPERTIES_BYTES} bytes (as compact JSON)"
            f" and {spec.MAX_PROPERTY_KEYS} keys at all depths, each of at most"
            f" {spec.MAX_PROPERTY_KEY_LENGTH} characters; objects nested at most"
            f" {spec.MAX_PROPERTY_DEPTH} levels deep and lists and objects together at most"
            f" {spec.MAX_PROPERTY_NESTING} (the properties object is level 1); no NUL"
            " characters. An event past a limit is rejected, the rest of its batch stored."
        )},
    )

    @validates("timestamp")
    def _recent(self, value: datetime, **_: Any) -> None:
        now = datetime.now(UTC)
        if value > now + timedelta(seconds=spec.MAX_FUTURE_SECONDS):
            raise ValidationError("More than 5 minutes in the future.")
        if value < now - timedelta(days=spec.MAX_AGE_DAYS):
            raise ValidationError(f"More than {spec.MAX_AGE_DAYS} days in the past.")

    @validates("distinct_id")
    def _no_nul(self, value: str, **_: Any) -> None:
        if "\x00" in value:
            raise ValidationError("NUL characters are not allowed.")

    @validates("properties")
    def _storable(self, value: dict[str, Any], **_: Any) -> None:
        problem = spec.shape_problem(value)[0] or spec.properties_problem(
            spec.properties_json(value)
        )
        if problem:
            raise ValidationError(problem)


class EventBatchSchema(StrictSchema):
    """Documents the body; the endpoint validates each event on its own (see ingest.py),
    so valid events are stored even when others are rejected."""

    events = fields.List(
        fields.Nested(EventSchema), required=True, validate=validate.Length(min=1, max=1000)
    )
    key = fields.String(
        load_only=True,
        metadata={"description": "An ingest key, for senders that cannot set `Authorization` "
                  "(`navigator.sendBeacon`); never with that header, never in the URL."},
    )


class RejectedSchema(StrictSchema):
    index = fields.Integer(required=True)
    errors = fields.Dict(keys=fields.String(), required=True)


class IngestResultSchema(StrictSchema):
    accepted = fields.Integer(required=True)
    duplicates = fields.Integer(required=True)
    rejected = fields.List(fields.Nested(RejectedSchema), required=True)


class EventReadSchema(StrictSchema):
    event_id = fields.UUID(required=True, attribute="id")
    name = fields.String(required=True)
    timestamp = fields.DateTime(required=True, attribute="ts")
    received_at = fields.DateTime(required=True)
    distinct_id = fields.String(required=True)
    properties = fields.Dict(required=True)


class EventListArgs(list_args({"timestamp": Event.ts}, "-timestamp")):  # type: ignore[misc]  # a base made at run time: mypy cannot follow it
    name = fields.String(load_default=None, validate=[validate.Length(max=128), NO_NUL])
    distinct_id = fields.String(load_default=None, validate=[validate.Length(max=200), NO_NUL])
    since = fields.AwareDateTime(load_default=None)
    until = fields.AwareDateTime(load_default=None)


class StatsArgs(page_args(default_limit=100, max_limit=1000)):  # type: ignore[misc]  # a base made at run time: mypy cannot follow it
    """A window of at most 31 days by the hour or 366 by the day, a page of rows at a time."""

    since = fields.AwareDateTime(required=True)
    until = fields.AwareDateTime(required=True)
    interval = fields.String(load_default="day", validate=validate.OneOf(["hour", "day"]))
    name = fields.String(load_default=None, validate=[validate.Length(max=128), NO_NUL])

    @validates_schema
    def _window(self, data: dict[str, Any], **_: Any) -> None:
        span = data["until"] - data["since"]
        limit = timedelta(days=31 if data["interval"] == "hour" else 366)
        if span <= timedelta(0) or span > limit:
            raise ValidationError(f"`until` after `since`, at most {limit.days} days apart.",
                                  "until")


class StatsRowSchema(StrictSchema):
    bucket = fields.DateTime(required=True)
    name = fields.String(required=True)
    count = fields.Integer(required=True)


class StatsSchema(StrictSchema):
    interval = fields.String(required=True)
    rows = fields.List(
        fields.Nested(StatsRowSchema), required=True,
        metadata={"description": "Ordered by bucket, then name."},
    )
    next_cursor = fields.String(allow_none=True, required=True,
                                metadata={"description": NEXT_CURSOR})


EventPageSchema = page_of(EventReadSchema, "EventPage")
