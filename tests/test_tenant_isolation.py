"""Tenant isolation, driven by the route table (`app.url_map`), not by a hand-kept list.

For every route with ids in its path and every method of it:
- another organization (tenant B), as its org_admin and with an org_admin API key, gets
  404 on tenant A's real resources (a key on an endpoint for people only may get 403),
  exactly the answer it gets for ids that exist nowhere, and the response names none of
  tenant A's ids, names or emails;
- the same with ids of two tenants mixed in one path (B's org, A's site, ...);
- tenant A's own lower roles get 403 or 404 where the endpoint is not theirs, and A's
  outsider gets 404;
- positive control: a role that may do it sends the very same request and succeeds, so
  the denials above come from authorization, not from a malformed sample request;
- nothing of tenant A changed;
- an invalid body answers the same for A's ids as for ids that exist nowhere.
Every route but the explicit public ones answers 401 without credentials.

Adding a route with a new path parameter, or a new method, makes
`test_route_table_is_covered` (and the walks) fail until the tables below say how to call it.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select, update

from app.db import utcnow
from app.models import Asset, Gallery, GalleryItem, Organization, Site
from app.services import credentials
from tests.support import Person, Tenant, World

pytestmark = pytest.mark.portable

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
    "/.well-known/jwks.json",
    "/v1/auth/register",
    "/v1/auth/login",
    "/v1/auth/refresh",  # authenticated by the refresh token in its body
}

# Path parameter -> a real resource of `tenant` (called with the scene, the tenant, the rule).
# A resolver may create the resource; its result is cached per tenant and rule.
Resolver = Callable[["Scene", Tenant, str], uuid.UUID]
ID_RESOLVERS: dict[str, Resolver] = {
    "org_id": lambda scene, t, rule: t.org.id,
    "site_id": lambda scene, t, rule: t.site.id,
    # A member of the scope the path names: of the site under /sites/, else of the org.
    "user_id": lambda scene, t, rule: (
        (t["site_member"] if "<uuid:site_id>" in rule else t["member"]).id
    ),
    "key_id": lambda scene, t, rule: (
        new_ingest_key(scene.world, t) if "/ingest-keys/" in rule else new_api_key(scene.world, t)
    )[0],
    # A live login session of the tenant's "member".
    "session_id": lambda scene, t, rule: session_of(t["member"]),
    # A ready asset of the tenant's site, uploaded by its "member".
    "asset_id": lambda scene, t, rule: new_asset(scene.world, t, t["member"]),
    # A gallery of the tenant's site created by its "member", holding one ready asset; a
    # deleted one for .../restore (only a deleted gallery can be restored).
    "gallery_id": lambda scene, t, rule: new_gallery(
        scene.world, t, t["member"], deleted=rule.endswith("/restore")
    )[0],
    # The item of the gallery resolved for the same rule.
    "item_id": lambda scene, t, rule: item_of(scene.world, scene.resolve(t, "gallery_id", rule)),
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
    f"DELETE {ORG}/api-keys/<uuid:key_id>": Case(denied=ALL_BUT_ORG_ADMIN),
    f"GET {SITE}/ingest-keys": Case(denied=ORG_BELOW_SITE_ADMIN + SITE_BELOW_ADMIN),
    f"POST {SITE}/ingest-keys": Case(
        body={"name": "Browser key", "allowed_origins": ["https://www.example.com"]},
        denied=ORG_BELOW_SITE_ADMIN + SITE_BELOW_ADMIN,
    ),
    f"DELETE {SITE}/ingest-keys/<uuid:key_id>": Case(
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
            created_by=tenant["org_admin"].id,
        )
        return key.id, secret


def new_ingest_key(world: World, tenant: Tenant) -> tuple[uuid.UUID, str]:
    with world.maker() as session, session.begin():
        site = session.get(Site, tenant.site.id)
        key, secret = credentials.create_ingest_key(
            session,
            site,
            name="test ingest key",
            allowed_origins=[],
            created_by=tenant["org_admin"].id,
        )
        return key.id, secret


def new_asset(world: World, tenant: Tenant, uploader: Person) -> uuid.UUID:
    """A ready asset row (its object need not exist: nothing here reads it from storage)."""
    asset_id = uuid.uuid4()
    site = tenant.site
    with world.maker() as session, session.begin():
        session.add(
            Asset(
                id=asset_id,
                org_id=site.org_id,
                site_id=site.id,
                key=f"orgs/{site.org_id}/sites/{site.id}/assets/{asset_id}",
                filename=f"{tenant.org.name} secret plan.pdf",
                content_type="application/pdf",
                size_bytes=1234,
                status="ready",
                tags=[],
                created_by=uploader.id,
                completed_at=utcnow(),
            )
        )
    return asset_id


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


# -- the route table is covered ----------------------------------------------------------------


def test_route_table_is_covered(app):
    found = []
    live = set()
    for route in id_routes(app):
        live.add(route.key)
        unknown = [p for p in route.params if p not in ID_RESOLVERS]
        if unknown:
            found.append(f"{route.key}: no resolver in ID_RESOLVERS for {unknown}")
        if route.key not in ENDPOINTS:
            found.append(f"{route.key}: no entry in ENDPOINTS")
        elif route.method in BODY_METHODS and route.case.body is None:
            found.append(f"{route.key}: no sample body in ENDPOINTS")
    found += [f"{key}: in ENDPOINTS but not a route" for key in sorted(set(ENDPOINTS) - live)]
    rules = {r.rule for r in all_routes(app)}
    found += [f"{rule}: in PUBLIC_ROUTES but not a route" for rule in sorted(PUBLIC_ROUTES - rules)]
    problems(found)
    assert len(live) >= 17  # the walk really sees the API


def test_positive_control_the_sample_requests_succeed_for_the_allowed_role(app, client, world):
    """Each sample request, sent by a role that may do it, succeeds: so the 403/404s in the
    other tests come from authorization, not from a bad id, body or precondition."""
    found = []
    for route in id_routes(app):
        scene = make_scene(world, client, with_b=False)  # fresh: DELETEs really delete
        path = route.path({p: scene.resolve(scene.a, p, route.rule) for p in route.params})
        person = scene.a[route.case.allowed]
        r = send(scene, route, path, person, etag_for(scene, route, path))
        if not 200 <= r.status_code < 300:
            found.append(f"{route.key} as {route.case.allowed}: {r.status_code} {r.get_json()}")
    problems(found)


# -- another tenant ----------------------------------------------------------------------------


KEY_INTRUDERS = ("B's org_admin API key",)


def outcome(response: Any) -> tuple[int, Any]:
    """Status and body of a response, without its request id."""
    body = response.get_json(silent=True)
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "request_id"}
    return response.status_code, body


@pytest.fixture(params=["policy and row-level security", "row-level security alone"])
def defenses(request, app, is_postgres):
    """Run once as deployed, and once with the app's own authorization switched off
    (no Polar decision, no SQL filter from it): PostgreSQL's row-level security must then
    hold on its own."""
    engine = app.extensions["authz"]
    if request.param == "row-level security alone":
        if not is_postgres:
            pytest.skip("row-level security is PostgreSQL's")
        engine.enforce = False
    yield request.param
    engine.enforce = True


def test_another_tenant_gets_404_and_learns_nothing(app, client, world, defenses):
    scene = make_scene(world, client)
    assert scene.b is not None
    _, b_key = new_api_key(world, scene.b, role="org_admin")
    intruders = {
        "B's org_admin": scene.b["org_admin"].headers,
        KEY_INTRUDERS[0]: {"Authorization": f"Bearer {b_key}"},
    }
    resolve_all(app, scene)
    before = snapshot(scene)
    found = []
    for route in id_routes(app):
        path = route.path({p: scene.resolve(scene.a, p, route.rule) for p in route.params})
        ghost = route.path({p: uuid.uuid4() for p in route.params})  # exists nowhere
        for who, headers in intruders.items():
            r = send(scene, route, path, headers, etag_for(scene, route, path))
            if leaked := leaks(r, secrets_of(scene, scene.a)):
                found.append(f"{route.key} as {who}: response contains {leaked}")
            # Existence stays hidden: A's real ids answer exactly like ids that exist nowhere.
            answer, nowhere = outcome(r), outcome(send(scene, route, ghost, headers))
            if answer != nowhere:
                found.append(f"{route.key} as {who}: {answer} but {nowhere} for unknown ids")
            # People get 404. A key on an endpoint for people only may be refused as a key
            # (403), provided that answer does not depend on the ids (checked just above).
            allowed = {404, 403} if who in KEY_INTRUDERS else {404}
            if r.status_code not in allowed:
                text = r.get_data(as_text=True)[:200]
                found.append(f"{route.key} as {who}: {r.status_code} (expected 404) {text}")
    problems(found)
    assert snapshot(scene) == before, "tenant A changed"


def test_ids_of_two_tenants_mixed_in_one_path_get_404(app, client, world):
    """The path's organization is the caller's own (where it is org_admin), one other id
    belongs to the other tenant: every lookup must be scoped by the ids before it."""
    scene = make_scene(world, client)
    assert scene.b is not None
    found = []
    checked = 0
    for route in id_routes(app):
        for owner, foreign in ((scene.b, scene.a), (scene.a, scene.b)):
            for swapped in route.params:
                if swapped == "org_id":
                    continue
                values = {p: scene.resolve(owner, p, route.rule) for p in route.params}
                values[swapped] = scene.resolve(foreign, swapped, route.rule)
                r = send(scene, route, route.path(values), owner["org_admin"])
                checked += 1
                if r.status_code != 404:
                    found.append(
                        f"{route.key} with {swapped} of {foreign.org.name}: {r.status_code}"
                    )
                if leaked := leaks(r, secrets_of(scene, foreign)):
                    found.append(f"{route.key} with foreign {swapped}: contains {leaked}")
    problems(found)
    assert checked > 0


def test_validation_errors_are_no_existence_oracle(app, client, world):
    """flask-smorest validates a body before the view authorizes, so another tenant sending
    an invalid body gets a 400 rather than a 404. That must at least answer exactly the same
    for tenant A's real resources as for ids that exist nowhere."""
    scene = make_scene(world, client)
    assert scene.b is not None
    intruder = scene.b["org_admin"]
    found = []
    for route in id_routes(app):
        if route.method not in BODY_METHODS:
            continue
        answers = []
        for values in (
            {p: scene.resolve(scene.a, p, route.rule) for p in route.params},
            {p: uuid.uuid4() for p in route.params},
        ):
            r = scene.client.open(
                route.path(values),
                method=route.method,
                json={"__not_a_field__": 1},
                headers={**intruder.headers, "If-Match": "*"},
            )
            body = r.get_json() or {}
            body.pop("request_id", None)
            answers.append((r.status_code, body))
        if answers[0] != answers[1]:
            found.append(f"{route.key}: real {answers[0]} vs nonexistent {answers[1]}")
        if answers[0][0] not in (404, 400):
            found.append(f"{route.key}: {answers[0][0]}")
    problems(found)


# -- lower roles of the same tenant ------------------------------------------------------------


def test_lower_roles_are_denied(app, client, world):
    scene = make_scene(world, client, with_b=False)
    resolve_all(app, scene)
    before = snapshot(scene)
    found = []
    for route in id_routes(app):
        path = route.path({p: scene.resolve(scene.a, p, route.rule) for p in route.params})
        etag = etag_for(scene, route, path)
        for role in (*route.case.denied, "outsider"):
            r = send(scene, route, path, scene.a[role], etag)
            allowed = {404} if role == "outsider" else {403, 404}
            if r.status_code not in allowed:
                found.append(f"{route.key} as {role}: {r.status_code} (expected {sorted(allowed)})")
            if r.status_code == 404 and (leaked := leaks(r, secrets_of(scene, scene.a))):
                found.append(f"{route.key} as {role}: 404 contains {leaked}")
    problems(found)
    assert snapshot(scene) == before, "a denied request changed tenant A"


# -- credentials -------------------------------------------------------------------------------


def test_every_route_but_the_public_ones_needs_credentials(app, client, world):
    scene = make_scene(world, client, with_b=False)
    found = []
    for route in all_routes(app):
        if route.rule in PUBLIC_ROUTES:
            continue
        values = {
            p: scene.resolve(scene.a, p, route.rule) for p in route.params if p in ID_RESOLVERS
        }
        if len(values) != len(route.params):
            continue  # reported by test_route_table_is_covered
        case = ENDPOINTS.get(route.key)
        kwargs: dict[str, Any] = {}
        if route.method in BODY_METHODS:
            kwargs["json"] = body_for(route, scene) if case and case.body else {}
        r = client.open(route.path(values), method=route.method, **kwargs)
        if r.status_code != 401 or r.mimetype != "application/problem+json":
            found.append(f"{route.key}: {r.status_code} {r.mimetype} without credentials")
        if leaks(r, secrets_of(scene, scene.a)):
            found.append(f"{route.key}: 401 leaks tenant A")
    problems(found)


def test_public_routes_answer_without_credentials(app, client):
    found = []
    for route in all_routes(app):
        if route.rule not in PUBLIC_ROUTES or route.params:
            continue
        kwargs = {"json": {}} if route.method in BODY_METHODS else {}
        r = client.open(route.rule, method=route.method, **kwargs)
        if r.status_code == 401 or r.status_code >= 500:
            found.append(f"{route.key}: {r.status_code}")
    problems(found)
