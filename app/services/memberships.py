"""Who holds which role on an organization or a site."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session

from app.auth import invalidation
from app.errors import Conflict
from app.models import Organization, OrgMembership, Site, SiteMembership, User
from app.services import audit
from app.services.lookups import one_or_missing

Membership = TypeVar("Membership", OrgMembership, SiteMembership)


def member_view(membership: OrgMembership | SiteMembership, user: User) -> dict[str, Any]:
    return {
        "user_id": user.id,
        "email": user.email,
        "display_name": user.display_name,
        "role": membership.role,
        "created_at": membership.created_at,
        "updated_at": membership.updated_at,
    }


def with_users(
    session: Session, memberships: Sequence[OrgMembership | SiteMembership]
) -> list[dict[str, Any]]:
    """Attach each membership's user with one query for the whole page."""
    ids = {m.user_id for m in memberships}
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(ids)))} if ids else {}
    return [member_view(m, users[m.user_id]) for m in memberships]


def with_role(membership: Membership, role: str) -> Membership:
    """The membership as it would be with `role`: what a role change is authorized on."""
    columns = {c.key: getattr(membership, c.key) for c in membership.__table__.columns}
    return type(membership)(**{**columns, "role": role})


# -- organizations ---------------------------------------------------------------------------


def proposed_org_member(org: Organization, role: str) -> OrgMembership:
    """A membership of `org` with `role`, not saved: what adding a member is authorized on."""
    return OrgMembership(org_id=org.id, role=role)


def org_members(org_id: uuid.UUID) -> Select[tuple[OrgMembership]]:
    return select(OrgMembership).where(OrgMembership.org_id == org_id)


def get_org_member(session: Session, org_id: uuid.UUID, user_id: uuid.UUID) -> OrgMembership:
    stmt = org_members(org_id).where(OrgMembership.user_id == user_id)
    return one_or_missing(session, stmt, OrgMembership, user_id, org_id)


def grant_org(
    session: Session, org_id: uuid.UUID, user_id: uuid.UUID, role: str, *, by: audit.Author
) -> OrgMembership:
    """Give `user_id` a role on the organization (an accepted invitation)."""
    membership = OrgMembership(org_id=org_id, user_id=user_id, role=role)
    session.add(membership)
    session.flush()
    invalidation.user_changed(session, user_id)
    audit.change(session, by, "org_member.added", membership, before=None,
                 after=audit.snapshot(membership))
    return membership


def _other_admins(session: Session, membership: OrgMembership) -> int:
    return session.scalar(
        select(func.count())
        .select_from(OrgMembership)
        .where(
            OrgMembership.org_id == membership.org_id,
            OrgMembership.role == "org_admin",
            OrgMembership.id != membership.id,
        )
    ) or 0


def change_org_role(
    session: Session, membership: OrgMembership, role: str, *, by: audit.Author
) -> None:
    """Change a role; the caller holds the organization's row lock (see `get_org(lock=True)`)."""
    if membership.role == "org_admin" and role != "org_admin" and not _other_admins(
        session, membership
    ):
        raise Conflict("An organization must keep at least one org_admin.")
    _change_role(session, membership, role, "org_member.role_changed", by)


def _change_role(
    session: Session, membership: OrgMembership | SiteMembership, role: str, action: str,
    by: audit.Author,
) -> None:
    before = audit.snapshot(membership)
    membership.role = role
    session.flush()
    invalidation.user_changed(session, membership.user_id)
    if before["role"] != role:  # the same role again changes nothing: nothing to record
        audit.change(session, by, action, membership, before=before,
                     after=audit.snapshot(membership))


def remove_org_member(session: Session, membership: OrgMembership, *, by: audit.Author) -> None:
    """Remove a member and the site roles it held in the organization."""
    if membership.role == "org_admin" and not _other_admins(session, membership):
        raise Conflict("An organization must keep at least one org_admin.")
    audit.change(session, by, "org_member.removed", membership,
                 before=audit.snapshot(membership), after=None)
    session.execute(
        delete(SiteMembership).where(
            SiteMembership.org_id == membership.org_id,
            SiteMembership.user_id == membership.user_id,
        )
    )
    session.delete(membership)
    session.flush()
    invalidation.user_changed(session, membership.user_id)


# -- sites ------------------------------------------------------------------------------------


def proposed_site_member(site: Site, role: str) -> SiteMembership:
    """A role on `site`, not saved: what adding a site member is authorized on."""
    return SiteMembership(org_id=site.org_id, site_id=site.id, role=role)


def site_members(site: Site) -> Select[tuple[SiteMembership]]:
    return select(SiteMembership).where(
        SiteMembership.org_id == site.org_id, SiteMembership.site_id == site.id
    )


def get_site_member(session: Session, site: Site, user_id: uuid.UUID) -> SiteMembership:
    stmt = site_members(site).where(SiteMembership.user_id == user_id)
    return one_or_missing(session, stmt, SiteMembership, user_id, site.org_id)


def grant_site(
    session: Session, org_id: uuid.UUID, site_id: uuid.UUID, user_id: uuid.UUID, role: str,
    *, by: audit.Author,
) -> SiteMembership:
    """Give `user_id` a role on the site (an accepted invitation)."""
    membership = SiteMembership(org_id=org_id, site_id=site_id, user_id=user_id, role=role)
    session.add(membership)
    session.flush()
    invalidation.user_changed(session, user_id)
    audit.change(session, by, "site_member.added", membership, before=None,
                 after=audit.snapshot(membership))
    return membership


def change_site_role(
    session: Session, membership: SiteMembership, role: str, *, by: audit.Author
) -> None:
    _change_role(session, membership, role, "site_member.role_changed", by)


def remove_site_member(session: Session, membership: SiteMembership, *, by: audit.Author) -> None:
    audit.change(session, by, "site_member.removed", membership,
                 before=audit.snapshot(membership), after=None)
    session.delete(membership)
    session.flush()
    invalidation.user_changed(session, membership.user_id)
