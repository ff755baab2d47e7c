"""Audit log: authorization denials and other security events.

Denials are collected during the request and written by their own transaction after the
request's transaction has ended, so they survive its rollback (the usual fate of a
request that was denied).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

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


def write(session: Session, events: list[AuditEvent]) -> None:
    session.add_all(events)


def org_events(org_id: uuid.UUID) -> Select[tuple[AuditEvent]]:
    return select(AuditEvent).where(AuditEvent.org_id == org_id)
