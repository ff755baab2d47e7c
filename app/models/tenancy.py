"""Organizations own sites; memberships grant a role on one of them."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Entity, UTCDateTime
from app.models.identity import User
from app.models.resource import Resource

# Highest last. The hierarchy itself lives in policies/, these are only the valid names.
ORG_ROLES = ("viewer", "member", "site_admin", "org_admin")
SITE_ROLES = ("viewer", "member", "site_admin")


def in_one_site(table: str) -> ForeignKeyConstraint:
    """(site_id, org_id) -> sites (id, org_id): a site-owned row can never point at a site
    of another organization."""
    return ForeignKeyConstraint(
        ["site_id", "org_id"], ["sites.id", "sites.org_id"], name=f"fk_{table}_site_org",
        ondelete="CASCADE",
    )


def _role_check(roles: tuple[str, ...]) -> CheckConstraint:
    names = ", ".join(f"'{r}'" for r in roles)
    return CheckConstraint(f"role IN ({names})", name="role")


class Organization(Entity):
    __tablename__ = "organizations"
    __resource__ = Resource(
        fields=("id",), sample=lambda place: place.org, path_param="org_id", decided_by=("id",),
    )

    name: Mapped[str] = mapped_column(String(200))
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Site(Entity):
    __tablename__ = "sites"
    __table_args__ = (
        # Target of the composite foreign keys that pin site-owned rows to one organization.
        UniqueConstraint("id", "org_id", name="uq_sites_id_org_id"),
        Index("ix_sites_org_id_created_at", "org_id", "created_at", "id"),
    )
    __resource__ = Resource(
        fields=("id", "org_id"), relations={"parent": ("Organization", "org_id")},
        sample=lambda place: place.site, path_param="site_id", decided_by=("id", "org_id"),
    )

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    name: Mapped[str] = mapped_column(String(200))
    domain: Mapped[str | None] = mapped_column(String(253))
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)



class OrgMembership(Entity):
    __tablename__ = "org_memberships"
    __table_args__ = (
        UniqueConstraint("org_id", "user_id", name="uq_org_memberships_org_id_user_id"),
        Index("ix_org_memberships_user_id", "user_id"),
        _role_check(ORG_ROLES),
    )
    __resource__ = Resource(
        fields=("id", "user_id", "role"), relations={"organization": ("Organization", "org_id")},
        sample=lambda place: OrgMembership(
            org_id=place.org.id, user_id=place.of(User).id, role="viewer"
        ),
    )

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(32))



class SiteMembership(Entity):
    __tablename__ = "site_memberships"
    __table_args__ = (
        in_one_site("site_memberships"),
        UniqueConstraint("site_id", "user_id", name="uq_site_memberships_site_id_user_id"),
        Index("ix_site_memberships_user_id", "user_id"),
        Index("ix_site_memberships_org_id", "org_id"),
        _role_check(SITE_ROLES),
    )
    __resource__ = Resource(
        fields=("id", "user_id", "role"), relations={"site": ("Site", "site_id")},
        sample=lambda place: SiteMembership(
            org_id=place.org.id, site_id=place.site.id, user_id=place.of(User).id, role="viewer"
        ),
    )

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    site_id: Mapped[uuid.UUID]
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(32))
