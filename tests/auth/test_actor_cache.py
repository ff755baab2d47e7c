"""The per-process actor cache: an unchanged session costs no query, and a change made
anywhere (this process or another) reaches every process through PostgreSQL NOTIFY.

"Another process" is a second app on the same database with its own ActorCache, like a
second gunicorn worker. Both apps live in this process, where the invalidation module
also drops entries of every cache directly (a shortcut for the process that made the
change); the cross-process tests take the second cache out of that registry so that only
a NOTIFY can reach it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from sqlalchemy import event

from app import create_app
from app.auth import invalidation
from app.auth.invalidation import ActorCache
from app.db import conninfo, utcnow
from tests.support import Person, World

AUTH_TABLES = ("auth_sessions", "users", "org_memberships", "site_memberships", "api_keys")


# -- helpers -----------------------------------------------------------------------------------


@contextmanager
def statements(app: Any) -> Iterator[list[str]]:
    """SQL statements the app's engine executes inside the block."""
    engine = app.extensions["db.engine"]
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def touching(seen: list[str], tables: tuple[str, ...] = AUTH_TABLES) -> list[str]:
    return [s for s in seen if any(t in s for t in tables)]


def wait_listening(app: Any, timeout: float = 5.0) -> ActorCache:
    """Start the cache's listener and wait until it has subscribed: until then it does
    not cache at all."""
    cache = app.extensions["actor_cache"]
    cache.get("warm-up", None)  # starts the listener thread
    deadline = time.monotonic() + timeout
    while not cache.listening:
        assert time.monotonic() < deadline, "the actor cache listener never connected"
        time.sleep(0.01)
    return cache


def wait_for(check: Callable[[], bool], timeout: float = 2.0) -> float:
    """Seconds until `check()` holds; fails after `timeout`."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, f"not within {timeout} s"
        time.sleep(0.02)
    return time.monotonic() - start


def sid_of(person: Person) -> str:
    import base64
    import json

    segment = person.token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))["sid"]


@pytest.fixture
def second_app(app: Any, database_url: str, tmp_path: Any) -> Iterator[Any]:
    """Another "worker": same database and keys, its own ActorCache."""
    other = create_app(
        {
            "database_url": database_url,
            "instance_path": str(tmp_path / "second"),
            "jwt_keys": app.extensions["settings"].jwt_keys,
            "ratelimit_enabled": False,
            "log_level": "WARNING",
        }
    )
    other.config["TESTING"] = True
    yield other
    other.extensions["actor_cache"].close()
    other.extensions["db.engine"].dispose()


@pytest.fixture
def isolated(second_app: Any) -> Iterator[Any]:
    """The second app, reachable by NOTIFY only (as if it ran in another process)."""
    cache = wait_listening(second_app)
    invalidation._caches.discard(cache)
    try:
        yield second_app
    finally:
        invalidation._caches.add(cache)


# -- no query when nothing changed ------------------------------------------------------------


def test_an_unchanged_session_costs_no_query(app, client, world):
    tenant = world.tenant()
    viewer = tenant["viewer"]
    wait_listening(app)
    counts = []
    for _ in range(3):
        with statements(app) as seen:
            assert client.get(tenant.org_path, headers=viewer.headers).status_code == 200
        counts.append(seen)
    first, second, third = counts
    assert touching(first), "the first request resolves the actor (sanity check of the count)"
    assert len(second) < len(first), (first, second)
    assert touching(second) == [], f"authentication queried again: {touching(second)}"
    assert len(third) == len(second)
    # What is left is the endpoint's own work: reading the organization.
    assert any("organizations" in s for s in second)


def test_a_site_found_live_is_not_read_again_until_one_is_deleted(app, client, world):
    tenant = world.tenant()
    member, admin = tenant["member"].headers, tenant["org_admin"].headers
    galleries = f"{tenant.site_path}/galleries"
    wait_listening(app)
    for _ in range(2):
        with statements(app) as seen:
            assert client.get(galleries, headers=member).status_code == 200
    assert touching(seen, ("FROM organizations", "FROM sites")) == [], seen
    other = world.site(tenant.org, "another site")  # deleting another site forgets them all
    etag = client.get(f"{tenant.org_path}/sites/{other.id}", headers=admin).headers["ETag"]
    assert client.delete(f"{tenant.org_path}/sites/{other.id}",
                         headers={**admin, "If-Match": etag}).status_code == 204
    with statements(app) as seen:
        assert client.get(galleries, headers=member).status_code == 200
    assert touching(seen, ("FROM organizations",)), "read again after a deletion"
    etag = client.get(tenant.site_path, headers=admin).headers["ETag"]
    assert client.delete(tenant.site_path, headers={**admin, "If-Match": etag}).status_code == 204
    assert client.get(galleries, headers=member).status_code == 404


def test_an_unchanged_api_key_costs_no_query(app, client, world):
    tenant = world.tenant()
    r = client.post(f"{tenant.org_path}/api-keys", json={"name": "k", "role": "viewer"},
                    headers=tenant["org_admin"].headers)
    assert r.status_code == 201
    headers = {"Authorization": f"Bearer {r.get_json()['secret']}"}
    wait_listening(app)
    with statements(app) as first:
        assert client.get(tenant.org_path, headers=headers).status_code == 200
    with statements(app) as second:
        assert client.get(tenant.org_path, headers=headers).status_code == 200
    assert touching(first, ("api_keys",))
    assert touching(second) == [], touching(second)
    assert len(second) < len(first)


def test_a_change_costs_one_resolution_then_none_again(app, client, world):
    tenant = world.tenant()
    viewer, admin = tenant["viewer"], tenant["org_admin"]
    wait_listening(app)
    for _ in range(2):
        assert client.get(tenant.org_path, headers=viewer.headers).status_code == 200
    r = client.patch(f"{tenant.org_path}/members/{viewer.id}", json={"role": "member"},
                     headers=admin.headers)
    assert r.status_code == 200
    with statements(app) as after_change:
        assert client.get(tenant.org_path, headers=viewer.headers).status_code == 200
    assert touching(after_change), "the change must be read"

    # This process hears its own NOTIFY a moment later, which may cost one more resolution;
    # after that, requests are query-free again.
    def settled() -> bool:
        with statements(app) as seen:
            assert client.get(tenant.org_path, headers=viewer.headers).status_code == 200
        return touching(seen) == []

    wait_for(settled)


def test_an_invalidation_during_a_resolution_is_not_cached_over(app):
    cache = wait_listening(app)
    subject, credential, actor = uuid.uuid4(), uuid.uuid4(), object()
    generation = cache.generation  # a request starts resolving...
    cache.invalidate(str(subject))  # ...while the subject changes
    cache.put(subject, credential, actor, generation)
    assert cache.get(subject, credential) is None, "a stale actor was cached"
    cache.put(subject, credential, actor, cache.generation)  # control
    assert cache.get(subject, credential) is actor
    cache.invalidate(str(subject))
    assert cache.get(subject, credential) is None


@pytest.mark.portable
def test_without_a_notification_channel_nothing_is_cached():
    """SQLite (no channel), or a TTL of 0: the cache is off."""
    for cache in (ActorCache(None, 60), ActorCache("postgresql://x@127.0.0.1/x", 0)):
        assert not cache.enabled
        cache.put("s", "c", object(), cache.generation)
        assert cache.get("s", "c") is None


def test_a_cache_whose_listener_cannot_connect_does_not_cache():
    cache = ActorCache("postgresql://nobody@127.0.0.1:1/nowhere?connect_timeout=1", 60)
    try:
        assert cache.enabled
        assert cache.get("s", "c") is None  # starts the (failing) listener
        time.sleep(0.1)
        cache.put("s", "c", object(), cache.generation)
        assert cache.get("s", "c") is None
        assert not cache.listening
    finally:
        cache.close()


# -- across processes: NOTIFY -----------------------------------------------------------------


def test_a_notification_from_another_process_drops_the_cached_actor(app, isolated, database_url):
    person = World(isolated).user()
    client = isolated.test_client()
    for _ in range(2):
        assert client.get("/v1/me", headers=person.headers).status_code == 200

    # Revoked behind the app's back, without a notification: the cache still answers...
    with psycopg.connect(conninfo(database_url), autocommit=True) as conn:
        conn.execute("UPDATE auth_sessions SET revoked_at = %s WHERE id = %s",
                     (utcnow(), sid_of(person)))
        with statements(isolated) as seen:
            assert client.get("/v1/me", headers=person.headers).status_code == 200
        assert touching(seen, ("auth_sessions",)) == [], "served from the cache"
        # ...until another process says so.
        conn.execute("SELECT pg_notify('auth_changed', %s)", (str(person.id),))
    waited = wait_for(
        lambda: client.get("/v1/me", headers=person.headers).status_code == 401
    )
    assert waited < 2.0


def _logout(app: Any, client: Any, tenant: Any, person: Person) -> None:
    assert client.post("/v1/auth/logout", headers=person.headers).status_code == 204


def _password(app: Any, client: Any, tenant: Any, person: Person) -> None:
    from tests.support import PASSWORD

    other = World(app).token_for(person.user)
    r = client.post("/v1/auth/password", headers={"Authorization": f"Bearer {other}"},
                    json={"current_password": PASSWORD, "new_password": "x" * 16})
    assert r.status_code == 204


def _delete_session(app: Any, client: Any, tenant: Any, person: Person) -> None:
    other = World(app).token_for(person.user)
    r = client.delete(f"/v1/auth/sessions/{sid_of(person)}",
                      headers={"Authorization": f"Bearer {other}"})
    assert r.status_code == 204


def _remove_member(app: Any, client: Any, tenant: Any, person: Person) -> None:
    r = client.delete(f"{tenant.org_path}/members/{person.id}",
                      headers=tenant["org_admin"].headers)
    assert r.status_code == 204


def _lower_role(app: Any, client: Any, tenant: Any, person: Person) -> None:
    r = client.patch(f"{tenant.org_path}/members/{person.id}", json={"role": "viewer"},
                     headers=tenant["org_admin"].headers)
    assert r.status_code == 200


def _delete_site(app: Any, client: Any, tenant: Any, person: Person) -> None:
    admin = tenant["org_admin"].headers
    etag = client.get(tenant.site_path, headers=admin).headers["ETag"]
    r = client.delete(tenant.site_path, headers={**admin, "If-Match": etag})
    assert r.status_code == 204


CHANGES = {
    # change made through the first app -> (request to the second app, status after)
    "logout": (_logout, "me", 401),
    "password-change": (_password, "me", 401),
    "delete-session": (_delete_session, "me", 401),
    "remove-member": (_remove_member, "org", 404),
    "lower-role": (_lower_role, "api-keys", 403),
    "delete-site": (_delete_site, "galleries", 404),  # the site was remembered live
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_change_through_one_app_reaches_the_other_within_seconds(app, isolated, change):
    make_change, probe, status = CHANGES[change]
    world = World(app)
    tenant = world.tenant()
    person = tenant["member"]
    if probe == "api-keys":  # a second org_admin, who may be demoted
        person = world.user()
        world.grant_org(person, tenant.org, "org_admin")
    client = isolated.test_client()

    def request() -> int:
        if probe == "me":
            return client.get("/v1/me", headers=person.headers).status_code
        if probe == "org":
            return client.get(tenant.org_path, headers=person.headers).status_code
        if probe == "galleries":
            return client.get(f"{tenant.site_path}/galleries",
                              headers=person.headers).status_code
        return client.get(f"{tenant.org_path}/api-keys", headers=person.headers).status_code

    before = request()
    assert before != status
    with statements(isolated) as seen:
        assert request() == before
    # The endpoints may read users, grants or keys themselves: resolving a user's actor is
    # what reads auth_sessions.
    assert touching(seen, ("auth_sessions",)) == [], "the second app serves it from its cache"
    if probe == "galleries":
        assert touching(seen, ("FROM organizations", "FROM sites")) == [], "the live site too"

    make_change(app, app.test_client(), tenant, person)
    assert wait_for(lambda: request() == status) < 2.0


def test_revoking_an_api_key_through_one_app_reaches_the_other(app, isolated):
    tenant = World(app).tenant()
    r = app.test_client().post(f"{tenant.org_path}/api-keys", json={"name": "k", "role": "viewer"},
                               headers=tenant["org_admin"].headers)
    key = r.get_json()
    headers = {"Authorization": f"Bearer {key['secret']}"}
    client = isolated.test_client()
    for _ in range(2):
        assert client.get(tenant.org_path, headers=headers).status_code == 200
    r = app.test_client().delete(f"{tenant.org_path}/api-keys/{key['id']}",
                                 headers=tenant["org_admin"].headers)
    assert r.status_code == 204
    assert wait_for(lambda: client.get(tenant.org_path, headers=headers).status_code == 401) < 2.0


@pytest.mark.parametrize("gone", ["DELETE FROM users WHERE id = %s",
                                  "UPDATE users SET deleted_at = now() WHERE id = %s"])
def test_me_answers_401_when_the_account_went_behind_a_cached_actor(
    app, client, world, database_url, gone
):
    """An account can go while its actor is still trusted: removed by hand (no
    notification), or by another transaction between authentication and the view. /v1/me
    then answers what authentication would have: 401, not a 500 (row gone) nor the
    deleted account's data (row soft-deleted)."""
    person = world.user()
    wait_listening(app)
    for _ in range(2):
        assert client.get("/v1/me", headers=person.headers).status_code == 200
    with psycopg.connect(conninfo(database_url), autocommit=True) as conn:
        conn.execute(gone, (person.id,))
    with statements(app) as seen:
        r = client.get("/v1/me", headers=person.headers)
    assert touching(seen, ("auth_sessions",)) == [], "the actor came from the cache"
    assert r.status_code == 401
    assert r.headers["Content-Type"] == "application/problem+json"
