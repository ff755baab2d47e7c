"""Credentials for machines: API keys (org or site scoped, with a role) and ingest keys
(one site, write-only to its events). The secret is shown once; only its SHA-256 is kept."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Entity, UTCDateTime
from app.models.tenancy import ORG_ROLES, Organization, Site, _role_check, in_one_site


class ApiKey(Entity):
    __tablename__ = "api_keys"
    __table_args__ = (
        in_one_site("api_keys"),
        Index("ix_api_keys_org_id_created_at", "org_id", "created_at", "id"),
        _role_check(ORG_ROLES),
    )

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    site_id: Mapped[uuid.UUID | None]  # None: the role applies to the whole organization
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    organization: Mapped[Organization] = relationship(viewonly=True)


class IngestKey(Entity):
    __tablename__ = "ingest_keys"
    __table_args__ = (
        in_one_site("ingest_keys"),
        Index("ix_ingest_keys_site_id_created_at", "site_id", "created_at", "id"),
    )

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    site_id: Mapped[uuid.UUID]
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str] = mapped_column(String(64))
    # Browser origins allowed to send events with this key; empty: any origin.
    allowed_origins: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    site: Mapped[Site] = relationship(
        viewonly=True, primaryjoin="Site.id == foreign(IngestKey.site_id)"
    )
