"""`Idempotency-Key` on authenticated POSTs (app/idempotency.py).

A replay returns the first status and body with `Idempotent-Replayed: true` and does not
redo the work; the same key with another body is 422; validation failures are not kept;
keys are scoped per organization, principal, method and route; records expire; a claim
whose request died is taken over after its lease; and concurrent duplicates, sent by real
threads against PostgreSQL, do the work exactly once.

Work done is counted in the tables themselves, read as their owner (outside row-level
security), never through the API under test.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select, update

from app.db import owner_sessionmaker, utcnow
from app.models import (
    ApiKey,
    Event,
    IdempotencyRecord,
    Invitation,
    Organization,
    OrgMembership,
    Site,
)
from tests.support import Person, Tenant, World
from tests.support.http import assert_problem

portable = pytest.mark.portable
HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
LEASE = timedelta(seconds=60)  # the contract: a claim older than this belongs to a dead request


# -- helpers ------------------------------------------------------------------------------------


def keyed(person_or_headers: Person | dict[str, str], key: str) -> dict[str, str]:
    headers = (
        person_or_headers.headers if isinstance(person_or_headers, Person) else person_or_headers
    )
    return {**headers, HEADER: key}


def new_key() -> str:
    return f"idem-{uuid.uuid4()}"


def count(app: Any, model: type, *where: Any) -> int:
    with owner_sessionmaker(app)() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def records(app: Any, key: str) -> list[IdempotencyRecord]:
    with owner_sessionmaker(app)() as session:
        return list(session.scalars(select(IdempotencyRecord).where(IdempotencyRecord.key == key)))


def set_records(app: Any, key: str, **values: Any) -> None:
    with owner_sessionmaker(app)() as session, session.begin():
        session.execute(
            update(IdempotencyRecord).where(IdempotencyRecord.key == key).values(**values)
        )


def assert_replay(first: Any, again: Any) -> None:
    """`again` is the replay of `first`: same status, media type and body, marked replayed;
    a new key's secret alone is not replayed (shown once, never stored)."""
    assert again.status_code == first.status_code, again.get_data(as_text=True)
    assert again.headers.get(REPLAYED) == "true", dict(again.headers)
    assert again.mimetype == first.mimetype
    expected = first.get_json(silent=True)
    if isinstance(expected, dict) and "secret" in expected:
        assert again.get_json() == {**expected, "secret": "(shown once: not replayed)"}
    else:
        assert again.get_data() == first.get_data()
    assert again.headers.get("Location") == first.headers.get("Location")


def assert_fresh(response: Any, status: int) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert REPLAYED not in response.headers, dict(response.headers)


# -- the POST endpoints exercised: each knows its request and how to count its work ------------


@dataclass(frozen=True)
class Endpoint:
    name: str
    send: Callable[[Any, Tenant, dict[str, str], dict[str, Any]], Any]
    body: Callable[[], dict[str, Any]]
    bad_body: dict[str, Any]  # refused by validation (400)
    caller: Callable[[Any, Tenant], dict[str, str]]  # headers of someone allowed
    work: Callable[[Any, Tenant], int]  # rows the endpoint creates
    status: int = 201


def _post(path: Callable[[Tenant], str]) -> Callable[..., Any]:
    return lambda client, tenant, headers, body: client.post(
        path(tenant), json=body, headers=headers
    )


def _ingest_key(client: Any, tenant: Tenant) -> dict[str, str]:
    """An ingest key of tenant.site, created through the API."""
    r = client.post(
        f"{tenant.site_path}/ingest-keys", json={"name": "browser"},
        headers=tenant["site_admin"].headers,
    )
    assert r.status_code == 201, r.get_data(as_text=True)
    return {"Authorization": f"Bearer {r.get_json()['secret']}"}


def _event_batch() -> dict[str, Any]:
    # No `event_id`: without the Idempotency-Key, a retry would store the events again.
    stamp = (utcnow() - timedelta(minutes=1)).isoformat()
    return {"events": [
        {"name": "page.view", "timestamp": stamp, "distinct_id": f"v-{uuid.uuid4().hex[:8]}"},
        {"name": "cart.add", "timestamp": stamp, "distinct_id": "v-2"},
    ]}


ENDPOINTS = [
    Endpoint(
        "orgs",
        _post(lambda t: "/v1/orgs"),
        lambda: {"name": f"Org {uuid.uuid4().hex[:6]}"},
        {"name": ""},
        lambda client, t: t["outsider"].headers,  # anyone may create an organization
        lambda app, t: count(app, Organization),
    ),
    Endpoint(
        "sites",
        _post(lambda t: f"{t.org_path}/sites"),
        lambda: {"name": f"Site {uuid.uuid4().hex[:6]}", "domain": "shop.example.com"},
        {"name": "ok", "domain": "not a host"},
        lambda client, t: t["org_admin"].headers,
        lambda app, t: count(app, Site, Site.org_id == t.org.id),
    ),
    Endpoint(
        "org-members",
        _post(lambda t: f"{t.org_path}/members"),
        # The tenant's outsider: an existing account with no role yet.
        lambda: {"email": "", "role": "member"},
        {"email": "not-an-email", "role": "member"},
        lambda client, t: t["org_admin"].headers,
        lambda app, t: count(app, Invitation, Invitation.org_id == t.org.id),
        status=202,  # an invitation
    ),
    Endpoint(
        "api-keys",
        _post(lambda t: f"{t.org_path}/api-keys"),
        lambda: {"name": "ci", "role": "viewer"},
        {"name": "ci", "role": "emperor"},
        lambda client, t: t["org_admin"].headers,
        lambda app, t: count(app, ApiKey, ApiKey.org_id == t.org.id),
    ),
    Endpoint(
        "events-batch",
        _post(lambda t: "/v1/events/batch"),
        _event_batch,
        {"evnts": []},
        _ingest_key,
        lambda app, t: count(app, Event, Event.site_id == t.site.id),
        status=200,
    ),
]


def body_for(endpoint: Endpoint, tenant: Tenant) -> dict[str, Any]:
    body = endpoint.body()
    if endpoint.name == "org-members":
        body["email"] = tenant["outsider"].email
    return body


def ids(endpoints: list[Endpoint]) -> list[Any]:
    return [pytest.param(e, id=e.name) for e in endpoints]


# -- replay --------------------------------------------------------------------------------------


@portable
@pytest.mark.parametrize("endpoint", ids(ENDPOINTS))
def test_replay_returns_the_first_response_and_does_the_work_once(
    client: Any, tenant: Tenant, endpoint: Endpoint
) -> None:
    caller = endpoint.caller(client, tenant)
    body = body_for(endpoint, tenant)
    key = new_key()
    before = endpoint.work(client.application, tenant)

    first = endpoint.send(client, tenant, keyed(caller, key), body)
    assert_fresh(first, endpoint.status)
    done = endpoint.work(client.application, tenant)
    assert done > before

    for _ in range(2):
        again = endpoint.send(client, tenant, keyed(caller, key), body)
        assert_replay(first, again)
        # The replay has its own request id (header), the body is the first one's.
        assert again.headers["X-Request-ID"] != first.headers["X-Request-ID"]
    assert endpoint.work(client.application, tenant) == done

    [record] = records(client.application, key)
    assert record.status == endpoint.status
    assert record.method == "POST"


@portable
@pytest.mark.parametrize("endpoint", ids(ENDPOINTS))
def test_the_same_key_with_another_body_is_422(
    client: Any, tenant: Tenant, endpoint: Endpoint
) -> None:
    caller = endpoint.caller(client, tenant)
    body = body_for(endpoint, tenant)
    key = new_key()
    first = endpoint.send(client, tenant, keyed(caller, key), body)
    assert_fresh(first, endpoint.status)
    done = endpoint.work(client.application, tenant)

    other = {**body, "name": "Something else"} if "name" in body else _event_batch()
    response = endpoint.send(client, tenant, keyed(caller, key), other)
    problem = assert_problem(response, 422, errors={HEADER})
    assert REPLAYED not in response.headers
    assert "different" in " ".join(problem["errors"][HEADER])
    assert endpoint.work(client.application, tenant) == done
    # The original is still what the key replays.
    assert_replay(first, endpoint.send(client, tenant, keyed(caller, key), body))


@portable
@pytest.mark.parametrize("endpoint", ids(ENDPOINTS))
def test_validation_failures_are_not_recorded(
    client: Any, tenant: Tenant, endpoint: Endpoint
) -> None:
    caller = endpoint.caller(client, tenant)
    key = new_key()
    before = endpoint.work(client.application, tenant)

    refused = endpoint.send(client, tenant, keyed(caller, key), endpoint.bad_body)
    assert_problem(refused, 400)
    assert records(client.application, key) == []
    # Sent again, still checked (not a replay of the 400).
    again = endpoint.send(client, tenant, keyed(caller, key), endpoint.bad_body)
    assert_problem(again, 400)
    assert REPLAYED not in again.headers

    corrected = endpoint.send(client, tenant, keyed(caller, key), body_for(endpoint, tenant))
    assert_fresh(corrected, endpoint.status)
    assert endpoint.work(client.application, tenant) > before


@portable
def test_malformed_json_is_not_recorded(client: Any, tenant: Tenant) -> None:
    person, key = tenant["org_admin"], new_key()
    headers = {**keyed(person, key), "Content-Type": "application/json"}
    broken = client.post(f"{tenant.org_path}/sites", data=b'{"name": ', headers=headers)
    assert_problem(broken, 400)
    assert records(client.application, key) == []
    fixed = client.post(f"{tenant.org_path}/sites", json={"name": "Fixed"}, headers=headers)
    assert_fresh(fixed, 201)


@portable
def test_a_recorded_refusal_replays(client: Any, tenant: Tenant) -> None:
    """A 403 is the answer to that request: it is kept and replayed, even if the caller is
    granted the right afterwards (a new key is a new request)."""
    viewer, key = tenant["viewer"], new_key()
    path, body = f"{tenant.org_path}/sites", {"name": "Not mine to create"}
    sites = count(client.application, Site, Site.org_id == tenant.org.id)

    first = client.post(path, json=body, headers=keyed(viewer, key))
    assert_problem(first, 403)
    again = client.post(path, json=body, headers=keyed(viewer, key))
    assert_replay(first, again)
    assert again.get_json()["request_id"] == first.headers["X-Request-ID"]

    with owner_sessionmaker(client.application)() as session, session.begin():
        session.execute(
            update(OrgMembership)
            .where(OrgMembership.user_id == viewer.id, OrgMembership.org_id == tenant.org.id)
            .values(role="org_admin")
        )
    client.application.extensions["actor_cache"].invalidate("*")
    assert_replay(first, client.post(path, json=body, headers=keyed(viewer, key)))
    assert count(client.application, Site, Site.org_id == tenant.org.id) == sites
    assert_fresh(client.post(path, json=body, headers=keyed(viewer, new_key())), 201)


@portable
def test_an_outsiders_probe_is_refused_before_a_key_is_claimed(
    client: Any, tenant: Tenant
) -> None:
    """An organization the caller holds nothing in is a 404 before any view (and before the
    key is looked at): nothing is recorded for it, under no organization or any other, and
    every retry is refused the same way."""
    outsider, key = tenant["outsider"], new_key()
    path, body = f"{tenant.org_path}/sites", {"name": "Probe"}
    for _ in range(2):
        response = client.post(path, json=body, headers=keyed(outsider, key))
        assert_problem(response, 404)
        assert REPLAYED not in response.headers
    assert records(client.application, key) == []
    assert count(client.application, Site, Site.org_id == tenant.org.id) == 1


# -- scope of a key -------------------------------------------------------------------------------


@portable
def test_keys_are_per_principal(client: Any, world: World) -> None:
    alice, bob = world.user(), world.user()
    key, body = new_key(), {"name": "Shared name"}
    a = client.post("/v1/orgs", json=body, headers=keyed(alice, key))
    b = client.post("/v1/orgs", json=body, headers=keyed(bob, key))
    assert_fresh(a, 201)
    assert_fresh(b, 201)
    assert a.get_json()["id"] != b.get_json()["id"]
    assert count(client.application, Organization) == 2
    # Each replays its own.
    assert_replay(a, client.post("/v1/orgs", json=body, headers=keyed(alice, key)))
    assert_replay(b, client.post("/v1/orgs", json=body, headers=keyed(bob, key)))
    # Bob's other body does not collide with Alice's record either.
    assert_problem(
        client.post("/v1/orgs", json={"name": "Other"}, headers=keyed(bob, key)), 422
    )


@portable
def test_keys_are_per_principal_kind(client: Any, tenant: Tenant) -> None:
    """An API key is not its creator: the same Idempotency-Key is independent."""
    admin = tenant["org_admin"]
    created = client.post(
        f"{tenant.org_path}/api-keys", json={"name": "bot", "role": "org_admin"},
        headers=admin.headers,
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    bot = {"Authorization": f"Bearer {created.get_json()['secret']}"}
    key, body = new_key(), {"name": "Same body"}
    as_admin = client.post(f"{tenant.org_path}/sites", json=body, headers=keyed(admin, key))
    as_bot = client.post(f"{tenant.org_path}/sites", json=body, headers=keyed(bot, key))
    assert_fresh(as_admin, 201)
    assert_fresh(as_bot, 201)
    assert as_admin.get_json()["id"] != as_bot.get_json()["id"]


@portable
def test_keys_are_per_route(client: Any, tenant: Tenant) -> None:
    admin, key = tenant["org_admin"], new_key()
    org = client.post("/v1/orgs", json={"name": "Same"}, headers=keyed(admin, key))
    site = client.post(f"{tenant.org_path}/sites", json={"name": "Same"}, headers=keyed(admin, key))
    member = client.post(
        f"{tenant.org_path}/members", json={"email": tenant["outsider"].email, "role": "viewer"},
        headers=keyed(admin, key),
    )
    for response in (org, site):
        assert_fresh(response, 201)
    assert_fresh(member, 202)
    assert len(records(client.application, key)) == 3


@portable
def test_keys_are_per_organization(client: Any, world: World) -> None:
    """The same person, key, route and body, in two organizations: two sites."""
    one, two = world.tenant("One"), world.tenant("Two")
    admin = world.user()
    world.grant_org(admin, one.org, "org_admin")
    world.grant_org(admin, two.org, "org_admin")
    key, body = new_key(), {"name": "Twin"}
    first = client.post(f"{one.org_path}/sites", json=body, headers=keyed(admin, key))
    second = client.post(f"{two.org_path}/sites", json=body, headers=keyed(admin, key))
    assert_fresh(first, 201)
    assert_fresh(second, 201)
    assert first.get_json()["org_id"] == str(one.org.id)
    assert second.get_json()["org_id"] == str(two.org.id)
    assert {r.org_id for r in records(client.application, key)} == {one.org.id, two.org.id}


# -- the header itself --------------------------------------------------------------------------


BAD_KEYS = [
    pytest.param("", id="empty"),
    pytest.param("k" * 256, id="256-chars"),
    pytest.param("has space", id="space"),
    pytest.param(" leading", id="leading-space"),
    pytest.param("tab\tinside", id="tab"),
    pytest.param("clé", id="non-ascii"),
    pytest.param("\x7f", id="del"),
]


@portable
@pytest.mark.parametrize("bad", BAD_KEYS)
def test_invalid_keys_are_400(client: Any, tenant: Tenant, bad: str) -> None:
    before = count(client.application, Site)
    response = client.post(
        f"{tenant.org_path}/sites", json={"name": "Nope"}, headers=keyed(tenant["org_admin"], bad)
    )
    assert_problem(response, 400, errors={HEADER})
    assert count(client.application, Site) == before
    assert count(client.application, IdempotencyRecord) == 0


@portable
@pytest.mark.parametrize("good", ["k" * 255, "a", "~!#$%&'*+-.^_`|0123456789"])
def test_keys_at_the_edges_are_accepted(client: Any, tenant: Tenant, good: str) -> None:
    headers = keyed(tenant["org_admin"], good)
    first = client.post(f"{tenant.org_path}/sites", json={"name": "Edge"}, headers=headers)
    assert_fresh(first, 201)
    assert_replay(first, client.post(f"{tenant.org_path}/sites", json={"name": "Edge"},
                                     headers=headers))
    [record] = records(client.application, good)
    assert record.key == good


@portable
def test_the_document_describes_the_keys_the_api_accepts(client: Any, world: World) -> None:
    """Every authenticated POST documents the header, and its documented schema admits
    exactly the keys the API accepts (a client generating keys from the document must not
    be refused)."""
    spec = client.get("/openapi.json").get_json()
    schemas = []
    for path, operations in spec["paths"].items():
        post = operations.get("post")
        if post is None:
            continue
        params = {p.get("name"): p for p in post.get("parameters", [])}
        if post.get("security") == []:  # public: no principal to scope a key to
            assert HEADER not in params, path
        else:
            assert HEADER in params, path
            schemas.append(params[HEADER]["schema"])
    assert schemas and all(schema == schemas[0] for schema in schemas)
    schema = schemas[0]
    pattern = re.compile(schema["pattern"])

    def documented(key: str) -> bool:
        return schema["minLength"] <= len(key) <= schema["maxLength"] and bool(
            pattern.search(key)
        )

    person = world.user()
    samples = ["a", "k" * 255, "k" * 256, "", "a b", "clé", "~!", "\x7f", "tab\tin", "x-1.2_3"]
    for key in samples:
        response = client.post("/v1/orgs", json={"name": "Doc"}, headers=keyed(person, key))
        accepted = response.status_code == 201
        if not accepted:
            assert_problem(response, 400, errors={HEADER})
        assert accepted == documented(key), (key, response.status_code)


@portable
def test_without_a_key_every_post_does_its_work(client: Any, tenant: Tenant) -> None:
    admin = tenant["org_admin"]
    responses = [
        client.post(f"{tenant.org_path}/sites", json={"name": "Twice"}, headers=admin.headers)
        for _ in range(2)
    ]
    for response in responses:
        assert_fresh(response, 201)
    assert responses[0].get_json()["id"] != responses[1].get_json()["id"]
    assert count(client.application, Site, Site.name == "Twice") == 2
    assert count(client.application, IdempotencyRecord) == 0


@portable
def test_the_key_is_ignored_where_it_does_not_apply(client: Any, tenant: Tenant) -> None:
    """Not a POST, or not authenticated: the header is neither checked nor recorded."""
    admin = tenant["org_admin"]
    listed = client.get(f"{tenant.org_path}/sites", headers=keyed(admin, "not valid"))
    assert listed.status_code == 200, listed.get_data(as_text=True)
    patched = client.patch(
        f"{tenant.site_path}", json={"name": "Renamed"}, headers=keyed(admin, "not valid")
    )
    assert patched.status_code in (200, 428), patched.get_data(as_text=True)
    anonymous = client.post("/v1/orgs", json={"name": "x"}, headers={HEADER: "not valid"})
    assert_problem(anonymous, 401)
    assert count(client.application, IdempotencyRecord) == 0


# -- expiry and leases ----------------------------------------------------------------------------


@portable
def test_records_expire_after_the_configured_time(
    client: Any, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, admin = client.application, tenant["org_admin"]
    path, body = f"{tenant.org_path}/sites", {"name": "Expiring"}

    default_key = new_key()
    client.post(path, json=body, headers=keyed(admin, default_key))
    [record] = records(app, default_key)
    lifetime = record.expires_at - record.created_at
    assert abs(lifetime - timedelta(hours=24)) < timedelta(seconds=5), lifetime

    settings = app.extensions["settings"]
    monkeypatch.setitem(
        app.extensions, "settings", settings.with_overrides({"idempotency_ttl_seconds": 30})
    )
    key = new_key()
    first = client.post(path, json=body, headers=keyed(admin, key))
    assert_fresh(first, 201)
    [record] = records(app, key)
    assert abs(record.expires_at - record.created_at - timedelta(seconds=30)) < timedelta(seconds=5)
    assert_replay(first, client.post(path, json=body, headers=keyed(admin, key)))

    set_records(app, key, expires_at=utcnow() - timedelta(seconds=1))
    again = client.post(path, json=body, headers=keyed(admin, key))
    assert_fresh(again, 201)
    assert again.get_json()["id"] != first.get_json()["id"]
    # The key now holds the new response, with a new lifetime; the other body works too.
    assert_replay(again, client.post(path, json=body, headers=keyed(admin, key)))
    set_records(app, key, expires_at=utcnow() - timedelta(seconds=1))
    other = client.post(path, json={"name": "Another"}, headers=keyed(admin, key))
    assert_fresh(other, 201)
    assert count(app, Site, Site.name == "Expiring") == 3  # default_key, first, again


@portable
def test_a_tiny_ttl_lets_the_key_be_reused_at_once(
    client: Any, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = client.application
    monkeypatch.setitem(
        app.extensions, "settings",
        app.extensions["settings"].with_overrides({"idempotency_ttl_seconds": 0}),
    )
    key, path = new_key(), f"{tenant.org_path}/sites"
    for _ in range(2):
        response = client.post(
            path, json={"name": "Ephemeral"}, headers=keyed(tenant["org_admin"], key)
        )
        assert_fresh(response, 201)
    assert count(app, Site, Site.name == "Ephemeral") == 2


def _in_flight(app: Any, key: str, age: timedelta) -> None:
    """Turn the recorded response of `key` back into a claim taken `age` ago (as if its
    request were still running, or had died), keeping the request's fingerprint."""
    set_records(app, key, status=None, body=None, content_type=None, location=None,
                updated_at=utcnow() - age)


@portable
def test_a_key_in_flight_is_409_until_its_lease_lapses(client: Any, tenant: Tenant) -> None:
    app, admin = client.application, tenant["org_admin"]
    path, body, key = f"{tenant.org_path}/sites", {"name": "Leased"}, new_key()
    first = client.post(path, json=body, headers=keyed(admin, key))
    assert_fresh(first, 201)

    _in_flight(app, key, LEASE - timedelta(seconds=5))
    busy = client.post(path, json=body, headers=keyed(admin, key))
    assert_problem(busy, 409)
    assert "Retry-After" not in busy.headers  # 429 and 503 only
    assert REPLAYED not in busy.headers
    # Another body is still refused as such, not as in flight.
    assert_problem(client.post(path, json={"name": "x"}, headers=keyed(admin, key)), 422)
    assert count(app, Site, Site.name == "Leased") == 1

    _in_flight(app, key, LEASE + timedelta(seconds=5))
    taken_over = client.post(path, json=body, headers=keyed(admin, key))
    assert_fresh(taken_over, 201)
    assert count(app, Site, Site.name == "Leased") == 2
    [record] = records(app, key)
    assert record.status == 201
    assert_replay(taken_over, client.post(path, json=body, headers=keyed(admin, key)))


# -- concurrency: real threads, real PostgreSQL ---------------------------------------------------


THREADS = 8


def _race(app: Any, send: Callable[[Any], Any]) -> list[Any]:
    """Run `send(client)` in THREADS threads released at once; their responses."""
    barrier = threading.Barrier(THREADS)
    results: list[Any] = [None] * THREADS
    errors: list[BaseException] = []

    def run(i: int) -> None:
        client = app.test_client()
        try:
            barrier.wait(timeout=30)
            results[i] = send(client)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a request hung"
    assert not errors, errors
    return results


def _check_race(results: list[Any], status: int) -> Any:
    """Exactly one did the work; every other one is 409 or a replay of it."""
    fresh = [r for r in results if r.status_code == status and REPLAYED not in r.headers]
    assert len(fresh) == 1, [(r.status_code, dict(r.headers)) for r in results]
    [winner] = fresh
    for response in results:
        if response is winner:
            continue
        if response.status_code == 409:
            assert_problem(response, 409)
            assert "Retry-After" not in response.headers
        else:
            assert_replay(winner, response)
    return winner


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_duplicates_do_the_work_once(
    app: Any, tenant: Tenant, round_: int
) -> None:
    admin, key = tenant["org_admin"], new_key()
    path, body = f"{tenant.org_path}/sites", {"name": f"Raced {round_}"}
    before = count(app, Site, Site.org_id == tenant.org.id)

    results = _race(app, lambda c: c.post(path, json=body, headers=keyed(admin, key)))

    winner = _check_race(results, 201)
    assert count(app, Site, Site.org_id == tenant.org.id) == before + 1
    [site] = [s for s in _sites(app, tenant) if s.name == body["name"]]
    assert winner.get_json()["id"] == str(site.id)
    [record] = records(app, key)
    assert record.status == 201
    # Once it has settled, every retry replays.
    assert_replay(winner, app.test_client().post(path, json=body, headers=keyed(admin, key)))


def test_concurrent_duplicates_of_an_unscoped_post(app: Any, world: World) -> None:
    """POST /v1/orgs has no organization in its path: its records live under none."""
    person, key = world.user(), new_key()
    results = _race(app, lambda c: c.post("/v1/orgs", json={"name": "Once"},
                                          headers=keyed(person, key)))
    winner = _check_race(results, 201)
    assert count(app, Organization, Organization.name == "Once") == 1
    assert count(app, OrgMembership, OrgMembership.user_id == person.id) == 1
    assert winner.get_json()["name"] == "Once"


def test_concurrent_event_batches_are_stored_once(app: Any, tenant: Tenant) -> None:
    ingest = _ingest_key(app.test_client(), tenant)
    key, batch = new_key(), _event_batch()
    data = orjson.dumps(batch)
    results = _race(app, lambda c: c.post(
        "/v1/events/batch", data=data,
        headers={**ingest, HEADER: key, "Content-Type": "application/json"},
    ))
    winner = _check_race(results, 200)
    assert winner.get_json()["accepted"] == len(batch["events"])
    assert count(app, Event, Event.site_id == tenant.site.id) == len(batch["events"])


def test_concurrent_distinct_keys_all_do_their_work(app: Any, tenant: Tenant) -> None:
    """The control: with different keys nothing is refused, and every request creates."""
    admin = tenant["org_admin"]
    path = f"{tenant.org_path}/sites"
    results = _race(app, lambda c: c.post(path, json={"name": "Distinct"},
                                          headers=keyed(admin, new_key())))
    assert [r.status_code for r in results] == [201] * THREADS
    assert count(app, Site, Site.name == "Distinct") == THREADS


def _sites(app: Any, tenant: Tenant) -> list[Site]:
    with owner_sessionmaker(app)() as session:
        return list(session.scalars(select(Site).where(Site.org_id == tenant.org.id)))


def test_a_new_keys_secret_is_neither_stored_nor_replayed(app, client, tenant):
    """Key secrets are shown once and kept only as hashes: the idempotency record holds the
    key's metadata, and a replay says the secret is not shown again."""
    headers = {**tenant["org_admin"].headers, "Idempotency-Key": "secret-once"}
    path = f"{tenant.org_path}/api-keys"
    first = client.post(path, json={"name": "ci", "role": "viewer"}, headers=headers)
    assert first.status_code == 201 and first.json["secret"].startswith("sk_")
    [record] = records(app, "secret-once")
    assert first.json["secret"] not in (record.body or "")
    again = client.post(path, json={"name": "ci", "role": "viewer"}, headers=headers)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json["id"] == first.json["id"]
    assert again.json["secret"] == "(shown once: not replayed)"
