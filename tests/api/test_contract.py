"""Cross-cutting contract of the tenancy endpoints: problem+json errors, request bodies,
path ids, authentication, request ids, and keyset pagination on every list."""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from tests.support import Tenant
from tests.support.http import (
    assert_problem,
    check_each,
    etag,
    if_match,
    items,
    pages,
    seed_audit,
    seed_org_members,
    seed_orgs,
    seed_site_members,
    seed_sites,
)

ONE_MIB = 1024 * 1024


# -- request bodies ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BodyEndpoint:
    method: str
    path: Callable[[Tenant], str]
    body: dict[str, Any]
    etag_of: Callable[[Tenant], str] | None = None  # PATCH needs If-Match from this resource
    ok: int = 200

    def send(self, client: Any, tenant: Tenant, **kwargs: Any) -> Any:
        admin = tenant["org_admin"]
        headers = dict(admin.headers)
        if self.etag_of:
            headers = if_match(headers, etag(client, self.etag_of(tenant), admin))
        headers.update(kwargs.pop("headers", {}))
        return client.open(self.path(tenant), method=self.method, headers=headers, **kwargs)


BODY_ENDPOINTS = {
    "create-org": BodyEndpoint("POST", lambda t: "/v1/orgs", {"name": "New"}, ok=201),
    "update-org": BodyEndpoint(
        "PATCH", lambda t: t.org_path, {"name": "New"}, etag_of=lambda t: t.org_path
    ),
    "create-site": BodyEndpoint("POST", lambda t: t.org_path + "/sites", {"name": "New"}, ok=201),
    "update-site": BodyEndpoint(
        "PATCH", lambda t: t.site_path, {"name": "New"}, etag_of=lambda t: t.site_path
    ),
    "add-org-member": BodyEndpoint(
        "POST",
        lambda t: t.org_path + "/members",
        {"email": "placeholder", "role": "viewer"},
        ok=202,  # an invitation
    ),
    "change-org-member": BodyEndpoint(
        "PATCH", lambda t: f"{t.org_path}/members/{t['viewer'].id}", {"role": "member"}
    ),
    "add-site-member": BodyEndpoint(
        "POST",
        lambda t: t.site_path + "/members",
        {"email": "placeholder", "role": "viewer"},
        ok=202,  # an invitation
    ),
    "change-site-member": BodyEndpoint(
        "PATCH", lambda t: f"{t.site_path}/members/{t['site_viewer'].id}", {"role": "member"}
    ),
}


def _valid_body(endpoint: BodyEndpoint, tenant: Tenant) -> dict[str, Any]:
    body = dict(endpoint.body)
    if body.get("email") == "placeholder":
        body["email"] = tenant["outsider"].email
    return body


@pytest.mark.parametrize("name", BODY_ENDPOINTS)
def test_valid_body_is_accepted(client, tenant, name):
    """The table above is right: the same call with a good body succeeds."""
    endpoint = BODY_ENDPOINTS[name]
    response = endpoint.send(client, tenant, json=_valid_body(endpoint, tenant))
    assert response.status_code == endpoint.ok, response.get_data(as_text=True)
    assert response.mimetype == "application/json"


@pytest.mark.parametrize("name", BODY_ENDPOINTS)
def test_malformed_json_is_400(client, tenant, name):
    """A 400 like any invalid input, its `errors` filed under `_schema` (the body as a
    whole), as for JSON that is not an object."""
    def check(raw):
        response = BODY_ENDPOINTS[name].send(
            client, tenant, data=raw, content_type="application/json"
        )
        problem = assert_problem(response, 400, errors={"_schema"})
        assert problem["errors"]["_schema"] == ["The request body is not valid JSON."]

    check_each(['{"name": ', "{'name': 'x'}", '{"name": "x",}', "not json", "\xff\xfe"], check)


@pytest.mark.parametrize("name", BODY_ENDPOINTS)
def test_json_that_is_not_an_object_is_400(client, tenant, name):
    def check(raw):
        response = BODY_ENDPOINTS[name].send(
            client, tenant, data=raw, content_type="application/json"
        )
        assert_problem(response, 400, errors={"_schema"})

    check_each(["[]", '[{"name": "x"}]', '"name"', "42", "null", "true"], check)


@pytest.mark.parametrize("name", BODY_ENDPOINTS)
def test_body_that_is_not_json_is_415(client, tenant, name):
    endpoint = BODY_ENDPOINTS[name]
    data = json.dumps(_valid_body(endpoint, tenant))

    def check(content_type):
        response = endpoint.send(client, tenant, data=data, content_type=content_type)
        assert_problem(response, 415)

    check_each(
        [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/xml",
            "application/jsonp",
            None,
        ],
        check,
    )


@pytest.mark.parametrize("name", BODY_ENDPOINTS)
def test_json_suffix_media_types_are_json(client, tenant, name):
    endpoint = BODY_ENDPOINTS[name]
    response = endpoint.send(
        client,
        tenant,
        data=json.dumps(_valid_body(endpoint, tenant)),
        content_type="application/merge-patch+json; charset=utf-8",
    )
    assert response.status_code == endpoint.ok, response.get_data(as_text=True)


@pytest.mark.parametrize("name", BODY_ENDPOINTS)
def test_body_over_one_mib_is_413(client, tenant, name):
    endpoint = BODY_ENDPOINTS[name]
    body = {**_valid_body(endpoint, tenant), "padding": "x" * ONE_MIB}
    response = endpoint.send(client, tenant, data=json.dumps(body), content_type="application/json")
    assert_problem(response, 413)


@pytest.mark.parametrize("name", BODY_ENDPOINTS)
def test_unknown_fields_are_400(client, tenant, name):
    endpoint = BODY_ENDPOINTS[name]
    body = {**_valid_body(endpoint, tenant), "is_admin": True}
    assert_problem(endpoint.send(client, tenant, json=body), 400, errors={"is_admin"})


# -- paths, methods, authentication ------------------------------------------------------------

# Every tenancy route with ids in its path, with a method it answers to.
ROUTES = [
    ("GET", "/v1/orgs/{org}"),
    ("PATCH", "/v1/orgs/{org}"),
    ("DELETE", "/v1/orgs/{org}"),
    ("GET", "/v1/orgs/{org}/sites"),
    ("POST", "/v1/orgs/{org}/sites"),
    ("GET", "/v1/orgs/{org}/sites/{site}"),
    ("PATCH", "/v1/orgs/{org}/sites/{site}"),
    ("DELETE", "/v1/orgs/{org}/sites/{site}"),
    ("GET", "/v1/orgs/{org}/members"),
    ("POST", "/v1/orgs/{org}/members"),
    ("PATCH", "/v1/orgs/{org}/members/{user}"),
    ("DELETE", "/v1/orgs/{org}/members/{user}"),
    ("GET", "/v1/orgs/{org}/sites/{site}/members"),
    ("POST", "/v1/orgs/{org}/sites/{site}/members"),
    ("PATCH", "/v1/orgs/{org}/sites/{site}/members/{user}"),
    ("DELETE", "/v1/orgs/{org}/sites/{site}/members/{user}"),
    ("GET", "/v1/orgs/{org}/audit-events"),
]
SLOTS = ("org", "site", "user")
NOT_UUIDS = [
    "not-a-uuid",
    "123",
    "0",
    uuid.uuid4().hex,
    str(uuid.uuid4())[:-1],
    str(uuid.uuid4()) + "0",
    "%27%20OR%201%3D1--",
    "null",
]


def _fill(template: str, tenant: Tenant, **override: str) -> str:
    ids = {"org": tenant.org.id, "site": tenant.site.id, "user": tenant["viewer"].id}
    return template.format(**{**ids, **override})


def _body(method: str, template: str) -> dict[str, Any]:
    """A valid body, so that the answer is about the path, not the payload."""
    if method not in ("POST", "PATCH"):
        return {}
    if template.endswith("/members"):
        return {"json": {"email": "someone@example.com", "role": "viewer"}}
    if "/members/" in template:
        return {"json": {"role": "member"}}
    return {"json": {"name": "Valid name"}}


def _call(client: Any, method: str, template: str, path: str, headers: dict[str, str]) -> Any:
    return client.open(
        path, method=method, headers={**headers, "If-Match": "*"}, **_body(method, template)
    )


def _routes_with(slot: str) -> list[tuple[str, str]]:
    return [(method, template) for method, template in ROUTES if "{" + slot + "}" in template]


@pytest.mark.parametrize("slot", SLOTS)
@pytest.mark.parametrize("caller", ["org_admin", "outsider", None])
def test_path_ids_that_are_not_uuids_are_400(client, tenant, slot, caller):
    """Invalid input, named: a 400 whose `errors` names the parameter, whoever asks (the
    path's shape is public). The other ids in the path are real."""
    headers = tenant[caller].headers if caller else {}

    def check(case):
        (method, template), bad = case
        path = _fill(template, tenant, **{slot: bad})
        body = assert_problem(_call(client, method, template, path, headers), 400,
                              errors={f"{slot}_id"})
        assert body["errors"][f"{slot}_id"] == ["Not a valid UUID."]

    check_each([(route, bad) for route in _routes_with(slot) for bad in NOT_UUIDS], check)


def test_every_malformed_path_id_is_400_naming_it(app, client, tenant):
    """Driven by the route table: each `uuid` parameter of each route, given a segment that
    is not a UUID (the others well-formed), answers 400 naming that one parameter, with
    credentials or without."""
    headers = {**tenant["org_admin"].headers, "If-Match": "*"}
    cases = []
    for rule in app.url_map.iter_rules():
        params = re.findall(r"<uuid:(\w+)>", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            cases += [(rule.rule, method, params, bad) for bad in params]
    assert len(cases) >= 96

    def check(case):
        rule, method, params, bad = case
        ids = {name: str(uuid.uuid4()) for name in params}
        ids.update(org_id=str(tenant.org.id), site_id=str(tenant.site.id))
        ids[bad] = "not-a-uuid"
        path = re.sub(r"<uuid:(\w+)>", lambda m: ids[m.group(1)], rule)
        for sent in (headers, {}):
            problem = assert_problem(client.open(path, method=method, headers=sent), 400,
                                     errors={bad})
            assert problem["errors"][bad] == ["Not a valid UUID."]

    check_each(cases, check)


def test_static_segments_still_win_over_ids(client, tenant):
    """`.../items/order` is a route of its own (PUT): other methods there are 405 with its
    `Allow`, not a malformed `item_id`."""
    path = f"{tenant.site_path}/galleries/{uuid.uuid4()}/items/order"
    for method in ("GET", "PATCH", "DELETE", "POST"):
        response = client.open(path, method=method, headers=tenant["org_admin"].headers)
        assert_problem(response, 405)
        assert {m.strip() for m in response.headers["Allow"].split(",")} - {"OPTIONS"} == {"PUT"}


@pytest.mark.parametrize("slot", SLOTS)
def test_unknown_ids_are_404(client, tenant, slot):
    headers = tenant["org_admin"].headers

    def check(route):
        method, template = route
        path = _fill(template, tenant, **{slot: str(uuid.uuid4())})
        assert_problem(_call(client, method, template, path, headers), 404)

    check_each(_routes_with(slot), check)


@pytest.mark.parametrize(
    "authorization", [None, "Bearer", "Bearer not-a-token", "Basic dXNlcjpwYXNz", "bearer x.y.z"]
)
def test_every_route_needs_a_valid_token(client, tenant, authorization):
    headers = {"Authorization": authorization} if authorization else {}

    def check(route):
        method, template = route
        response = _call(client, method, template, _fill(template, tenant), headers)
        assert_problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")

    check_each([*ROUTES, ("GET", "/v1/orgs"), ("POST", "/v1/orgs")], check)


def test_a_token_from_a_foreign_key_is_401(client, tenant):
    header, payload, _signature = tenant["org_admin"].token.split(".")
    forged = f"{header}.{payload}.{base64.urlsafe_b64encode(b'x' * 64).decode().rstrip('=')}"
    response = client.get(tenant.org_path, headers={"Authorization": f"Bearer {forged}"})
    assert_problem(response, 401)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v1/orgs/{org}", {"GET", "PATCH", "DELETE"}),
        ("DELETE", "/v1/orgs", {"GET", "POST"}),
        ("GET", "/v1/orgs/{org}/members/{user}", {"PATCH", "DELETE"}),
        ("PUT", "/v1/orgs/{org}/sites/{site}", {"GET", "PATCH", "DELETE"}),
    ],
)
def test_unsupported_method_is_405_with_allow(client, tenant, method, path, allowed):
    response = client.open(_fill(path, tenant), method=method, headers=tenant["org_admin"].headers)
    assert_problem(response, 405)
    assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}


@pytest.mark.parametrize("path", ["/v1/nope", "/v1/orgs/{org}/nope", "/v2/orgs"])
def test_unknown_route_is_404(client, tenant, path):
    assert_problem(client.get(_fill(path, tenant), headers=tenant["org_admin"].headers), 404)


# -- request ids -------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["org_admin", "outsider"])
def test_well_formed_request_id_is_echoed(client, tenant, role):
    response = client.get(
        tenant.org_path, headers={**tenant[role].headers, "X-Request-ID": "abc.DEF_123-x"}
    )
    assert response.headers["X-Request-ID"] == "abc.DEF_123-x"
    if response.status_code >= 400:
        assert assert_problem(response, 404)["request_id"] == "abc.DEF_123-x"


@pytest.mark.parametrize("sent", ["has space", "x" * 129, "semi;colon", "ünï", "<script>", "a\tb"])
def test_malformed_request_id_is_replaced(client, tenant, sent):
    response = client.get(
        tenant.org_path, headers={**tenant["outsider"].headers, "X-Request-ID": sent}
    )
    body = assert_problem(response, 404)
    assert response.headers["X-Request-ID"] != sent
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert len(body["request_id"]) >= 16


# -- pagination --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListSpec:
    path: Callable[[Tenant], str]
    seed: Callable[[Any, Tenant], None]
    sorts: tuple[str, ...]
    default_sort: str
    id_key: str = "id"  # members show the user's id; their order ties break on the membership id
    reader: str = "org_admin"

    def total(self, client: Any, tenant: Tenant) -> list[dict]:
        return items(client, self.path(tenant), tenant[self.reader], limit=100)


LISTS = {
    "orgs": ListSpec(
        lambda t: "/v1/orgs",
        lambda app, t: seed_orgs(app, t["outsider"]),
        ("created_at", "-created_at", "name", "-name"),
        "created_at",
        reader="outsider",
    ),
    "sites": ListSpec(
        lambda t: t.org_path + "/sites",
        lambda app, t: seed_sites(app, t.org),
        ("created_at", "-created_at", "name", "-name"),
        "created_at",
    ),
    "org-members": ListSpec(
        lambda t: t.org_path + "/members",
        lambda app, t: seed_org_members(app, t.org),
        ("created_at", "-created_at"),
        "created_at",
        id_key="user_id",
    ),
    "site-members": ListSpec(
        lambda t: t.site_path + "/members",
        lambda app, t: seed_site_members(app, t.site),
        ("created_at", "-created_at"),
        "created_at",
        id_key="user_id",
    ),
    "audit-events": ListSpec(
        lambda t: t.org_path + "/audit-events",
        lambda app, t: seed_audit(app, t.org),
        ("created_at", "-created_at"),
        "-created_at",
    ),
}
LIST_SORTS = [
    pytest.param(name, sort, id=f"{name}-{sort}")
    for name, spec in LISTS.items()
    for sort in spec.sorts
]


def _sort_key(item: dict, field: str, id_key: str) -> tuple:
    value = datetime.fromisoformat(item[field]) if field == "created_at" else item[field]
    return (value, uuid.UUID(item[id_key]))


def _assert_ordered(found: list[dict], sort: str, id_key: str, exact: bool) -> None:
    field = sort.lstrip("-")
    descending = sort.startswith("-")
    if exact:  # ties on the sort field break on the id, in the same direction
        expected = sorted(found, key=lambda i: _sort_key(i, field, id_key), reverse=descending)
        assert [i[id_key] for i in found] == [i[id_key] for i in expected]
    else:
        values = [_sort_key(i, field, id_key)[0] for i in found]
        assert values == sorted(values, reverse=descending)


@pytest.mark.parametrize(("name", "sort"), LIST_SORTS)
def test_paging_sees_every_row_once_in_order(client, app, tenant, name, sort):
    spec = LISTS[name]
    spec.seed(app, tenant)
    person = tenant[spec.reader]
    everything = spec.total(client, tenant)
    assert len(everything) >= 8
    one_page = pages(client, spec.path(tenant), person, sort=sort, limit=100)
    assert len(one_page) == 1 and one_page[0]["next_cursor"] is None
    _assert_ordered(one_page[0]["items"], sort, spec.id_key, exact=spec.id_key == "id")

    for limit in (1, 3):
        walked = pages(client, spec.path(tenant), person, sort=sort, limit=limit)
        found = [item for page in walked for item in page["items"]]
        assert len(walked) == -(-len(everything) // limit)  # no empty page at the end
        assert [i[spec.id_key] for i in found] == [i[spec.id_key] for i in one_page[0]["items"]]
        assert len({i[spec.id_key] for i in found}) == len(found) == len(everything)


@pytest.mark.parametrize("name", LISTS)
def test_default_sort_and_limit(client, app, tenant, name):
    spec = LISTS[name]
    for _ in range(3):  # beyond the default page size of 20 (seeded before the first request)
        spec.seed(app, tenant)
    person = tenant[spec.reader]
    response = client.get(spec.path(tenant), headers=person.headers)
    assert response.status_code == 200
    body = response.get_json()
    assert len(body["items"]) == 20 and body["next_cursor"]
    explicit = client.get(
        spec.path(tenant),
        query_string={"sort": spec.default_sort, "limit": 20},
        headers=person.headers,
    ).get_json()
    assert body == explicit


@pytest.mark.parametrize("name", LISTS)
def test_limit_equal_to_the_total_gives_one_page(client, app, tenant, name):
    spec = LISTS[name]
    spec.seed(app, tenant)
    total = len(spec.total(client, tenant))
    walked = pages(client, spec.path(tenant), tenant[spec.reader], limit=total)
    assert len(walked) == 1 and len(walked[0]["items"]) == total
    walked = pages(client, spec.path(tenant), tenant[spec.reader], limit=total - 1)
    assert [len(p["items"]) for p in walked] == [total - 1, 1]


def test_paging_is_stable_under_concurrent_changes(client, app, world, tenant):
    """Rows added before the cursor or removed after it neither repeat nor hide others."""
    seed_sites(app, tenant.org)
    admin = tenant["org_admin"]
    path = tenant.org_path + "/sites"
    before = [s["id"] for s in items(client, path, admin, sort="name", limit=100)]
    first = client.get(path, query_string={"sort": "name", "limit": 3}, headers=admin.headers)
    seen = [s["id"] for s in first.get_json()["items"]]
    world.site(tenant.org, "aaa first")  # sorts before the cursor
    doomed = before[5]
    assert (
        client.delete(
            f"{path}/{doomed}",
            headers=if_match(admin.headers, etag(client, f"{path}/{doomed}", admin)),
        ).status_code
        == 204
    )
    cursor = first.get_json()["next_cursor"]
    rest = items(client, path, admin, sort="name", limit=3, **{"cursor": cursor})
    walked = seen + [s["id"] for s in rest]
    assert walked == [i for i in before if i != doomed]


BAD_LIST_ARGS = [
    ({"limit": 101}, {"limit"}),
    ({"limit": 10_000}, {"limit"}),
    ({"limit": 0}, {"limit"}),
    ({"limit": -1}, {"limit"}),
    ({"limit": "ten"}, {"limit"}),
    ({"limit": "1.5"}, {"limit"}),
    ({"sort": "bogus"}, {"sort"}),
    ({"sort": "id"}, {"sort"}),
    ({"sort": "--created_at"}, {"sort"}),
    ({"sort": "created_at;drop table sites"}, {"sort"}),
    ({"cursor": "garbage"}, {"cursor"}),
    ({"cursor": "a.b"}, {"cursor"}),
    ({"cursor": "!!!.???"}, {"cursor"}),
    ({"cursor": "x" * 5000}, {"cursor"}),
]


@pytest.mark.parametrize("name", LISTS)
def test_bad_list_arguments_are_400(client, tenant, name):
    spec = LISTS[name]

    def check(case):
        args, fields = case
        response = client.get(
            spec.path(tenant), query_string=args, headers=tenant[spec.reader].headers
        )
        assert_problem(response, 400, errors=fields)

    check_each(BAD_LIST_ARGS, check)


@pytest.mark.parametrize("name", ["org-members", "site-members", "audit-events"])
@pytest.mark.parametrize("sort", ["name", "-name"])
def test_lists_without_names_do_not_sort_by_name(client, tenant, name, sort):
    spec = LISTS[name]
    response = client.get(
        spec.path(tenant), query_string={"sort": sort}, headers=tenant[spec.reader].headers
    )
    assert_problem(response, 400, errors={"sort"})


def _first_cursor(client: Any, spec: ListSpec, tenant: Tenant, sort: str | None = None) -> str:
    query = {"limit": 1, **({"sort": sort} if sort else {})}
    response = client.get(
        spec.path(tenant), query_string=query, headers=tenant[spec.reader].headers
    )
    cursor = response.get_json()["next_cursor"]
    assert cursor
    return cursor


@pytest.mark.parametrize("name", LISTS)
def test_tampered_cursor_is_400(client, app, tenant, name):
    spec = LISTS[name]
    spec.seed(app, tenant)
    cursor = _first_cursor(client, spec, tenant)
    body, mac = cursor.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload[2] = str(uuid.UUID(int=0))  # move the position, keep the signature
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    other_mac = mac[:-2] + ("BB" if mac.endswith("AA") else "AA")  # always a different one
    for bad in (f"{forged}.{mac}", f"{body}.{other_mac}", body, f"{body}.", f".{mac}"):
        response = client.get(
            spec.path(tenant), query_string={"cursor": bad}, headers=tenant[spec.reader].headers
        )
        assert_problem(response, 400, errors={"cursor"})


@pytest.mark.parametrize("name", LISTS)
def test_cursor_of_another_sort_is_400(client, app, tenant, name):
    spec = LISTS[name]
    spec.seed(app, tenant)
    other_sort = next(s for s in spec.sorts if s != spec.default_sort)
    cursor = _first_cursor(client, spec, tenant, sort=other_sort)
    response = client.get(
        spec.path(tenant), query_string={"cursor": cursor}, headers=tenant[spec.reader].headers
    )
    assert_problem(response, 400, errors={"cursor"})


@pytest.mark.parametrize("name", [n for n in LISTS if n != "orgs"])
def test_cursor_of_another_orgs_list_is_400(client, app, world, tenant, name):
    """Cursors are bound to their list: one from tenant A's list means nothing on B's."""
    spec = LISTS[name]
    elsewhere = world.tenant("Elsewhere")
    world.grant_org(tenant["org_admin"], elsewhere.org, "org_admin")
    elsewhere.people["org_admin"] = tenant["org_admin"]  # the same reader on both lists
    spec.seed(app, tenant)
    spec.seed(app, elsewhere)
    cursor = _first_cursor(client, spec, tenant)
    response = client.get(
        spec.path(elsewhere), query_string={"cursor": cursor}, headers=tenant["org_admin"].headers
    )
    assert_problem(response, 400, errors={"cursor"})
    # and the cursor still works where it came from
    response = client.get(
        spec.path(tenant), query_string={"cursor": cursor}, headers=tenant["org_admin"].headers
    )
    assert response.status_code == 200


@pytest.mark.parametrize("other", [n for n in LISTS if n != "orgs"])
def test_cursor_of_the_org_list_is_400_elsewhere(client, app, tenant, other):
    spec = LISTS["orgs"]
    spec.seed(app, tenant)
    world_admin = tenant["org_admin"]
    seed_orgs(app, world_admin)
    response = client.get("/v1/orgs", query_string={"limit": 1}, headers=world_admin.headers)
    cursor = response.get_json()["next_cursor"]
    response = client.get(
        LISTS[other].path(tenant), query_string={"cursor": cursor}, headers=world_admin.headers
    )
    assert_problem(response, 400, errors={"cursor"})
