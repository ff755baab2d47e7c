"""Event ingestion, the hot path: decode, validate each event, write the batch at once.

Validation here is hand-written for speed; it mirrors the marshmallow contract in
schemas/events.py rule for rule (both read app/events_spec.py), and a differential
hypothesis test holds them to the same verdicts. A body's types are checked as msgspec
decodes it, in C, straight from the bytes into `Struct`s (UUIDs parsed there too); the
rules types cannot state follow in Python; an event refused by either is validated again
by hand, as orjson reads it, for the contract's messages, and a body msgspec refuses is
read by orjson and validated by hand throughout. A batch is written by one
`INSERT ... SELECT FROM jsonb_to_recordset(...) ON CONFLICT DO NOTHING` on PostgreSQL,
sent with the row-level security scope and committed in one round trip; a retried event (same
site, event_id and timestamp) is stored once. COPY would be faster still but cannot skip
duplicates.
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import orjson
from sqlalchemy import insert
from sqlalchemy.orm import Session

from app import events_spec as spec
from app.errors import ApiError, BadRequest
from app.models import Event

INVALID = "Not a valid {}."
REQUIRED = "Missing data for required field."
NOT_NULL = "Field may not be null."


class PayloadTooLarge(ApiError):
    status = 413


@dataclass
class Batch:
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)


def decode_body(raw: bytes, encoding: str, max_bytes: int) -> Body:
    """The JSON body, gunzipped when sent so; at most `max_bytes` after decompression."""
    encoding = encoding.strip().lower()
    if encoding == "gzip":
        inflater = zlib.decompressobj(wbits=31)
        try:
            raw = inflater.decompress(raw, max_bytes + 1)
        except zlib.error as exc:
            raise BadRequest("The body is not valid gzip.") from exc
        if len(raw) > max_bytes or inflater.unconsumed_tail:  # a decompression bomb stops here
            raise PayloadTooLarge(f"At most {max_bytes} bytes once decompressed.")
        if not inflater.eof:
            raise BadRequest("The gzip stream is truncated.")
        if inflater.unused_data:  # another member or garbage: never store half a body
            raise BadRequest("Send one gzip stream with nothing after it.")
    elif encoding not in ("", "identity"):
        raise ApiError.of(415, "Content-Encoding must be gzip or identity.")
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"At most {max_bytes} bytes.")
    return Body(raw)


class Body:
    """A batch's JSON, decoded once per request (`pipeline.batch_body`): by msgspec straight
    into `_TypedBatch` when the body has the contract's types (the common case: no dict is
    built for the body or its events, and no conversion follows), else by orjson (`json`)
    for the hand path, which says what is wrong. When it was typed, `json` is only read if
    a rule refuses an event (`prepare`)."""

    __slots__ = ("_json", "raw", "typed")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self._json: Any = _UNREAD
        try:
            self.typed: _TypedBatch | None = _BATCH_DECODER.decode(raw)
        except (msgspec.MsgspecError, RecursionError):  # bad JSON, other types, too deep
            self.typed = None
            self._json = _loads(raw)  # invalid JSON is a 400 here, where the body is read

    @property
    def json(self) -> Any:
        """The body as orjson reads it (once)."""
        if self._json is _UNREAD:
            self._json = _loads(self.raw)
        return self._json

    @property
    def key(self) -> Any:
        """The body's `key` field (a beacon's ingest key), None when absent."""
        if self.typed is not None:
            return self.typed.key
        return self.json.get("key") if isinstance(self.json, dict) else None


_UNREAD = object()


def _loads(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest("The request body is not valid JSON.") from exc


def events_of(body: Body, max_events: int) -> list[Any]:
    """The batch's events: `_TypedEvent`s when msgspec typed the body, else JSON values.
    The body may also carry the sender's `key` (a beacon's)."""
    events = body.typed.events if body.typed is not None else _events_in(body.json)
    if not events:
        raise BadRequest("Send at least one event.", errors={"events": ["Empty."]})
    if len(events) > max_events:
        raise PayloadTooLarge(f"At most {max_events} events per batch.")
    return events


def _events_in(body: Any) -> list[Any]:
    """The `events` list of a body msgspec could not type, or why it is not one (400)."""
    if not isinstance(body, dict) or "events" not in body or set(body) - {"events", "key"}:
        errors = {"events": [REQUIRED]} if not isinstance(body, dict) or "events" not in body \
            else {k: ["Unknown field."] for k in body if k not in ("events", "key")}
        raise BadRequest("The body is `{\"events\": [...]}`.", errors=errors)
    events = body["events"]
    if not isinstance(events, list):
        raise BadRequest("`events` is a list.", errors={"events": ["Not a valid list."]})
    return events


def validate(event: Any, now: datetime) -> tuple[tuple[Any, ...] | None, dict[str, list[str]]]:
    """(row, {}) for a valid event, (None, field -> messages) otherwise.

    Runs for every event of every batch: the common case (the right types) is tested
    first, and nothing is allocated for a valid event but its row."""
    if type(event) is not dict:
        return None, {"_schema": ["Invalid input type."]}
    errors: dict[str, list[str]] = {}
    if not _FIELDS_SUPERSET(event):
        for key in event.keys() - spec.EVENT_FIELDS:
            errors[key] = ["Unknown field."]

    event_id = event.get("event_id")
    if event_id is not None:
        try:
            event_id = uuid.UUID(event_id) if type(event_id) is str else _bad()
        except (ValueError, TypeError):
            errors["event_id"] = ["Not a valid UUID."]

    name = event.get("name")
    if type(name) is not str:
        errors["name"] = [_type_problem(event, "name", "string")]
    elif not _NAME_MATCH(name):
        errors["name"] = ["Not a valid event name."]

    ts = event.get("timestamp")
    if type(ts) is not str:
        errors["timestamp"] = [_type_problem(event, "timestamp", "datetime")]
    else:
        try:
            ts = datetime.fromisoformat(ts)
        except ValueError:
            errors["timestamp"] = [INVALID.format("datetime")]
        else:
            if ts.tzinfo is None or ts.utcoffset() is None:
                errors["timestamp"] = ["Not a valid aware datetime."]
            elif ts > now + _MAX_FUTURE:
                errors["timestamp"] = ["More than 5 minutes in the future."]
            elif ts < now - _MAX_AGE:
                errors["timestamp"] = [f"More than {spec.MAX_AGE_DAYS} days in the past."]

    distinct_id = event.get("distinct_id")
    if type(distinct_id) is not str:
        errors["distinct_id"] = [_type_problem(event, "distinct_id", "string")]
    elif not 1 <= len(distinct_id) <= spec.DISTINCT_ID_MAX:
        errors["distinct_id"] = [f"Length must be between 1 and {spec.DISTINCT_ID_MAX}."]
    elif "\x00" in distinct_id:
        errors["distinct_id"] = ["NUL characters are not allowed."]

    properties = event.get("properties", _NO_PROPERTIES)
    encoded = _NO_PROPERTIES_JSON
    if type(properties) is not dict:
        errors["properties"] = [NOT_NULL if properties is None else INVALID.format("mapping type")]
    elif properties:
        problem = spec.shape_problem(properties)[0]
        if problem is None:
            encoded = spec.properties_json(properties)
            problem = spec.properties_problem(encoded)
        if problem:
            errors["properties"] = [problem]

    if errors:
        return None, errors
    return (event_id or uuid.uuid4(), name, ts, distinct_id, encoded.decode()), {}


_FIELDS_SUPERSET = spec.EVENT_FIELDS.issuperset
_NAME_MATCH = spec.NAME.fullmatch
_MAX_FUTURE = timedelta(seconds=spec.MAX_FUTURE_SECONDS)
_MAX_AGE = timedelta(days=spec.MAX_AGE_DAYS)
_NO_PROPERTIES: dict[str, Any] = {}
_NO_PROPERTIES_JSON = spec.properties_json(_NO_PROPERTIES)


def _type_problem(event: dict[str, Any], field: str, expected: str) -> str:
    """Why `field`, which is not a string, is refused: missing, null or of another type."""
    if field not in event:
        return REQUIRED
    if event[field] is None:
        return NOT_NULL
    return INVALID.format(expected)


def _bad() -> Any:
    raise TypeError


class _TypedEvent(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """An event whose fields have the contract's types (no rule beyond types: those are
    `_row`'s). msgspec takes fewer UUID spellings than `uuid.UUID` (the canonical and the
    bare hex ones); an event it refuses is validated by hand, so the verdict is the same.

    Untracked by the garbage collector (`gc=False`): decoded JSON holds no reference
    cycle, and a hundred tracked objects more per batch set off a collection of the young
    generation nearly every request (~0.06 ms of CPU per request in all; untracked, one
    every five)."""

    name: str
    timestamp: str
    distinct_id: str
    event_id: uuid.UUID | None = None
    properties: dict[str, Any] = {}


_TYPED_EVENTS = list[_TypedEvent]


class _TypedBatch(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A body of the contract's types (an empty or oversized list is `events_of`'s);
    untracked by the garbage collector, as its events are."""

    events: list[_TypedEvent]
    key: str | None = None


_BATCH_DECODER = msgspec.json.Decoder(_TypedBatch)


def prepare(events: list[Any], now: datetime, body: Body | None = None) -> Batch:
    """Split the events into rows to store and rejections by index (with the contract's
    messages), in order. `events`: as `events_of` took them from `body`, or JSON values."""
    if body is not None and body.typed is not None:
        return _split(len(events), events, lambda: body.json["events"], now)
    try:
        typed = msgspec.convert(events, _TYPED_EVENTS)
    except msgspec.ValidationError:  # some event has a wrong type: the hand path says which
        typed = None
    return _split(len(events), typed, lambda: events, now)


def _split(count: int, typed: list[_TypedEvent] | None, as_sent: Callable[[], list[Any]],
           now: datetime) -> Batch:
    """The rows of the typed events `_typed_row` accepts; any other event is judged by
    hand, as orjson read it (`as_sent()`, called at the first such event). msgspec and
    orjson read a few bodies differently (an integer past 64 bits: msgspec's is exact and
    no encoder writes it back, orjson's a float): `_typed_row` refuses those, and the hand
    path decides on orjson's reading, as it did before msgspec read bodies."""
    oldest, latest = now - _MAX_AGE, now + _MAX_FUTURE
    rows = _all_rows(typed, oldest, latest) if typed is not None else None
    if rows is not None:
        return Batch(rows=rows)
    batch = Batch()
    sent: list[Any] | None = None
    for index in range(count):
        row = _typed_row(typed[index], oldest, latest) if typed is not None else None
        if row is None:
            sent = as_sent() if sent is None else sent
            row, errors = validate(sent[index], now)
            if row is None:
                batch.rejected.append({"index": index, "errors": errors})
                continue
        batch.rows.append(row)
    return batch


def _row(event: _TypedEvent, now: datetime) -> tuple[Any, ...] | None:
    """The row of an event of the right types, or None when a rule refuses it (`validate`
    then says why): the same rules as `validate`'s, in the same terms."""
    return _typed_row(event, now - _MAX_AGE, now + _MAX_FUTURE)


def _typed_row(event: _TypedEvent, oldest: datetime, latest: datetime) -> tuple[Any, ...] | None:
    """`_row` with the time window computed once per batch. Runs for every event: the
    properties are encoded first and their shape read from the encoding in C
    (`spec.shape_fits`); only properties that test cannot vouch for are walked."""
    name = event.name
    if not _NAME_MATCH(name):
        return None
    try:
        ts = _FROM_ISO(event.timestamp)
    except ValueError:
        return None
    if ts.tzinfo is None or ts.utcoffset() is None or not oldest <= ts <= latest:
        return None
    distinct_id = event.distinct_id
    if not 1 <= len(distinct_id) <= spec.DISTINCT_ID_MAX or "\x00" in distinct_id:
        return None
    properties = event.properties
    encoded = _NO_PROPERTIES_JSON
    if properties:
        try:
            encoded = _PROPERTIES_JSON(properties)
        except orjson.JSONEncodeError:  # nested too deep for orjson: `validate` says why
            return None
        if not _SHAPE_FITS(encoded) and spec.shape_problem(properties)[0] is not None:
            return None
        if _PROPERTIES_PROBLEM(encoded) is not None:
            return None
    return (event.event_id or uuid.uuid4(), name, ts, distinct_id, encoded.decode())


def _all_rows(events: list[_TypedEvent], oldest: datetime,
              latest: datetime) -> list[tuple[Any, ...]] | None:
    """The rows of all the events when each passes every rule, else None (each is then
    judged on its own by `_typed_row`). The rules are `_typed_row`'s, each applied to all
    the events at once and mostly in C: a batch is usually all valid, and a hundred turns
    of Python per rule cost more than the rules (the properties' tests are sufficient
    ones, `spec.all_fit`)."""
    names = [e.name for e in events]
    distinct_ids = [e.distinct_id for e in events]
    if (not all(map(_NAME_MATCH, names))
            or min(map(len, distinct_ids), default=1) < 1
            or max(map(len, distinct_ids), default=0) > spec.DISTINCT_ID_MAX
            or "\x00" in "".join(distinct_ids)):
        return None
    try:
        stamps = list(map(_FROM_ISO, [e.timestamp for e in events]))
        encoded = list(map(_PROPERTIES_JSON, [e.properties for e in events]))
    except (ValueError, orjson.JSONEncodeError):
        return None
    if (None in map(_UTC_OFFSET, stamps) or min(stamps, default=oldest) < oldest
            or max(stamps, default=latest) > latest or not spec.all_fit(encoded)):
        return None
    ids = [e.event_id or uuid.uuid4() for e in events]
    return list(zip(ids, names, stamps, distinct_ids, map(bytes.decode, encoded), strict=True))


_FROM_ISO = datetime.fromisoformat
_UTC_OFFSET = datetime.utcoffset
_SHAPE_FITS = spec.shape_fits
_PROPERTIES_JSON = spec.properties_json
_PROPERTIES_PROBLEM = spec.properties_problem


# The rows travel as one JSON document that PostgreSQL unpacks itself (C on both sides:
# orjson writes it, jsonb_to_recordset reads it). Five binary arrays cost ~0.9 ms of Python
# per 100 events to dump (a UUID, a timestamp, a string at a time); text arrays more.
# Each event's properties are embedded as the JSON validation already encoded.
_INSERT_PG = """
INSERT INTO events (org_id, site_id, event_id, name, ts, received_at, distinct_id, properties)
SELECT %(org_id)s, %(site_id)s, e.event_id, e.name, e.ts, %(now)s, e.distinct_id, e.properties
FROM jsonb_to_recordset(%(rows)s::jsonb)
     AS e(event_id uuid, name text, ts timestamptz, distinct_id text, properties jsonb)
ON CONFLICT DO NOTHING
"""
_FRAGMENT = orjson.Fragment


def rows_json(rows: list[tuple[Any, ...]]) -> bytes:
    """The rows as the JSON `_INSERT_PG` reads. Timestamps in UTC: orjson writes an offset
    to the minute, and a valid timestamp may carry seconds in its offset."""
    return orjson.dumps([
        {"event_id": r[0], "name": r[1], "ts": r[2].astimezone(UTC), "distinct_id": r[3],
         "properties": _FRAGMENT(r[4])}
        for r in rows
    ])


def insert_batch(
    conn: Any, org_id: uuid.UUID, site_id: uuid.UUID, rows: list[tuple[Any, ...]], now: datetime,
) -> Any:
    """Send the INSERT of the rows on a psycopg connection of the unit's `pipelined()`
    block (PostgreSQL); the returned cursor's `rowcount` (the new rows; the rest were
    duplicates) can be read once the block has ended."""
    return conn.execute(_INSERT_PG, {
        "org_id": org_id, "site_id": site_id, "now": now, "rows": rows_json(rows).decode(),
    })


def write(
    session: Session, org_id: uuid.UUID, site_id: uuid.UUID, rows: list[tuple[Any, ...]],
    now: datetime,
) -> int:
    """Store the rows through a session (committed by its owner); returns how many were
    new (the rest were duplicates)."""
    if not rows:
        return 0
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        result = connection.exec_driver_sql(
            _INSERT_PG,
            {"org_id": org_id, "site_id": site_id, "now": now,
             "rows": rows_json(rows).decode()},
        )
        return result.rowcount
    # SQLite, the embedded default: one executemany; its rowcount counts the new rows.
    stmt = insert(Event.__table__).prefix_with("OR IGNORE")  # type: ignore[arg-type]  # typed FromClause; a model's is a Table
    values = [
        {"org_id": org_id, "site_id": site_id, "event_id": r[0], "name": r[1],
         "ts": r[2].astimezone(UTC), "received_at": now, "distinct_id": r[3],
         "properties": orjson.loads(r[4])}
        for r in rows
    ]
    return connection.execute(stmt, values).rowcount
