"""The audit trail of changes: each kind of change leaves one row (who, what, before and
after, request id, organization), written with the change in the request's transaction,
readable by the organization's admins with filters, and by no other organization."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.support import PASSWORD
from tests.support.http import (
    assert_problem,
    audit_rows,
    etag,
    if_match,
    items,
    request_id,
    with_id,
)
from tests.support.invitations import invite
from tests.support.keys import (
    api_keys_path,
    create_api_key,
    create_ingest_key,
    ingest_keys_path,
    split_key,
)

pytestmark = pytest.mark.portable


def audit_log(client: Any, tenant: Any, **params: Any) -> list[dict[str, Any]]:
    return items(client, tenant.org_path + "/audit-events", tenant["org_admin"], **params)


def one_change(client: Any, tenant: Any, rid: str) -> dict[str, Any]:
    """The one row the request `rid` left in the organization's log: a change."""
    rows = [e for e in audit_log(client, tenant) if e["request_id"] == rid]
    assert len(rows) == 1, rows
    assert rows[0]["event"] == "change"
    return rows[0]


def test_a_role_change_is_recorded_with_before_and_after(client, tenant):
    admin, member = tenant["org_admin"], tenant["member"]
    rid = request_id()
    r = client.patch(f"{tenant.org_path}/members/{member.id}", json={"role": "site_admin"},
                     headers=with_id(admin.headers, rid))
    assert r.status_code == 200, r.get_data(as_text=True)
    row = one_change(client, tenant, rid)
    assert {k: row[k] for k in ("actor_type", "actor_id", "action", "resource_type")} == {
        "actor_type": "user", "actor_id": str(admin.id), "action": "org_member.role_changed",
        "resource_type": "OrgMembership"}
    assert row["before"] == {"user_id": str(member.id), "role": "member"}
    assert row["after"] == {"user_id": str(member.id), "role": "site_admin"}


def test_the_same_role_again_records_nothing(client, tenant):
    member, rid = tenant["member"], request_id()
    r = client.patch(f"{tenant.org_path}/members/{member.id}", json={"role": "member"},
                     headers=with_id(tenant["org_admin"].headers, rid))
    assert r.status_code == 200
    assert [e for e in audit_log(client, tenant) if e["request_id"] == rid] == []


def test_a_site_role_change_and_removals_are_recorded(client, tenant):
    admin, site_member = tenant["site_admin"], tenant["site_member"]
    path = f"{tenant.site_path}/members/{site_member.id}"
    changed, removed = request_id(), request_id()
    assert client.patch(path, json={"role": "viewer"},
                        headers=with_id(admin.headers, changed)).status_code == 200
    assert client.delete(path, headers=with_id(admin.headers, removed)).status_code == 204
    row = one_change(client, tenant, changed)
    assert (row["action"], row["actor_id"]) == ("site_member.role_changed", str(admin.id))
    site = str(tenant.site.id)
    assert row["before"] == {"user_id": str(site_member.id), "site_id": site, "role": "member"}
    assert row["after"] == {"user_id": str(site_member.id), "site_id": site, "role": "viewer"}
    row = one_change(client, tenant, removed)
    assert row["action"] == "site_member.removed"
    assert row["before"]["role"] == "viewer" and row["after"] is None

    viewer, rid = tenant["viewer"], request_id()
    assert client.delete(f"{tenant.org_path}/members/{viewer.id}",
                         headers=with_id(tenant["org_admin"].headers, rid)).status_code == 204
    row = one_change(client, tenant, rid)
    assert (row["action"], row["resource_type"]) == ("org_member.removed", "OrgMembership")
    assert row["before"] == {"user_id": str(viewer.id), "role": "viewer"}
    assert row["after"] is None


def test_a_member_added_by_an_accepted_invitation_is_recorded(client, world, tenant):
    newcomer = world.user()
    sent = invite(client, tenant["org_admin"], tenant.org_path, newcomer.email, "viewer")
    assert sent.status_code == 202
    rid = request_id()
    r = client.post(f"/v1/invitations/{sent.get_json()['id']}/accept",
                    headers=with_id(newcomer.headers, rid))
    assert r.status_code == 200, r.get_data(as_text=True)
    row = one_change(client, tenant, rid)
    assert (row["action"], row["actor_id"]) == ("org_member.added", str(newcomer.id))
    assert row["before"] is None
    assert row["after"] == {"user_id": str(newcomer.id), "role": "viewer"}


def test_keys_created_and_revoked_are_recorded_without_their_secrets(client, tenant):
    admin = tenant["org_admin"]
    api_key = create_api_key(client, tenant, role="member")
    ingest_key = create_ingest_key(client, tenant, allowed_origins=["https://shop.example"])
    created = {e["resource_id"]: e for e in audit_log(client, tenant, action="api_key.created")}
    row = created[api_key.id]
    assert (row["resource_type"], row["actor_id"], row["before"]) == ("ApiKey", str(admin.id),
                                                                       None)
    assert row["after"] == {"name": "ci-member", "role": "member", "site_id": None,
                            "expires_at": None, "revoked_at": None}
    [row] = audit_log(client, tenant, action="ingest_key.created")
    assert (row["resource_id"], row["actor_id"]) == (ingest_key.id,
                                                      str(tenant["site_admin"].id))
    assert row["after"]["allowed_origins"] == ["https://shop.example"]

    rids = request_id(), request_id()
    assert client.delete(f"{api_keys_path(tenant)}/{api_key.id}",
                         headers=with_id(admin.headers, rids[0])).status_code == 204
    assert client.delete(f"{ingest_keys_path(tenant)}/{ingest_key.id}",
                         headers=with_id(admin.headers, rids[1])).status_code == 204
    for rid, action in zip(rids, ("api_key.revoked", "ingest_key.revoked"), strict=True):
        row = one_change(client, tenant, rid)
        assert row["action"] == action
        assert row["before"]["revoked_at"] is None and row["after"]["revoked_at"] is not None

    text = json.dumps(audit_log(client, tenant))
    for key in (api_key, ingest_key):
        assert key.secret not in text and split_key(key.secret)[1] not in text
    assert "secret" not in text and "hash" not in text


def test_a_site_deleted_is_recorded(client, tenant):
    admin, rid = tenant["org_admin"], request_id()
    tag = etag(client, tenant.site_path, admin)
    r = client.delete(tenant.site_path, headers=with_id(if_match(admin.headers, tag), rid))
    assert r.status_code == 204
    row = one_change(client, tenant, rid)
    assert (row["action"], row["resource_type"], row["resource_id"]) == (
        "site.deleted", "Site", str(tenant.site.id))
    assert row["before"]["deleted_at"] is None and row["after"]["deleted_at"] is not None
    assert row["before"]["name"] == tenant.site.name


def test_an_organization_deleted_is_recorded_in_its_own_log(app, client, tenant):
    admin, rid = tenant["org_admin"], request_id()
    tag = etag(client, tenant.org_path, admin)
    r = client.delete(tenant.org_path, headers=with_id(if_match(admin.headers, tag), rid))
    assert r.status_code == 204
    [row] = audit_rows(app, rid)  # every row of the request: the log is gone with the org
    assert (row.event, row.org_id, row.action, row.actor_id) == (
        "change", tenant.org.id, "organization.deleted", admin.id)
    assert row.data["before"]["deleted_at"] is None
    assert row.data["after"]["deleted_at"] is not None


def test_a_change_that_fails_leaves_no_row(app, client, tenant):
    """Written in the request's transaction: the last org_admin cannot be demoted (409),
    and neither the change nor its row is kept."""
    admin, rid = tenant["org_admin"], request_id()
    r = client.patch(f"{tenant.org_path}/members/{admin.id}", json={"role": "viewer"},
                     headers=with_id(admin.headers, rid))
    assert_problem(r, 409)
    assert audit_rows(app, rid) == []


def test_password_changed_and_sessions_revoked_are_the_accounts_own(app, client, world, tenant):
    """An account's own changes name no organization: no organization's admin reads them."""
    person = tenant["member"]
    rid = request_id()
    r = client.post("/v1/auth/password", headers=with_id(person.headers, rid),
                    json={"current_password": PASSWORD, "new_password": "another long one 42"})
    assert r.status_code == 204, r.get_data(as_text=True)
    [row] = audit_rows(app, rid)
    assert (row.event, row.org_id, row.actor_id, row.action, row.resource_type,
            row.resource_id) == ("change", None, person.id, "account.password_changed",
                                 "Account", str(person.id))
    assert row.data == {"before": None, "after": {"sessions_revoked": 0}}
    text = json.dumps(row.data)
    assert PASSWORD not in text and "another long one" not in text and "argon" not in text

    other = world.user()
    rid = request_id()
    assert client.post("/v1/auth/logout-all",
                       headers=with_id(other.headers, rid)).status_code == 204
    [row] = audit_rows(app, rid)
    assert (row.org_id, row.actor_id, row.action) == (None, other.id,
                                                     "account.sessions_revoked")
    assert row.data["after"] == {"revoked": 1, "session_id": None}
    assert [e for e in audit_log(client, tenant) if e["action"].startswith("account.")] == []


def test_filters_by_action_actor_and_event(client, tenant):
    admin, site_admin = tenant["org_admin"], tenant["site_admin"]
    client.patch(f"{tenant.org_path}/members/{tenant['member'].id}", json={"role": "viewer"},
                 headers=admin.headers)
    create_ingest_key(client, tenant)  # by the site_admin
    client.patch(tenant.org_path, json={"name": "x"},  # a denial, by the viewer
                 headers=if_match(tenant["viewer"].headers, '"x"'))

    everything = audit_log(client, tenant)
    assert len(everything) == 3
    assert [e["action"] for e in audit_log(client, tenant, action="org_member.role_changed")] == [
        "org_member.role_changed"]
    assert [e["action"] for e in audit_log(client, tenant, actor_id=str(site_admin.id))] == [
        "ingest_key.created"]
    assert {e["action"] for e in audit_log(client, tenant, event="change")} == {
        "org_member.role_changed", "ingest_key.created"}
    assert [e["action"] for e in audit_log(client, tenant, event="authz.denied")] == ["update"]
    assert audit_log(client, tenant, action="org_member.role_changed",
                     actor_id=str(site_admin.id)) == []
    assert audit_log(client, tenant, action="nothing.like.this") == []


@pytest.mark.parametrize("params", [
    {"actor_id": "not-a-uuid"}, {"action": "x" * 65}, {"action": "a\x00b"},
    {"event": "y" * 65},
])
def test_malformed_filters_are_a_400(client, tenant, params):
    r = client.get(tenant.org_path + "/audit-events", query_string=params,
                   headers=tenant["org_admin"].headers)
    assert_problem(r, 400, errors=set(params))


def test_another_organizations_admin_never_sees_the_changes(client, world, tenant):
    elsewhere = world.tenant("Elsewhere")
    rid = request_id()
    r = client.patch(f"{tenant.org_path}/members/{tenant['member'].id}",
                     json={"role": "viewer"}, headers=with_id(tenant["org_admin"].headers, rid))
    assert r.status_code == 200
    assert [e["request_id"] for e in audit_log(client, tenant)] == [rid]
    assert audit_log(client, elsewhere) == []
    assert audit_log(client, elsewhere, action="org_member.role_changed") == []
    stranger = elsewhere["org_admin"].headers
    assert_problem(client.get(tenant.org_path + "/audit-events", headers=stranger), 404)
    assert_problem(client.get(tenant.org_path + "/audit-events",
                              query_string={"action": "org_member.role_changed"},
                              headers=stranger), 404)
    # and the changes elsewhere stay elsewhere
    member = elsewhere["member"]
    r = client.delete(f"{elsewhere.org_path}/members/{member.id}",
                      headers=elsewhere["org_admin"].headers)
    assert r.status_code == 204
    # (the stranger's attempts above are denials in this log: audited probes)
    assert [e["request_id"] for e in audit_log(client, tenant, event="change")] == [rid]
    assert [e["action"] for e in audit_log(client, elsewhere)] == ["org_member.removed"]
    assert uuid.UUID(audit_log(client, elsewhere)[0]["before"]["user_id"]) == member.id
