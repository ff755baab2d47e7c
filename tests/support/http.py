"""Shared assertions and builders for the endpoint tests.

- `assert_problem`: every error response is application/problem+json of one shape.
- `role_table` + `RoleCase` + `check_role_case`: role x endpoint expectations written as a
  table (one row per endpoint, one column per role of `world.tenant()`), each case checked
  for its status, for the audit row a denial must leave, and for the state it may (or may
  not) change.
- `pages`: walks a list endpoint through `next_cursor`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.db import owner_sessionmaker
from app.models import AuditEvent, Organization, OrgMembership, Site, SiteMembership, User
from tests.support import Person, Tenant

PROBLEM_KEYS = {"type", "title", "status", "detail", "request_id"}
LEAKS = ("Traceback", "sqlalchemy", "psycopg", "SELECT ", 'File "')

# The people of `world.tenant()`, in the column order of every role table.
ROLES = (
    "org_admin",
    "site_admin",
    "member",
    "viewer",
    "site_site_admin",
    "site_member",
    "site_viewer",
    "outsider",
)
ORG_ROLE_HOLDERS = ROLES[:4]  # hold a role on the organization
SITE_ONLY_ROLES = ROLES[4:7]  # hold a role on tenant.site only


# -- problem+json ------------------------------------------------------------------------------


def assert_problem(response: Any, status: int, *, errors: Iterable[str] | None = None) -> dict:
    """The response is an RFC 9457 problem of `status`; returns its body.

    `errors`, when given, is the exact set of fields the problem must name. A 400 (invalid
    input) and a 422 (a reused `Idempotency-Key`) always name some; other statuses only
    when `errors` is given.
    """
    text = response.get_data(as_text=True)
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {text}"
    assert response.mimetype == "application/problem+json", response.headers
    body = json.loads(text)
    named = status in (400, 422) or errors is not None
    expected_keys = PROBLEM_KEYS | ({"errors"} if named else set())
    assert set(body) == expected_keys, body
    assert body["status"] == status
    assert isinstance(body["type"], str) and body["type"].startswith("https://"), body
    assert isinstance(body["title"], str) and body["title"], body
    assert isinstance(body["detail"], str) and body["detail"], body
    assert body["request_id"] and body["request_id"] == response.headers.get("X-Request-ID")
    if named:
        assert isinstance(body["errors"], dict) and body["errors"], body
        for field, messages in body["errors"].items():
            assert isinstance(field, str)
            assert isinstance(messages, list | dict) and messages, body
    if errors is not None:
        assert set(body["errors"]) == set(errors), body["errors"]
    for leak in LEAKS:
        assert leak not in text, text
    return body


# Values a `Text` field (names) must refuse with a 400 naming the field.
BAD_NAMES = [
    "x" * 10_000,
    "x" * 201,
    "",
    "   ",
    "a\x00b",
    "two\nlines",
    "tab\there",
    "del\x7f",
    "c1\x85control",
    "\x1b[31mred",
    5,
    None,
    ["Acme"],
    {"en": "Acme"},
    True,
]


def check_each(values: Iterable[Any], check: Callable[[Any], None]) -> None:
    """Run `check` on every value; report every value that fails, not just the first."""
    failures = []
    for value in values:
        try:
            check(value)
        except AssertionError as exc:
            failures.append(f"{value!r:.60}: {str(exc).splitlines()[0]:.300}")
    assert not failures, "\n".join(failures)


# -- requests ----------------------------------------------------------------------------------


def request_id() -> str:
    return f"test-{uuid.uuid4().hex}"


def with_id(headers: dict[str, str], rid: str) -> dict[str, str]:
    return {**headers, "X-Request-ID": rid}


def etag(client: Any, path: str, person: Person) -> str:
    """The current ETag of `path`, as seen by `person` (who must be able to read it)."""
    response = client.get(path, headers=person.headers)
    assert response.status_code == 200, response.get_json()
    tag = response.headers.get("ETag")
    assert tag and tag.startswith('"') and tag.endswith('"'), tag
    return tag


def if_match(headers: dict[str, str], tag: str) -> dict[str, str]:
    return {**headers, "If-Match": tag}


def pages(client: Any, path: str, person: Person, **params: Any) -> list[dict]:
    """Every page of a list endpoint, following `next_cursor` until it is null."""
    result = []
    cursor = None
    for _ in range(1000):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = client.get(path, query_string=query, headers=person.headers)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert set(body) == {"items", "next_cursor"}
        if "limit" in params:
            assert len(body["items"]) <= params["limit"]
        result.append(body)
        cursor = body["next_cursor"]
        if cursor is None:
            return result
        assert body["items"], "a page with a next_cursor must not be empty"
    raise AssertionError("pagination does not end")


def items(client: Any, path: str, person: Person, **params: Any) -> list[dict]:
    return [item for page in pages(client, path, person, **params) for item in page["items"]]


# -- rows written directly (seeding, and reading what the API does not show) -----------------


def save(app: Any, *rows: Any) -> None:
    with owner_sessionmaker(app)() as session, session.begin():
        session.add_all(rows)


def denials(app: Any, rid: str) -> list[AuditEvent]:
    """The audit rows of request `rid` that are not changes (see `audit_rows`)."""
    return [row for row in audit_rows(app, rid) if row.event != "change"]


def audit_rows(app: Any, rid: str) -> list[AuditEvent]:
    """Every audit row of request `rid`: denials, and changes (app/services/audit.py)."""
    with owner_sessionmaker(app)() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.request_id == rid)))


def org_roles_of(app: Any, user_id: uuid.UUID) -> dict[uuid.UUID, str]:
    with owner_sessionmaker(app)() as session:
        rows = session.scalars(select(OrgMembership).where(OrgMembership.user_id == user_id))
        return {m.org_id: m.role for m in rows}


def site_roles_of(app: Any, user_id: uuid.UUID) -> dict[uuid.UUID, str]:
    with owner_sessionmaker(app)() as session:
        rows = session.scalars(select(SiteMembership).where(SiteMembership.user_id == user_id))
        return {m.site_id: m.role for m in rows}


BASE_TIME = datetime(2030, 1, 1, tzinfo=UTC)
# Names and creation times with ties on purpose: the order must then fall back on `id`.
SEED = [
    ("delta", 0),
    ("alpha", 1),
    ("charlie", 0),
    ("alpha", 2),
    ("bravo", 1),
    ("echo", 2),
    ("alpha", 0),
    ("bravo", 3),
]


def seed_time(step: int) -> datetime:
    return BASE_TIME + timedelta(minutes=step)


def seed_orgs(app: Any, person: Person, role: str = "viewer") -> list[Organization]:
    orgs = [Organization(name=name, created_at=seed_time(step)) for name, step in SEED]
    save(app, *orgs)
    save(app, *(OrgMembership(org_id=o.id, user_id=person.id, role=role) for o in orgs))
    return orgs


def seed_sites(app: Any, org: Organization) -> list[Site]:
    sites = [Site(org_id=org.id, name=name, created_at=seed_time(step)) for name, step in SEED]
    save(app, *sites)
    return sites


def seed_users(app: Any, count: int) -> list[User]:
    users = [
        User(email=f"seed-{uuid.uuid4().hex[:10]}@example.com", password_hash="x", display_name="")
        for _ in range(count)
    ]
    save(app, *users)
    return users


def seed_org_members(app: Any, org: Organization) -> list[OrgMembership]:
    users = seed_users(app, len(SEED))
    rows = [
        OrgMembership(org_id=org.id, user_id=u.id, role="viewer", created_at=seed_time(step))
        for u, (_, step) in zip(users, SEED, strict=True)
    ]
    save(app, *rows)
    return rows


def seed_site_members(app: Any, site: Site) -> list[SiteMembership]:
    users = seed_users(app, len(SEED))
    rows = [
        SiteMembership(
            org_id=site.org_id,
            site_id=site.id,
            user_id=u.id,
            role="viewer",
            created_at=seed_time(step),
        )
        for u, (_, step) in zip(users, SEED, strict=True)
    ]
    save(app, *rows)
    return rows


def seed_audit(app: Any, org: Organization) -> list[AuditEvent]:
    rows = [
        AuditEvent(
            org_id=org.id,
            event="authz.denied",
            actor_type="user",
            actor_id=uuid.uuid4(),
            action="read",
            resource_type="Organization",
            resource_id=str(org.id),
            request_id=f"seed-{i}",
            data={},
            created_at=seed_time(step),
        )
        for i, (_, step) in enumerate(SEED)
    ]
    save(app, *rows)
    return rows


# -- role tables -------------------------------------------------------------------------------


def role_table(table: dict[str, tuple[int, ...]]) -> list[Any]:
    """`{action: (status per role in ROLES order)}` -> pytest params (action, role, status)."""
    params = []
    for action, statuses in table.items():
        assert len(statuses) == len(ROLES), f"{action}: one status per role"
        for role, status in zip(ROLES, statuses, strict=True):
            params.append(pytest.param(action, role, status, id=f"{action}-{role}"))
    return params


@dataclass(frozen=True)
class RoleCase:
    """One endpoint of a role table.

    send:  makes the request as `person` with `headers` (the person's, plus a request id).
    authz: (action, resource type) the policy is asked about; a denial is audited with them.
    state: what the endpoint may change, observed by the org_admin; it must change when the
           call is allowed and stay the same when it is denied (authorize before writing).
    resource_id: (client, tenant) -> the id of the resource the denial names, when it is
           neither the tenant's organization nor its site (a gallery, ...); None for a
           resource about to be created (it has no id yet).
    """

    send: Callable[[Any, Tenant, Person, dict[str, str]], Any]
    authz: tuple[str, str]
    state: Callable[[Any, Tenant], Any] | None = None
    resource_id: Callable[[Any, Tenant], Any] | None = None


def check_role_case(client: Any, tenant: Tenant, case: RoleCase, role: str, expected: int) -> Any:
    person = tenant[role]
    before = case.state(client, tenant) if case.state else None
    rid = request_id()
    response = case.send(client, tenant, person, with_id(person.headers, rid))
    audited = denials(client.application, rid)
    if expected >= 400:
        assert_problem(response, expected)
        action, resource_type = case.authz
        if role == "outsider":
            # Row-level security hides the whole organization: the probe is audited as
            # an `access` denial on it, before any policy is asked (app/api/__init__.py).
            action, resource_type = "access", "Organization"
            resource_id = tenant.org.id
        elif case.resource_id is not None:
            resource_id = case.resource_id(client, tenant)
        else:
            resource_id = {"Organization": tenant.org.id, "Site": tenant.site.id}[resource_type]
        assert [
            (e.event, e.actor_type, e.actor_id, e.org_id, e.action, e.resource_type, e.resource_id)
            for e in audited
        ] == [
            (
                "authz.denied",
                "user",
                person.id,
                tenant.org.id,
                action,
                resource_type,
                None if resource_id is None else str(resource_id),
            )
        ]
        if case.state:
            assert case.state(client, tenant) == before, "a denied request changed state"
    else:
        assert response.status_code == expected, response.get_data(as_text=True)
        assert audited == []
        if case.state:
            assert case.state(client, tenant) != before, "an allowed request changed nothing"
    return response


def membership_id(client: Any, person: Person, scope: Organization | Site) -> uuid.UUID:
    """The id of `person`'s membership of an organization or a site."""
    model: Any = OrgMembership if isinstance(scope, Organization) else SiteMembership
    column = model.org_id if isinstance(scope, Organization) else model.site_id
    with owner_sessionmaker(client.application)() as session:
        return session.scalars(
            select(model.id).where(column == scope.id, model.user_id == person.id)
        ).one()
