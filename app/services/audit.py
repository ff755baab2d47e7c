"""Audit log: authorization denials, changes, and other security events.

Denials are collected during the request and written by their own transaction after the
request's transaction has ended, so they survive its rollback (the usual fate of a
request that was denied).

Changes (a member added, a role changed, a key created or revoked, a site deleted, a
password changed...) are written by the service that makes them, in the request's own
session: the row commits with the change, or neither does. Each says who (`Author`),
what (`action`, one of CHANGES, on a resource type and id), and the resource before and
after as JSON (`snapshot`: chosen columns, never a secret or a hash).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from types import EllipsisType
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from app.errors import Missing
from app.models import AuditEvent, Organization
from app.models.resource import polar_name

if TYPE_CHECKING:  # annotations only: nothing here can test an actor's class
    from app.authz.actors import Principal


def org_of(resource: object) -> uuid.UUID | None:
    if isinstance(resource, Organization):
        return resource.id
    return getattr(resource, "org_id", None)


def denial(
    actor: Principal, action: str, resource: object, request_id: str | None
) -> AuditEvent:
    resource_id = getattr(resource, "id", None)
    return AuditEvent(
        org_id=org_of(resource),
        event="authz.denied",
        actor_type=actor.kind,
        actor_id=actor.id,
        action=action,
        resource_type=polar_name(type(resource)),
        resource_id=str(resource_id) if resource_id is not None else None,
        request_id=request_id,
        data={},
    )


def refusal(
    actor: Principal, missing: Missing, method: str, route: str, request_id: str | None
) -> AuditEvent:
    """A request for an id that its path's scope does not hold (see `errors.Missing`)."""
    return AuditEvent(
        org_id=missing.org_id,
        event="authz.denied",
        actor_type=actor.kind,
        actor_id=actor.id,
        action="lookup",
        resource_type=missing.resource_type,
        resource_id=str(missing.resource_id),
        request_id=request_id,
        data={"reason": "not_found", "method": method, "route": route},
    )


CHANGE = "change"  # the `event` of every change row; denials are "authz.denied"

# Every action a change row may name: the audit endpoint's `action` filter lists them.
CHANGES = (
    "org_member.added", "org_member.role_changed", "org_member.removed",
    "site_member.added", "site_member.role_changed", "site_member.removed",
    "api_key.created", "api_key.revoked", "ingest_key.created", "ingest_key.revoked",
    "site.deleted", "organization.deleted",
    "account.password_changed", "account.password_reset", "account.sessions_revoked",
)

# What a snapshot of each model keeps: what a reviewer needs to see a change, never a
# secret, a hash or an address.
SNAPSHOT_FIELDS: dict[str, tuple[str, ...]] = {
    "OrgMembership": ("user_id", "role"),
    "SiteMembership": ("user_id", "site_id", "role"),
    "ApiKey": ("name", "role", "site_id", "expires_at", "revoked_at"),
    "IngestKey": ("name", "site_id", "allowed_origins", "revoked_at"),
    "Site": ("name", "domain", "deleted_at"),
    "Organization": ("name", "deleted_at"),
}


@dataclass(frozen=True)
class Author:
    """Who makes a change, and in which request: what a service needs to audit it (it
    reads no Flask globals; app/api/helpers.py `author()` makes one for the caller)."""

    actor_type: str
    actor_id: uuid.UUID | None
    request_id: str | None


def _json(value: Any) -> Any:
    if isinstance(value, (uuid.UUID, datetime)):
        return value.isoformat() if isinstance(value, datetime) else str(value)
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    return value


def snapshot(resource: object) -> dict[str, Any]:
    """The audited columns of `resource` as JSON (see SNAPSHOT_FIELDS)."""
    names = SNAPSHOT_FIELDS[polar_name(type(resource))]
    return {name: _json(getattr(resource, name)) for name in names}


def change(
    session: Session,
    by: Author,
    action: str,
    resource: object,
    *,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    org_id: uuid.UUID | EllipsisType | None = ...,
) -> AuditEvent:
    """Record a change in `session` (the request's: it commits with the change). The
    organization is the resource's unless `org_id` is given (None: an account's own
    change, which no organization sees)."""
    if action not in CHANGES:
        raise ValueError(f"unknown audit action {action!r}")
    rid = getattr(resource, "id", None)
    row = AuditEvent(
        org_id=org_of(resource) if org_id is ... else org_id,
        event=CHANGE,
        actor_type=by.actor_type,
        actor_id=by.actor_id,
        action=action,
        resource_type=polar_name(type(resource)),
        resource_id=str(rid) if rid is not None else None,
        request_id=by.request_id,
        data={"before": before, "after": after},
    )
    session.add(row)
    return row


def write(session: Session, events: list[AuditEvent]) -> None:
    session.add_all(events)


def org_events(
    org_id: uuid.UUID,
    *,
    event: str | None = None,
    action: str | None = None,
    actor_id: uuid.UUID | None = None,
) -> Select[tuple[AuditEvent]]:
    """The organization's rows, narrowed by the filters that are given."""
    stmt = select(AuditEvent).where(AuditEvent.org_id == org_id)
    if event is not None:
        stmt = stmt.where(AuditEvent.event == event)
    if action is not None:
        stmt = stmt.where(AuditEvent.action == action)
    if actor_id is not None:
        stmt = stmt.where(AuditEvent.actor_id == actor_id)
    return stmt
