"""Sites: POST/GET /v1/orgs/{org_id}/sites, GET/PATCH/DELETE .../sites/{site_id}."""

from __future__ import annotations

import uuid

import pytest

from tests.support import Tenant
from tests.support.http import (
    BAD_NAMES,
    ROLES,
    SITE_ONLY_ROLES,
    RoleCase,
    assert_problem,
    check_each,
    check_role_case,
    etag,
    if_match,
    items,
    role_table,
)


def _admin_get(client, tenant):
    return client.get(tenant.site_path, headers=tenant["org_admin"].headers)


def _admin_site_ids(client, tenant):
    return sorted(s["id"] for s in items(client, tenant.org_path + "/sites", tenant["org_admin"]))


CASES = {
    "list": RoleCase(
        send=lambda c, t, p, h: c.get(t.org_path + "/sites", headers=h),
        authz=("list_sites", "Organization"),
    ),
    "create": RoleCase(
        send=lambda c, t, p, h: c.post(
            t.org_path + "/sites", json={"name": "Shop", "domain": "shop.example.com"}, headers=h
        ),
        authz=("create_site", "Organization"),
        state=_admin_site_ids,
    ),
    "read": RoleCase(
        send=lambda c, t, p, h: c.get(t.site_path, headers=h),
        authz=("read", "Site"),
    ),
    "update": RoleCase(
        send=lambda c, t, p, h: c.patch(
            t.site_path,
            json={"name": "Renamed"},
            headers=if_match(h, etag(c, t.site_path, t["org_admin"])),
        ),
        authz=("update", "Site"),
        state=lambda c, t: _admin_get(c, t).get_json()["name"],
    ),
    "delete": RoleCase(
        send=lambda c, t, p, h: c.delete(
            t.site_path, headers=if_match(h, etag(c, t.site_path, t["org_admin"]))
        ),
        authz=("delete", "Site"),
        state=lambda c, t: _admin_get(c, t).status_code,
    ),
}

# Site roles flow from org roles (org site_admin is site_admin of every site); a role held on
# the site only lets its holder list the org's sites, never read the org itself.
# fmt: off
#            org_admin site_admin member viewer | site_site_admin site_member site_viewer | outsider
ROLE_TABLE = {
    "list":   (200,      200,       200,   200,     200,            200,        200,          404),
    "create": (201,      403,       403,   403,     404,            404,        404,          404),
    "read":   (200,      200,       200,   200,     200,            200,        200,          404),
    "update": (200,      200,       403,   403,     200,            403,        403,          404),
    "delete": (204,      403,       403,   403,     403,            403,        403,          404),
}
# fmt: on

# The same calls on another site of the organization: site roles do not reach it.
# fmt: off
#            org_admin site_admin member viewer | site_site_admin site_member site_viewer | outsider
OTHER_SITE_TABLE = {
    "read":   (200,      200,       200,   200,     404,            404,        404,          404),
    "update": (200,      200,       403,   403,     404,            404,        404,          404),
    "delete": (204,      403,       403,   403,     404,            404,        404,          404),
}
# fmt: on


@pytest.mark.parametrize(("action", "role", "expected"), role_table(ROLE_TABLE))
def test_role_table(client, tenant, action, role, expected):
    check_role_case(client, tenant, CASES[action], role, expected)


@pytest.mark.parametrize(("action", "role", "expected"), role_table(OTHER_SITE_TABLE))
def test_role_table_on_another_site(client, world, tenant, action, role, expected):
    other = Tenant(tenant.org, world.site(tenant.org, "Other site"), tenant.people)
    check_role_case(client, other, CASES[action], role, expected)


# Which sites GET .../sites shows to each role (None: 404).
ORG_WIDE = {"Main site", "Other site"}
LISTED_FOR = {
    "org_admin": ORG_WIDE,
    "site_admin": ORG_WIDE,
    "member": ORG_WIDE,
    "viewer": ORG_WIDE,
    "site_site_admin": {"Main site"},
    "site_member": {"Main site"},
    "site_viewer": {"Main site"},
    "outsider": None,
}


@pytest.mark.parametrize("role", ROLES)
def test_list_shows_only_readable_sites(client, world, tenant, role):
    world.site(tenant.org, "Other site")
    world.site(world.tenant("Elsewhere").org, "Foreign site")
    response = client.get(tenant.org_path + "/sites", headers=tenant[role].headers)
    if LISTED_FOR[role] is None:
        assert_problem(response, 404)
        return
    names = {s["name"] for s in items(client, tenant.org_path + "/sites", tenant[role])}
    assert names == LISTED_FOR[role]


@pytest.mark.parametrize("role", SITE_ONLY_ROLES)
def test_site_role_lists_sites_but_cannot_read_the_org(client, tenant, role):
    person = tenant[role]
    listed = items(client, tenant.org_path + "/sites", person)
    assert [s["id"] for s in listed] == [str(tenant.site.id)]
    assert_problem(client.get(tenant.org_path, headers=person.headers), 404)
    assert_problem(client.get(tenant.org_path + "/members", headers=person.headers), 404)


def test_roles_on_two_sites_show_both(client, world, tenant):
    second, third = world.site(tenant.org, "Second"), world.site(tenant.org, "Third")
    person = tenant["site_viewer"]
    world.grant_site(person, second, "member")
    listed = {s["id"] for s in items(client, tenant.org_path + "/sites", person)}
    assert listed == {str(tenant.site.id), str(second.id)}
    assert_problem(client.get(f"{tenant.org_path}/sites/{third.id}", headers=person.headers), 404)


def test_site_of_another_org_is_404_under_this_org(client, world, tenant):
    """The site id alone is not enough: it must belong to the org in the path."""
    elsewhere = world.tenant("Elsewhere")
    admin = tenant["org_admin"]
    world.grant_org(admin, elsewhere.org, "org_admin")  # admin of both
    crossed = f"{tenant.org_path}/sites/{elsewhere.site.id}"
    assert_problem(client.get(crossed, headers=admin.headers), 404)
    assert_problem(
        client.patch(crossed, json={"name": "x"}, headers=if_match(admin.headers, "*")), 404
    )
    assert_problem(client.delete(crossed, headers=if_match(admin.headers, "*")), 404)
    assert_problem(client.get(crossed + "/members", headers=admin.headers), 404)
    assert client.get(elsewhere.site_path, headers=admin.headers).status_code == 200


def test_unknown_site_is_404(client, tenant):
    admin = tenant["org_admin"]
    assert_problem(
        client.get(f"{tenant.org_path}/sites/{uuid.uuid4()}", headers=admin.headers), 404
    )


# -- create and update -------------------------------------------------------------------------


def test_create_returns_the_site_and_lists_it(client, tenant):
    admin = tenant["org_admin"]
    response = client.post(
        tenant.org_path + "/sites",
        json={"name": " Shop ", "domain": "shop.example.com"},
        headers=admin.headers,
    )
    assert response.status_code == 201, response.get_json()
    site = response.get_json()
    assert set(site) == {"id", "org_id", "name", "domain", "created_at", "updated_at"}
    assert (site["org_id"], site["name"], site["domain"]) == (
        str(tenant.org.id),
        "Shop",
        "shop.example.com",
    )
    fetched = client.get(f"{tenant.org_path}/sites/{site['id']}", headers=tenant["viewer"].headers)
    assert fetched.get_json() == site
    assert site["id"] in _admin_site_ids(client, tenant)


def test_domain_is_optional(client, tenant):
    response = client.post(
        tenant.org_path + "/sites", json={"name": "Bare"}, headers=tenant["org_admin"].headers
    )
    assert response.status_code == 201 and response.get_json()["domain"] is None


def test_create_rejects_bad_names(client, tenant):
    def check(name):
        response = client.post(
            tenant.org_path + "/sites", json={"name": name}, headers=tenant["org_admin"].headers
        )
        assert_problem(response, 400, errors={"name"})

    check_each(BAD_NAMES, check)
    assert _admin_site_ids(client, tenant) == [str(tenant.site.id)]


def test_update_rejects_bad_names(client, tenant):
    admin = tenant["org_admin"]
    tag = etag(client, tenant.site_path, admin)

    def check(name):
        response = client.patch(
            tenant.site_path, json={"name": name}, headers=if_match(admin.headers, tag)
        )
        assert_problem(response, 400, errors={"name"})

    check_each(BAD_NAMES, check)
    assert _admin_get(client, tenant).get_json()["name"] == "Main site"


BAD_DOMAINS = [
    "not a host",
    "-lead.example.com",
    "a..b.example",
    "http://example.com",
    "example.com/path",
    "example.com\n",
    "exa\x00mple.com",
    "a" * 64 + ".com",
    ".".join(["abcdefgh"] * 30),  # over 253
    "x" * 10_000,
    "",
    42,
    ["example.com"],
]


def test_create_rejects_bad_domains(client, tenant):
    def check(domain):
        response = client.post(
            tenant.org_path + "/sites",
            json={"name": "Shop", "domain": domain},
            headers=tenant["org_admin"].headers,
        )
        assert_problem(response, 400, errors={"domain"})

    check_each(BAD_DOMAINS, check)
    assert _admin_site_ids(client, tenant) == [str(tenant.site.id)]


def test_update_rejects_bad_domains(client, tenant):
    admin = tenant["org_admin"]
    tag = etag(client, tenant.site_path, admin)

    def check(domain):
        response = client.patch(
            tenant.site_path, json={"domain": domain}, headers=if_match(admin.headers, tag)
        )
        assert_problem(response, 400, errors={"domain"})

    check_each(BAD_DOMAINS, check)
    assert _admin_get(client, tenant).get_json()["domain"] is None


@pytest.mark.parametrize(
    "domain", ["example.com", "shop.example.co.uk", "xn--bcher-kva.example", "localhost", "a-b.c1"]
)
def test_good_domains_round_trip(client, tenant, domain):
    admin = tenant["org_admin"]
    response = client.patch(
        tenant.site_path,
        json={"domain": domain},
        headers=if_match(admin.headers, etag(client, tenant.site_path, admin)),
    )
    assert response.status_code == 200, response.get_json()
    assert _admin_get(client, tenant).get_json()["domain"] == domain


def test_update_changes_only_the_fields_sent(client, tenant):
    admin = tenant["org_admin"]
    path = tenant.site_path
    assert (
        client.patch(
            path,
            json={"domain": "a.example"},
            headers=if_match(admin.headers, etag(client, path, admin)),
        ).status_code
        == 200
    )
    response = client.patch(
        path,
        json={"name": "Ünïcödé 東京 😀"},
        headers=if_match(admin.headers, etag(client, path, admin)),
    )
    assert response.status_code == 200
    assert (response.get_json()["name"], response.get_json()["domain"]) == (
        "Ünïcödé 東京 😀",
        "a.example",
    )
    assert _admin_get(client, tenant).get_json() == response.get_json()
    response = client.patch(
        path, json={"domain": None}, headers=if_match(admin.headers, etag(client, path, admin))
    )
    assert (
        response.get_json()["domain"] is None and response.get_json()["name"] == "Ünïcödé 東京 😀"
    )


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"org_id": str(uuid.uuid4())}, {"org_id"}),
        ({"name": "x", "id": str(uuid.uuid4())}, {"id"}),
        ({"deleted_at": None}, {"deleted_at"}),
    ],
)
def test_update_rejects_unknown_fields(client, tenant, body, fields):
    admin = tenant["org_admin"]
    before = _admin_get(client, tenant).get_json()
    response = client.patch(
        tenant.site_path,
        json=body,
        headers=if_match(admin.headers, etag(client, tenant.site_path, admin)),
    )
    assert_problem(response, 400, errors=fields)
    assert _admin_get(client, tenant).get_json() == before


def test_create_rejects_unknown_fields(client, tenant):
    response = client.post(
        tenant.org_path + "/sites",
        json={"name": "x", "org_id": str(uuid.uuid4())},
        headers=tenant["org_admin"].headers,
    )
    assert_problem(response, 400, errors={"org_id"})


# -- ETags -------------------------------------------------------------------------------------


def test_get_returns_an_etag_that_changes_with_the_site(client, tenant):
    admin = tenant["site_site_admin"]
    first = etag(client, tenant.site_path, admin)
    response = client.patch(
        tenant.site_path, json={"name": "New"}, headers=if_match(admin.headers, first)
    )
    assert response.status_code == 200
    assert response.headers["ETag"] not in (None, first)
    assert response.headers["ETag"] == etag(client, tenant.site_path, tenant["viewer"])


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_change_without_if_match_is_428(client, tenant, method):
    response = getattr(client, method)(
        tenant.site_path, json={"name": "New"}, headers=tenant["org_admin"].headers
    )
    assert_problem(response, 428)
    assert _admin_get(client, tenant).get_json()["name"] == "Main site"


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_change_with_wrong_if_match_is_412(client, tenant, method):
    admin = tenant["org_admin"]
    kwargs = {"json": {"name": "New"}} if method == "patch" else {}
    response = getattr(client, method)(
        tenant.site_path, headers=if_match(admin.headers, '"nope"'), **kwargs
    )
    assert_problem(response, 412)
    assert _admin_get(client, tenant).get_json()["name"] == "Main site"


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_stale_if_match_is_412(client, tenant, method):
    admin = tenant["org_admin"]
    stale = etag(client, tenant.site_path, admin)
    assert (
        client.patch(
            tenant.site_path, json={"domain": "x.example"}, headers=if_match(admin.headers, stale)
        ).status_code
        == 200
    )
    kwargs = {"json": {"name": "Lost update"}} if method == "patch" else {}
    response = getattr(client, method)(
        tenant.site_path, headers=if_match(admin.headers, stale), **kwargs
    )
    assert_problem(response, 412)
    assert _admin_get(client, tenant).get_json()["name"] == "Main site"


@pytest.mark.parametrize(("role", "expected"), [("site_viewer", 403), ("outsider", 404)])
@pytest.mark.parametrize("method", ["patch", "delete"])
def test_wrong_if_match_does_not_reveal_the_site(client, tenant, role, expected, method):
    person = tenant[role]
    kwargs = {"json": {"name": "New"}} if method == "patch" else {}
    response = getattr(client, method)(
        tenant.site_path, headers=if_match(person.headers, '"x"'), **kwargs
    )
    assert_problem(response, expected)


# -- soft delete -------------------------------------------------------------------------------


def test_deleted_site_is_gone_for_everyone(client, world, tenant):
    admin = tenant["org_admin"]
    kept = world.site(tenant.org, "Kept")
    response = client.delete(
        tenant.site_path, headers=if_match(admin.headers, etag(client, tenant.site_path, admin))
    )
    assert response.status_code == 204 and response.get_data() == b""

    for role in ROLES:
        person = tenant[role]
        assert_problem(client.get(tenant.site_path, headers=person.headers), 404)
        assert_problem(client.get(tenant.site_path + "/members", headers=person.headers), 404)
    for role in ("org_admin", "site_admin", "member", "viewer"):
        listed = [s["id"] for s in items(client, tenant.org_path + "/sites", tenant[role])]
        assert listed == [str(kept.id)]
    # a role held on the deleted site only no longer makes its holder a guest of the org
    for role in SITE_ONLY_ROLES:
        assert_problem(client.get(tenant.org_path + "/sites", headers=tenant[role].headers), 404)
    assert_problem(client.delete(tenant.site_path, headers=if_match(admin.headers, "*")), 404)
    assert_problem(
        client.patch(tenant.site_path, json={"name": "Back"}, headers=if_match(admin.headers, "*")),
        404,
    )
    assert client.get(tenant.org_path, headers=admin.headers).status_code == 200
