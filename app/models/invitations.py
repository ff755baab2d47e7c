"""Invitations: a role on an organization or one of its sites, offered to an address and
granted only when the verified owner of that address accepts (policies/invitations.polar)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Entity, UTCDateTime, utcnow
from app.models.resource import Resource
from app.models.tenancy import ORG_ROLES, _role_check, in_one_site


class Invitation(Entity):
    __tablename__ = "invitations"
    __table_args__ = (
        in_one_site("invitations"),
        Index("ix_invitations_org_id_created_at", "org_id", "created_at", "id"),
        Index("ix_invitations_email", "email"),
        _role_check(ORG_ROLES),
    )
    __resource__ = Resource(
        fields=("id", "role", "site_id", "email"),
        relations={"organization": ("Organization", "org_id")},
        sample=lambda place: Invitation(
            org_id=place.org.id, email="invitee@sample.test", role="viewer",
            invited_by=place.created_by, expires_at=utcnow() + timedelta(days=1),
        ),
        path_param="invitation_id",
    )

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    site_id: Mapped[uuid.UUID | None]  # None: a role on the whole organization
    email: Mapped[str] = mapped_column(String(320))  # lower-cased, as accounts store it
    role: Mapped[str] = mapped_column(String(32))
    invited_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    declined_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
