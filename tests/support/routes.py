"""The route table as tests walk it: how to call each route with ids in its path, as whom,
and what a tenant's view of itself is (tests/test_tenant_isolation.py, the escalation
test, ...). Extend ENDPOINTS when you add a route with ids or a method; a path parameter
names a described resource (`__resource__.path_param`) or is one of SPECIAL_PARAMS."""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from app.db import utcnow
from app.models import Gallery, GalleryItem, Invitation, Organization, Site
from app.models.resource import Place, described, make
from app.services import credentials
from app.services.audit import Author
from tests.support import Person, Tenant, World, galleries

# =============================================================================================
# THE TABLES. Extend them when you add a route with ids, a method, or a public route.
# =============================================================================================

# Public routes: answer without credentials. Everything else must answer 401 without them.
PUBLIC_ROUTES = {
    "/healthz",
    "/readyz",
    "/openapi.json",
    "/docs",
    "/static/<path:filename>",
    "/docs/assets/<path:filename>",
    "/metrics",  # its own token, not an API credential (app/metrics.py); 404 when unset
    "/.well-known/jwks.json",
    "/v1/auth/register",
    "/v1/auth/login",
    "/v1/auth/refresh",  # authenticated by the refresh token in its body
    "/v1/auth/verify",  # by the mailed token in its body
    "/v1/auth/password/reset",
    "/v1/auth/password/reset/complete",  # by the mailed token in its body
    # OAuth 2.1 (RFC 6749): a client authenticates in the request, a person on the page.
    "/.well-known/oauth-authorization-server",
    "/oauth/authorize",
    "/oauth/token",
    "/oauth/revoke",
    "/oauth/introspect",
}

# Path parameter -> a real resource of `tenant` (called with the scene, the tenant, the rule).
# A resolver may create the resource; its result is cached per tenant and rule.
Resolver = Callable[["Scene", Tenant, str], uuid.UUID]
def sample_of(model: type) -> Resolver:
    """A sample row of `model` (its `__resource__.sample`) in the tenant's site, created by
    its "member", saved as the tables' owner."""

    def resolve(scene: Scene, tenant: Tenant, rule: str) -> uuid.UUID:
        with scene.world.maker() as session, session.begin():
            org = session.get(Organization, tenant.org.id)
            site = session.get(Site, tenant.site.id)
            place = Place(org, site, created_by=tenant["member"].id)
            row = make(model, place)
            session.add_all([*place.made.values(), row])
            return row.id

    return resolve


# Path parameter -> a real resource of the tenant. Each described resource's own
# parameter (`__resource__.path_param`) gets a sample row; what names no resource, or must
# be in a state a sample is not, is said here.
SPECIAL_PARAMS: dict[str, Resolver] = {
    "org_id": lambda scene, t, rule: t.org.id,
    "site_id": lambda scene, t, rule: t.site.id,
    # A member of the scope the path names: of the site under /sites/, else of the org.
    "user_id": lambda scene, t, rule: (
        (t["site_member"] if "<uuid:site_id>" in rule else t["member"]).id
    ),
    # A live login session of the tenant's "member".
    "session_id": lambda scene, t, rule: session_of(t["member"]),
    # A gallery of the tenant's site created by its "member", holding one ready asset; a
    # deleted one for .../restore (only a deleted gallery can be restored).
    "gallery_id": lambda scene, t, rule: new_gallery(
        scene.world, t, t["member"], deleted=rule.endswith("/restore")
    )[0],
    # An open invitation to the tenant's "site_member" (who may then accept it): to the
    # site under /sites/, else to the organization.
    "invitation_id": lambda scene, t, rule: new_invitation(
        scene.world, t, t["site_member"], on_site="<uuid:site_id>" in rule
    ),
    # The item of the gallery resolved for the same rule.
    "item_id": lambda scene, t, rule: item_of(scene.world, scene.resolve(t, "gallery_id", rule)),
}
ID_RESOLVERS: dict[str, Resolver] = {
    **{r.path_param: sample_of(model) for model, r in described() if r.path_param},
    **SPECIAL_PARAMS,
}

# Roles of tenant A (see World.tenant) below the one an endpoint needs.
ORG_BELOW_ADMIN = ("site_admin", "member", "viewer")
ORG_BELOW_SITE_ADMIN = ("member", "viewer")
SITE_ONLY = ("site_site_admin", "site_member", "site_viewer")
SITE_BELOW_ADMIN = ("site_member", "site_viewer")
ALL_BUT_ORG_ADMIN = ORG_BELOW_ADMIN + SITE_ONLY


NO_BODY: dict[str, Any] = {}  # for a POST that takes no body (identity-compared)


@dataclass(frozen=True)
class Case:
    """How to call one method of one route.

    body: a valid JSON body (dict, or a function of the scene) for POST/PUT/PATCH, so that
          validation cannot answer before authorization; NO_BODY when the endpoint takes none;
    denied: tenant A's roles that must get 403/404 ("outsider" is always checked: 404);
    allowed: a role of tenant A for which the same request succeeds (the positive control);
    query: query-string arguments the endpoint requires.
    """

    body: dict[str, Any] | Callable[[Scene], dict[str, Any]] | None = None
    denied: tuple[str, ...] = ()
    allowed: str = "org_admin"
    query: dict[str, str] | None = None


ORG = "/v1/orgs/<uuid:org_id>"
SITE = f"{ORG}/sites/<uuid:site_id>"
GALLERY = f"{SITE}/galleries/<uuid:gallery_id>"
# Readers of a gallery created by tenant A's "member" who may not change it.
NOT_GALLERY_EDITORS = ("viewer", "site_member", "site_viewer")

ENDPOINTS: dict[str, Case] = {
    f"GET {ORG}": Case(denied=SITE_ONLY),
    f"PATCH {ORG}": Case(body={"name": "Renamed by intruder"}, denied=ALL_BUT_ORG_ADMIN),
    f"DELETE {ORG}": Case(denied=ALL_BUT_ORG_ADMIN),
    f"GET {ORG}/sites": Case(),  # any role on the org or one of its sites may list
    f"POST {ORG}/sites": Case(
        body={"name": "Intruder site", "domain": "intruder.example.com"}, denied=ALL_BUT_ORG_ADMIN
    ),
    f"GET {SITE}": Case(),
    f"PATCH {SITE}": Case(
        body={"name": "Renamed site"}, denied=ORG_BELOW_SITE_ADMIN + SITE_BELOW_ADMIN
    ),
    f"DELETE {SITE}": Case(denied=ALL_BUT_ORG_ADMIN),
    f"GET {ORG}/members": Case(denied=SITE_ONLY),
    f"POST {ORG}/members": Case(
        body=lambda scene: {"email": scene.candidate.email, "role": "viewer"},
        denied=ALL_BUT_ORG_ADMIN,
    ),
    f"PATCH {ORG}/members/<uuid:user_id>": Case(body={"role": "viewer"}, denied=ALL_BUT_ORG_ADMIN),
    f"DELETE {ORG}/members/<uuid:user_id>": Case(denied=ALL_BUT_ORG_ADMIN),
    f"GET {SITE}/members": Case(),
    f"POST {SITE}/members": Case(
        body=lambda scene: {"email": scene.candidate.email, "role": "viewer"},
        denied=ORG_BELOW_SITE_ADMIN + SITE_BELOW_ADMIN,
    ),
    f"PATCH {SITE}/members/<uuid:user_id>": Case(
        body={"role": "viewer"}, denied=ORG_BELOW_SITE_ADMIN + SITE_BELOW_ADMIN
    ),
    f"DELETE {SITE}/members/<uuid:user_id>": Case(denied=ORG_BELOW_SITE_ADMIN + SITE_BELOW_ADMIN),
    f"GET {ORG}/audit-events": Case(denied=ALL_BUT_ORG_ADMIN),
    f"GET {ORG}/api-keys": Case(denied=ALL_BUT_ORG_ADMIN),
    f"POST {ORG}/api-keys": Case(
        body={"name": "CI key", "role": "viewer"}, denied=ALL_BUT_ORG_ADMIN
    ),
    f"DELETE {ORG}/api-keys/<uuid:api_key_id>": Case(denied=ALL_BUT_ORG_ADMIN),
    f"GET {ORG}/oauth-clients": Case(denied=ALL_BUT_ORG_ADMIN),
    f"POST {ORG}/oauth-clients": Case(
        body={"name": "Intruder app", "client_type": "public",
              "redirect_uris": ["https://intruder.example.com/callback"]},
        denied=ALL_BUT_ORG_ADMIN,
    ),
    f"GET {ORG}/oauth-clients/<uuid:oauth_client_id>": Case(denied=ALL_BUT_ORG_ADMIN),
    f"PATCH {ORG}/oauth-clients/<uuid:oauth_client_id>": Case(
        body={"redirect_uris": ["https://intruder.example.com/callback"]},
        denied=ALL_BUT_ORG_ADMIN,
    ),
    f"DELETE {ORG}/oauth-clients/<uuid:oauth_client_id>": Case(denied=ALL_BUT_ORG_ADMIN),
    f"POST {ORG}/oauth-clients/<uuid:oauth_client_id>/secret": Case(
        body=NO_BODY, denied=ALL_BUT_ORG_ADMIN
    ),
    f"GET {SITE}/ingest-keys": Case(denied=ORG_BELOW_SITE_ADMIN + SITE_BELOW_ADMIN),
    f"POST {SITE}/ingest-keys": Case(
        body={"name": "Browser key", "allowed_origins": ["https://www.example.com"]},
        denied=ORG_BELOW_SITE_ADMIN + SITE_BELOW_ADMIN,
    ),
    f"DELETE {SITE}/ingest-keys/<uuid:ingest_key_id>": Case(
        denied=ORG_BELOW_SITE_ADMIN + SITE_BELOW_ADMIN
    ),
    f"POST {SITE}/uploads": Case(
        body={"filename": "photo.jpg", "content_type": "image/jpeg", "size_bytes": 1024},
        denied=("viewer", "site_viewer"),
    ),
    f"GET {SITE}/assets": Case(),
    f"GET {SITE}/assets/<uuid:asset_id>": Case(),
    # The asset's uploader ("member") or a site_admin changes it; another member does not.
    f"PATCH {SITE}/assets/<uuid:asset_id>": Case(
        body={"title": "Renamed asset"}, denied=("viewer", "site_member", "site_viewer")
    ),
    f"DELETE {SITE}/assets/<uuid:asset_id>": Case(denied=("viewer", "site_member", "site_viewer")),
    f"POST {SITE}/assets/<uuid:asset_id>/complete": Case(
        body=NO_BODY, denied=("viewer", "site_member", "site_viewer")
    ),
    f"GET {SITE}/assets/<uuid:asset_id>/download-url": Case(),
    # Sessions belong to their user alone: nobody else in the tenant may end them.
    # Events are read by members; keys write them through /v1/events/batch (no ids).
    f"GET {SITE}/events": Case(denied=("viewer", "site_viewer")),
    f"GET {SITE}/events/stats": Case(
        denied=("viewer", "site_viewer"),
        query={"since": "2026-01-01T00:00:00Z", "until": "2026-01-02T00:00:00Z"},
    ),
    f"GET {SITE}/galleries": Case(),
    f"POST {SITE}/galleries": Case(
        body={"title": "Intruder gallery"}, denied=("viewer", "site_viewer")
    ),
    f"GET {GALLERY}": Case(),
    # The gallery's creator ("member") or a site_admin changes it; another member does not.
    f"PATCH {GALLERY}": Case(body={"title": "Renamed gallery"}, denied=NOT_GALLERY_EDITORS),
    f"DELETE {GALLERY}": Case(denied=NOT_GALLERY_EDITORS),
    # Only a site_admin restores, the creator included.
    f"POST {GALLERY}/restore": Case(body=NO_BODY, denied=("member", *NOT_GALLERY_EDITORS)),
    f"GET {GALLERY}/items": Case(),
    f"POST {GALLERY}/items": Case(
        # A ready asset of the same site that is not in the gallery yet.
        body=lambda scene: {
            "asset_id": str(scene.resolve(scene.a, "asset_id", f"{GALLERY}/items"))
        },
        denied=NOT_GALLERY_EDITORS,
    ),
    f"PUT {GALLERY}/items/order": Case(
        # Names every item of the gallery resolved for this rule (it has one).
        body=lambda scene: {
            "item_ids": [str(scene.resolve(scene.a, "item_id", f"{GALLERY}/items/order"))]
        },
        denied=NOT_GALLERY_EDITORS,
    ),
    f"PATCH {GALLERY}/items/<uuid:item_id>": Case(
        body={"caption": "Intruder caption", "position": 0}, denied=NOT_GALLERY_EDITORS
    ),
    f"DELETE {GALLERY}/items/<uuid:item_id>": Case(denied=NOT_GALLERY_EDITORS),
    f"GET {ORG}/invitations": Case(),  # lists only what the caller may manage
    f"POST {ORG}/invitations/<uuid:invitation_id>/resend": Case(
        body=NO_BODY, denied=ALL_BUT_ORG_ADMIN
    ),
    f"DELETE {ORG}/invitations/<uuid:invitation_id>": Case(denied=ALL_BUT_ORG_ADMIN),
    f"GET {SITE}/invitations": Case(),
    f"POST {SITE}/invitations/<uuid:invitation_id>/resend": Case(
        body=NO_BODY, denied=ORG_BELOW_SITE_ADMIN + SITE_BELOW_ADMIN
    ),
    f"DELETE {SITE}/invitations/<uuid:invitation_id>": Case(
        denied=ORG_BELOW_SITE_ADMIN + SITE_BELOW_ADMIN
    ),
    # Only the invitee answers an invitation (its address, verified).
    "POST /v1/invitations/<uuid:invitation_id>/accept": Case(
        body=NO_BODY, denied=("org_admin", "site_admin", "member", "viewer", "site_site_admin",
                              "site_viewer"), allowed="site_member",
    ),
    "POST /v1/invitations/<uuid:invitation_id>/decline": Case(
        body=NO_BODY, denied=("org_admin", "site_admin", "member", "viewer", "site_site_admin",
                              "site_viewer"), allowed="site_member",
    ),
    "DELETE /v1/auth/sessions/<uuid:session_id>": Case(
        denied=("org_admin", "site_admin", "viewer", *SITE_ONLY), allowed="member"
    ),
}

# =============================================================================================

BODY_METHODS = {"POST", "PUT", "PATCH"}
SKIPPED_METHODS = {"HEAD", "OPTIONS"}
PARAM = re.compile(r"<(?:(?P<converter>[a-zA-Z_][a-zA-Z0-9_]*)(?:\([^)]*\))?:)?(?P<name>\w+)>")


@dataclass
class Scene:
    world: World
    client: Any
    a: Tenant
    b: Tenant | None
    candidate: Person  # an account without any role: what POST .../members adds
    ids: dict[tuple[uuid.UUID, str, str], uuid.UUID] = field(default_factory=dict)

    def resolve(self, tenant: Tenant, name: str, rule: str) -> uuid.UUID:
        key = (tenant.org.id, name, rule)
        if name not in ID_RESOLVERS:
            pytest.fail(f"{rule}: no resolver for <{name}>; extend ID_RESOLVERS")
        if key not in self.ids:
            self.ids[key] = ID_RESOLVERS[name](self, tenant, rule)
        return self.ids[key]


@dataclass(frozen=True)
class Route:
    rule: str
    method: str
    params: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.method} {self.rule}"

    @property
    def case(self) -> Case:
        if self.key not in ENDPOINTS:
            pytest.fail(f"{self.key}: no entry in ENDPOINTS; extend the table")
        return ENDPOINTS[self.key]

    def path(self, values: dict[str, uuid.UUID]) -> str:
        return PARAM.sub(lambda m: str(values[m.group("name")]), self.rule)


def new_api_key(world: World, tenant: Tenant, role: str = "viewer") -> tuple[uuid.UUID, str]:
    """An organization-wide API key of `tenant`: (id, bearer secret)."""
    with world.maker() as session, session.begin():
        org = session.get(Organization, tenant.org.id)
        key, secret = credentials.create_api_key(
            session,
            credentials.proposed_api_key(org, None, role),
            name="test key",
            expires_at=None,
            by=Author("user", tenant["org_admin"].id, None),
        )
        return key.id, secret


def new_asset(world: World, tenant: Tenant, uploader: Person) -> uuid.UUID:
    """A ready asset row named after the tenant (a leak is then recognisable); its object
    need not exist: nothing here reads it from storage."""
    return galleries.new_asset(world, tenant.site, uploader,
                               filename=f"{tenant.org.name} secret plan.png")


def new_gallery(
    world: World, tenant: Tenant, creator: Person, *, deleted: bool = False
) -> tuple[uuid.UUID, uuid.UUID]:
    """A gallery of the tenant's site holding one ready asset: (gallery id, item id)."""
    asset_id = new_asset(world, tenant, creator)
    site = tenant.site
    gallery = Gallery(
        id=uuid.uuid4(),
        org_id=site.org_id,
        site_id=site.id,
        title=f"{tenant.org.name} secret gallery",
        description=f"{site.name} plans",
        cover_asset_id=asset_id,
        created_by=creator.id,
        item_count=1,
        deleted_at=utcnow() if deleted else None,
    )
    item = GalleryItem(
        id=uuid.uuid4(),
        org_id=site.org_id,
        site_id=site.id,
        gallery_id=gallery.id,
        asset_id=asset_id,
        caption=f"{tenant.org.name} caption",
        position=0,
    )
    with world.maker() as session, session.begin():
        session.add(gallery)
        session.flush()
        session.add(item)
    return gallery.id, item.id


def new_invitation(world: World, tenant: Tenant, invitee: Person, *, on_site: bool) -> uuid.UUID:
    """An open invitation of `invitee`'s address, by the tenant's org_admin."""
    invitation = Invitation(
        id=uuid.uuid4(), org_id=tenant.org.id, site_id=tenant.site.id if on_site else None,
        email=invitee.email, role="viewer", invited_by=tenant["org_admin"].id,
        expires_at=utcnow() + timedelta(days=1),
    )
    with world.maker() as session, session.begin():
        session.add(invitation)
    return invitation.id


def item_of(world: World, gallery_id: uuid.UUID) -> uuid.UUID:
    with world.maker() as session:
        return session.scalars(
            select(GalleryItem.id).where(GalleryItem.gallery_id == gallery_id)
        ).one()


def session_of(person: Person) -> uuid.UUID:
    segment = person.token.split(".")[1]
    return uuid.UUID(
        json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))["sid"]
    )


def params_of(rule: str) -> tuple[str, ...]:
    return tuple(m.group("name") for m in PARAM.finditer(rule))


def all_routes(app: Any) -> list[Route]:
    routes = []
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - SKIPPED_METHODS):
            routes.append(Route(rule.rule, method, params_of(rule.rule)))
    # Deepest paths first and DELETE last, so a wrongly allowed DELETE hides no other finding.
    order = {"GET": 0, "POST": 1, "PUT": 2, "PATCH": 3, "DELETE": 4}
    return sorted(routes, key=lambda r: (-r.rule.count("/"), r.rule, order.get(r.method, 5)))


def id_routes(app: Any) -> list[Route]:
    return [r for r in all_routes(app) if r.params and r.rule not in PUBLIC_ROUTES]


def make_tenant(world: World, label: str) -> Tenant:
    """world.tenant() with names unique to this test, so a leak is recognisable."""
    tag = uuid.uuid4().hex[:8]
    tenant = world.tenant(f"{label} org {tag}")
    site_name = f"{label} site {tag}"
    with world.maker() as session, session.begin():
        session.execute(update(Site).where(Site.id == tenant.site.id).values(name=site_name))
    tenant.site.name = site_name
    return tenant


def make_scene(world: World, client: Any, *, with_b: bool = True) -> Scene:
    return Scene(
        world=world,
        client=client,
        a=make_tenant(world, "Alpha"),
        b=make_tenant(world, "Bravo") if with_b else None,
        candidate=world.user(),
    )


def secrets_of(scene: Scene, tenant: Tenant) -> set[str]:
    """What a response to anyone outside `tenant` must never contain: its names, its
    people's ids and emails, and every id resolved for it so far (keys, assets, ...)."""
    values = {str(tenant.org.id), tenant.org.name, str(tenant.site.id), tenant.site.name}
    for person in tenant.people.values():
        values |= {str(person.id), person.email}
    values |= {str(v) for (org_id, _, _), v in scene.ids.items() if org_id == tenant.org.id}
    values |= {v.replace("-", "") for v in list(values) if len(v) == 36}  # hex form of UUIDs
    return values


def body_for(route: Route, scene: Scene) -> dict[str, Any] | None:
    body = route.case.body
    return body(scene) if callable(body) else body


def etag_for(scene: Scene, route: Route, path: str) -> str:
    """For PATCH/PUT/DELETE: the real ETag when tenant A's org_admin can read the resource,
    else `*`, so a missing authorization check would reach the write, not a 428/412."""
    if route.method not in {"PATCH", "PUT", "DELETE"}:
        return "*"
    get = scene.client.get(path, headers=scene.a["org_admin"].headers)
    return get.headers.get("ETag") or "*"


def send(
    scene: Scene, route: Route, path: str, who: Person | dict[str, str], if_match: str = "*"
) -> Any:
    """`route` on `path` as a person or with the given credential headers."""
    headers = dict(who.headers if isinstance(who, Person) else who)
    kwargs: dict[str, Any] = {"headers": headers}
    if route.method in BODY_METHODS and route.case.body is not NO_BODY:
        kwargs["json"] = body_for(route, scene)
    if route.method in {"PATCH", "PUT", "DELETE"}:
        headers["If-Match"] = if_match
    return scene.client.open(path, method=route.method, query_string=route.case.query, **kwargs)


def leaks(response: Any, secrets: set[str]) -> list[str]:
    text = (
        response.get_data(as_text=True)
        + "\n"
        + "\n".join(f"{k}: {v}" for k, v in response.headers.items() if k != "X-Request-ID")
    )
    return sorted(s for s in secrets if s in text)


def resolve_all(app: Any, scene: Scene) -> None:
    """Create every resource the walk will use (path ids and sample bodies) up front, so
    that a snapshot taken now sees them and only a write by the walk itself can change it."""
    for route in id_routes(app):
        if route.key not in ENDPOINTS or not set(route.params) <= set(ID_RESOLVERS):
            continue  # reported by test_route_table_is_covered, and by the walk itself
        for p in route.params:
            scene.resolve(scene.a, p, route.rule)
        body_for(route, scene)


def _without_urls(body: Any) -> Any:
    """Presigned URLs are signed anew on every read: leave them out of comparisons."""
    if isinstance(body, dict):
        return {k: _without_urls(v) for k, v in body.items() if not k.endswith("_url")}
    if isinstance(body, list):
        return [_without_urls(v) for v in body]
    return body


def snapshot(scene: Scene) -> dict[str, Any]:
    """Tenant A as its org_admin sees it (the audit log excluded: denials are written there):
    the org, its sites and members, the site's assets and galleries, each gallery's items."""
    admin = scene.a["org_admin"].headers
    out: dict[str, Any] = {}
    galleries = f"{scene.a.site_path}/galleries"
    for path in (
        scene.a.org_path,
        f"{scene.a.org_path}/sites",
        f"{scene.a.org_path}/members",
        scene.a.site_path,
        f"{scene.a.site_path}/members",
        f"{scene.a.site_path}/assets",
        galleries,
    ):
        r = scene.client.get(path, headers=admin, query_string={"limit": 100})
        out[path] = (r.status_code, _without_urls(r.get_json()))
    for gallery in out[galleries][1]["items"]:
        path = f"{galleries}/{gallery['id']}/items"
        r = scene.client.get(path, headers=admin, query_string={"limit": 100})
        out[path] = (r.status_code, _without_urls(r.get_json()))
    return out


def problems(found: list[str]) -> None:
    assert not found, f"{len(found)} problem(s):\n  " + "\n  ".join(found)


