"""The audit log: append-only records of security-relevant events: denials, and changes
(app/services/audit.py)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Entity
from app.models.resource import Resource


class AuditEvent(Entity):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_org_id_created_at", "org_id", "created_at", "id"),)
    __resource__ = Resource(
        fields=("id",), relations={"organization": ("Organization", "org_id")},
        sample=lambda place: AuditEvent(
            org_id=place.org.id, event="sample", actor_type="user", action="read",
            resource_type="Organization", data={},
        ),
    )

    # No foreign keys: the log outlives what it talks about.
    org_id: Mapped[uuid.UUID | None]
    event: Mapped[str] = mapped_column(String(64))
    actor_type: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[uuid.UUID | None]
    action: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(128))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


    @property
    def before(self) -> dict[str, Any] | None:
        """A change's resource before it (None for a denial, or what did not exist)."""
        return (self.data or {}).get("before")

    @property
    def after(self) -> dict[str, Any] | None:
        """A change's resource after it (None for a denial, or what is gone)."""
        return (self.data or {}).get("after")
