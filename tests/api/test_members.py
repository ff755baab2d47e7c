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
from tests.support.invitations import accept, invite, invite_and_accept, mine
from tests.support.mail import link_in, query_of, text_of

MEMBER_FIELDS = {"user_id", "email", "display_name", "role", "created_at", "updated_at"}
INVITATION_FIELDS = {"id", "org_id", "site_id", "email", "role", "invited_by", "expires_at",
                     "created_at"}


def _members(client, path, tenant):
    return sorted((m["user_id"], m["role"]) for m in items(client, path, tenant["org_admin"]))


def org_members(client, tenant):
    return _members(client, tenant.org_path + "/members", tenant)


def site_members(client, tenant):
    return _members(client, tenant.site_path + "/members", tenant)


def open_invitations(client, tenant, place_path):
    return sorted(i["id"] for i in items(client, place_path + "/invitations", tenant["org_admin"]))


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
        # The membership the invitation offers, as it would be (no id yet).
        authz=("create", "OrgMembership"),
        state=lambda c, t: open_invitations(c, t, t.org_path),
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
    "add":    (202,      403,       403,   403,     404,            404,        404,          404),
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
        state=lambda c, t: open_invitations(c, t, t.site_path),
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
    "add":    (202,      202,       403,   403,     202,            403,        403,          404),
    "change": (200,      200,       403,   403,     200,            403,        403,          404),
    "remove": (204,      204,       403,   403,     204,            403,        403,          404),
}
# fmt: on

# The same calls on another site of the organization: site roles do not reach it.
# fmt: off
#            org_admin site_admin member viewer | site_site_admin site_member site_viewer | outsider
OTHER_SITE_TABLE = {
    "list":   (200,      200,       200,   200,     404,            404,        404,          404),
    "add":    (202,      202,       403,   403,     404,            404,        404,          404),
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


# -- adding: an invitation, granted on acceptance -------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "member", "site_admin", "org_admin"])
def test_an_org_invitation_grants_the_role_once_accepted(client, app, tenant, inbox, role):
    newcomer = tenant["outsider"]
    response = invite(client, tenant["org_admin"], tenant.org_path, newcomer.email, role)
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert set(body) == INVITATION_FIELDS
    assert (body["email"], body["role"], body["site_id"], body["invited_by"]) == (
        newcomer.email, role, None, str(tenant["org_admin"].id))
    # Nothing is granted yet.
    assert org_roles_of(app, newcomer.id) == {}
    assert_problem(client.get(tenant.org_path, headers=newcomer.headers), 404)
    (mail,) = inbox.wait_for(newcomer.email)
    assert body["id"] in link_in(mail) and role in text_of(mail)

    assert [i["id"] for i in mine(client, newcomer)] == [body["id"]]
    accepted = accept(client, newcomer, body["id"])
    assert accepted.status_code == 200, accepted.get_json()
    assert org_roles_of(app, newcomer.id) == {tenant.org.id: role}
    # the grant takes effect on the newcomer's next request; the invitation is closed
    assert client.get(tenant.org_path, headers=newcomer.headers).status_code == 200
    assert mine(client, newcomer) == []
    assert_problem(accept(client, newcomer, body["id"]), 404)
    assert items(client, tenant.org_path + "/invitations", tenant["org_admin"]) == []


@pytest.mark.parametrize("role", ["viewer", "member", "site_admin"])
def test_a_site_invitation_grants_the_site_role_once_accepted(client, app, tenant, role):
    newcomer = tenant["outsider"]
    accepted = invite_and_accept(client, tenant["site_site_admin"], tenant.site_path,
                                 newcomer, role)
    assert accepted.status_code == 200, accepted.get_json()
    assert accepted.get_json()["site_id"] == str(tenant.site.id)
    assert site_roles_of(app, newcomer.id) == {tenant.site.id: role}
    assert org_roles_of(app, newcomer.id) == {}
    assert client.get(tenant.site_path, headers=newcomer.headers).status_code == 200


def test_invitations_find_the_address_whatever_its_case(client, app, tenant):
    newcomer = tenant["outsider"]
    response = invite(client, tenant["org_admin"], tenant.org_path,
                      f"  {newcomer.email.upper()} ", "viewer")
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["email"] == newcomer.email
    assert accept(client, newcomer, response.get_json()["id"]).status_code == 200


def test_declining_grants_nothing_and_closes_the_invitation(client, app, tenant):
    newcomer = tenant["outsider"]
    sent = invite(client, tenant["org_admin"], tenant.org_path, newcomer.email, "member")
    invitation_id = sent.get_json()["id"]
    declined = client.post(f"/v1/invitations/{invitation_id}/decline", headers=newcomer.headers)
    assert declined.status_code == 204
    assert org_roles_of(app, newcomer.id) == {}
    assert_problem(accept(client, newcomer, invitation_id), 404)


def test_only_the_invited_address_may_answer(client, app, tenant):
    sent = invite(client, tenant["org_admin"], tenant.org_path, tenant["outsider"].email, "viewer")
    invitation_id = sent.get_json()["id"]
    for other in (tenant["viewer"], tenant["site_viewer"]):
        assert mine(client, other) == []
        assert_problem(accept(client, other, invitation_id), 404)
        assert_problem(client.post(f"/v1/invitations/{invitation_id}/decline",
                                   headers=other.headers), 404)
    assert org_roles_of(app, tenant["outsider"].id) == {}


def test_the_hijack_of_an_invitation_fails(client, app, world, tenant, inbox):
    """The attack of issue 13: someone registers the invitee's address before the invitee
    does. It can sign in, but not verify the address, so it neither sees nor accepts the
    invitation; the owner of the mailbox takes the account back and accepts."""
    victim = "victim@example.com"
    registered = client.post("/v1/auth/register",
                             json={"email": victim, "password": "attacker password"})
    assert registered.status_code == 202
    sent = invite(client, tenant["org_admin"], tenant.org_path, victim, "org_admin")
    assert sent.status_code == 202
    invitation_id = sent.get_json()["id"]
    login = client.post("/v1/auth/login", json={"email": victim, "password": "attacker password"})
    assert login.status_code == 200
    attacker = {"Authorization": f"Bearer {login.get_json()['access_token']}"}
    assert client.get("/v1/invitations", headers=attacker).get_json() == {"items": []}
    assert_problem(client.post(f"/v1/invitations/{invitation_id}/accept", headers=attacker), 404)
    assert_problem(client.get(tenant.org_path, headers=attacker), 404)
    # The mailbox's owner resets the password (which proves the address), every session
    # of the attacker ends, and the owner accepts.
    client.post("/v1/auth/password/reset", json={"email": victim})
    reset = next(m for m in inbox.wait_for(victim, count=3)
                 if m["Subject"] == "Reset your password")
    done = client.post("/v1/auth/password/reset/complete",
                       json={"token": query_of(link_in(reset), "token"),
                             "new_password": "the owner's password"})
    assert done.status_code == 204
    assert_problem(client.get("/v1/me", headers=attacker), 401)
    login = client.post("/v1/auth/login", json={"email": victim,
                                                "password": "the owner's password"})
    owner = {"Authorization": f"Bearer {login.get_json()['access_token']}"}
    accepted = client.post(f"/v1/invitations/{invitation_id}/accept", headers=owner)
    assert accepted.status_code == 200, accepted.get_json()
    assert client.get(tenant.org_path, headers=owner).status_code == 200


def test_an_unverified_account_cannot_accept(client, app, world, tenant):
    unverified = world.user(verified=False)
    sent = invite(client, tenant["org_admin"], tenant.org_path, unverified.email, "viewer")
    assert mine(client, unverified) == []
    assert_problem(accept(client, unverified, sent.get_json()["id"]), 404)
    assert org_roles_of(app, unverified.id) == {}


@pytest.mark.parametrize("scope", ["org", "site"])
def test_inviting_an_unknown_address_answers_as_a_known_one(client, tenant, inbox, scope):
    """No enumeration: the answers differ only in what the request or the clock made
    (the address, the new invitation's id and times, the request id)."""
    path = tenant.org_path if scope == "org" else tenant.site_path
    known = invite(client, tenant["org_admin"], path, tenant["outsider"].email, "viewer")
    unknown = invite(client, tenant["org_admin"], path, "nobody@example.com", "viewer")

    def shape(response, email):
        body = response.get_data(as_text=True)
        made = response.get_json()
        for value in (made["id"], made["created_at"], made["expires_at"], email):
            body = body.replace(value, "<made>")
        return response.status_code, sorted(response.headers.keys()), body

    assert shape(known, tenant["outsider"].email) == shape(unknown, "nobody@example.com")
    inbox.wait_for("nobody@example.com")
    inbox.wait_for(tenant["outsider"].email)


def test_admins_list_resend_and_revoke_open_invitations(client, app, tenant, inbox):
    admin = tenant["org_admin"]
    sent = invite(client, admin, tenant.org_path, "later@example.com", "member").get_json()
    path = f"{tenant.org_path}/invitations/{sent['id']}"
    assert [i["id"] for i in items(client, tenant.org_path + "/invitations", admin)] == [sent["id"]]
    assert items(client, tenant.org_path + "/invitations", tenant["viewer"]) == []  # not theirs
    resent = client.post(path + "/resend", headers=admin.headers)
    assert resent.status_code == 200 and resent.get_json()["expires_at"] >= sent["expires_at"]
    assert len(inbox.wait_for("later@example.com", count=2)) == 2
    assert_problem(client.delete(path, headers=tenant["member"].headers), 404)  # not shown
    assert client.delete(path, headers=admin.headers).status_code == 204
    assert items(client, tenant.org_path + "/invitations", admin) == []
    assert_problem(client.delete(path, headers=admin.headers), 404)


def test_site_admins_manage_their_site_invitations_only(client, tenant):
    site_admin = tenant["site_site_admin"]
    sent = invite(client, site_admin, tenant.site_path, "s@example.com", "viewer").get_json()
    listed = items(client, tenant.site_path + "/invitations", site_admin)
    assert [i["id"] for i in listed] == [sent["id"]]
    org_invite = invite(client, tenant["org_admin"], tenant.org_path, "o@example.com",
                        "viewer").get_json()
    assert items(client, tenant.org_path + "/invitations", site_admin) == []
    assert_problem(client.delete(f"{tenant.org_path}/invitations/{org_invite['id']}",
                                 headers=site_admin.headers), 404)
    path = f"{tenant.site_path}/invitations/{sent['id']}"
    assert client.delete(path, headers=site_admin.headers).status_code == 204


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
    response = invite_and_accept(client, tenant["site_site_admin"], tenant.site_path, newcomer,
                                 role)
    assert response.status_code == 200, response.get_json()
    assert set(response.get_json()) == INVITATION_FIELDS
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
