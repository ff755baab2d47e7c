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

The tables (how to call each route) are in tests/support/routes.py: adding a route with a
new path parameter, or a new method, makes `test_route_table_is_covered` (and the walks)
fail until they say how to call it.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.support.routes import (
    BODY_METHODS,
    ENDPOINTS,
    ID_RESOLVERS,
    PUBLIC_ROUTES,
    all_routes,
    body_for,
    etag_for,
    id_routes,
    leaks,
    make_scene,
    new_api_key,
    problems,
    resolve_all,
    secrets_of,
    send,
    snapshot,
)

pytestmark = pytest.mark.portable


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
