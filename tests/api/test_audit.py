"""The audit log: GET /v1/orgs/{org_id}/audit-events, and the denials written to it."""

from __future__ import annotations

import uuid

import pytest

from tests.support.http import (
    RoleCase,
    assert_problem,
    check_role_case,
    denials,
    if_match,
    items,
    request_id,
    role_table,
    with_id,
)

pytestmark = pytest.mark.portable

EVENT_FIELDS = {
    "id",
    "event",
    "actor_type",
    "actor_id",
    "action",
    "resource_type",
    "resource_id",
    "request_id",
    "before",
    "after",
    "created_at",
}

CASES = {
    "read": RoleCase(
        send=lambda c, t, p, h: c.get(t.org_path + "/audit-events", headers=h),
        authz=("read_audit", "Organization"),
    ),
}

# fmt: off
#            org_admin site_admin member viewer | site_site_admin site_member site_viewer | outsider
ROLE_TABLE = {
    "read":   (200,      403,       403,   403,     404,            404,        404,          404),
}
# fmt: on


@pytest.mark.parametrize(("action", "role", "expected"), role_table(ROLE_TABLE))
def test_role_table(client, tenant, action, role, expected):
    check_role_case(client, tenant, CASES[action], role, expected)


def audit_log(client, tenant, **params):
    return items(client, tenant.org_path + "/audit-events", tenant["org_admin"], **params)


# Denials of every kind, and the audit row each must leave: (role, request, status, action, type).
DENIALS = [
    pytest.param(
        "viewer",
        lambda c, t, h: c.patch(t.org_path, json={"name": "x"}, headers=if_match(h, '"x"')),
        403,
        "update",
        "Organization",
        id="403-org-update",
    ),
    # An outsider holds nothing in the organization: row-level security hides all of it,
    # and the probe is audited as `access` to the organization, whatever the route.
    pytest.param(
        "outsider",
        lambda c, t, h: c.get(t.org_path, headers=h),
        404,
        "access",
        "Organization",
        id="404-org-read",
    ),
    pytest.param(
        "site_member",
        lambda c, t, h: c.get(t.org_path + "/members", headers=h),
        404,
        "list_members",
        "Organization",
        id="404-site-role-org-members",
    ),
    pytest.param(
        "member",
        lambda c, t, h: c.post(t.org_path + "/sites", json={"name": "x"}, headers=h),
        403,
        "create_site",
        "Organization",
        id="403-create-site",
    ),
    pytest.param(
        "site_viewer",
        lambda c, t, h: c.delete(t.site_path, headers=if_match(h, '"x"')),
        403,
        "delete",
        "Site",
        id="403-site-delete",
    ),
    pytest.param(
        "outsider",
        lambda c, t, h: c.get(t.site_path + "/members", headers=h),
        404,
        "access",
        "Organization",
        id="404-site-members",
    ),
    pytest.param(
        "viewer",
        lambda c, t, h: c.get(t.org_path + "/audit-events", headers=h),
        403,
        "read_audit",
        "Organization",
        id="403-audit",
    ),
]


@pytest.mark.parametrize(("role", "send", "status", "action", "resource_type"), DENIALS)
def test_denial_is_audited_and_readable_by_the_org_admin(
    client, app, tenant, role, send, status, action, resource_type
):
    person = tenant[role]
    rid = request_id()
    response = send(client, tenant, with_id(person.headers, rid))
    assert_problem(response, status)
    assert response.headers["X-Request-ID"] == rid

    # written by its own transaction: the request's own was rolled back (it failed)
    [row] = denials(app, rid)
    assert row.org_id == tenant.org.id
    assert row.data == {}

    resource_id = tenant.org.id if resource_type == "Organization" else tenant.site.id
    logged = [e for e in audit_log(client, tenant) if e["request_id"] == rid]
    assert len(logged) == 1
    event = logged[0]
    assert set(event) == EVENT_FIELDS
    assert {k: v for k, v in event.items() if k not in ("id", "created_at")} == {
        "event": "authz.denied",
        "actor_type": "user",
        "actor_id": str(person.id),
        "action": action,
        "resource_type": resource_type,
        "resource_id": str(resource_id),
        "request_id": rid,
        "before": None,
        "after": None,
    }
    assert event["id"] == str(row.id)


def test_generated_request_id_is_the_one_audited(client, app, tenant):
    """A malformed X-Request-ID is replaced; the replacement is echoed and audited."""
    person = tenant["outsider"]
    response = client.get(tenant.org_path, headers=with_id(person.headers, "no spaces allowed"))
    body = assert_problem(response, 404)
    generated = response.headers["X-Request-ID"]
    assert generated != "no spaces allowed" and body["request_id"] == generated
    [row] = denials(app, generated)
    assert row.actor_id == person.id


def test_audit_rows_carry_no_credentials(client, tenant):
    person = tenant["viewer"]
    client.patch(tenant.org_path, json={"name": "x"}, headers=if_match(person.headers, '"x"'))
    response = client.get(tenant.org_path + "/audit-events", headers=tenant["org_admin"].headers)
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert person.token not in text and person.token.split(".")[1] not in text
    assert "Bearer" not in text


def test_audit_log_is_per_organization(client, world, tenant):
    elsewhere = world.tenant("Elsewhere")
    mine, theirs = request_id(), request_id()
    client.get(tenant.org_path, headers=with_id(tenant["outsider"].headers, mine))
    client.get(elsewhere.org_path, headers=with_id(elsewhere["outsider"].headers, theirs))
    assert [e["request_id"] for e in audit_log(client, tenant)] == [mine]
    assert [e["request_id"] for e in audit_log(client, elsewhere)] == [theirs]
    # an org_admin elsewhere is nobody here
    assert_problem(
        client.get(tenant.org_path + "/audit-events", headers=elsewhere["org_admin"].headers), 404
    )


def test_successful_requests_are_not_denials(client, app, tenant):
    ok = request_id()
    response = client.get(tenant.org_path, headers=with_id(tenant["org_admin"].headers, ok))
    assert response.status_code == 200
    assert denials(app, ok) == []
    assert audit_log(client, tenant) == []


@pytest.mark.parametrize("whose", ["nobody's", "another tenant's"])
def test_an_id_the_path_does_not_hold_is_a_refusal(client, app, world, tenant, whose):
    """Under one's own organization, an id that exists nowhere and one of another tenant
    answer alike (404), and both are recorded: probing for other tenants' ids shows."""
    site_id = uuid.uuid4() if whose == "nobody's" else world.tenant("Other").site.id
    admin, rid = tenant["org_admin"], request_id()
    path = f"{tenant.org_path}/sites/{site_id}"
    assert_problem(client.get(path, headers=with_id(admin.headers, rid)), 404)
    [row] = denials(app, rid)
    assert (row.org_id, row.actor_id, row.action, row.resource_type, row.resource_id) == (
        tenant.org.id, admin.id, "lookup", "Site", str(site_id))
    assert row.data == {"reason": "not_found", "method": "GET",
                        "route": "/v1/orgs/<uuid:org_id>/sites/<uuid:site_id>"}
    assert [e["request_id"] for e in audit_log(client, tenant)] == [rid]


def test_an_unknown_organization_is_audited_like_a_foreign_one(client, app, tenant):
    """Row-level security hides both alike, so neither the answer nor the log can tell an
    organization that does not exist from one the caller holds nothing in."""
    rid, unknown = request_id(), uuid.uuid4()
    response = client.get(f"/v1/orgs/{unknown}", headers=with_id(tenant["org_admin"].headers, rid))
    assert_problem(response, 404)
    [row] = denials(app, rid)
    assert (row.action, row.resource_type, row.org_id) == ("access", "Organization", unknown)


def test_audit_log_is_newest_first_by_default(client, tenant):
    rids = [request_id() for _ in range(3)]
    for rid in rids:
        client.get(tenant.org_path, headers=with_id(tenant["outsider"].headers, rid))
    assert [e["request_id"] for e in audit_log(client, tenant)] == rids[::-1]
    assert [e["request_id"] for e in audit_log(client, tenant, sort="created_at")] == rids
    assert [e["request_id"] for e in audit_log(client, tenant, limit=1)] == rids[::-1]


@pytest.mark.parametrize("sort", ["name", "action", "-id"])
def test_audit_log_sorts_by_creation_only(client, tenant, sort):
    response = client.get(
        tenant.org_path + "/audit-events",
        query_string={"sort": sort},
        headers=tenant["org_admin"].headers,
    )
    assert_problem(response, 400, errors={"sort"})


def test_what_is_for_people_only_is_a_recorded_refusal_for_a_key(client, app, tenant):
    """An org_admin API key asking for what the policy keeps for people gets a 403, and the
    refusal names the policy's action and resource (policies/accounts.polar, ...)."""
    from tests.support.keys import create_api_key

    key = create_api_key(client, tenant, role="org_admin")
    asks = [
        (lambda h: client.get("/v1/me", headers=h), "read_profile", "Account", key.id),
        (lambda h: client.post("/v1/orgs", json={"name": "Mine"}, headers=h),
         "create_organization", "Account", key.id),
        (lambda h: client.post(tenant.org_path + "/members", headers=h,
                               json={"email": tenant["outsider"].email, "role": "org_admin"}),
         "create", "OrgMembership", None),
        (lambda h: client.get(tenant.org_path + "/api-keys", headers=h),
         "manage_api_keys", "Organization", str(tenant.org.id)),
    ]
    for send, action, resource_type, resource_id in asks:
        rid = request_id()
        assert_problem(send(with_id(key.headers, rid)), 403)
        [row] = denials(app, rid)
        assert (row.actor_type, row.actor_id, row.action, row.resource_type) == (
            "api_key", uuid.UUID(key.id), action, resource_type)
        assert row.resource_id == (None if resource_id is None else str(resource_id))
