"""POST /v1/events/batch: who may send events and where they land, the response, partial
acceptance, deduplication, the body limits and encodings, per-key budgets, CORS, month
partitions, and what happens when PostgreSQL goes away."""

from __future__ import annotations

import gzip
import socket
import struct
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from sqlalchemy import func, make_url, select, text

from app import create_app
from app import events_spec as spec
from app.db import owner_sessionmaker
from app.models import Event
from tests.support import Tenant
from tests.support.events import BATCH, MISSING, ago, event, ok, send
from tests.support.http import assert_problem
from tests.support.keys import api_keys_path, create_api_key, create_ingest_key, ingest_keys_path

ORIGIN = "https://shop.example.com"
portable = pytest.mark.portable


def stored(app: Any, site: Any = None) -> list[Event]:
    """What is in the table, read as its owner (outside row-level security)."""
    stmt = select(Event).order_by(Event.ts, Event.id)
    if site is not None:
        stmt = stmt.where(Event.site_id == site.id)
    with owner_sessionmaker(app)() as session:
        return list(session.scalars(stmt))


def total(app: Any) -> int:
    with owner_sessionmaker(app)() as session:
        return session.scalar(select(func.count()).select_from(Event))


def owner_engine(app: Any) -> Any:
    return owner_sessionmaker(app).kw["bind"]


@pytest.fixture
def ingest_key(client: Any, tenant: Tenant) -> Any:
    return create_ingest_key(client, tenant)


# -- who may send, and where the events go ------------------------------------------------------


@portable
def test_an_ingest_key_stores_events_for_its_own_site(app, client, tenant, ingest_key):
    sent = [
        event(name="signup", distinct_id="u-1", properties={"plan": "pro", "seats": 3}),
        event(name="$pageview", timestamp=ago(hours=2), properties={"nested": {"a": [1, 2]}}),
    ]
    assert ok(send(client, ingest_key, sent)) == {"accepted": 2, "duplicates": 0, "rejected": []}
    rows = {str(row.id): row for row in stored(app)}
    assert set(rows) == {e["event_id"] for e in sent}
    for e in sent:
        row = rows[e["event_id"]]
        assert (row.org_id, row.site_id) == (tenant.org.id, tenant.site.id)
        assert row.name == e["name"] and row.distinct_id == e["distinct_id"]
        assert row.ts == datetime.fromisoformat(e["timestamp"])
        assert row.properties == e["properties"]
        assert abs(row.received_at - datetime.now(UTC)) < timedelta(minutes=1)


@portable
@pytest.mark.parametrize(("role", "expected"), [
    ("viewer", 403), ("member", 200), ("site_admin", 200),
])
def test_a_site_scoped_api_key_writes_with_member_or_higher(
    app, client, tenant, role, expected
):
    key = create_api_key(client, tenant, role=role, site_id=str(tenant.site.id))
    response = send(client, key, [event()])
    if expected == 200:
        assert ok(response)["accepted"] == 1
        assert [r.site_id for r in stored(app)] == [tenant.site.id]
    else:
        assert_problem(response, expected)
        assert total(app) == 0


@portable
@pytest.mark.parametrize("role", ["org_admin", "member"])
def test_an_org_scoped_api_key_cannot_send_events(app, client, tenant, role):
    """The key must decide the one site: an organization-wide key names none."""
    key = create_api_key(client, tenant, role=role)
    assert_problem(send(client, key, [event()]), 403)
    assert total(app) == 0


@portable
@pytest.mark.parametrize("role", ["org_admin", "site_site_admin", "site_member"])
def test_people_cannot_send_events(app, client, tenant, role):
    assert_problem(send(client, tenant[role], [event()]), 403)
    assert total(app) == 0


@portable
def test_revoked_and_unknown_keys_are_401(app, client, tenant, ingest_key):
    api_key = create_api_key(client, tenant, role="member", site_id=str(tenant.site.id))
    assert ok(send(client, ingest_key, [event()]))["accepted"] == 1
    assert ok(send(client, api_key, [event()]))["accepted"] == 1
    admin = tenant["org_admin"].headers
    assert client.delete(f"{ingest_keys_path(tenant)}/{ingest_key.id}",
                         headers=admin).status_code == 204
    assert client.delete(f"{api_keys_path(tenant)}/{api_key.id}", headers=admin).status_code == 204
    for key in (ingest_key, api_key):
        assert_problem(send(client, key, [event()]), 401)
    wrong_secret = type(ingest_key)(ingest_key.id, ingest_key.secret[:-4] + "AAAA", {})
    for headers in ({}, {"Authorization": "Bearer ik_nope"}, wrong_secret.headers):
        assert_problem(client.post(BATCH, json={"events": [event()]}, headers=headers), 401)
    assert total(app) == 2


@portable
def test_the_body_cannot_choose_the_tenant(app, client, world, tenant, ingest_key):
    other = world.tenant("Other")
    elsewhere = {"site_id": str(other.site.id), "org_id": str(other.org.id)}
    # Not at the top level of the body...
    r = send(client, ingest_key, body={"events": [event()], **elsewhere})
    assert_problem(r, 400, errors={"site_id", "org_id"})
    # ...nor in an event (rejected), while properties are just data.
    body = ok(send(client, ingest_key, [event(**elsewhere), event(properties=elsewhere)]))
    assert body["accepted"] == 1
    assert body["rejected"] == [{"index": 0, "errors": {
        "site_id": ["Unknown field."], "org_id": ["Unknown field."]}}]
    assert len(stored(app, tenant.site)) == 1
    assert stored(app, other.site) == []
    # The other tenant's key writes to the other tenant only.
    other_key = create_ingest_key(client, other)
    assert ok(send(client, other_key, [event()]))["accepted"] == 1
    assert len(stored(app, tenant.site)) == 1 and len(stored(app, other.site)) == 1


@portable
def test_an_ingest_key_of_another_site_of_the_same_org_stays_on_its_site(
    app, client, world, tenant
):
    second = world.site(tenant.org, "Second")
    r = client.post(f"{tenant.org_path}/sites/{second.id}/ingest-keys", json={"name": "b"},
                    headers=tenant["org_admin"].headers)
    assert r.status_code == 201, r.get_data(as_text=True)
    key = type("K", (), {"headers": {"Authorization": f"Bearer {r.get_json()['secret']}"}})
    assert ok(send(client, key, [event()]))["accepted"] == 1
    assert [row.site_id for row in stored(app)] == [second.id]


# -- allowed origins ----------------------------------------------------------------------------


@portable
def test_a_key_with_allowed_origins_needs_one_of_them(app, client, tenant):
    key = create_ingest_key(client, tenant, allowed_origins=[ORIGIN, "http://localhost:3000"])
    for headers in ({}, {"Origin": "https://evil.example.com"}, {"Origin": ORIGIN + ":443"},
                    {"Origin": "null"}):
        assert_problem(send(client, key, [event()], headers=headers), 403)
    assert total(app) == 0
    for origin in (ORIGIN, "http://localhost:3000"):
        assert ok(send(client, key, [event()], headers={"Origin": origin}))["accepted"] == 1
    assert total(app) == 2


@portable
def test_a_key_without_allowed_origins_takes_any(client, ingest_key):
    for headers in ({}, {"Origin": "https://anywhere.example"}):
        assert ok(send(client, ingest_key, [event()], headers=headers))["accepted"] == 1


# -- the response, partial acceptance -----------------------------------------------------------


@portable
def test_valid_events_are_stored_while_others_are_rejected(app, client, ingest_key):
    sent = [
        event(),
        event(name="-bad"),
        event(),
        event(timestamp="yesterday", distinct_id=""),
        "not an event",
        event(properties={"k" * 101: 1}),
        event(),
    ]
    body = ok(send(client, ingest_key, sent))
    assert body["accepted"] == 3 and body["duplicates"] == 0
    assert body["rejected"] == [
        {"index": 1, "errors": {"name": ["Not a valid event name."]}},
        {"index": 3, "errors": {"timestamp": ["Not a valid datetime."],
                                "distinct_id": ["Length must be between 1 and 200."]}},
        {"index": 4, "errors": {"_schema": ["Invalid input type."]}},
        {"index": 5, "errors": {"properties": ["Keys are at most 100 characters."]}},
    ]
    assert {str(r.id) for r in stored(app)} == {sent[i]["event_id"] for i in (0, 2, 6)}


@portable
def test_a_batch_of_only_invalid_events_stores_nothing(app, client, ingest_key):
    body = ok(send(client, ingest_key, [event(name=None), {}]))
    assert body["accepted"] == 0 and body["duplicates"] == 0
    assert [r["index"] for r in body["rejected"]] == [0, 1]
    assert body["rejected"][1]["errors"] == {
        "name": ["Missing data for required field."],
        "timestamp": ["Missing data for required field."],
        "distinct_id": ["Missing data for required field."],
    }
    assert total(app) == 0


@portable
def test_timestamps_more_than_five_minutes_ahead_are_rejected_per_event(app, client, ingest_key):
    now = datetime.now(UTC)
    sent = [
        event(timestamp=(now + timedelta(minutes=4)).isoformat()),  # clock skew: fine
        event(timestamp=(now + timedelta(minutes=6)).isoformat()),
        event(timestamp=(now + timedelta(days=30)).isoformat()),
        event(timestamp=(now - timedelta(days=91)).isoformat()),
        event(timestamp=(now - timedelta(days=89)).isoformat()),
        event(timestamp="2030-01-01T00:00:00"),  # naive
    ]
    body = ok(send(client, ingest_key, sent))
    assert body["accepted"] == 2
    assert {r["index"]: r["errors"] for r in body["rejected"]} == {
        1: {"timestamp": ["More than 5 minutes in the future."]},
        2: {"timestamp": ["More than 5 minutes in the future."]},
        3: {"timestamp": ["More than 90 days in the past."]},
        5: {"timestamp": ["Not a valid aware datetime."]},
    }
    # Rejected, not clamped: what is stored is what was sent.
    assert sorted(r.ts for r in stored(app)) == sorted(
        datetime.fromisoformat(sent[i]["timestamp"]) for i in (0, 4)
    )


@portable
def test_text_that_spells_a_nul_escape_is_stored_but_a_nul_is_not(app, client, ingest_key):
    sent = [event(properties={"path": "C:\\u0000dir"}), event(properties={"bad": "a\x00b"})]
    body = ok(send(client, ingest_key, sent))
    assert body["accepted"] == 1
    assert body["rejected"] == [
        {"index": 1, "errors": {"properties": ["NUL characters are not allowed."]}}
    ]
    assert [r.properties for r in stored(app)] == [{"path": "C:\\u0000dir"}]


def nested_properties(levels: int) -> dict[str, Any]:
    """Properties nested `levels` deep, properties itself level 1: objects down to the
    depth limit, then lists (an object cannot nest deeper, a list can)."""
    value: Any = "leaf"
    for level in range(levels - 1, 0, -1):
        value = {f"o{level}": value} if level < spec.MAX_PROPERTY_DEPTH else [value]
    return {"top": value}


def batch_json(events: list[Any], deep: dict[str, int]) -> bytes:
    """The batch's JSON with each string `deep` names replaced by lists that many deep:
    orjson, like the clients' encoders, refuses to write more than 254 levels."""
    data = orjson.dumps({"events": events})
    for placeholder, levels in deep.items():
        data = data.replace(orjson.dumps(placeholder), b"[" * levels + b"1" + b"]" * levels)
    return data


@portable
def test_properties_are_nested_at_most_32_deep_and_the_rest_of_the_batch_is_kept(
    app, client, ingest_key,
):
    """Found while benchmarking: lists nested past orjson's limit (254) crashed both
    validators, a 500 for the whole batch. Now refused per event, like the other limits."""
    assert spec.MAX_PROPERTY_NESTING == 32
    too_deep = ["Lists and objects nested deeper than 32 levels."]
    sent = [
        event(),
        event(properties=nested_properties(32)),
        event(properties=nested_properties(33)),
        event(properties={"path": "/", "deep": "DEEP-254"}),
        event(properties={"deep": "DEEP-1000"}),
        event(name="-bad", properties={"deep": "DEEP-255"}),
        event(),
    ]
    body = ok(send(client, ingest_key, data=batch_json(sent, {"DEEP-254": 254, "DEEP-1000": 1000,
                                                              "DEEP-255": 255})))
    assert body["accepted"] == 3 and body["duplicates"] == 0
    assert body["rejected"] == [
        {"index": 2, "errors": {"properties": too_deep}},
        {"index": 3, "errors": {"properties": too_deep}},
        {"index": 4, "errors": {"properties": too_deep}},
        {"index": 5, "errors": {"name": ["Not a valid event name."], "properties": too_deep}},
    ]
    rows = {str(r.id): r.properties for r in stored(app)}
    assert rows == {sent[i]["event_id"]: sent[i]["properties"] for i in (0, 1, 6)}


@portable
def test_text_is_stored_exactly_as_sent(app, client, ingest_key):
    """Characters that array literals, JSON or COPY would have to escape survive the trip."""
    tricky = 'a,"b"{c}\\d\te\nf NULL \u00e9\U0001f642 \'g\' \\N'
    sent = [
        event(name="Page View: /a/b $1", distinct_id=tricky,
              properties={tricky: tricky, "list": [tricky, {"{": "}"}], "n": None,
                          "big": 2**63 - 1, "float": 1.5e-300, "empty": ""}),
        event(distinct_id="NULL", properties={}),
        event(distinct_id="{}", properties={"": []}),
    ]
    assert ok(send(client, ingest_key, sent))["accepted"] == 3
    rows = {str(r.id): r for r in stored(app)}
    for e in sent:
        row = rows[e["event_id"]]
        assert (row.name, row.distinct_id, row.properties) == (
            e["name"], e["distinct_id"], e["properties"])


# -- deduplication and event ids ----------------------------------------------------------------


@portable
def test_a_retried_event_is_stored_once(app, client, ingest_key):
    moment = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    first = event(timestamp=moment.isoformat())
    assert ok(send(client, ingest_key, [first])) == {
        "accepted": 1, "duplicates": 0, "rejected": []
    }
    # The same event again, the same instant spelled another way, plus a new event.
    again = {**first, "timestamp": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    shifted = {**first, "timestamp": moment.astimezone(timezone(timedelta(hours=2))).isoformat()}
    fresh = event()
    assert ok(send(client, ingest_key, [first, again, shifted, fresh])) == {
        "accepted": 1, "duplicates": 3, "rejected": []
    }
    assert sorted(str(r.id) for r in stored(app)) == sorted([first["event_id"], fresh["event_id"]])


@portable
def test_duplicates_within_one_batch_are_stored_once(app, client, ingest_key):
    one = event()
    two = event()
    body = ok(send(client, ingest_key, [one, one, two, one, {**two}]))
    assert body == {"accepted": 2, "duplicates": 3, "rejected": []}
    assert len(stored(app)) == 2


@portable
def test_the_same_event_id_on_two_sites_is_two_events(app, client, world, tenant, ingest_key):
    other_key = create_ingest_key(client, world.tenant("Other"))
    shared = event()
    assert ok(send(client, ingest_key, [shared]))["accepted"] == 1
    assert ok(send(client, other_key, [shared]))["accepted"] == 1
    assert total(app) == 2


@portable
def test_events_without_an_id_get_one(app, client, tenant, ingest_key):
    sent = [event(event_id=MISSING), event(event_id=None), event(event_id=MISSING)]
    assert ok(send(client, ingest_key, sent))["accepted"] == 3
    ids = [row.id for row in stored(app)]
    assert len(set(ids)) == 3 and all(i.version == 4 for i in ids)
    listed = client.get(f"{tenant.site_path}/events", headers=tenant["member"].headers)
    assert {e["event_id"] for e in listed.get_json()["items"]} == {str(i) for i in ids}


@portable
def test_an_event_id_is_kept_in_any_uuid_spelling(app, client, ingest_key):
    event_id, moment = uuid.uuid4(), ago(minutes=3)
    sent = [event(event_id=str(event_id).upper(), timestamp=moment),
            event(event_id="{" + str(event_id) + "}", timestamp=moment)]
    assert ok(send(client, ingest_key, sent[:1]))["accepted"] == 1
    assert ok(send(client, ingest_key, sent[1:]))["duplicates"] == 1
    assert [row.id for row in stored(app)] == [event_id]


# -- limits and encodings -----------------------------------------------------------------------


def small_event(i: int) -> dict[str, Any]:
    return {"name": "e", "timestamp": ago(minutes=1), "distinct_id": f"d{i}"}


@portable
def test_at_most_1000_events_per_batch(app, client, ingest_key):
    assert_problem(send(client, ingest_key, [small_event(i) for i in range(1001)]), 413)
    assert total(app) == 0
    assert ok(send(client, ingest_key, [small_event(i) for i in range(1000)]))["accepted"] == 1000
    assert total(app) == 1000


def padded(size: int) -> bytes:
    """A valid body of exactly `size` bytes (JSON may end in whitespace)."""
    body = orjson.dumps({"events": [event()]})
    return body + b" " * (size - len(body))


MIB = 1024 * 1024


@portable
def test_the_body_is_at_most_1_mib(app, client, ingest_key):
    assert ok(send(client, ingest_key, data=padded(MIB)))["accepted"] == 1
    assert_problem(send(client, ingest_key, data=padded(MIB + 1)), 413)
    assert total(app) == 1


@portable
def test_gzip_is_accepted_and_limited_to_1_mib_once_decompressed(app, client, ingest_key):
    gz = {"Content-Encoding": "gzip"}
    sent = [event() for _ in range(3)]
    body = gzip.compress(orjson.dumps({"events": sent}))
    assert ok(send(client, ingest_key, data=body, headers=gz))["accepted"] == 3
    upper = {"Content-Encoding": " GZIP "}
    assert ok(send(client, ingest_key, data=gzip.compress(padded(MIB)), headers=upper))[
        "accepted"] == 1
    too_big = gzip.compress(padded(MIB + 1))
    assert len(too_big) < 10_000  # small on the wire, too big once decompressed
    assert_problem(send(client, ingest_key, data=too_big, headers=gz), 413)
    identity = {"Content-Encoding": "identity"}
    assert ok(send(client, ingest_key, [event()], headers=identity))["accepted"] == 1
    assert total(app) == 5


def gzip_bomb(mebibytes: int) -> bytes:
    """A valid gzip stream of `mebibytes` MiB of zeros, built without compressing them all."""
    chunk = b"\0" * MIB
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = deflate.compress(chunk) + deflate.flush(zlib.Z_FULL_FLUSH)  # repeats as-is
    crc = 0
    for _ in range(mebibytes):
        crc = zlib.crc32(chunk, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    trailer = b"\x03\x00" + struct.pack("<II", crc, (mebibytes * MIB) & 0xFFFFFFFF)
    return header + block * mebibytes + trailer


@portable
def test_a_gzip_bomb_is_refused_fast(app, client, ingest_key):
    bomb = gzip_bomb(800)  # 800 MiB once inflated, under 1 MiB on the wire
    assert len(bomb) < MIB
    started = time.perf_counter()
    response = send(client, ingest_key, data=bomb, headers={"Content-Encoding": "gzip"})
    elapsed = time.perf_counter() - started
    assert_problem(response, 413)
    # Inflating it all takes seconds (and 800 MiB); the guard stops after 1 MiB.
    assert elapsed < 1.0, elapsed
    assert total(app) == 0


@portable
def test_broken_gzip_is_400(app, client, ingest_key):
    gz = {"Content-Encoding": "gzip"}
    whole = gzip.compress(orjson.dumps({"events": [event()]}))
    for data in (
        whole[: len(whole) // 2],  # truncated
        whole[:-4],  # no length in the trailer
        b"not gzip at all",
        orjson.dumps({"events": [event()]}),  # plain JSON labelled gzip
        whole + b"trailing garbage",
        whole + gzip.compress(orjson.dumps({"events": [event()]})),  # a second member
    ):
        assert_problem(send(client, ingest_key, data=data, headers=gz), 400)
    assert total(app) == 0


@portable
@pytest.mark.parametrize("encoding", ["br", "deflate", "gzip, br", "x-gzip", "compress"])
def test_other_content_encodings_are_415(app, client, ingest_key, encoding):
    data = gzip.compress(orjson.dumps({"events": [event()]}))
    assert_problem(send(client, ingest_key, data=data, headers={"Content-Encoding": encoding}), 415)
    assert total(app) == 0


@portable
@pytest.mark.parametrize("data", [b"{not json", b"", b"\xff\xfe", b'{"events": [}', b"[1,"])
def test_a_body_that_is_not_json_is_400(app, client, ingest_key, data):
    response = send(client, ingest_key, data=data)
    assert_problem(response, 400)


@portable
@pytest.mark.parametrize("data", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"events": [{"properties": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]}",
    b"[" * 1025 + b"]" * 1025,  # one level past orjson's limit
])
@pytest.mark.parametrize("encoding", ["identity", "gzip"])
def test_a_body_nested_past_the_decoders_limit_is_400(app, client, ingest_key, data, encoding):
    """orjson.loads refuses JSON nested deeper than 1,024 levels (a JSONDecodeError, its
    `depth limit exceeded`): a 400, not a crash of the worker."""
    if encoding == "gzip":
        data = gzip.compress(data)
    response = send(client, ingest_key, data=data, headers={"Content-Encoding": encoding})
    assert_problem(response, 400)
    assert total(app) == 0


@portable
@pytest.mark.parametrize(("body", "fields"), [
    ([event()], {"events"}),
    ("events", {"events"}),
    (None, {"events"}),
    ({}, {"events"}),
    ({"event": [event()]}, {"events"}),
    ({"events": [event()], "extra": 1}, {"extra"}),
    ({"events": {"0": event()}}, {"events"}),
    ({"events": None}, {"events"}),
    ({"events": []}, {"events"}),
])
def test_a_body_that_is_not_a_batch_is_400(app, client, ingest_key, body, fields):
    assert_problem(send(client, ingest_key, body=body), 400, errors=fields)
    assert total(app) == 0


@portable
@pytest.mark.parametrize("content_type", [
    "application/x-www-form-urlencoded", "application/xml", "text/html", None,
])
def test_a_body_that_is_not_declared_json_is_415(app, client, ingest_key, content_type):
    data = orjson.dumps({"events": [event()]})
    headers = {**ingest_key.headers, **({"Content-Type": content_type} if content_type else {})}
    assert_problem(client.post(BATCH, data=data, headers=headers), 415)
    assert total(app) == 0


# -- beacons: the key in the body, text/plain ---------------------------------------------------


def beacon(client: Any, body: Any, *, content_type: str = "text/plain;charset=UTF-8",
           headers: dict[str, str] | None = None, query: str = "") -> Any:
    """What `navigator.sendBeacon(url, JSON.stringify(body))` sends: no Authorization."""
    return client.post(BATCH + query, data=orjson.dumps(body),
                       headers={"Content-Type": content_type, **(headers or {})})


@portable
@pytest.mark.parametrize("content_type", [
    "text/plain", "text/plain;charset=UTF-8", "text/plain; charset=utf-8", "application/json",
])
def test_a_beacon_sends_its_key_in_the_body(app, client, tenant, ingest_key, content_type):
    sent = event()
    got = ok(beacon(client, {"key": ingest_key.secret, "events": [sent]},
                    content_type=content_type))
    assert got["accepted"] == 1
    [row] = stored(app)
    assert (row.site_id, str(row.id)) == (tenant.site.id, sent["event_id"])


@portable
def test_text_plain_is_read_as_json_with_the_key_in_authorization(app, client, ingest_key):
    response = send(client, ingest_key, [event()], headers={"Content-Type": "text/plain"})
    assert ok(response)["accepted"] == 1


@portable
def test_a_gzipped_beacon_is_read(app, client, ingest_key):
    data = gzip.compress(orjson.dumps({"key": ingest_key.secret, "events": [event()]}))
    response = client.post(BATCH, data=data, headers={"Content-Type": "text/plain",
                                                      "Content-Encoding": "gzip"})
    assert ok(response)["accepted"] == 1


@portable
def test_a_key_in_the_body_and_in_authorization_is_400(app, client, ingest_key):
    body = {"key": ingest_key.secret, "events": [event()]}
    assert_problem(beacon(client, body, headers=ingest_key.headers), 400, errors={"key"})
    assert total(app) == 0


@portable
def test_a_key_in_the_query_string_is_refused(app, client, ingest_key):
    for body in ({"events": [event()]}, {"key": ingest_key.secret, "events": [event()]}):
        response = beacon(client, body, query=f"?key={ingest_key.secret}")
        assert_problem(response, 400, errors={"key"})
        assert ingest_key.secret not in response.get_data(as_text=True)
    assert total(app) == 0


@portable
def test_only_a_valid_ingest_key_is_taken_from_the_body(app, client, tenant, ingest_key):
    api_key = create_api_key(client, tenant, role="member", site_id=str(tenant.site.id))
    assert ok(send(client, api_key, [event()]))["accepted"] == 1  # in Authorization: fine
    assert_problem(beacon(client, {"key": api_key.secret, "events": [event()]}), 401)
    wrong = ingest_key.secret[:-4] + "0000"
    for key in (wrong, "ik_nonsense", ""):
        assert_problem(beacon(client, {"key": key, "events": [event()]}), 401)
    assert_problem(beacon(client, {"key": 42, "events": [event()]}), 400, errors={"key"})
    assert_problem(beacon(client, {"events": [event()]}), 401)  # no key anywhere
    assert total(app) == 1


@portable
def test_a_beacon_from_a_refused_origin_stores_nothing(app, client, tenant):
    key = create_ingest_key(client, tenant, allowed_origins=[ORIGIN])
    body = {"key": key.secret, "events": [event()]}
    refused = beacon(client, body, headers={"Origin": "https://evil.example.com"})
    assert_problem(refused, 403)
    # The browser may read why (CORS headers on the refusal too).
    assert refused.headers["Access-Control-Allow-Origin"] == "https://evil.example.com"
    assert total(app) == 0
    accepted = beacon(client, body, headers={"Origin": ORIGIN})
    assert ok(accepted)["accepted"] == 1
    assert accepted.headers["Access-Control-Allow-Origin"] == ORIGIN


@portable
def test_the_contract_documents_both_keys_and_both_types(client):
    operation = client.get("/openapi.json").get_json()["paths"]["/v1/events/batch"]["post"]
    content = operation["requestBody"]["content"]
    assert set(content) == {"application/json", "text/plain"}
    assert {"bearerAuth": []} in operation["security"] and {} in operation["security"]
    schema = client.get("/openapi.json").get_json()["components"]["schemas"]["EventBatch"]
    assert "key" in schema["properties"]


# -- the per-key event budget -------------------------------------------------------------------


@pytest.fixture
def make_app(app: Any, tmp_path: Any) -> Iterator[Callable[..., Any]]:
    """Further apps on the test database (the session's app keeps serving the setup)."""
    built: list[Any] = []

    def build(**overrides: Any) -> Any:
        base = app.extensions["settings"]
        other = create_app({
            "database_url": base.database_url,
            "migration_database_url": base.migration_database_url,
            "instance_path": str(tmp_path / f"instance-{len(built)}"),
            "jwt_keys": base.jwt_keys,
            "s3_endpoint_url": base.s3_endpoint_url,
            "log_level": "CRITICAL",
            **overrides,
        })
        other.config["TESTING"] = True
        built.append(other)
        return other

    yield build
    for other in built:
        other.extensions["actor_cache"].close()
        other.extensions["db.engine"].dispose()


@portable
def test_a_spent_event_budget_is_429_with_retry_after(app, client, tenant, make_app):
    limited = make_app(ratelimit_enabled=True, ingest_rate_limit="10 per minute").test_client()
    key = create_ingest_key(client, tenant)
    other_key = create_ingest_key(client, tenant)
    # The cost is the number of events received, rejected ones included.
    first = [event() for _ in range(4)] + [event(name="-bad")] * 2
    result = ok(send(limited, key, first))
    assert (result["accepted"], len(result["rejected"])) == (4, 2)
    assert ok(send(limited, key, [event() for _ in range(4)]))["accepted"] == 4
    assert total(app) == 8
    response = send(limited, key, [event()])
    assert_problem(response, 429)
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert total(app) == 8  # nothing of a refused batch is stored
    # The budget is the key's own.
    assert ok(send(limited, other_key, [event() for _ in range(10)]))["accepted"] == 10
    assert_problem(send(limited, other_key, [event() for _ in range(2)]), 429)
    assert total(app) == 18


@portable
def test_rejected_events_spend_the_budget_too(app, client, tenant, make_app):
    """A key cannot send invalid events for free: validating them costs too."""
    limited = make_app(ratelimit_enabled=True, ingest_rate_limit="5 per minute").test_client()
    key = create_ingest_key(client, tenant)
    bad = [event(name="-bad") for _ in range(5)]
    assert len(ok(send(limited, key, bad))["rejected"]) == 5
    response = send(limited, key, [event(name="-bad")])
    assert_problem(response, 429)
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert_problem(send(limited, key, [event()]), 429)  # valid ones wait as well
    assert total(app) == 0


@portable
def test_a_batch_over_the_whole_budget_is_refused(app, client, tenant, make_app):
    limited = make_app(ratelimit_enabled=True, ingest_rate_limit="5 per minute").test_client()
    key = create_ingest_key(client, tenant)
    response = send(limited, key, [event() for _ in range(6)])
    assert_problem(response, 429)
    assert int(response.headers["Retry-After"]) >= 1
    assert total(app) == 0


# -- CORS ---------------------------------------------------------------------------------------


@portable
def test_the_cors_preflight_is_answered_without_credentials(client):
    response = client.options(BATCH, headers={
        "Origin": ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, content-encoding",
    })
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    allowed = response.headers["Access-Control-Allow-Headers"].lower().replace(" ", "").split(",")
    assert {"authorization", "content-type", "content-encoding"} <= set(allowed)
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert "Origin" in response.headers["Vary"]


@portable
def test_every_answer_to_a_browser_is_readable_by_it(app, client, tenant, make_app):
    key = create_ingest_key(client, tenant, allowed_origins=[ORIGIN])
    limited = make_app(ratelimit_enabled=True, ingest_rate_limit="1 per minute").test_client()
    evil = "https://evil.example.com"
    answers = {
        200: (ORIGIN, send(client, key, [event()], headers={"Origin": ORIGIN})),
        401: (ORIGIN, send(client, None, [event()], headers={"Origin": ORIGIN})),
        403: (evil, send(client, key, [event()], headers={"Origin": evil})),
        400: (ORIGIN, send(client, key, body={}, headers={"Origin": ORIGIN})),
    }
    send(limited, key, [event()], headers={"Origin": ORIGIN})
    answers[429] = (ORIGIN, send(limited, key, [event()], headers={"Origin": ORIGIN}))
    for status, (origin, response) in answers.items():
        assert response.status_code == status, response.get_data(as_text=True)
        # The script may read the answer (its key's origin check is what refuses it).
        assert response.headers["Access-Control-Allow-Origin"] == origin
        assert "Origin" in response.headers["Vary"]
        exposed = {h.strip().lower() for h in
                   response.headers.get("Access-Control-Expose-Headers", "").split(",")}
        # A browser script must see when to retry, and which request to report.
        assert {"retry-after", "x-request-id"} <= exposed, status
    assert "Access-Control-Allow-Origin" not in send(client, key, [event()]).headers


@portable
def test_cors_headers_stay_on_the_events_endpoint(client, tenant):
    response = client.get(tenant.org_path, headers={
        **tenant["org_admin"].headers, "Origin": ORIGIN,
    })
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers


# -- PostgreSQL: partitions and outages ---------------------------------------------------------


def month_partition(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return f"events_{moment.year:04d}_{moment.month:02d}"


def test_an_event_lands_in_its_months_partition(app, client, ingest_key):
    now = datetime.now(UTC)
    moments = [now - timedelta(minutes=1), now - timedelta(days=40), now - timedelta(days=85)]
    sent = [event(timestamp=m.isoformat()) for m in moments]
    assert ok(send(client, ingest_key, sent))["accepted"] == 3
    with owner_engine(app).connect() as conn:
        placed = dict(conn.execute(text(
            "SELECT event_id::text, tableoid::regclass::text FROM events"
        )).all())
    assert placed == {e["event_id"]: month_partition(m) for e, m in zip(sent, moments, strict=True)}


def add_months(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 + months
    return moment.replace(year=index // 12, month=index % 12 + 1, day=1)


def test_the_partitions_command_creates_future_months_once(app, tenant):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["events", "partitions", "--months-ahead", "6"])
    assert result.exit_code == 0, result.output
    now = datetime.now(UTC)
    wanted = [month_partition(add_months(now, m)) for m in range(7)]
    with owner_engine(app).connect() as conn:
        for name in wanted:
            assert conn.execute(text("SELECT to_regclass(:n)"), {"n": name}).scalar() == name
        bounds = conn.execute(text(
            "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c WHERE c.relname = :n"
        ), {"n": wanted[6]}).scalar()
    start, end = add_months(now, 6), add_months(now, 7)
    assert f"FROM ('{start:%Y-%m}-01" in bounds and f"TO ('{end:%Y-%m}-01" in bounds, bounds
    again = runner.invoke(args=["events", "partitions", "--months-ahead", "6"])
    assert again.exit_code == 0 and "nothing" in again.output, again.output
    # A row of that month is routed to its partition, not to the default one.
    ts = start + timedelta(days=3)
    with owner_engine(app).begin() as conn:
        conn.execute(text(
            "INSERT INTO events (org_id, site_id, event_id, name, ts, received_at, distinct_id,"
            " properties) VALUES (:org, :site, :id, 'x', :ts, now(), 'd', '{}')"
        ), {"org": tenant.org.id, "site": tenant.site.id, "id": uuid.uuid4(), "ts": ts})
        where = conn.execute(text("SELECT tableoid::regclass::text FROM events")).scalar()
    assert where == wanted[6]


@portable
def test_the_partitions_command_is_for_postgresql_only(app, is_postgres):
    if is_postgres:
        pytest.skip("SQLite only")
    result = app.test_cli_runner().invoke(args=["events", "partitions"])
    assert result.exit_code != 0 and "PostgreSQL only" in result.output


class ConnectionKiller:
    """While armed, any INSERT into events kills its own database connection: the server
    goes away exactly between the request's reads (key, site) and its write."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.armed = False

    def arm(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(text(
                "CREATE FUNCTION test_kill_own_connection() RETURNS trigger LANGUAGE plpgsql AS"
                " $$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NULL; END $$"
            ))
            conn.execute(text(
                "CREATE TRIGGER test_kill_own_connection BEFORE INSERT ON events "
                "FOR EACH STATEMENT EXECUTE FUNCTION test_kill_own_connection()"
            ))
        self.armed = True

    def disarm(self) -> None:
        if self.armed:
            with self.engine.begin() as conn:
                conn.execute(text("DROP TRIGGER test_kill_own_connection ON events"))
                conn.execute(text("DROP FUNCTION test_kill_own_connection()"))
            self.armed = False


@pytest.fixture
def killer(app: Any) -> Iterator[ConnectionKiller]:
    killer = ConnectionKiller(owner_engine(app))
    yield killer
    killer.disarm()


def test_losing_the_database_during_the_write_is_503_and_stores_nothing(
    app, client, ingest_key, killer
):
    sent = [event() for _ in range(5)]
    assert ok(send(client, ingest_key, [event()]))["accepted"] == 1  # key and site are fine
    killer.arm()
    response = send(client, ingest_key, sent)
    body = assert_problem(response, 503)
    assert "accepted" not in body
    assert int(response.headers["Retry-After"]) >= 1
    assert total(app) == 1
    # Once the database is back, the client's retry stores the batch, once; the pool has
    # dropped the dead connection.
    killer.disarm()
    assert ok(send(client, ingest_key, sent)) == {"accepted": 5, "duplicates": 0, "rejected": []}
    assert total(app) == 6


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_database_is_503(app, client, ingest_key, make_app):
    runtime = app.extensions["settings"].database_url
    nowhere = make_url(runtime).set(host="127.0.0.1", port=closed_port())
    down = make_app(database_url=nowhere.render_as_string(hide_password=False)).test_client()
    response = send(down, ingest_key, [event()])
    assert_problem(response, 503)
    assert int(response.headers["Retry-After"]) >= 1
    assert total(app) == 0
