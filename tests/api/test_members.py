"""Members: /v1/orgs/{org_id}/members[/{user_id}] and .../sites/{site_id}/members[/{user_id}]."""

from __future__ import annotations

import uuid

import pytest

from tests.support import Tenant
from tests.support.http import (
    ORG_ROLE_HOLDERS,
    SITE_ONLY_ROLES,
    RoleCase,
    assert_problem,
    check_each,
    check_role_case,
    items,
    membership_id,
    org_roles_of,
    role_table,
    site_roles_of,
)

pytestmark = pytest.mark.portable

MEMBER_FIELDS = {"user_id", "email", "display_name", "role", "created_at", "updated_at"}


def _members(client, path, tenant):
    return sorted((m["user_id"], m["role"]) for m in items(client, path, tenant["org_admin"]))


def org_members(client, tenant):
    return _members(client, tenant.org_path + "/members", tenant)


def site_members(client, tenant):
    return _members(client, tenant.site_path + "/members", tenant)


def member_path(tenant, person, *, site=False):
    return f"{tenant.site_path if site else tenant.org_path}/members/{person.id}"


# -- who may do what ---------------------------------------------------------------------------

ORG_CASES = {
    "list": RoleCase(
        send=lambda c, t, p, h: c.get(t.org_path + "/members", headers=h),
        authz=("list_members", "Organization"),
    ),
    "add": RoleCase(
        send=lambda c, t, p, h: c.post(
            t.org_path + "/members",
            json={"email": t["outsider"].email, "role": "viewer"},
            headers=h,
        ),
        authz=("create", "OrgMembership"),  # the membership as it would be (no id yet)
        state=org_members,
        resource_id=lambda c, t: None,
    ),
    "change": RoleCase(
        send=lambda c, t, p, h: c.patch(
            member_path(t, t["viewer"]), json={"role": "member"}, headers=h
        ),
        authz=("update", "OrgMembership"),
        state=org_members,
        resource_id=lambda c, t: membership_id(c, t["viewer"], t.org),
    ),
    "remove": RoleCase(
        send=lambda c, t, p, h: c.delete(member_path(t, t["viewer"]), headers=h),
        authz=("delete", "OrgMembership"),
        state=org_members,
        resource_id=lambda c, t: membership_id(c, t["viewer"], t.org),
    ),
}

# fmt: off
#            org_admin site_admin member viewer | site_site_admin site_member site_viewer | outsider
ORG_TABLE = {
    "list":   (200,      200,       200,   200,     404,            404,        404,          404),
    "add":    (201,      403,       403,   403,     404,            404,        404,          404),
    "change": (200,      403,       403,   403,     404,            404,        404,          404),
    "remove": (204,      403,       403,   403,     404,            404,        404,          404),
}
# fmt: on

SITE_CASES = {
    "list": RoleCase(
        send=lambda c, t, p, h: c.get(t.site_path + "/members", headers=h),
        authz=("list_members", "Site"),
    ),
    "add": RoleCase(
        send=lambda c, t, p, h: c.post(
            t.site_path + "/members",
            json={"email": t["outsider"].email, "role": "viewer"},
            headers=h,
        ),
        authz=("create", "SiteMembership"),
        state=site_members,
        resource_id=lambda c, t: None,
    ),
    "change": RoleCase(
        send=lambda c, t, p, h: c.patch(
            member_path(t, t["site_viewer"], site=True), json={"role": "member"}, headers=h
        ),
        authz=("update", "SiteMembership"),
        state=site_members,
        resource_id=lambda c, t: membership_id(c, t["site_viewer"], t.site),
    ),
    "remove": RoleCase(
        send=lambda c, t, p, h: c.delete(member_path(t, t["site_viewer"], site=True), headers=h),
        authz=("delete", "SiteMembership"),
        state=site_members,
        resource_id=lambda c, t: membership_id(c, t["site_viewer"], t.site),
    ),
}

# fmt: off
#            org_admin site_admin member viewer | site_site_admin site_member site_viewer | outsider
SITE_TABLE = {
    "list":   (200,      200,       200,   200,     200,            200,        200,          404),
    "add":    (201,      201,       403,   403,     201,            403,        403,          404),
    "change": (200,      200,       403,   403,     200,            403,        403,          404),
    "remove": (204,      204,       403,   403,     204,            403,        403,          404),
}
# fmt: on

# The same calls on another site of the organization: site roles do not reach it.
# fmt: off
#            org_admin site_admin member viewer | site_site_admin site_member site_viewer | outsider
OTHER_SITE_TABLE = {
    "list":   (200,      200,       200,   200,     404,            404,        404,          404),
    "add":    (201,      201,       403,   403,     404,            404,        404,          404),
}
# fmt: on


@pytest.mark.parametrize(("action", "role", "expected"), role_table(ORG_TABLE))
def test_org_member_role_table(client, tenant, action, role, expected):
    check_role_case(client, tenant, ORG_CASES[action], role, expected)


@pytest.mark.parametrize(("action", "role", "expected"), role_table(SITE_TABLE))
def test_site_member_role_table(client, tenant, action, role, expected):
    check_role_case(client, tenant, SITE_CASES[action], role, expected)


@pytest.mark.parametrize(("action", "role", "expected"), role_table(OTHER_SITE_TABLE))
def test_site_member_role_table_on_another_site(client, world, tenant, action, role, expected):
    other = Tenant(tenant.org, world.site(tenant.org, "Other site"), tenant.people)
    check_role_case(client, other, SITE_CASES[action], role, expected)


# -- listing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "site_admin"])
def test_org_member_list_shows_the_org_members_only(client, world, tenant, role):
    world.tenant("Elsewhere")
    listed = items(client, tenant.org_path + "/members", tenant[role])
    assert all(set(m) == MEMBER_FIELDS for m in listed)
    assert {(m["user_id"], m["email"], m["role"]) for m in listed} == {
        (str(tenant[r].id), tenant[r].email, r)
        for r in ("org_admin", "site_admin", "member", "viewer")
    }


@pytest.mark.parametrize("role", ["viewer", "site_viewer"])
def test_site_member_list_shows_the_site_roles_only(client, world, tenant, role):
    world.grant_site(tenant["outsider"], world.site(tenant.org, "Other site"), "viewer")
    listed = items(client, tenant.site_path + "/members", tenant[role])
    assert all(set(m) == MEMBER_FIELDS for m in listed)
    assert {(m["user_id"], m["role"]) for m in listed} == {
        (str(tenant[f"site_{r}"].id), r) for r in ("site_admin", "member", "viewer")
    }


# -- adding ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "member", "site_admin", "org_admin"])
def test_add_org_member_grants_the_role(client, app, tenant, role):
    newcomer = tenant["outsider"]
    response = client.post(
        tenant.org_path + "/members",
        json={"email": newcomer.email, "role": role},
        headers=tenant["org_admin"].headers,
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert set(body) == MEMBER_FIELDS
    assert (body["user_id"], body["email"], body["role"]) == (
        str(newcomer.id),
        newcomer.email,
        role,
    )
    assert org_roles_of(app, newcomer.id) == {tenant.org.id: role}
    # the grant takes effect on the newcomer's next request
    assert client.get(tenant.org_path, headers=newcomer.headers).status_code == 200


def test_add_finds_the_account_whatever_the_email_case(client, app, tenant):
    newcomer = tenant["outsider"]
    response = client.post(
        tenant.org_path + "/members",
        json={"email": f"  {newcomer.email.upper()} ", "role": "viewer"},
        headers=tenant["org_admin"].headers,
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["user_id"] == str(newcomer.id)


@pytest.mark.parametrize("role", ["viewer", "org_admin"])
def test_adding_an_org_member_twice_is_409(client, app, tenant, role):
    response = client.post(
        tenant.org_path + "/members",
        json={"email": tenant["viewer"].email, "role": role},
        headers=tenant["org_admin"].headers,
    )
    assert_problem(response, 409)
    assert org_roles_of(app, tenant["viewer"].id) == {tenant.org.id: "viewer"}


def test_adding_a_site_member_twice_is_409(client, app, tenant):
    response = client.post(
        tenant.site_path + "/members",
        json={"email": tenant["site_viewer"].email, "role": "member"},
        headers=tenant["org_admin"].headers,
    )
    assert_problem(response, 409)
    assert site_roles_of(app, tenant["site_viewer"].id) == {tenant.site.id: "viewer"}


@pytest.mark.parametrize("scope", ["org", "site"])
def test_unknown_email_is_404(client, tenant, scope):
    path = (tenant.org_path if scope == "org" else tenant.site_path) + "/members"
    before = org_members(client, tenant), site_members(client, tenant)
    response = client.post(
        path,
        json={"email": "nobody@example.com", "role": "viewer"},
        headers=tenant["org_admin"].headers,
    )
    assert_problem(response, 404)
    assert (org_members(client, tenant), site_members(client, tenant)) == before


BAD_ADD_BODIES = [
    ({"email": "not-an-email", "role": "viewer"}, {"email"}),
    ({"email": "a" * 10_000 + "@example.com", "role": "viewer"}, {"email"}),
    ({"email": 5, "role": "viewer"}, {"email"}),
    ({"email": None, "role": "viewer"}, {"email"}),
    ({"role": "viewer"}, {"email"}),
    ({"email": "x@example.com"}, {"role"}),
    ({"email": "x@example.com", "role": "owner"}, {"role"}),
    ({"email": "x@example.com", "role": "guest"}, {"role"}),
    ({"email": "x@example.com", "role": "VIEWER"}, {"role"}),
    ({"email": "x@example.com", "role": ["viewer"]}, {"role"}),
    ({"email": "x@example.com", "role": "viewer", "user_id": "x"}, {"user_id"}),
]


@pytest.mark.parametrize("scope", ["org", "site"])
def test_add_rejects_bad_bodies(client, tenant, scope):
    path = (tenant.org_path if scope == "org" else tenant.site_path) + "/members"
    before = org_members(client, tenant), site_members(client, tenant)

    def check(case):
        body, fields = case
        response = client.post(path, json=body, headers=tenant["org_admin"].headers)
        assert_problem(response, 400, errors=fields)

    check_each(BAD_ADD_BODIES, check)
    assert (org_members(client, tenant), site_members(client, tenant)) == before


# -- changing roles ----------------------------------------------------------------------------


def test_role_change_takes_effect(client, app, tenant):
    viewer, admin = tenant["viewer"], tenant["org_admin"]
    response = client.patch(
        member_path(tenant, viewer), json={"role": "org_admin"}, headers=admin.headers
    )
    assert response.status_code == 200, response.get_json()
    assert set(response.get_json()) == MEMBER_FIELDS
    assert response.get_json()["role"] == "org_admin"
    assert org_roles_of(app, viewer.id) == {tenant.org.id: "org_admin"}
    assert client.get(tenant.org_path + "/audit-events", headers=viewer.headers).status_code == 200
    # and back down: the former viewer can no longer read the audit log
    assert (
        client.patch(
            member_path(tenant, viewer), json={"role": "viewer"}, headers=admin.headers
        ).status_code
        == 200
    )
    assert_problem(client.get(tenant.org_path + "/audit-events", headers=viewer.headers), 403)


@pytest.mark.parametrize(
    "body", [{"role": "owner"}, {"role": None}, {}, {"role": "viewer", "x": 1}]
)
def test_change_org_role_rejects_bad_bodies(client, app, tenant, body):
    response = client.patch(
        member_path(tenant, tenant["viewer"]), json=body, headers=tenant["org_admin"].headers
    )
    assert_problem(response, 400)
    assert org_roles_of(app, tenant["viewer"].id) == {tenant.org.id: "viewer"}


@pytest.mark.parametrize("who", ["site_viewer", "outsider", "random"])
def test_change_or_remove_a_non_member_is_404(client, world, tenant, who):
    """The user must be a member of this organization, not merely exist."""
    user_id = uuid.uuid4() if who == "random" else tenant[who].id
    path = f"{tenant.org_path}/members/{user_id}"
    admin = tenant["org_admin"]
    assert_problem(client.patch(path, json={"role": "member"}, headers=admin.headers), 404)
    assert_problem(client.delete(path, headers=admin.headers), 404)


def test_member_of_another_org_is_404_here(client, app, world, tenant):
    elsewhere = world.tenant("Elsewhere")
    path = f"{tenant.org_path}/members/{elsewhere['viewer'].id}"
    admin = tenant["org_admin"]
    assert_problem(client.patch(path, json={"role": "org_admin"}, headers=admin.headers), 404)
    assert_problem(client.delete(path, headers=admin.headers), 404)
    assert org_roles_of(app, elsewhere["viewer"].id) == {elsewhere.org.id: "viewer"}


# -- the last org_admin ------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["site_admin", "member", "viewer"])
def test_the_last_org_admin_cannot_be_demoted(client, app, tenant, role):
    admin = tenant["org_admin"]
    response = client.patch(member_path(tenant, admin), json={"role": role}, headers=admin.headers)
    assert_problem(response, 409)
    assert org_roles_of(app, admin.id) == {tenant.org.id: "org_admin"}


def test_the_last_org_admin_cannot_be_removed(client, app, world, tenant):
    admin = tenant["org_admin"]
    world.grant_site(admin, tenant.site, "viewer")
    assert_problem(client.delete(member_path(tenant, admin), headers=admin.headers), 409)
    assert org_roles_of(app, admin.id) == {tenant.org.id: "org_admin"}
    assert site_roles_of(app, admin.id) == {tenant.site.id: "viewer"}


def test_an_org_admin_may_leave_once_another_exists(client, app, tenant):
    first, second = tenant["org_admin"], tenant["member"]
    assert (
        client.patch(
            member_path(tenant, second), json={"role": "org_admin"}, headers=first.headers
        ).status_code
        == 200
    )
    # one of two may step down ...
    response = client.patch(
        member_path(tenant, first), json={"role": "viewer"}, headers=first.headers
    )
    assert response.status_code == 200, response.get_json()
    # ... but then the other is the last one again
    assert_problem(
        client.patch(member_path(tenant, second), json={"role": "member"}, headers=second.headers),
        409,
    )
    assert_problem(client.delete(member_path(tenant, second), headers=second.headers), 409)
    assert client.delete(member_path(tenant, first), headers=second.headers).status_code == 204
    assert org_roles_of(app, first.id) == {}
    assert org_roles_of(app, second.id) == {tenant.org.id: "org_admin"}


def test_admins_of_other_orgs_do_not_count(client, world, tenant):
    elsewhere = world.tenant("Elsewhere")
    admin = tenant["org_admin"]
    world.grant_org(admin, elsewhere.org, "org_admin")  # two org_admins over there, one here
    assert_problem(
        client.patch(member_path(tenant, admin), json={"role": "viewer"}, headers=admin.headers),
        409,
    )
    assert (
        client.patch(
            member_path(elsewhere, admin), json={"role": "viewer"}, headers=admin.headers
        ).status_code
        == 200
    )


# -- removing ----------------------------------------------------------------------------------


def test_removing_an_org_member_removes_its_site_roles_in_that_org(client, app, world, tenant):
    person = tenant["member"]
    second = world.site(tenant.org, "Second")
    elsewhere = world.tenant("Elsewhere")
    world.grant_site(person, tenant.site, "site_admin")
    world.grant_site(person, second, "viewer")
    world.grant_site(person, elsewhere.site, "member")

    response = client.delete(member_path(tenant, person), headers=tenant["org_admin"].headers)
    assert response.status_code == 204 and response.get_data() == b""
    assert org_roles_of(app, person.id) == {}
    assert site_roles_of(app, person.id) == {elsewhere.site.id: "member"}
    # nothing of the organization is reachable any more, not even as a guest
    assert_problem(client.get(tenant.org_path + "/sites", headers=person.headers), 404)
    assert_problem(client.get(tenant.site_path, headers=person.headers), 404)
    assert client.get(elsewhere.site_path, headers=person.headers).status_code == 200


def test_removing_a_site_member_touches_nothing_else(client, app, world, tenant):
    person = tenant["site_member"]
    second = world.site(tenant.org, "Second")
    world.grant_site(person, second, "viewer")
    response = client.delete(
        member_path(tenant, person, site=True), headers=tenant["site_site_admin"].headers
    )
    assert response.status_code == 204
    assert site_roles_of(app, person.id) == {second.id: "viewer"}
    assert_problem(client.get(tenant.site_path, headers=person.headers), 404)
    assert (
        client.get(f"{tenant.org_path}/sites/{second.id}", headers=person.headers).status_code
        == 200
    )


def test_removing_a_site_role_leaves_the_org_role(client, app, world, tenant):
    person = tenant["viewer"]
    world.grant_site(person, tenant.site, "site_admin")
    assert (
        client.delete(
            member_path(tenant, person, site=True), headers=tenant["org_admin"].headers
        ).status_code
        == 204
    )
    assert org_roles_of(app, person.id) == {tenant.org.id: "viewer"}
    assert client.get(tenant.site_path, headers=person.headers).status_code == 200


# -- site roles --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "member", "site_admin"])
def test_site_admin_grants_site_roles_up_to_site_admin(client, app, tenant, role):
    newcomer = tenant["outsider"]
    response = client.post(
        tenant.site_path + "/members",
        json={"email": newcomer.email, "role": role},
        headers=tenant["site_site_admin"].headers,
    )
    assert response.status_code == 201, response.get_json()
    assert set(response.get_json()) == MEMBER_FIELDS
    assert response.get_json()["role"] == role
    assert site_roles_of(app, newcomer.id) == {tenant.site.id: role}
    assert org_roles_of(app, newcomer.id) == {}
    # a site role alone: the site and the org's site list, never the org itself
    assert client.get(tenant.site_path, headers=newcomer.headers).status_code == 200
    assert [s["id"] for s in items(client, tenant.org_path + "/sites", newcomer)] == [
        str(tenant.site.id)
    ]
    assert_problem(client.get(tenant.org_path, headers=newcomer.headers), 404)


@pytest.mark.parametrize("actor", ["org_admin", "site_site_admin"])
def test_org_admin_is_not_a_site_role(client, app, tenant, actor):
    headers = tenant[actor].headers
    response = client.post(
        tenant.site_path + "/members",
        json={"email": tenant["outsider"].email, "role": "org_admin"},
        headers=headers,
    )
    assert_problem(response, 400, errors={"role"})
    response = client.patch(
        member_path(tenant, tenant["site_viewer"], site=True),
        json={"role": "org_admin"},
        headers=headers,
    )
    assert_problem(response, 400, errors={"role"})
    assert site_roles_of(app, tenant["outsider"].id) == {}
    assert site_roles_of(app, tenant["site_viewer"].id) == {tenant.site.id: "viewer"}


def test_change_site_role(client, app, tenant):
    person = tenant["site_viewer"]
    response = client.patch(
        member_path(tenant, person, site=True),
        json={"role": "site_admin"},
        headers=tenant["site_admin"].headers,
    )
    assert response.status_code == 200, response.get_json()
    assert (response.get_json()["user_id"], response.get_json()["role"]) == (
        str(person.id),
        "site_admin",
    )
    assert site_roles_of(app, person.id) == {tenant.site.id: "site_admin"}
    # now a site_admin: may rename the site
    etag = client.get(tenant.site_path, headers=person.headers).headers["ETag"]
    assert (
        client.patch(
            tenant.site_path, json={"name": "Mine"}, headers={**person.headers, "If-Match": etag}
        ).status_code
        == 200
    )


@pytest.mark.parametrize("who", ["viewer", "outsider", "random"])
def test_change_or_remove_a_non_site_member_is_404(client, tenant, who):
    """Org members hold no site membership row: there is nothing to change on the site."""
    user_id = uuid.uuid4() if who == "random" else tenant[who].id
    path = f"{tenant.site_path}/members/{user_id}"
    admin = tenant["org_admin"]
    assert_problem(client.patch(path, json={"role": "member"}, headers=admin.headers), 404)
    assert_problem(client.delete(path, headers=admin.headers), 404)


def test_site_member_of_another_site_is_404_here(client, app, world, tenant):
    other = world.site(tenant.org, "Other site")
    person = world.user()
    world.grant_site(person, other, "viewer")
    path = member_path(tenant, person, site=True)
    admin = tenant["org_admin"]
    assert_problem(client.patch(path, json={"role": "member"}, headers=admin.headers), 404)
    assert_problem(client.delete(path, headers=admin.headers), 404)
    assert site_roles_of(app, person.id) == {other.id: "viewer"}


@pytest.mark.parametrize("role", (*SITE_ONLY_ROLES, "outsider"))
def test_site_only_and_outsiders_cannot_touch_org_members(client, app, tenant, role):
    """Spelled out once more for the escalation a site_admin would want most."""
    person = tenant[role]
    response = client.patch(
        member_path(tenant, person), json={"role": "org_admin"}, headers=person.headers
    )
    assert_problem(response, 404)
    response = client.post(
        tenant.org_path + "/members",
        json={"email": person.email, "role": "org_admin"},
        headers=person.headers,
    )
    assert_problem(response, 404)
    assert org_roles_of(app, person.id) == {}


@pytest.mark.parametrize("role", ORG_ROLE_HOLDERS[1:])
def test_org_roles_below_org_admin_cannot_promote_themselves(client, app, tenant, role):
    person = tenant[role]
    response = client.patch(
        member_path(tenant, person), json={"role": "org_admin"}, headers=person.headers
    )
    assert_problem(response, 403)
    assert org_roles_of(app, person.id) == {tenant.org.id: role}
