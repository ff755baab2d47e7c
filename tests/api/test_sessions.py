"""Login sessions: refresh rotation and reuse detection, lifetimes, revocation, password
change, and grants that take effect on the very next request.

The concurrency case runs real threads against PostgreSQL (the atomic
`UPDATE ... WHERE used_at IS NULL` is what it proves); the rest also runs on SQLite.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from app import create_app
from app.db import owner_sessionmaker, utcnow
from app.models import AuditEvent, AuthSession, RefreshToken
from tests.support import PASSWORD, Person
from tests.support.http import assert_problem
from tests.support.invitations import invite_and_accept
from tests.support.mail import link_in, query_of

# -- helpers -----------------------------------------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claims_of(token: str) -> dict[str, Any]:
    segment = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def sid_of(token: str) -> uuid.UUID:
    return uuid.UUID(claims_of(token)["sid"])


def login(client: Any, email: str, password: str = PASSWORD, **kw: Any) -> dict[str, Any]:
    response = client.post("/v1/auth/login", json={"email": email, "password": password}, **kw)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def refresh(client: Any, token: str) -> Any:
    return client.post("/v1/auth/refresh", json={"refresh_token": token})


def me(client: Any, access_token: str) -> int:
    return client.get("/v1/me", headers=bearer(access_token)).status_code


def session_row(app: Any, session_id: uuid.UUID) -> AuthSession:
    with owner_sessionmaker(app)() as s:
        row = s.get(AuthSession, session_id)
        assert row is not None
        return row


def set_session(app: Any, session_id: uuid.UUID, **values: Any) -> None:
    with owner_sessionmaker(app)() as s, s.begin():
        s.execute(update(AuthSession).where(AuthSession.id == session_id).values(**values))


def audit_events(app: Any, event: str) -> list[AuditEvent]:
    with owner_sessionmaker(app)() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.event == event)))


@pytest.fixture
def make_app(app: Any, database_url: str, tmp_path: Any) -> Iterator[Any]:
    """Another app on the same database and keys, with some settings overridden."""
    built: list[Any] = []

    def build(**overrides: Any) -> Any:
        other = create_app(
            {
                "database_url": database_url,
                "instance_path": str(tmp_path / f"instance-{len(built)}"),
                "jwt_keys": app.extensions["settings"].jwt_keys,
                "ratelimit_enabled": False,
                "log_level": "WARNING",
                **overrides,
            }
        )
        other.config["TESTING"] = True
        built.append(other)
        return other

    yield build
    for other in built:
        other.extensions["actor_cache"].close()
        other.extensions["db.engine"].dispose()


# -- login and refresh -------------------------------------------------------------------------


@pytest.mark.portable
def test_login_returns_an_access_token_and_an_opaque_refresh_token(app, client, world):
    person = world.user()
    body = login(client, person.email)
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    token = body["refresh_token"]
    assert token.count(".") == 0, "the refresh token is opaque, not a JWT"
    assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) >= 32  # 256 bits
    assert claims_of(body["access_token"])["sub"] == str(person.id)
    assert me(client, body["access_token"]) == 200
    # Stored as a hash only.
    with owner_sessionmaker(app)() as s:
        sid = sid_of(body["access_token"])
        rows = list(s.scalars(select(RefreshToken).where(RefreshToken.session_id == sid)))
    assert len(rows) == 1
    assert rows[0].token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in rows[0].token_hash and rows[0].used_at is None


@pytest.mark.portable
def test_refresh_rotates_the_pair_and_spends_the_old_token(app, client, world):
    person = world.user()
    first = login(client, person.email)
    r = refresh(client, first["refresh_token"])
    assert r.status_code == 200, r.get_data(as_text=True)
    second = r.get_json()
    assert set(second) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert sid_of(second["access_token"]) == sid_of(first["access_token"]), "same session"
    assert me(client, second["access_token"]) == 200
    # The next link works, and the one after it.
    third = refresh(client, second["refresh_token"])
    assert third.status_code == 200
    with owner_sessionmaker(app)() as s:
        sid = sid_of(first["access_token"])
        rows = list(s.scalars(select(RefreshToken).where(RefreshToken.session_id == sid)))
    assert sorted(row.used_at is not None for row in rows) == [False, True, True]


@pytest.mark.portable
def test_reusing_a_spent_refresh_token_revokes_the_whole_session(app, client, world):
    person = world.user()
    first = login(client, person.email)
    sid = sid_of(first["access_token"])
    second = refresh(client, first["refresh_token"]).get_json()
    third = refresh(client, second["refresh_token"]).get_json()
    assert me(client, third["access_token"]) == 200  # cached from now on
    assert audit_events(app, "auth.refresh_reuse") == []

    # An attacker replays the first (spent) token.
    replay = refresh(client, first["refresh_token"])
    body = assert_problem(replay, 401)
    assert first["refresh_token"] not in replay.get_data(as_text=True)
    assert "refresh_token" not in body

    # Everything of that session is dead now: every access token, the newest refresh token.
    for access in (first["access_token"], second["access_token"], third["access_token"]):
        assert_problem(client.get("/v1/me", headers=bearer(access)), 401)
    assert_problem(refresh(client, third["refresh_token"]), 401)
    assert session_row(app, sid).revoked_at is not None

    [event] = audit_events(app, "auth.refresh_reuse")
    assert (event.actor_type, event.actor_id, event.resource_type, event.resource_id) == (
        "user", person.id, "AuthSession", str(sid)
    )
    assert event.request_id == replay.headers["X-Request-ID"]
    assert first["refresh_token"] not in json.dumps(event.data)

    # Another session of the same user is not affected.
    other = login(client, person.email)
    assert me(client, other["access_token"]) == 200
    assert refresh(client, other["refresh_token"]).status_code == 200


@pytest.mark.portable
@pytest.mark.parametrize(
    "token",
    ["", "x", "not-a-token", "A" * 43, "A" * 257, None, 42, ["a"]],
    ids=["empty", "short", "text", "unknown", "too-long", "null", "int", "list"],
)
def test_unknown_or_malformed_refresh_tokens_are_refused(app, client, token):
    r = client.post("/v1/auth/refresh", json={"refresh_token": token})
    assert r.status_code in (400, 401), r.get_data(as_text=True)
    assert_problem(r, r.status_code)
    assert audit_events(app, "auth.refresh_reuse") == []


@pytest.mark.portable
def test_a_refresh_token_of_a_revoked_session_is_refused(app, client, world):
    person = world.user()
    pair = login(client, person.email)
    assert client.post("/v1/auth/logout", headers=bearer(pair["access_token"])).status_code == 204
    assert_problem(refresh(client, pair["refresh_token"]), 401)


def test_concurrent_refreshes_with_one_token_succeed_at_most_once(app, world, is_postgres):
    """Real threads, real PostgreSQL: the spend is an atomic UPDATE, so one wins."""
    assert is_postgres
    person = world.user()
    pair = login(app.test_client(), person.email)
    sid = sid_of(pair["access_token"])
    threads_count = 8
    barrier = threading.Barrier(threads_count)
    results: list[Any] = [None] * threads_count

    def worker(i: int) -> None:
        client = app.test_client()
        barrier.wait(timeout=10)
        try:
            r = refresh(client, pair["refresh_token"])
            results[i] = (r.status_code, r.get_json())
        except BaseException as exc:  # pragma: no cover - reported below
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert all(not t.is_alive() for t in threads)
    statuses = sorted(result[0] for result in results)  # type: ignore[index]
    assert statuses.count(200) <= 1, statuses
    assert statuses.count(200) + statuses.count(401) == threads_count, statuses
    # The database agrees: the presented token was spent once, at most one successor exists.
    with owner_sessionmaker(app)() as s:
        rows = list(s.scalars(select(RefreshToken).where(RefreshToken.session_id == sid)))
    assert len(rows) == 1 + statuses.count(200)
    # The losers presented a spent token: that is reuse, so the session is over.
    assert session_row(app, sid).revoked_at is not None
    assert audit_events(app, "auth.refresh_reuse")
    for result in results:
        if result[0] == 200:  # type: ignore[index]
            assert_problem(refresh(app.test_client(), result[1]["refresh_token"]), 401)  # type: ignore[index]


# -- idle timeout and absolute lifetime ------------------------------------------------------


@pytest.mark.portable
def test_refresh_after_the_idle_timeout_is_refused(app, client, world):
    person = world.user()
    pair = login(client, person.email)
    idle = app.extensions["settings"].session_idle_timeout_seconds
    set_session(app, sid_of(pair["access_token"]),
                last_used_at=utcnow() - timedelta(seconds=idle + 60))
    assert_problem(refresh(client, pair["refresh_token"]), 401)


@pytest.mark.portable
def test_the_idle_timeout_is_configurable_and_refresh_slides_it(app, make_app, world):
    short = make_app(session_idle_timeout_seconds=60)
    client = short.test_client()
    person = world.user()

    # Used 50 s ago: still live; the refresh moves last_used_at to now.
    pair = login(client, person.email)
    sid = sid_of(pair["access_token"])
    set_session(app, sid, last_used_at=utcnow() - timedelta(seconds=50))
    r = refresh(client, pair["refresh_token"])
    assert r.status_code == 200, r.get_data(as_text=True)
    assert utcnow() - session_row(app, sid).last_used_at < timedelta(seconds=10)

    # Idle for 2 minutes: over for this app, still fine for the default (14 days) one.
    set_session(app, sid, last_used_at=utcnow() - timedelta(seconds=120))
    assert_problem(refresh(client, r.get_json()["refresh_token"]), 401)
    control = login(client, person.email)
    set_session(app, sid_of(control["access_token"]),
                last_used_at=utcnow() - timedelta(seconds=120))
    assert refresh(app.test_client(), control["refresh_token"]).status_code == 200


@pytest.mark.portable
def test_the_absolute_lifetime_is_configurable_and_refresh_does_not_extend_it(app, make_app, world):
    short = make_app(session_absolute_lifetime_seconds=60)
    client = short.test_client()
    person = world.user()
    pair = login(client, person.email)
    sid = sid_of(pair["access_token"])
    row = session_row(app, sid)
    assert timedelta(seconds=55) < row.expires_at - row.created_at <= timedelta(seconds=65)

    r = refresh(client, pair["refresh_token"])
    assert r.status_code == 200
    assert session_row(app, sid).expires_at == row.expires_at, "refresh must not extend it"

    set_session(app, sid, expires_at=utcnow() - timedelta(seconds=1))
    assert_problem(refresh(client, r.get_json()["refresh_token"]), 401)


# -- logout, sessions, password ----------------------------------------------------------------


@pytest.mark.portable
def test_logout_ends_this_session_at_once_and_only_this_one(app, client, world):
    person = world.user()
    a, b = login(client, person.email), login(client, person.email)
    assert me(client, a["access_token"]) == 200  # cached now
    assert me(client, b["access_token"]) == 200
    r = client.post("/v1/auth/logout", headers=bearer(a["access_token"]))
    assert r.status_code == 204
    assert_problem(client.get("/v1/me", headers=bearer(a["access_token"])), 401)
    assert_problem(refresh(client, a["refresh_token"]), 401)
    assert me(client, b["access_token"]) == 200
    assert me(client, person.token) == 200
    assert refresh(client, b["refresh_token"]).status_code == 200


@pytest.mark.portable
def test_logout_needs_a_credential(client):
    assert_problem(client.post("/v1/auth/logout"), 401)
    assert_problem(client.post("/v1/auth/logout-all"), 401)


@pytest.mark.portable
def test_logout_all_ends_every_session_of_the_caller_only(app, client, world):
    person, other = world.user(), world.user()
    a, b = login(client, person.email), login(client, person.email)
    for token in (a["access_token"], b["access_token"], person.token, other.token):
        assert me(client, token) == 200
    assert client.post("/v1/auth/logout-all", headers=bearer(a["access_token"])).status_code == 204
    for token in (a["access_token"], b["access_token"], person.token):
        assert_problem(client.get("/v1/me", headers=bearer(token)), 401)
    for token in (a["refresh_token"], b["refresh_token"]):
        assert_problem(refresh(client, token), 401)
    assert me(client, other.token) == 200
    assert login(client, person.email)  # logging in again works


@pytest.mark.portable
def test_list_sessions_shows_mine_only_with_their_details(app, client, world):
    person, other = world.user(), world.user()
    a = login(client, person.email, headers={"User-Agent": "Agent-A/1.0"},
              environ_base={"REMOTE_ADDR": "198.51.100.7"})
    b = login(client, person.email, headers={"User-Agent": "Agent-B/2.0"},
              environ_base={"REMOTE_ADDR": "203.0.113.9"})
    gone = world.token_for(person.user)
    assert client.post("/v1/auth/logout", headers=bearer(gone)).status_code == 204
    assert me(client, other.token) == 200  # another user's session exists too

    r = client.get("/v1/auth/sessions", headers=bearer(b["access_token"]))
    assert r.status_code == 200, r.get_data(as_text=True)
    items = {item["id"]: item for item in r.get_json()["items"]}
    mine = {sid_of(a["access_token"]), sid_of(b["access_token"]), sid_of(person.token)}
    assert set(items) == {str(s) for s in mine}, "only my live sessions"
    for item in items.values():
        assert set(item) == {
            "id", "created_at", "last_used_at", "expires_at", "user_agent", "ip", "current"
        }
        assert "token" not in json.dumps(item).lower()
    assert items[str(sid_of(a["access_token"]))]["user_agent"] == "Agent-A/1.0"
    assert items[str(sid_of(a["access_token"]))]["ip"] == "198.51.100.7"
    assert items[str(sid_of(b["access_token"]))]["user_agent"] == "Agent-B/2.0"
    assert items[str(sid_of(b["access_token"]))]["ip"] == "203.0.113.9"
    assert [s for s, item in items.items() if item["current"]] == [str(sid_of(b["access_token"]))]


@pytest.mark.portable
def test_delete_one_of_my_sessions(app, client, world):
    person = world.user()
    a, b = login(client, person.email), login(client, person.email)
    assert me(client, a["access_token"]) == 200
    r = client.delete(f"/v1/auth/sessions/{sid_of(a['access_token'])}",
                      headers=bearer(b["access_token"]))
    assert r.status_code == 204
    assert_problem(client.get("/v1/me", headers=bearer(a["access_token"])), 401)
    assert_problem(refresh(client, a["refresh_token"]), 401)
    assert me(client, b["access_token"]) == 200
    # Already revoked, or never existed: 404.
    for target in (sid_of(a["access_token"]), uuid.uuid4()):
        assert_problem(
            client.delete(f"/v1/auth/sessions/{target}", headers=bearer(b["access_token"])), 404
        )


@pytest.mark.portable
def test_someone_elses_session_is_404_and_stays_live(app, client, world):
    alice, bob = world.user(), world.user()
    assert me(client, bob.token) == 200
    r = client.delete(f"/v1/auth/sessions/{sid_of(bob.token)}", headers=alice.headers)
    assert_problem(r, 404)
    assert me(client, bob.token) == 200
    assert session_row(app, sid_of(bob.token)).revoked_at is None


@pytest.mark.portable
def test_password_change_with_a_wrong_current_password_is_400(app, client, world):
    person = world.user()
    r = client.post("/v1/auth/password", headers=person.headers,
                    json={"current_password": "not the password", "new_password": "x" * 12})
    assert_problem(r, 400, errors={"current_password"})
    assert "not the password" not in r.get_data(as_text=True)
    assert login(client, person.email)  # unchanged


@pytest.mark.portable
def test_password_change_revokes_every_other_session(app, client, world):
    person = world.user()
    current, other = login(client, person.email), login(client, person.email)
    for token in (current["access_token"], other["access_token"], person.token):
        assert me(client, token) == 200
    new_password = f"new-{uuid.uuid4().hex}"
    r = client.post("/v1/auth/password", headers=bearer(current["access_token"]),
                    json={"current_password": PASSWORD, "new_password": new_password})
    assert r.status_code == 204, r.get_data(as_text=True)

    assert me(client, current["access_token"]) == 200
    for token in (other["access_token"], person.token):
        assert_problem(client.get("/v1/me", headers=bearer(token)), 401)
    assert_problem(refresh(client, other["refresh_token"]), 401)
    assert refresh(client, current["refresh_token"]).status_code == 200

    assert login(client, person.email, new_password)
    old = client.post("/v1/auth/login", json={"email": person.email, "password": PASSWORD})
    assert_problem(old, 401)


@pytest.mark.portable
def test_password_change_to_the_same_password_is_400(client, world):
    person = world.user()
    r = client.post("/v1/auth/password", headers=person.headers,
                    json={"current_password": PASSWORD, "new_password": PASSWORD})
    assert_problem(r, 400, errors={"new_password"})


# -- grants take effect on the next request -----------------------------------------------------


def _cached(client: Any, person: Person, path: str, status: int = 200) -> None:
    """Two requests: the actor is resolved, then served from the cache."""
    for _ in range(2):
        assert client.get(path, headers=person.headers).status_code == status


@pytest.mark.portable
def test_removing_an_org_member_takes_effect_on_the_next_request(client, tenant):
    viewer = tenant["viewer"]
    _cached(client, viewer, tenant.org_path)
    r = client.delete(f"{tenant.org_path}/members/{viewer.id}", headers=tenant["org_admin"].headers)
    assert r.status_code == 204
    assert_problem(client.get(tenant.org_path, headers=viewer.headers), 404)
    assert_problem(client.get(tenant.site_path, headers=viewer.headers), 404)


@pytest.mark.portable
def test_lowering_an_org_role_takes_effect_on_the_next_request(client, tenant):
    admin = tenant["site_admin"]
    _cached(client, admin, f"{tenant.site_path}/ingest-keys")
    r = client.patch(f"{tenant.org_path}/members/{admin.id}", json={"role": "viewer"},
                     headers=tenant["org_admin"].headers)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert_problem(client.get(f"{tenant.site_path}/ingest-keys", headers=admin.headers), 403)
    assert client.get(tenant.site_path, headers=admin.headers).status_code == 200


@pytest.mark.portable
def test_removing_a_site_member_takes_effect_on_the_next_request(client, tenant):
    person = tenant["site_viewer"]
    _cached(client, person, tenant.site_path)
    r = client.delete(f"{tenant.site_path}/members/{person.id}",
                      headers=tenant["org_admin"].headers)
    assert r.status_code == 204
    assert_problem(client.get(tenant.site_path, headers=person.headers), 404)


@pytest.mark.portable
def test_lowering_a_site_role_takes_effect_on_the_next_request(client, tenant):
    person = tenant["site_site_admin"]
    _cached(client, person, f"{tenant.site_path}/members")
    _cached(client, person, f"{tenant.site_path}/ingest-keys")
    r = client.patch(f"{tenant.site_path}/members/{person.id}", json={"role": "member"},
                     headers=tenant["org_admin"].headers)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert_problem(client.get(f"{tenant.site_path}/ingest-keys", headers=person.headers), 403)


@pytest.mark.portable
def test_a_new_grant_takes_effect_on_the_next_request(client, tenant):
    outsider = tenant["outsider"]
    _cached(client, outsider, tenant.org_path, 404)
    r = invite_and_accept(client, tenant["org_admin"], tenant.org_path, outsider, "viewer")
    assert r.status_code == 200, r.get_data(as_text=True)
    assert client.get(tenant.org_path, headers=outsider.headers).status_code == 200


def test_verifying_the_address_takes_effect_on_the_next_request(client, world, tenant, inbox):
    """The actor cache holds `verified`: verifying must drop the cached actor."""
    person = world.user(verified=False)
    sent = client.post(f"{tenant.org_path}/members", json={"email": person.email, "role": "viewer"},
                       headers=tenant["org_admin"].headers).get_json()
    assert client.get("/v1/invitations", headers=person.headers).get_json()["items"] == []
    assert client.post("/v1/auth/verify/resend", headers=person.headers).status_code == 204
    mail = next(m for m in inbox.wait_for(person.email, count=2)
                if m["Subject"] == "Confirm your email address")
    token = query_of(link_in(mail), "token")
    assert client.post("/v1/auth/verify", json={"token": token}).status_code == 204
    listed = client.get("/v1/invitations", headers=person.headers).get_json()["items"]
    assert [i["id"] for i in listed] == [sent["id"]]


# -- no secret in the logs ----------------------------------------------------------------------



@pytest.mark.portable
def test_no_password_token_or_key_secret_is_logged(app, client, world, log_text):
    tenant = world.tenant()
    person = world.user()
    new_password = f"New-{uuid.uuid4().hex}"
    secrets: list[str] = [PASSWORD, new_password]

    pair = login(client, person.email)
    secrets += [pair["access_token"], pair["refresh_token"]]
    assert me(client, pair["access_token"]) == 200
    rotated = refresh(client, pair["refresh_token"]).get_json()
    secrets += [rotated["access_token"], rotated["refresh_token"]]
    assert refresh(client, pair["refresh_token"]).status_code == 401  # reuse: audited, logged?
    second = login(client, person.email)
    secrets += [second["access_token"], second["refresh_token"]]
    r = client.post("/v1/auth/password", headers=bearer(second["access_token"]),
                    json={"current_password": PASSWORD, "new_password": new_password})
    assert r.status_code == 204
    wrong = client.post("/v1/auth/password", headers=bearer(second["access_token"]),
                        json={"current_password": PASSWORD, "new_password": new_password})
    assert wrong.status_code == 400

    admin = tenant["org_admin"]
    api_key = client.post(f"{tenant.org_path}/api-keys", headers=admin.headers,
                          json={"name": "ci", "role": "viewer"}).get_json()["secret"]
    ingest_key = client.post(f"{tenant.site_path}/ingest-keys", headers=admin.headers,
                             json={"name": "web"}).get_json()["secret"]
    secrets += [api_key, ingest_key, admin.token]
    assert client.get(tenant.org_path, headers=bearer(api_key)).status_code == 200
    assert client.get(tenant.org_path, headers=bearer(ingest_key)).status_code == 401
    forged = api_key[:-4] + ("AAAA" if not api_key.endswith("AAAA") else "BBBB")
    secrets.append(forged)
    assert client.get(tenant.org_path, headers=bearer(forged)).status_code == 401

    text = log_text.getvalue()
    assert text, "nothing was logged at all"
    for line in text.splitlines():
        json.loads(line)  # one JSON object per line
    for secret in secrets:
        assert secret not in text
        for part in secret.split("."):  # no segment of a JWT either
            assert len(part) < 16 or part not in text
        if secret.startswith(("sk_", "ik_")):
            assert secret[36:] not in text, "the secret part of a key is logged"
    for needle in ("Bearer", "argon2", "refresh_token", "password_hash"):
        assert needle not in text, needle
