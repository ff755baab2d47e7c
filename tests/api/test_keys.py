"""API keys (`sk_`, machine clients acting with a role) and ingest keys (`ik_`, browsers
sending events): who manages them, the secret shown once and stored hashed, how a key
authenticates, and everything that must refuse it."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from app.db import owner_sessionmaker, utcnow
from app.models import ApiKey, IngestKey
from tests.support import Tenant
from tests.support.http import (
    ROLES,
    RoleCase,
    assert_problem,
    check_role_case,
    etag,
    if_match,
    role_table,
)
from tests.support.keys import (
    Key,
    api_keys_path,
    bearer,
    create_api_key,
    create_ingest_key,
    ingest_keys_path,
    split_key,
)

pytestmark = pytest.mark.portable


def row(app: Any, model: type, key_id: str) -> Any:
    with owner_sessionmaker(app)() as s:
        return s.get(model, uuid.UUID(key_id))


def set_row(app: Any, model: type, key_id: str, **values: Any) -> None:
    with owner_sessionmaker(app)() as s, s.begin():
        s.execute(update(model).where(model.id == uuid.UUID(key_id)).values(**values))


def listed(client: Any, path: str, person: Any) -> list[dict[str, Any]]:
    r = client.get(path, headers=person.headers)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()["items"]


def _api_key_ids(client: Any, tenant: Tenant) -> list[str]:
    return sorted(k["id"] for k in listed(client, api_keys_path(tenant), tenant["org_admin"]))


def _ingest_key_ids(client: Any, tenant: Tenant) -> list[str]:
    return sorted(k["id"] for k in listed(client, ingest_keys_path(tenant), tenant["org_admin"]))


# -- who manages keys: role tables -------------------------------------------------------------

CASES = {
    "list-api-keys": RoleCase(
        send=lambda c, t, p, h: c.get(api_keys_path(t), headers=h),
        authz=("manage_api_keys", "Organization"),
    ),
    "create-api-key": RoleCase(
        send=lambda c, t, p, h: c.post(
            api_keys_path(t), json={"name": "k", "role": "viewer"}, headers=h
        ),
        authz=("manage_api_keys", "Organization"),
        state=_api_key_ids,
    ),
    "list-ingest-keys": RoleCase(
        send=lambda c, t, p, h: c.get(ingest_keys_path(t), headers=h),
        authz=("manage_ingest_keys", "Site"),
    ),
    "create-ingest-key": RoleCase(
        send=lambda c, t, p, h: c.post(ingest_keys_path(t), json={"name": "k"}, headers=h),
        authz=("manage_ingest_keys", "Site"),
        state=_ingest_key_ids,
    ),
}

# Who may read the org but not manage its keys gets 403; who may not even read it, 404.
#            org_admin site_admin member viewer | site_site_admin site_member site_viewer | outsider
ROLE_TABLE = {
    "list-api-keys":     (200, 403, 403, 403,    404, 404, 404,    404),
    "create-api-key":    (201, 403, 403, 403,    404, 404, 404,    404),
    "list-ingest-keys":  (200, 200, 403, 403,    200, 403, 403,    404),
    "create-ingest-key": (201, 201, 403, 403,    201, 403, 403,    404),
}


@pytest.mark.parametrize(("action", "role", "expected"), role_table(ROLE_TABLE))
def test_key_management_role_table(client, tenant, action, role, expected):
    response = check_role_case(client, tenant, CASES[action], role, expected)
    if expected == 201:
        assert response.get_json()["created_by"] == str(tenant[role].id)


# On an item route the resource is the key itself, which only its managers may read: every
# other caller gets 404, even one who may read the organization (DESIGN: "Tenancy").


@pytest.mark.parametrize("role", ROLES)
def test_revoking_an_api_key_is_for_org_admins(app, client, tenant, role):
    key = create_api_key(client, tenant)
    expected = 204 if role == "org_admin" else 404
    r = client.delete(f"{api_keys_path(tenant)}/{key.id}", headers=tenant[role].headers)
    if expected == 204:
        assert r.status_code == 204
        assert row(app, ApiKey, key.id).revoked_at is not None
    else:
        assert_problem(r, expected)
        assert row(app, ApiKey, key.id).revoked_at is None
        assert client.get(tenant.org_path, headers=key.headers).status_code == 200


@pytest.mark.parametrize("role", ROLES)
def test_revoking_an_ingest_key_is_for_site_admins(app, client, tenant, role):
    key = create_ingest_key(client, tenant)
    allowed = {"org_admin", "site_admin", "site_site_admin"}
    expected = 204 if role in allowed else 404
    r = client.delete(f"{ingest_keys_path(tenant)}/{key.id}", headers=tenant[role].headers)
    if expected == 204:
        assert r.status_code == 204
        assert row(app, IngestKey, key.id).revoked_at is not None
        assert key.id not in _ingest_key_ids(client, tenant)
    else:
        assert_problem(r, expected)
        assert row(app, IngestKey, key.id).revoked_at is None


def test_keys_of_another_tenant_are_404(app, client, world, tenant):
    other = world.tenant("Other")
    api_key = create_api_key(client, other)
    ingest_key = create_ingest_key(client, other)
    admin = tenant["org_admin"].headers
    assert_problem(client.delete(f"{api_keys_path(tenant)}/{api_key.id}", headers=admin), 404)
    assert_problem(client.delete(f"{ingest_keys_path(tenant)}/{ingest_key.id}", headers=admin), 404)
    assert_problem(client.delete(f"{api_keys_path(tenant)}/{uuid.uuid4()}", headers=admin), 404)
    assert row(app, ApiKey, api_key.id).revoked_at is None
    assert row(app, IngestKey, ingest_key.id).revoked_at is None
    # A site of another organization cannot scope a key here.
    r = client.post(api_keys_path(tenant), headers=admin,
                    json={"name": "x", "role": "viewer", "site_id": str(other.site.id)})
    assert_problem(r, 404)


# -- API keys: the secret ----------------------------------------------------------------------


def test_an_api_key_secret_is_shown_once_and_stored_hashed(app, client, tenant):
    key = create_api_key(client, tenant, role="member")
    assert key.secret.startswith("sk_")
    assert set(key.body) == {
        "id", "name", "role", "site_id", "created_by", "created_at", "expires_at",
        "last_used_at", "secret",
    }
    assert key.body["role"] == "member" and key.body["site_id"] is None
    assert key.body["created_by"] == str(tenant["org_admin"].id)
    assert key.body["last_used_at"] is None

    r = client.get(api_keys_path(tenant), headers=tenant["org_admin"].headers)
    assert r.status_code == 200
    [item] = r.get_json()["items"]
    assert item["id"] == key.id and "secret" not in item
    secret_part = split_key(key.secret)[1]
    assert secret_part not in r.get_data(as_text=True)

    stored = row(app, ApiKey, key.id)
    assert stored.secret_hash == hashlib.sha256(secret_part.encode()).hexdigest()
    for column in ApiKey.__table__.columns:
        value = str(getattr(stored, column.key))
        assert secret_part not in value, f"plaintext secret in api_keys.{column.key}"


def test_two_keys_never_share_a_secret(client, tenant):
    a, b = create_api_key(client, tenant), create_api_key(client, tenant)
    assert a.secret != b.secret and a.id != b.id


# -- API keys: acting with their role ----------------------------------------------------------


def test_a_viewer_key_reads_but_cannot_change_the_org(client, tenant):
    key = create_api_key(client, tenant, role="viewer")
    r = client.get(tenant.org_path, headers=key.headers)
    assert r.status_code == 200 and r.get_json()["id"] == str(tenant.org.id)
    assert client.get(tenant.site_path, headers=key.headers).status_code == 200
    tag = etag(client, tenant.org_path, key)
    r = client.patch(tenant.org_path, json={"name": "Pwned"}, headers=if_match(key.headers, tag))
    assert_problem(r, 403)


def test_an_org_admin_key_can_change_the_org(client, tenant):
    key = create_api_key(client, tenant, role="org_admin")
    tag = etag(client, tenant.org_path, key)
    r = client.patch(tenant.org_path, json={"name": "Renamed"}, headers=if_match(key.headers, tag))
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["name"] == "Renamed"


def test_a_key_sees_nothing_of_another_org(client, world, tenant):
    other = world.tenant("Other")
    key = create_api_key(client, tenant, role="org_admin")
    assert_problem(client.get(other.org_path, headers=key.headers), 404)
    assert_problem(client.get(other.site_path, headers=key.headers), 404)


def test_a_site_scoped_key_only_sees_its_site(app, client, world, tenant):
    second = world.site(tenant.org, "Second site")
    key = create_api_key(client, tenant, role="site_admin", site_id=str(tenant.site.id))
    assert key.body["site_id"] == str(tenant.site.id)
    assert client.get(tenant.site_path, headers=key.headers).status_code == 200
    tag = etag(client, tenant.site_path, key)
    r = client.patch(tenant.site_path, json={"name": "Renamed"}, headers=if_match(key.headers, tag))
    assert r.status_code == 200, r.get_data(as_text=True)
    assert_problem(client.get(f"{tenant.org_path}/sites/{second.id}", headers=key.headers), 404)
    assert_problem(client.get(tenant.org_path, headers=key.headers), 404)
    sites = client.get(f"{tenant.org_path}/sites", headers=key.headers)
    assert sites.status_code == 200
    assert [s["id"] for s in sites.get_json()["items"]] == [str(tenant.site.id)]


@pytest.mark.parametrize("role", ["viewer", "member", "site_admin"])
def test_an_org_admin_may_create_site_keys_with_every_site_role(client, tenant, role):
    key = create_api_key(client, tenant, role=role, site_id=str(tenant.site.id))
    assert key.body["role"] == role
    assert client.get(tenant.site_path, headers=key.headers).status_code == 200


def test_org_admin_is_not_a_site_role_for_a_key(app, client, tenant):
    r = client.post(api_keys_path(tenant), headers=tenant["org_admin"].headers,
                    json={"name": "x", "role": "org_admin", "site_id": str(tenant.site.id)})
    assert_problem(r, 400, errors={"role"})
    assert _api_key_ids(client, tenant) == []


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"name": "x", "role": "owner"}, {"role"}),
        ({"name": "x"}, {"role"}),
        ({"role": "viewer"}, {"name"}),
        ({"name": "x", "role": "viewer", "site_id": "nope"}, {"site_id"}),
        ({"name": "x", "role": "viewer", "expires_at": "2030-01-01T00:00:00"}, {"expires_at"}),
        ({"name": "x", "role": "viewer", "expires_at": "2020-01-01T00:00:00Z"}, {"expires_at"}),
        ({"name": "x", "role": "viewer", "secret": "sk_mine"}, {"secret"}),
    ],
    ids=["unknown-role", "no-role", "no-name", "bad-site", "naive-expiry", "past-expiry",
         "own-secret"],
)
def test_api_key_creation_validates_the_body(client, tenant, body, fields):
    r = client.post(api_keys_path(tenant), json=body, headers=tenant["org_admin"].headers)
    assert_problem(r, 400, errors=fields)


def test_an_api_key_cannot_manage_keys(client, tenant):
    key = create_api_key(client, tenant, role="org_admin")
    other = create_api_key(client, tenant, role="viewer")
    assert_problem(client.post(api_keys_path(tenant), json={"name": "k", "role": "viewer"},
                               headers=key.headers), 403)
    assert_problem(client.get(api_keys_path(tenant), headers=key.headers), 403)
    # A key may not read keys: a key id answers 404, like one that exists nowhere.
    assert_problem(client.delete(f"{api_keys_path(tenant)}/{other.id}", headers=key.headers), 404)
    assert_problem(client.post(ingest_keys_path(tenant), json={"name": "k"},
                               headers=key.headers), 403)
    assert sorted(_api_key_ids(client, tenant)) == sorted([key.id, other.id])
    assert client.get(tenant.org_path, headers=other.headers).status_code == 200


def test_an_api_key_has_no_session(client, tenant):
    key = create_api_key(client, tenant, role="org_admin")
    assert_problem(client.get("/v1/auth/sessions", headers=key.headers), 403)
    assert_problem(client.post("/v1/auth/logout", headers=key.headers), 403)


def test_last_used_at_is_set_after_use(app, client, tenant):
    key = create_api_key(client, tenant)
    assert row(app, ApiKey, key.id).last_used_at is None
    before = utcnow()
    assert client.get(tenant.org_path, headers=key.headers).status_code == 200
    used = row(app, ApiKey, key.id).last_used_at
    assert used is not None and before - timedelta(seconds=1) <= used <= utcnow()
    [item] = listed(client, api_keys_path(tenant), tenant["org_admin"])
    assert item["last_used_at"] is not None


# -- API keys: refused -------------------------------------------------------------------------


def test_a_revoked_key_is_refused_at_once(app, client, tenant):
    key = create_api_key(client, tenant)
    for _ in range(2):  # resolved, then cached
        assert client.get(tenant.org_path, headers=key.headers).status_code == 200
    r = client.delete(f"{api_keys_path(tenant)}/{key.id}", headers=tenant["org_admin"].headers)
    assert r.status_code == 204
    assert_problem(client.get(tenant.org_path, headers=key.headers), 401)
    assert key.id not in _api_key_ids(client, tenant)
    assert_problem(  # revoked twice: it is gone
        client.delete(f"{api_keys_path(tenant)}/{key.id}", headers=tenant["org_admin"].headers), 404
    )


def test_an_expired_key_is_refused(app, client, tenant):
    key = create_api_key(client, tenant, expires_at=(utcnow() + timedelta(days=1)).isoformat())
    set_row(app, ApiKey, key.id, expires_at=utcnow() - timedelta(seconds=1))
    assert_problem(client.get(tenant.org_path, headers=key.headers), 401)


def test_a_key_expiring_while_cached_is_refused(client, tenant, monkeypatch, is_postgres):
    if not is_postgres:  # the actor cache needs PostgreSQL's LISTEN: no cache on SQLite
        pytest.skip("no actor cache without PostgreSQL's notifications")
    expires = utcnow() + timedelta(hours=1)
    key = create_api_key(client, tenant, expires_at=expires.isoformat())
    for _ in range(2):  # resolved, then served from the actor cache
        assert client.get(tenant.org_path, headers=key.headers).status_code == 200
    # The request's clock moves past the expiry; the database's row and the cache do not.
    # Both places that read it move: the cached actor's check, and the resolution itself
    # (SQLite has no notification channel, so nothing is cached there).
    later = expires + timedelta(seconds=1)
    monkeypatch.setattr("app.auth.current.utcnow", lambda: later)
    monkeypatch.setattr("app.services.credentials.utcnow", lambda: later)
    assert_problem(client.get(tenant.org_path, headers=key.headers), 401)


def test_a_key_of_a_deleted_org_is_refused(app, client, tenant):
    key = create_api_key(client, tenant)
    assert client.get(tenant.org_path, headers=key.headers).status_code == 200
    tag = etag(client, tenant.org_path, tenant["org_admin"])
    r = client.delete(tenant.org_path, headers=if_match(tenant["org_admin"].headers, tag))
    assert r.status_code == 204
    assert_problem(client.get(tenant.org_path, headers=key.headers), 401)


def _garbage(key: Key, other: Key) -> dict[str, str]:
    prefix_id, secret = split_key(key.secret)
    other_id = split_key(other.secret)[0]
    flipped = ("A" if secret[0] != "A" else "B") + secret[1:]
    return {
        "prefix-only": "sk_",
        "no-secret": prefix_id + "_",
        "wrong-secret": f"{prefix_id}_{flipped}",
        "secret-of-another-key": f"{other_id}_{secret}",
        "unknown-id": f"sk_{uuid.uuid4().hex}_{secret}",
        "short-secret": f"{prefix_id}_{secret[:-1]}",
        "long-secret": f"{prefix_id}_{secret}A",
        "upper-case-id": f"sk_{prefix_id[3:].upper()}_{secret}",
        "bad-characters": f"{prefix_id}_{secret[:-1]}!",
        "ingest-prefix": f"ik_{prefix_id[3:]}_{secret}",
        "huge": "sk_" + "a" * 10_000,
        "unicode": "sk_" + "é" * 40,
    }


GARBAGE_CASES = [
    "prefix-only", "no-secret", "wrong-secret", "secret-of-another-key", "unknown-id",
    "short-secret", "long-secret", "upper-case-id", "bad-characters", "ingest-prefix", "huge",
    "unicode",
]


def test_garbage_keys_are_401(app, client, tenant):
    key, other = create_api_key(client, tenant), create_api_key(client, tenant)
    assert client.get(tenant.org_path, headers=key.headers).status_code == 200  # positive control
    for name, token in _garbage(key, other).items():
        assert name in GARBAGE_CASES
        r = client.get(tenant.org_path, headers=bearer(token))
        assert r.status_code == 401, (name, r.status_code)
        body = assert_problem(r, 401)
        assert token not in r.get_data(as_text=True) or len(token) < 8, name
        assert body["status"] == 401
    assert row(app, ApiKey, key.id).revoked_at is None


# -- ingest keys -------------------------------------------------------------------------------


def test_an_ingest_key_is_shown_once_and_stored_hashed(app, client, tenant):
    key = create_ingest_key(client, tenant, allowed_origins=["https://shop.example.com"])
    assert key.secret.startswith("ik_")
    assert set(key.body) == {
        "id", "name", "site_id", "allowed_origins", "created_by", "created_at", "last_used_at",
        "secret",
    }
    assert key.body["site_id"] == str(tenant.site.id)
    assert key.body["allowed_origins"] == ["https://shop.example.com"]
    r = client.get(ingest_keys_path(tenant), headers=tenant["site_admin"].headers)
    [item] = r.get_json()["items"]
    assert "secret" not in item
    secret_part = split_key(key.secret)[1]
    assert secret_part not in r.get_data(as_text=True)
    stored = row(app, IngestKey, key.id)
    assert stored.secret_hash == hashlib.sha256(secret_part.encode()).hexdigest()
    for column in IngestKey.__table__.columns:
        assert secret_part not in str(getattr(stored, column.key)), column.key


def test_ingest_keys_of_another_site_are_not_listed(client, world, tenant):
    second = world.site(tenant.org, "Second site")
    create_ingest_key(client, tenant)
    path = f"{tenant.org_path}/sites/{second.id}/ingest-keys"
    assert listed(client, path, tenant["org_admin"]) == []


@pytest.mark.parametrize(
    "origins",
    [
        ["https://shop.example.com", "http://localhost:3000"],
        [],
    ],
    ids=["two", "none"],
)
def test_valid_allowed_origins_are_kept(client, tenant, origins):
    key = create_ingest_key(client, tenant, allowed_origins=origins)
    assert key.body["allowed_origins"] == origins


@pytest.mark.parametrize(
    "origin",
    [
        "shop.example.com",
        "ftp://shop.example.com",
        "https://shop.example.com/",
        "https://shop.example.com/path",
        "https://Shop.Example.com",
        "https://shop.example.com:99999999",
        "javascript:alert(1)",
        "*",
        "null",
        "",
        "https://user:pw@shop.example.com",
        "https://shop.example.com\nX-Injected: 1",
        5,
        None,
    ],
)
def test_bad_allowed_origins_are_400(client, tenant, origin):
    r = client.post(ingest_keys_path(tenant), headers=tenant["site_admin"].headers,
                    json={"name": "browser", "allowed_origins": [origin]})
    assert_problem(r, 400, errors={"allowed_origins"})
    assert _ingest_key_ids(client, tenant) == []


def test_too_many_allowed_origins_is_400(client, tenant):
    origins = [f"https://s{i}.example.com" for i in range(51)]
    r = client.post(ingest_keys_path(tenant), headers=tenant["site_admin"].headers,
                    json={"name": "browser", "allowed_origins": origins})
    assert_problem(r, 400, errors={"allowed_origins"})


def test_an_ingest_key_is_refused_everywhere_else(client, tenant):
    key = create_ingest_key(client, tenant)
    for method, path in [
        ("get", "/v1/me"),
        ("get", "/v1/orgs"),
        ("get", tenant.org_path),
        ("get", tenant.site_path),
        ("get", f"{tenant.site_path}/members"),
        ("get", ingest_keys_path(tenant)),
        ("post", ingest_keys_path(tenant)),
        ("delete", f"{ingest_keys_path(tenant)}/{key.id}"),
        ("get", "/v1/auth/sessions"),
        ("post", "/v1/auth/logout"),
    ]:
        kwargs = {"json": {"name": "x"}} if method == "post" else {}
        r = getattr(client, method)(path, headers=key.headers, **kwargs)
        assert r.status_code == 401, (method, path, r.status_code)
        assert_problem(r, 401)
    assert _ingest_key_ids(client, tenant) == [key.id]


def test_a_revoked_ingest_key_is_no_longer_listed(client, tenant):
    key = create_ingest_key(client, tenant)
    r = client.delete(f"{ingest_keys_path(tenant)}/{key.id}", headers=tenant["site_admin"].headers)
    assert r.status_code == 204
    assert _ingest_key_ids(client, tenant) == []
    assert_problem(
        client.delete(f"{ingest_keys_path(tenant)}/{key.id}", headers=tenant["site_admin"].headers),
        404,
    )


def test_keys_are_stored_by_id_and_hash_only(app, client, tenant):
    api_key, ingest_key = create_api_key(client, tenant), create_ingest_key(client, tenant)
    with owner_sessionmaker(app)() as s:
        hashes = s.scalars(select(ApiKey.secret_hash)).all() + s.scalars(
            select(IngestKey.secret_hash)
        ).all()
    assert len(hashes) == 2 and all(len(h) == 64 for h in hashes)
    for key in (api_key, ingest_key):
        assert key.secret not in hashes and split_key(key.secret)[1] not in hashes
