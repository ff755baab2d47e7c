"""Organizations: POST/GET /v1/orgs, GET/PATCH/DELETE /v1/orgs/{org_id}."""

from __future__ import annotations

import uuid

import pytest

from tests.support.http import (
    BAD_NAMES,
    ROLES,
    RoleCase,
    assert_problem,
    check_each,
    check_role_case,
    etag,
    if_match,
    items,
    org_roles_of,
    role_table,
)

pytestmark = pytest.mark.portable


def _as_admin(client, tenant, path=None):
    return client.get(path or tenant.org_path, headers=tenant["org_admin"].headers)


CASES = {
    "read": RoleCase(
        send=lambda c, t, p, h: c.get(t.org_path, headers=h),
        authz=("read", "Organization"),
    ),
    "update": RoleCase(
        send=lambda c, t, p, h: c.patch(
            t.org_path,
            json={"name": "Renamed"},
            headers=if_match(h, etag(c, t.org_path, t["org_admin"])),
        ),
        authz=("update", "Organization"),
        state=lambda c, t: _as_admin(c, t).get_json()["name"],
    ),
    "delete": RoleCase(
        send=lambda c, t, p, h: c.delete(
            t.org_path, headers=if_match(h, etag(c, t.org_path, t["org_admin"]))
        ),
        authz=("delete", "Organization"),
        state=lambda c, t: _as_admin(c, t).status_code,
    ),
}

# 404: may not read the organization (existence hidden); 403: reads it, may not do this.
# fmt: off
#            org_admin site_admin member viewer | site_site_admin site_member site_viewer | outsider
ROLE_TABLE = {
    "read":   (200,      200,       200,   200,     404,            404,        404,          404),
    "update": (200,      403,       403,   403,     404,            404,        404,          404),
    "delete": (204,      403,       403,   403,     404,            404,        404,          404),
}
# fmt: on


@pytest.mark.parametrize(("action", "role", "expected"), role_table(ROLE_TABLE))
def test_role_table(client, tenant, action, role, expected):
    check_role_case(client, tenant, CASES[action], role, expected)


# GET /v1/orgs lists exactly the organizations the caller may read.
LISTED_FOR = {role: role in ("org_admin", "site_admin", "member", "viewer") for role in ROLES}


@pytest.mark.parametrize("role", ROLES)
def test_list_shows_only_readable_orgs(client, world, tenant, role):
    world.tenant("Someone else's")
    listed = [o["id"] for o in items(client, "/v1/orgs", tenant[role])]
    assert listed == ([str(tenant.org.id)] if LISTED_FOR[role] else [])


def test_list_across_orgs_follows_each_grant(client, world):
    me = world.user()
    viewer_of, admin_of, site_only, unrelated = (world.org(n) for n in "abcd")
    world.grant_org(me, viewer_of, "viewer")
    world.grant_org(me, admin_of, "org_admin")
    world.grant_site(me, world.site(site_only), "site_admin")
    world.site(unrelated)
    listed = {o["id"] for o in items(client, "/v1/orgs", me)}
    assert listed == {str(viewer_of.id), str(admin_of.id)}


# -- create ------------------------------------------------------------------------------------


def test_creator_becomes_org_admin(client, app, world):
    alice = world.user()
    response = client.post("/v1/orgs", json={"name": "  Acme Corp  "}, headers=alice.headers)
    assert response.status_code == 201, response.get_json()
    org = response.get_json()
    assert set(org) == {"id", "name", "created_at", "updated_at"}
    assert org["name"] == "Acme Corp"  # trimmed
    assert org_roles_of(app, alice.id) == {uuid.UUID(org["id"]): "org_admin"}

    members = items(client, f"/v1/orgs/{org['id']}/members", alice)
    assert [(m["user_id"], m["email"], m["role"]) for m in members] == [
        (str(alice.id), alice.email, "org_admin")
    ]
    # and can act as one
    path = f"/v1/orgs/{org['id']}"
    response = client.patch(
        path, json={"name": "Acme"}, headers=if_match(alice.headers, etag(client, path, alice))
    )
    assert response.status_code == 200
    assert client.get(path, headers=alice.headers).get_json()["name"] == "Acme"
    assert [o["id"] for o in items(client, "/v1/orgs", alice)] == [org["id"]]


def test_create_requires_authentication(client):
    assert_problem(client.post("/v1/orgs", json={"name": "Acme"}), 401)
    assert_problem(
        client.post("/v1/orgs", json={"name": "Acme"}, headers={"Authorization": "Bearer nope"}),
        401,
    )


def test_anyone_signed_in_may_create_an_org(client, tenant):
    response = client.post("/v1/orgs", json={"name": "Mine"}, headers=tenant["outsider"].headers)
    assert response.status_code == 201


def test_create_requires_a_name(client, tenant):
    response = client.post("/v1/orgs", json={}, headers=tenant["outsider"].headers)
    assert_problem(response, 400, errors={"name"})


def test_create_rejects_bad_names(client, app, world):
    alice = world.user()

    def check(name):
        response = client.post("/v1/orgs", json={"name": name}, headers=alice.headers)
        assert_problem(response, 400, errors={"name"})

    check_each(BAD_NAMES, check)
    assert org_roles_of(app, alice.id) == {}


def test_update_rejects_bad_names(client, tenant):
    admin = tenant["org_admin"]
    tag = etag(client, tenant.org_path, admin)

    def check(name):
        response = client.patch(
            tenant.org_path, json={"name": name}, headers=if_match(admin.headers, tag)
        )
        assert_problem(response, 400, errors={"name"})

    check_each(BAD_NAMES, check)
    assert client.get(tenant.org_path, headers=admin.headers).get_json()["name"] == "Acme"


UNICODE_NAMES = [
    "Café Zoë",
    "東京スタジオ",
    "Ünïcödé 😀 ok",
    "עברית",
    "x" * 200,
    "Ω" * 200,
    "O'Brien & Co. (EU)",
]


def test_unicode_names_round_trip(client, world):
    alice = world.user()

    def check(name):
        created = client.post("/v1/orgs", json={"name": name}, headers=alice.headers)
        assert created.status_code == 201, created.get_json()
        assert created.get_json()["name"] == name
        fetched = client.get(f"/v1/orgs/{created.get_json()['id']}", headers=alice.headers)
        assert fetched.get_json()["name"] == name

    check_each(UNICODE_NAMES, check)
    listed = [o["name"] for o in items(client, "/v1/orgs", alice)]
    assert sorted(listed) == sorted(UNICODE_NAMES)


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"name": "A", "id": str(uuid.uuid4())}, {"id"}),
        ({"name": "A", "deleted_at": None}, {"deleted_at"}),
        ({"nam": "A"}, {"nam", "name"}),
    ],
)
def test_create_rejects_unknown_fields(client, world, body, fields):
    response = client.post("/v1/orgs", json=body, headers=world.user().headers)
    assert_problem(response, 400, errors=fields)


@pytest.mark.parametrize(
    "body", [{"created_at": "2020-01-01T00:00:00Z"}, {"id": str(uuid.uuid4())}]
)
def test_update_rejects_unknown_fields(client, tenant, body):
    admin = tenant["org_admin"]
    before = client.get(tenant.org_path, headers=admin.headers).get_json()
    response = client.patch(
        tenant.org_path,
        json=body,
        headers=if_match(admin.headers, etag(client, tenant.org_path, admin)),
    )
    assert_problem(response, 400, errors=set(body))
    assert client.get(tenant.org_path, headers=admin.headers).get_json() == before


# -- ETags -------------------------------------------------------------------------------------


def test_get_returns_an_etag_that_changes_with_the_org(client, tenant):
    admin = tenant["org_admin"]
    first = etag(client, tenant.org_path, admin)
    assert etag(client, tenant.org_path, tenant["viewer"]) == first  # same representation
    response = client.patch(
        tenant.org_path, json={"name": "New"}, headers=if_match(admin.headers, first)
    )
    assert response.status_code == 200
    assert response.headers["ETag"] != first
    assert response.headers["ETag"] == etag(client, tenant.org_path, admin)


def test_if_none_match_answers_not_modified(client, tenant):
    viewer = tenant["viewer"]
    tag = etag(client, tenant.org_path, viewer)
    response = client.get(tenant.org_path, headers={**viewer.headers, "If-None-Match": tag})
    assert response.status_code == 304
    assert response.get_data() == b""


def test_not_modified_repeats_the_etag(client, tenant):
    """RFC 9110 15.4.5: a 304 carries the ETag a 200 would have (flask-smorest's does not;
    app.api.Blueprint adds it)."""
    viewer = tenant["viewer"]
    tag = etag(client, tenant.org_path, viewer)
    response = client.get(tenant.org_path, headers={**viewer.headers, "If-None-Match": tag})
    assert response.status_code == 304
    assert response.headers.get("ETag") == tag
    other = client.get(tenant.org_path, headers={**viewer.headers, "If-None-Match": '"other"'})
    assert other.status_code == 200
    assert other.headers.get("ETag") == tag


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_change_without_if_match_is_428(client, tenant, method):
    admin = tenant["org_admin"]
    response = getattr(client, method)(tenant.org_path, json={"name": "New"}, headers=admin.headers)
    assert_problem(response, 428)
    assert _as_admin(client, tenant).get_json()["name"] == "Acme"


@pytest.mark.parametrize("method", ["patch", "delete"])
@pytest.mark.parametrize("tag", ['"0000"', 'W/"{etag}"', "garbage"])
def test_change_with_wrong_if_match_is_412(client, tenant, method, tag):
    admin = tenant["org_admin"]
    tag = tag.format(etag=etag(client, tenant.org_path, admin).strip('"'))
    kwargs = {"json": {"name": "New"}} if method == "patch" else {}
    response = getattr(client, method)(
        tenant.org_path, headers=if_match(admin.headers, tag), **kwargs
    )
    assert_problem(response, 412)
    assert _as_admin(client, tenant).get_json()["name"] == "Acme"


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_stale_if_match_is_412(client, tenant, method):
    admin = tenant["org_admin"]
    stale = etag(client, tenant.org_path, admin)
    assert (
        client.patch(
            tenant.org_path, json={"name": "Other"}, headers=if_match(admin.headers, stale)
        ).status_code
        == 200
    )
    kwargs = {"json": {"name": "Lost update"}} if method == "patch" else {}
    response = getattr(client, method)(
        tenant.org_path, headers=if_match(admin.headers, stale), **kwargs
    )
    assert_problem(response, 412)
    assert _as_admin(client, tenant).get_json()["name"] == "Other"


@pytest.mark.parametrize(
    ("role", "expected"), [("viewer", 403), ("outsider", 404), ("site_member", 404)]
)
@pytest.mark.parametrize("method", ["patch", "delete"])
def test_wrong_if_match_does_not_reveal_the_org(client, tenant, role, expected, method):
    """Authorization comes before the ETag check: a 412 would confirm the org exists."""
    person = tenant[role]
    kwargs = {"json": {"name": "New"}} if method == "patch" else {}
    response = getattr(client, method)(
        tenant.org_path, headers=if_match(person.headers, '"x"'), **kwargs
    )
    assert_problem(response, expected)


def test_etag_of_an_unknown_org_is_404(client, tenant):
    admin = tenant["org_admin"]
    path = f"/v1/orgs/{uuid.uuid4()}"
    assert_problem(
        client.patch(path, json={"name": "x"}, headers=if_match(admin.headers, '"x"')), 404
    )
    assert_problem(client.delete(path, headers=if_match(admin.headers, '"x"')), 404)


# -- soft delete -------------------------------------------------------------------------------


def test_deleted_org_is_gone_for_everyone(client, world, tenant):
    admin = tenant["org_admin"]
    kept = world.org("Kept")
    world.grant_org(admin, kept, "viewer")
    response = client.delete(
        tenant.org_path, headers=if_match(admin.headers, etag(client, tenant.org_path, admin))
    )
    assert response.status_code == 204 and response.get_data() == b""

    for role in ROLES:
        person = tenant[role]
        assert_problem(client.get(tenant.org_path, headers=person.headers), 404)
        assert [o["id"] for o in items(client, "/v1/orgs", person)] == (
            [str(kept.id)] if role == "org_admin" else []
        )
    for path in (
        "/sites",
        "/members",
        "/audit-events",
        f"/sites/{tenant.site.id}",
        f"/sites/{tenant.site.id}/members",
    ):
        assert_problem(client.get(tenant.org_path + path, headers=admin.headers), 404)
    assert_problem(
        client.delete(tenant.org_path, headers=if_match(admin.headers, '"whatever"')), 404
    )
    assert_problem(
        client.patch(tenant.org_path, json={"name": "Back"}, headers=if_match(admin.headers, "*")),
        404,
    )
    assert_problem(
        client.post(tenant.org_path + "/sites", json={"name": "New"}, headers=admin.headers), 404
    )
