"""Galleries of a site and their items (assets of the same site, in order)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Entity, UTCDateTime
from app.models.assets import Asset
from app.models.resource import Resource
from app.models.tenancy import in_one_site


class Gallery(Entity):
    __tablename__ = "galleries"
    __table_args__ = (
        in_one_site("galleries"),
        # The cover is an asset of the same site.
        ForeignKeyConstraint(
            ["cover_asset_id", "site_id"], ["assets.id", "assets.site_id"],
            name="fk_galleries_cover_site",
        ),
        UniqueConstraint("id", "site_id", name="uq_galleries_id_site_id"),
        # One index per sort order of the list endpoint; each ends on id (keyset pagination).
        Index("ix_galleries_site_created", "site_id", "created_at", "id"),
        Index("ix_galleries_site_updated", "site_id", "updated_at", "id"),
        Index("ix_galleries_site_title", "site_id", "title", "id"),
        CheckConstraint("item_count >= 0", name="item_count"),
    )
    __resource__ = Resource(
        fields=("id", "created_by"), relations={"site": ("Site", "site_id")},
        sample=lambda place: Gallery(
            org_id=place.org.id, site_id=place.site.id, title="sample", description="",
            created_by=place.created_by, item_count=0,
        ),
        path_param="gallery_id",
        # Its site (whose organization is org_id) and its creator: one gallery page asks
        # about one gallery, and the next request about the same site and creator is free.
        decided_by=("site_id", "org_id", "created_by"),
    )

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    site_id: Mapped[uuid.UUID]
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    cover_asset_id: Mapped[uuid.UUID | None]
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    item_count: Mapped[int] = mapped_column(Integer, default=0)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)



class GalleryItem(Entity):
    __tablename__ = "gallery_items"
    __table_args__ = (
        ForeignKeyConstraint(
            ["gallery_id", "site_id"], ["galleries.id", "galleries.site_id"],
            name="fk_gallery_items_gallery_site", ondelete="CASCADE",
        ),
        # Only assets of the gallery's own site can be items.
        ForeignKeyConstraint(
            ["asset_id", "site_id"], ["assets.id", "assets.site_id"],
            name="fk_gallery_items_asset_site",
        ),
        UniqueConstraint("gallery_id", "asset_id", name="uq_gallery_items_gallery_id_asset_id"),
        Index("ix_gallery_items_gallery_position", "gallery_id", "position", "id"),
    )
    __resource__ = Resource(
        fields=("id",), relations={"gallery": ("Gallery", "gallery_id")},
        sample=lambda place: GalleryItem(
            org_id=place.org.id, site_id=place.site.id, gallery_id=place.of(Gallery).id,
            asset_id=place.of(Asset).id, caption="", position=0,
        ),
        path_param="item_id",
    )

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    site_id: Mapped[uuid.UUID]
    gallery_id: Mapped[uuid.UUID]
    asset_id: Mapped[uuid.UUID]
    caption: Mapped[str] = mapped_column(String(1000), default="")
    position: Mapped[int] = mapped_column(Integer)

