"""A leaked key cannot take over its organization.

The most powerful keys there are (an org_admin API key for the organization, a site_admin
API key for one site) are sent through every route of the route table, with the sample
requests the isolation test uses, twice: the second round may use whatever the first one
made. Then nothing that is power has changed: no new credential (API key, ingest key,
login session), no new person and no role given, changed or taken, no owner locked out
(no organization or site deleted, no key revoked). The routes that succeeded are listed,
so the exploration is seen to do things (a positive control).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from app.db import owner_sessionmaker
from app.models import (
    ApiKey,
    AuthSession,
    IngestKey,
    Invitation,
    Organization,
    OrgMembership,
    Site,
    SiteMembership,
    User,
)
from app.services import credentials
from app.services.audit import Author
from tests.support.routes import (
    BODY_METHODS,
    ENDPOINTS,
    NO_BODY,
    PUBLIC_ROUTES,
    Scene,
    all_routes,
    body_for,
    etag_for,
    make_scene,
    resolve_all,
)

# Routes without ids: how a key would call them (bodies a person would send).
WITHOUT_IDS: dict[str, dict[str, Any] | None] = {
    "GET /v1/orgs": None,
    "POST /v1/orgs": {"name": "A key's own organization"},
    "GET /v1/me": None,
    "GET /v1/auth/sessions": None,
    "POST /v1/auth/logout": NO_BODY,
    "POST /v1/auth/logout-all": NO_BODY,
    "POST /v1/auth/password": {"current_password": "x" * 12, "new_password": "y" * 12},
    "POST /v1/auth/verify/resend": NO_BODY,
    "GET /v1/invitations": None,
    "POST /v1/events/batch": {"events": [{
        "name": "pageview", "distinct_id": "d", "timestamp": "2026-12-04T12:00:00Z"}]},
}


def power(app: Any) -> dict[str, set[Any]]:
    """Everything that is power, as the tables' owner sees it."""
    with owner_sessionmaker(app)() as session:
        def rows(*columns: Any) -> set[Any]:
            return set(session.execute(select(*columns)).all())

        return {
            "people": rows(User.id, User.deleted_at),
            "org roles": rows(OrgMembership.org_id, OrgMembership.user_id, OrgMembership.role),
            "site roles": rows(SiteMembership.site_id, SiteMembership.user_id,
                               SiteMembership.role),
            "API keys": rows(ApiKey.id, ApiKey.org_id, ApiKey.site_id, ApiKey.role,
                             ApiKey.expires_at, ApiKey.revoked_at),
            "ingest keys": rows(IngestKey.id, IngestKey.site_id, IngestKey.revoked_at),
            "login sessions": rows(AuthSession.id, AuthSession.revoked_at),
            "invitations": rows(Invitation.id, Invitation.role, Invitation.expires_at,
                                Invitation.accepted_at, Invitation.revoked_at),
            "organizations deleted": rows(Organization.id, Organization.deleted_at),
            "sites deleted": {(i, d) for i, d in rows(Site.id, Site.deleted_at) if d},
        }


def mint(app: Any, scene: Scene, role: str, on_site: bool) -> dict[str, str]:
    with owner_sessionmaker(app)() as session, session.begin():
        org = session.get(Organization, scene.a.org.id)
        site = session.get(Site, scene.a.site.id) if on_site else None
        _, secret = credentials.create_api_key(
            session, credentials.proposed_api_key(org, site, role), name="leaked",
            expires_at=None, by=Author("user", scene.a["org_admin"].id, None),
        )
    return {"Authorization": f"Bearer {secret}"}


def explore(scene: Scene, app: Any, headers: dict[str, str]) -> set[str]:
    """Every route the key can reach, sent once; the keys of those that succeeded."""
    succeeded = set()
    for route in all_routes(app):
        if route.rule in PUBLIC_ROUTES:
            continue
        if route.params:
            if route.key not in ENDPOINTS:
                pytest.fail(f"{route.key}: no entry in the isolation test's ENDPOINTS")
            path = route.path({p: scene.resolve(scene.a, p, route.rule) for p in route.params})
            body = body_for(route, scene) if route.case.body is not NO_BODY else NO_BODY
        else:
            if route.key not in WITHOUT_IDS:
                pytest.fail(f"{route.key}: say in WITHOUT_IDS how a key would call it")
            path, body = route.rule, WITHOUT_IDS[route.key]
        kwargs: dict[str, Any] = {"headers": dict(headers)}
        if route.method in BODY_METHODS and body is not NO_BODY:
            kwargs["json"] = body
        if route.method in {"PATCH", "PUT", "DELETE"}:
            kwargs["headers"]["If-Match"] = etag_for(scene, route, path)
        response = scene.client.open(path, method=route.method, **kwargs)
        assert response.status_code < 500, (route.key, response.get_data(as_text=True))
        if response.status_code < 300:
            succeeded.add(route.key)
    return succeeded


@pytest.mark.parametrize(
    ("role", "on_site"), [("org_admin", False), ("site_admin", True)],
    ids=["org_admin key", "site_admin key on the site"],
)
def test_a_key_reaches_no_credential_and_no_person_with_power(app, client, world, role, on_site):
    scene = make_scene(world, client, with_b=False)
    key = mint(app, scene, role, on_site)
    resolve_all(app, scene)  # the sample resources (keys to revoke...) exist beforehand
    before = power(app)
    succeeded = explore(scene, app, key) | explore(scene, app, key)
    after = power(app)
    changed = {name: after[name] ^ before[name] for name in before if after[name] != before[name]}
    assert changed == {}
    # Positive control: the key really acted (it reads, and changes what its role allows).
    assert f"GET {ORG_RULE}" in succeeded if not on_site else f"GET {SITE_RULE}" in succeeded
    assert f"PATCH {SITE_RULE}" in succeeded
    # And the owners still hold what they held: the org_admin acts as before.
    owner = scene.a["org_admin"]
    assert client.get(f"{scene.a.org_path}/api-keys", headers=owner.headers).status_code == 200


ORG_RULE = "/v1/orgs/<uuid:org_id>"
SITE_RULE = f"{ORG_RULE}/sites/<uuid:site_id>"


def test_every_route_without_ids_is_explored(app):
    keys = {r.key for r in all_routes(app) if not r.params and r.rule not in PUBLIC_ROUTES}
    assert keys == set(WITHOUT_IDS)

