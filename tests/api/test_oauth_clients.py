"""OAuth clients of an organization (`/v1/orgs/{org_id}/oauth-clients`): org_admins only
(people), a confidential client's secret shown once and stored hashed, exact redirect URIs
(https, or loopback http with any port: RFC 8252), a role capped like an API key's."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import pytest

from app.db import owner_sessionmaker
from app.models import OAuthClient
from tests.support import Tenant
from tests.support.http import ROLES, RoleCase, assert_problem, check_role_case, role_table
from tests.support.keys import create_api_key
from tests.support.oauth import CALLBACK, create_oauth_client, oauth_clients_path

pytestmark = pytest.mark.portable


def stored(app: Any, client_id: str) -> OAuthClient:
    with owner_sessionmaker(app)() as s:
        row = s.get(OAuthClient, uuid.UUID(client_id))
        assert row is not None
        return row


def _client_ids(client: Any, tenant: Tenant) -> list[str]:
    r = client.get(oauth_clients_path(tenant), headers=tenant["org_admin"].headers)
    assert r.status_code == 200
    return sorted(c["id"] for c in r.get_json()["items"])


CASES = {
    "list": RoleCase(
        send=lambda c, t, p, h: c.get(oauth_clients_path(t), headers=h),
        authz=("manage_oauth_clients", "Organization"),
    ),
    "create": RoleCase(
        send=lambda c, t, p, h: c.post(oauth_clients_path(t), headers=h, json={
            "name": "app", "client_type": "public", "redirect_uris": [CALLBACK]}),
        authz=("manage_oauth_clients", "Organization"),
        state=_client_ids,
    ),
}
#            org_admin site_admin member viewer | site_site_admin site_member site_viewer | outsider
ROLE_TABLE = {
    "list":   (200, 403, 403, 403,    404, 404, 404,    404),
    "create": (201, 403, 403, 403,    404, 404, 404,    404),
}


@pytest.mark.parametrize(("action", "role", "expected"), role_table(ROLE_TABLE))
def test_oauth_client_management_role_table(client, tenant, action, role, expected):
    response = check_role_case(client, tenant, CASES[action], role, expected)
    if expected == 201:
        assert response.get_json()["created_by"] == str(tenant[role].id)


@pytest.mark.parametrize("role", ROLES)
def test_only_org_admins_see_change_rotate_and_revoke_a_client(app, client, tenant, role):
    registered = create_oauth_client(client, tenant)
    path = f"{oauth_clients_path(tenant)}/{registered.id}"
    headers = tenant[role].headers
    answers = [
        client.get(path, headers=headers),
        client.patch(path, json={"name": "Renamed"}, headers=headers),
        client.post(f"{path}/secret", headers=headers),
    ]
    if role == "org_admin":
        assert [r.status_code for r in answers] == [200, 200, 200]
        assert client.delete(path, headers=headers).status_code == 204
        assert stored(app, registered.id).revoked_at is not None
        assert_problem(client.get(path, headers=headers), 404)
    else:
        for r in answers:
            assert_problem(r, 404)
        assert_problem(client.delete(path, headers=headers), 404)
        row = stored(app, registered.id)
        assert row.revoked_at is None and row.name == "app-confidential"


def test_an_api_key_cannot_manage_oauth_clients(client, tenant):
    key = create_api_key(client, tenant, role="org_admin")
    r = client.post(oauth_clients_path(tenant), headers=key.headers, json={
        "name": "k", "client_type": "public", "redirect_uris": [CALLBACK]})
    assert_problem(r, 403)
    assert_problem(client.get(oauth_clients_path(tenant), headers=key.headers), 403)


def test_a_confidential_secret_is_shown_once_and_stored_hashed(app, client, tenant):
    registered = create_oauth_client(client, tenant)
    assert registered.secret and len(registered.secret) >= 43
    assert set(registered.body) == {
        "id", "name", "client_type", "redirect_uris", "scopes", "role", "site_id",
        "created_by", "created_at", "last_used_at", "client_secret",
    }
    r = client.get(oauth_clients_path(tenant), headers=tenant["org_admin"].headers)
    assert registered.secret not in r.get_data(as_text=True)
    [item] = r.get_json()["items"]
    assert "client_secret" not in item and item["redirect_uris"] == [CALLBACK]
    row = stored(app, registered.id)
    assert row.secret_hash == hashlib.sha256(registered.secret.encode()).hexdigest()

    rotated = client.post(f"{oauth_clients_path(tenant)}/{registered.id}/secret",
                          headers=tenant["org_admin"].headers)
    assert rotated.status_code == 200
    new_secret = rotated.get_json()["client_secret"]
    assert new_secret != registered.secret
    assert stored(app, registered.id).secret_hash == hashlib.sha256(
        new_secret.encode()).hexdigest()


def test_a_public_client_has_no_secret(app, client, tenant):
    registered = create_oauth_client(client, tenant, "public")
    assert registered.secret is None and stored(app, registered.id).secret_hash is None
    r = client.post(f"{oauth_clients_path(tenant)}/{registered.id}/secret",
                    headers=tenant["org_admin"].headers)
    assert_problem(r, 409)


@pytest.mark.parametrize("uri", [
    CALLBACK, "https://app.example.com", "http://127.0.0.1:8765/callback", "http://[::1]/cb",
    "http://127.0.0.1/callback?flow=desktop",
])
def test_redirect_uris_accepted(client, tenant, uri):
    registered = create_oauth_client(client, tenant, "public", redirect_uris=[uri])
    assert registered.body["redirect_uris"] == [uri]


@pytest.mark.parametrize("uri", [
    "http://app.example.com/callback",  # plain http off loopback
    "http://localhost:8000/cb",  # a name that could resolve elsewhere (RFC 8252 8.3)
    "https://app.example.com/cb#fragment",  # RFC 6749 3.1.2
    "https://app.example.com/cb\n", "https://user@evil.example.com/", "javascript:alert(1)",
    "com.example.app:/callback", "https://app.example.com/" + "a" * 1000, "", "/relative",
])
def test_redirect_uris_refused(client, tenant, uri):
    r = client.post(oauth_clients_path(tenant), headers=tenant["org_admin"].headers, json={
        "name": "app", "client_type": "public", "redirect_uris": [uri]})
    assert_problem(r, 400, errors={"redirect_uris"})


def test_a_client_role_is_capped_and_for_confidential_clients(client, tenant, world):
    admin = tenant["org_admin"].headers
    body = {"name": "m", "redirect_uris": [CALLBACK]}
    r = client.post(oauth_clients_path(tenant), headers=admin,
                    json={**body, "client_type": "public", "role": "viewer"})
    assert_problem(r, 400, errors={"role"})
    r = client.post(oauth_clients_path(tenant), headers=admin, json={
        **body, "client_type": "confidential", "role": "member", "site_id": str(tenant.site.id)})
    assert r.status_code == 201 and r.get_json()["site_id"] == str(tenant.site.id)
    other = world.tenant("Other")
    r = client.post(oauth_clients_path(tenant), headers=admin, json={
        **body, "client_type": "confidential", "role": "member", "site_id": str(other.site.id)})
    assert_problem(r, 404)


def test_clients_of_another_tenant_are_404(app, client, world, tenant):
    other = world.tenant("Other")
    theirs = create_oauth_client(client, other)
    admin = tenant["org_admin"].headers
    path = f"{oauth_clients_path(tenant)}/{theirs.id}"
    assert_problem(client.get(path, headers=admin), 404)
    assert_problem(client.delete(path, headers=admin), 404)
    assert stored(app, theirs.id).revoked_at is None
