"""Credentials for machines: API keys (org or site scoped, with a role) and ingest keys
(one site, write-only to its events). The secret is shown once; only its SHA-256 is kept."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Entity, UTCDateTime
from app.models.resource import Resource
from app.models.tenancy import ORG_ROLES, _role_check, in_one_site


class ApiKey(Entity):
    __tablename__ = "api_keys"
    __table_args__ = (
        in_one_site("api_keys"),
        Index("ix_api_keys_org_id_created_at", "org_id", "created_at", "id"),
        _role_check(ORG_ROLES),
    )
    __resource__ = Resource(
        fields=("id", "role", "site_id"),
        relations={"organization": ("Organization", "org_id"), "site": ("Site", "site_id")},
        sample=lambda place: ApiKey(
            org_id=place.org.id, name="sample", role="viewer", secret_hash="-",  # noqa: S106 - a sample, never stored as a credential
            created_by=place.created_by,
        ),
        path_param="api_key_id",
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



class IngestKey(Entity):
    __tablename__ = "ingest_keys"
    __table_args__ = (
        in_one_site("ingest_keys"),
        Index("ix_ingest_keys_site_id_created_at", "site_id", "created_at", "id"),
    )
    __resource__ = Resource(
        fields=("id",), relations={"site": ("Site", "site_id")},
        sample=lambda place: IngestKey(
            org_id=place.org.id, site_id=place.site.id, name="sample", secret_hash="-",  # noqa: S106 - a sample, never stored as a credential
            allowed_origins=[], created_by=place.created_by,
        ),
        path_param="ingest_key_id",
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

