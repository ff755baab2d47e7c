"""Reading events: GET .../events (filters, cursor pagination) and GET .../events/stats
(counts per name per hour or day). Members and up read; the tenant filter keeps every
other site's events out."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from tests.support import Tenant
from tests.support.events import ok, send
from tests.support.http import ROLES, assert_problem, items, pages
from tests.support.keys import create_api_key, create_ingest_key

pytestmark = pytest.mark.portable

# Midnight UTC three days ago: every seeded event is in the past and within 90 days.
BASE = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=3)


def at(hours: float = 0, minutes: float = 0, days: float = 0) -> datetime:
    return BASE + timedelta(days=days, hours=hours, minutes=minutes)


def make_event(name: str, distinct_id: str, moment: datetime, **props: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()), "name": name, "distinct_id": distinct_id,
        "timestamp": moment.isoformat(), "properties": props,
    }


# (name, distinct_id, when): ties on the timestamp on purpose (keyset order falls back on id).
SEED = [
    ("signup", "u1", at(hours=10, minutes=5)),
    ("page.view", "u1", at(hours=10, minutes=5)),
    ("page.view", "u2", at(hours=10, minutes=5)),
    ("page.view", "u1", at(hours=10, minutes=55)),
    ("purchase", "u2", at(hours=11, minutes=10)),
    ("page.view", "u3", at(hours=11, minutes=20)),
    ("page.view", "u2", at(days=1, hours=2)),
    ("signup", "u3", at(days=1, hours=2)),
    ("page.view", "u1", at(days=1, hours=23, minutes=59)),
    ("purchase", "u1", at(days=2, hours=0)),
    ("page.view", "u3", at(days=2, hours=0, minutes=30)),
]


def seed(client: Any, tenant: Tenant, rows: list[tuple[str, str, datetime]] = SEED,
         key: Any = None) -> list[dict[str, Any]]:
    key = key or create_ingest_key(client, tenant)
    events = [make_event(n, d, m, seq=i) for i, (n, d, m) in enumerate(rows)]
    assert ok(send(client, key, events))["accepted"] == len(events)
    return events


def events_path(tenant: Tenant) -> str:
    return f"{tenant.site_path}/events"


def stats_path(tenant: Tenant) -> str:
    return f"{tenant.site_path}/events/stats"


def ids(listed: list[dict[str, Any]]) -> list[str]:
    return [e["event_id"] for e in listed]


def when(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["timestamp"])


@pytest.fixture
def seeded(client: Any, tenant: Tenant) -> list[dict[str, Any]]:
    return seed(client, tenant)


# -- who reads ----------------------------------------------------------------------------------

#              org_admin site_admin member viewer | site_site_admin site_member site_viewer | out
EXPECTED = dict(zip(ROLES, (200, 200, 200, 403, 200, 200, 403, 404), strict=True))
WINDOW = {"since": at().isoformat(), "until": at(days=3).isoformat()}


@pytest.mark.parametrize("role", ROLES)
def test_members_and_up_read_events(client, tenant, seeded, role):
    expected = EXPECTED[role]
    headers = tenant[role].headers
    for path, query in ((events_path(tenant), {}), (stats_path(tenant), WINDOW)):
        response = client.get(path, query_string=query, headers=headers)
        if expected == 200:
            assert response.status_code == 200, response.get_data(as_text=True)
        else:
            body = assert_problem(response, expected)
            assert "page.view" not in str(body)


def test_keys_read_events_by_their_role(client, tenant, seeded):
    member = create_api_key(client, tenant, role="member", site_id=str(tenant.site.id))
    viewer = create_api_key(client, tenant, role="viewer", site_id=str(tenant.site.id))
    listed = items(client, events_path(tenant), member, limit=100)
    assert set(ids(listed)) == {e["event_id"] for e in seeded}
    assert_problem(client.get(events_path(tenant), headers=viewer.headers), 403)
    # An ingest key only writes.
    ingest = create_ingest_key(client, tenant)
    assert_problem(client.get(events_path(tenant), headers=ingest.headers), 401)
    assert_problem(client.get(stats_path(tenant), query_string=WINDOW,
                              headers=ingest.headers), 401)


def test_the_site_in_the_path_must_belong_to_the_org_in_the_path(client, world, tenant, seeded):
    other = world.tenant("Other")
    mixed = f"{tenant.org_path}/sites/{other.site.id}/events"
    assert_problem(client.get(mixed, headers=tenant["org_admin"].headers), 404)
    assert_problem(client.get(f"{tenant.org_path}/sites/{uuid.uuid4()}/events",
                              headers=tenant["org_admin"].headers), 404)


# -- the list -----------------------------------------------------------------------------------


def test_events_come_back_as_sent_newest_first(client, tenant, seeded):
    listed = items(client, events_path(tenant), tenant["member"], limit=100)
    assert sorted(ids(listed)) == sorted(e["event_id"] for e in seeded)
    by_id = {e["event_id"]: e for e in seeded}
    for item in listed:
        assert set(item) == {"event_id", "name", "timestamp", "received_at", "distinct_id",
                             "properties"}
        sent = by_id[item["event_id"]]
        assert (item["name"], item["distinct_id"], item["properties"]) == (
            sent["name"], sent["distinct_id"], sent["properties"])
        assert when(item) == when(sent)
    keys = [(when(e), e["event_id"]) for e in listed]
    assert keys == sorted(keys, reverse=True)


@pytest.mark.parametrize("sort", ["-timestamp", "timestamp"])
@pytest.mark.parametrize("limit", [1, 3, 4])
def test_pages_have_no_gaps_and_no_duplicates(client, tenant, seeded, sort, limit):
    walked = pages(client, events_path(tenant), tenant["member"], limit=limit, sort=sort)
    listed = [item for page in walked for item in page["items"]]
    assert len(walked) == -(-len(seeded) // limit)
    assert len(ids(listed)) == len(set(ids(listed))) == len(seeded)
    assert set(ids(listed)) == {e["event_id"] for e in seeded}
    keys = [(when(e), e["event_id"]) for e in listed]
    assert keys == sorted(keys, reverse=sort.startswith("-"))


def test_pages_stay_consistent_while_events_arrive(client, tenant, seeded):
    """Keyset pages: events inserted behind the cursor neither repeat nor shift the rest."""
    key = create_ingest_key(client, tenant)
    first = client.get(events_path(tenant), query_string={"limit": 4},
                       headers=tenant["member"].headers).get_json()
    seed(client, tenant, [("late", "u9", at(days=2, hours=5))], key=key)  # newer than page 1
    rest = items(client, events_path(tenant), tenant["member"], limit=4,
                 cursor=first["next_cursor"])
    assert set(ids(first["items"])) | set(ids(rest)) == {e["event_id"] for e in seeded}
    assert not set(ids(first["items"])) & set(ids(rest))


def test_a_cursor_is_bound_to_its_list(client, world, tenant, seeded):
    second = world.site(tenant.org, "Second")
    first = client.get(events_path(tenant), query_string={"limit": 2},
                       headers=tenant["org_admin"].headers).get_json()
    other_list = f"{tenant.org_path}/sites/{second.id}/events"
    response = client.get(other_list, query_string={"cursor": first["next_cursor"]},
                          headers=tenant["org_admin"].headers)
    assert_problem(response, 400, errors={"cursor"})


@pytest.mark.parametrize(("query", "expected"), [
    ({"name": "page.view"}, lambda n, d, m: n == "page.view"),
    ({"name": "signup"}, lambda n, d, m: n == "signup"),
    ({"name": "nope"}, lambda n, d, m: False),
    ({"distinct_id": "u1"}, lambda n, d, m: d == "u1"),
    ({"name": "page.view", "distinct_id": "u2"}, lambda n, d, m: n == "page.view" and d == "u2"),
    ({"since": at(hours=10, minutes=55).isoformat()}, lambda n, d, m: m >= at(10, 55)),
    ({"until": at(hours=10, minutes=55).isoformat()}, lambda n, d, m: m < at(10, 55)),
    ({"since": at(days=1).isoformat(), "until": at(days=2).isoformat()},
     lambda n, d, m: at(days=1) <= m < at(days=2)),
    ({"since": at(days=1).isoformat(), "until": at(days=2).isoformat(), "name": "signup"},
     lambda n, d, m: at(days=1) <= m < at(days=2) and n == "signup"),
])
def test_filters(client, tenant, seeded, query, expected):
    listed = items(client, events_path(tenant), tenant["member"], limit=2, **query)
    wanted = {e["event_id"] for e, row in zip(seeded, SEED, strict=True) if expected(*row)}
    assert set(ids(listed)) == wanted
    assert len(listed) == len(wanted)


@pytest.mark.parametrize(("query", "fields"), [
    ({"since": "yesterday"}, {"since"}),
    ({"until": "2030-01-01T00:00:00"}, {"until"}),  # naive
    ({"name": "x" * 129}, {"name"}),
    ({"limit": 0}, {"limit"}),
    ({"limit": 101}, {"limit"}),
    ({"sort": "name"}, {"sort"}),
    ({"cursor": "forged.cursor"}, {"cursor"}),
])
def test_bad_list_arguments_are_400(client, tenant, query, fields):
    response = client.get(events_path(tenant), query_string=query,
                          headers=tenant["member"].headers)
    assert_problem(response, 400, errors=fields)


def test_other_sites_events_never_appear(client, world, tenant, seeded):
    second = world.site(tenant.org, "Second")
    other = world.tenant("Other")
    r = client.post(f"{tenant.org_path}/sites/{second.id}/ingest-keys", json={"name": "b"},
                    headers=tenant["org_admin"].headers)
    second_key = type("K", (), {"headers": {"Authorization": f"Bearer {r.get_json()['secret']}"}})
    on_second = seed(client, tenant, SEED[:4], key=second_key)
    on_other = seed(client, other, SEED)
    mine = {e["event_id"] for e in seeded}
    for query in ({}, {"name": "page.view"}, {"distinct_id": "u1"}):
        listed = items(client, events_path(tenant), tenant["org_admin"], limit=100, **query)
        assert set(ids(listed)) <= mine
    assert set(ids(items(client, events_path(tenant), tenant["org_admin"], limit=100))) == mine
    second_path = f"{tenant.org_path}/sites/{second.id}/events"
    assert set(ids(items(client, second_path, tenant["org_admin"], limit=100))) == {
        e["event_id"] for e in on_second}
    assert set(ids(items(client, events_path(other), other["member"], limit=100))) == {
        e["event_id"] for e in on_other}
    # Counting too.
    rows = client.get(stats_path(tenant), query_string=WINDOW,
                      headers=tenant["member"].headers).get_json()["rows"]
    assert sum(r["count"] for r in rows) == len(SEED)


# -- stats --------------------------------------------------------------------------------------


def stats(client: Any, tenant: Tenant, **query: Any) -> list[tuple[datetime, str, int]]:
    response = client.get(stats_path(tenant), query_string=query,
                          headers=tenant["member"].headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"interval", "rows", "next_cursor"}
    assert body["interval"] == query.get("interval", "day")
    assert body["next_cursor"] is None  # these fit one page
    return rows_of(body)


def rows_of(body: dict[str, Any]) -> list[tuple[datetime, str, int]]:
    return [(datetime.fromisoformat(r["bucket"]), r["name"], r["count"]) for r in body["rows"]]


def stats_pages(client: Any, tenant: Tenant, **query: Any) -> list[dict[str, Any]]:
    """Every page of the stats, following `next_cursor` until it is null."""
    walked: list[dict[str, Any]] = []
    cursor = None
    while len(walked) < 1000:
        response = client.get(stats_path(tenant), headers=tenant["member"].headers,
                              query_string={**query, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.get_data(as_text=True)
        walked.append(response.get_json())
        cursor = walked[-1]["next_cursor"]
        if cursor is None:
            return walked
        assert walked[-1]["rows"], "a page with a next_cursor must not be empty"
    raise AssertionError("pagination does not end")


def expected_counts(interval: str, since: datetime, until: datetime, name: str | None = None):
    counts: dict[tuple[datetime, str], int] = {}
    for n, _, moment in SEED:
        if not since <= moment < until or (name and n != name):
            continue
        bucket = moment.replace(minute=0, second=0, microsecond=0)
        if interval == "day":
            bucket = bucket.replace(hour=0)
        counts[bucket, n] = counts.get((bucket, n), 0) + 1
    return [(b, n, c) for (b, n), c in sorted(counts.items())]


def test_hourly_counts_per_name(client, tenant, seeded):
    got = stats(client, tenant, since=at().isoformat(), until=at(days=1).isoformat(),
                interval="hour")
    assert got == [
        (at(hours=10), "page.view", 3),
        (at(hours=10), "signup", 1),
        (at(hours=11), "page.view", 1),
        (at(hours=11), "purchase", 1),
    ]
    assert all(b.utcoffset() == timedelta(0) for b, _, _ in got)
    wide = stats(client, tenant, since=at().isoformat(), until=at(days=3).isoformat(),
                 interval="hour")
    assert wide == expected_counts("hour", at(), at(days=3))


def test_daily_counts_per_name(client, tenant, seeded):
    got = stats(client, tenant, since=at().isoformat(), until=at(days=3).isoformat())
    assert got == [
        (at(), "page.view", 4),
        (at(), "purchase", 1),
        (at(), "signup", 1),
        (at(days=1), "page.view", 2),
        (at(days=1), "signup", 1),
        (at(days=2), "page.view", 1),
        (at(days=2), "purchase", 1),
    ]


@pytest.mark.parametrize(("since", "until"), [
    (at(hours=10, minutes=5), at(hours=11, minutes=10)),  # since inclusive, until exclusive
    (at(hours=10, minutes=6), at(days=2)),
    (at(days=1, hours=23, minutes=59), at(days=2, minutes=30)),
])
@pytest.mark.parametrize("interval", ["hour", "day"])
def test_the_window_bounds_the_counts(client, tenant, seeded, since, until, interval):
    got = stats(client, tenant, since=since.isoformat(), until=until.isoformat(),
                interval=interval)
    assert got == expected_counts(interval, since, until)


def test_counts_of_one_name(client, tenant, seeded):
    got = stats(client, tenant, since=at().isoformat(), until=at(days=3).isoformat(),
                name="page.view")
    assert got == expected_counts("day", at(), at(days=3), "page.view")
    assert {n for _, n, _ in got} == {"page.view"}
    assert stats(client, tenant, since=at().isoformat(), until=at(days=3).isoformat(),
                 name="nope") == []


def test_window_offsets_are_honoured(client, tenant, seeded):
    """`since` with another offset is the same instant; buckets stay in UTC."""
    plus2 = at().astimezone(timezone(timedelta(hours=2)))
    got = stats(client, tenant, since=plus2.isoformat(),
                until=at(days=1).isoformat(), interval="hour")
    assert got == expected_counts("hour", at(), at(days=1))


WIDE = {"since": at().isoformat(), "until": at(days=3).isoformat()}


@pytest.mark.parametrize("limit", [1, 2, 3, 7])
@pytest.mark.parametrize(("interval", "name"), [("hour", None), ("day", None),
                                                ("day", "page.view")])
def test_stats_pages_cover_exactly_the_whole_result(client, tenant, seeded, limit, interval,
                                                    name):
    query = {**WIDE, "interval": interval, **({"name": name} if name else {})}
    whole = stats(client, tenant, **query, limit=1000)
    assert whole == expected_counts(interval, at(), at(days=3), name)
    walked = stats_pages(client, tenant, **query, limit=limit)
    assert all(len(page["rows"]) <= limit for page in walked)
    assert all(page["interval"] == interval for page in walked)
    assert [row for page in walked for row in rows_of(page)] == whole
    assert len(walked) == -(-len(whole) // limit)


def test_stats_come_a_hundred_rows_a_page_by_default(client, tenant):
    seed(client, tenant, [(f"e{i:03}", "u1", at(hours=1)) for i in range(101)])
    walked = stats_pages(client, tenant, **WIDE)
    assert [len(page["rows"]) for page in walked] == [100, 1]
    assert [name for page in walked for _, name, _ in rows_of(page)] == [
        f"e{i:03}" for i in range(101)]


def test_a_stats_cursor_is_checked(client, world, tenant, seeded):
    first = client.get(stats_path(tenant), query_string={**WIDE, "limit": 2},
                       headers=tenant["org_admin"].headers).get_json()
    cursor = first["next_cursor"]
    body, mac = cursor.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    assert payload[0] == "stats" and payload[-1] == first["rows"][-1]["name"]
    payload[-1] = "a"  # resume elsewhere, keeping the signature
    altered = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    events_cursor = client.get(events_path(tenant), query_string={"limit": 1},
                               headers=tenant["org_admin"].headers).get_json()["next_cursor"]
    second = world.site(tenant.org, "Second")
    other_list = f"{tenant.org_path}/sites/{second.id}/events/stats"
    refused = [
        (stats_path(tenant), {"cursor": f"{altered}.{mac}"}),
        (stats_path(tenant), {"cursor": f"{body}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}"}),
        (stats_path(tenant), {"cursor": "forged.cursor"}),
        (stats_path(tenant), {"cursor": events_cursor}),  # another list's
        (stats_path(tenant), {"cursor": cursor, "interval": "hour"}),  # another interval's
        (other_list, {"cursor": cursor}),  # another site's
    ]
    for path, query in refused:
        response = client.get(path, query_string={**WIDE, "limit": 2, **query},
                              headers=tenant["org_admin"].headers)
        assert_problem(response, 400, errors={"cursor"})
    # The genuine cursor works.
    response = client.get(stats_path(tenant), query_string={**WIDE, "limit": 2,
                                                            "cursor": cursor},
                          headers=tenant["org_admin"].headers)
    assert response.status_code == 200, response.get_data(as_text=True)


@pytest.mark.parametrize(("query", "fields"), [
    ({**WIDE, "limit": 0}, {"limit"}),
    ({**WIDE, "limit": 1001}, {"limit"}),
    ({**WIDE, "cursor": "x" * 1025}, {"cursor"}),
    ({"since": at().isoformat(), "until": at().isoformat()}, {"until"}),
    ({"since": at(days=1).isoformat(), "until": at().isoformat()}, {"until"}),
    ({"since": at().isoformat(), "until": at(days=31, minutes=1).isoformat(),
      "interval": "hour"}, {"until"}),
    ({"since": at(days=-364).isoformat(), "until": at(days=2, minutes=1).isoformat()},
     {"until"}),
    ({"since": at().isoformat(), "until": at(days=1).isoformat(), "interval": "week"},
     {"interval"}),
    ({"until": at(days=1).isoformat()}, {"since"}),
    ({"since": at().isoformat()}, {"until"}),
    ({}, {"since", "until"}),
    ({"since": "2030-01-01T00:00:00", "until": at(days=1).isoformat()}, {"since"}),
    ({"since": at().isoformat(), "until": at(days=1).isoformat(), "name": "x" * 129},
     {"name"}),
])
def test_bad_stats_windows_are_400(client, tenant, query, fields):
    response = client.get(stats_path(tenant), query_string=query,
                          headers=tenant["member"].headers)
    assert_problem(response, 400, errors=fields)


def test_the_widest_windows_are_allowed(client, tenant, seeded):
    assert stats(client, tenant, since=at().isoformat(), until=at(days=31).isoformat(),
                 interval="hour") == expected_counts("hour", at(), at(days=31))
    assert stats(client, tenant, since=at(days=-363).isoformat(),
                 until=at(days=3).isoformat()) == expected_counts("day", at(days=-363), at(days=3))
