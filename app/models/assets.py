"""Uploaded files. The bytes live in object storage under a key the server chose; the row
says what the client declared and whether the storage confirmed it."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Entity, UTCDateTime
from app.models.resource import Resource
from app.models.tenancy import in_one_site

ASSET_STATUSES = ("pending", "ready")


class Asset(Entity):
    __tablename__ = "assets"
    __table_args__ = (
        in_one_site("assets"),
        Index("ix_assets_site_created", "org_id", "site_id", "created_at", "id"),
        # Target of the composite foreign keys that keep gallery rows inside one site.
        UniqueConstraint("id", "site_id", name="uq_assets_id_site_id"),
        Index("ix_assets_status_created_at", "status", "created_at"),
        CheckConstraint("status IN ('pending', 'ready')", name="status"),
        CheckConstraint("size_bytes > 0", name="size_positive"),
    )
    __resource__ = Resource(
        fields=("id", "created_by"), relations={"site": ("Site", "site_id")},
        sample=lambda place: Asset(
            org_id=place.org.id, site_id=place.site.id, key=f"samples/{uuid.uuid4()}",
            filename="sample.png", content_type="image/png", size_bytes=1, status="ready",
            tags=[], created_by=place.created_by,
        ),
        path_param="asset_id",
    )

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    site_id: Mapped[uuid.UUID]
    # Where the object is now: the upload key while pending, the final key once ready.
    key: Mapped[str] = mapped_column(String(1024), unique=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(127))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    title: Mapped[str | None] = mapped_column(String(200))
    alt_text: Mapped[str | None] = mapped_column(String(1000))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # object removed

