"""Invitations: a role offered to an address, granted when its verified owner accepts.

Inviting answers the same whether an account uses the address or not (the same rows are
written and the same mail is sent), so it tells no one who has an account. Who may
invite with which role, and who may accept, is the policy's (invitations.polar).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import Select, select, text, update
from sqlalchemy.orm import Session

from app import mail
from app.config import Settings
from app.db import utcnow
from app.errors import Conflict, Missing, NotFound
from app.models import Invitation, Organization, OrgMembership, Site, SiteMembership, User
from app.services import accounts, audit, memberships
from app.services.lookups import one_or_missing


def proposed(org: Organization, site: Site | None, email: str, role: str) -> Invitation:
    """An invitation, not saved (inviting is authorized on the membership it offers:
    memberships.proposed_org_member, proposed_site_member)."""
    return Invitation(org_id=org.id, site_id=site.id if site else None, email=email, role=role)


def _pending() -> Select[tuple[Invitation]]:
    return select(Invitation).where(
        Invitation.accepted_at.is_(None), Invitation.declined_at.is_(None),
        Invitation.revoked_at.is_(None), Invitation.expires_at > utcnow(),
    )


def pending(org_id: uuid.UUID, site_id: uuid.UUID | None) -> Select[tuple[Invitation]]:
    """Open invitations to the organization itself (`site_id` None) or to one site."""
    stmt = _pending().where(Invitation.org_id == org_id)
    if site_id is None:
        return stmt.where(Invitation.site_id.is_(None))
    return stmt.where(Invitation.site_id == site_id)


def get(
    session: Session, org_id: uuid.UUID, site_id: uuid.UUID | None, invitation_id: uuid.UUID,
    *, lock: bool = False,
) -> Invitation:
    stmt = pending(org_id, site_id).where(Invitation.id == invitation_id)
    return one_or_missing(session, stmt.with_for_update() if lock else stmt, Invitation,
                          invitation_id, org_id)


def create(
    session: Session, settings: Settings, invitation: Invitation, inviter: User, place: str
) -> Invitation:
    """Store `invitation` (see `proposed`) and mail it. An open invitation of the same
    address to the same place is replaced. 409 only when the address already holds a role
    there, which the inviter can see in the member list anyway."""
    if _is_member(session, invitation):
        raise Conflict("This address already holds a role here.")
    now = utcnow()
    session.execute(
        update(Invitation)
        .where(Invitation.id.in_(pending(invitation.org_id, invitation.site_id)
                                 .where(Invitation.email == invitation.email)
                                 .with_only_columns(Invitation.id)))
        .values(revoked_at=now)
    )
    invitation.id = uuid.uuid4()
    invitation.invited_by = inviter.id
    invitation.expires_at = now + timedelta(seconds=settings.invitation_ttl_seconds)
    session.add(invitation)
    session.flush()
    _mail(session, settings, invitation, inviter, place)
    return invitation


def _is_member(session: Session, invitation: Invitation) -> bool:
    user = select(User.id).where(User.email == invitation.email).scalar_subquery()
    if invitation.site_id is None:
        stmt = memberships.org_members(invitation.org_id).where(OrgMembership.user_id == user)
        return session.scalar(stmt) is not None
    site_stmt = select(SiteMembership).where(
        SiteMembership.site_id == invitation.site_id, SiteMembership.user_id == user
    )
    return session.scalar(site_stmt) is not None


def _mail(
    session: Session, settings: Settings, invitation: Invitation, inviter: User, place: str
) -> None:
    mail.enqueue(
        session, invitation.email, "invitation",
        inviter=inviter.display_name or inviter.email, place=place, role=invitation.role,
        link=accounts.link(settings, "invitations", id=str(invitation.id)),
        expires=invitation.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
    )


def resend(
    session: Session, settings: Settings, invitation: Invitation, inviter: User, place: str
) -> None:
    """Mail it again, open for another full period."""
    invitation.expires_at = utcnow() + timedelta(seconds=settings.invitation_ttl_seconds)
    session.flush()
    _mail(session, settings, invitation, inviter, place)


def revoke(session: Session, invitation: Invitation) -> None:
    invitation.revoked_at = utcnow()
    session.flush()


# -- the invitee -------------------------------------------------------------------------------


def mine(session: Session, user_id: uuid.UUID) -> list[Invitation]:
    """Open invitations to the address of the signed-in person `user_id`, across
    organizations. On PostgreSQL through `app_my_invitations()` (migration 0009), which
    reads the person from the transaction's `app.user_id`: row-level security hides every
    other organization's rows, and the invitee belongs to none of them yet."""
    if session.get_bind().dialect.name == "postgresql":
        stmt = select(Invitation).from_statement(text("SELECT * FROM app_my_invitations()"))
        return sorted(session.scalars(stmt), key=lambda i: i.created_at)
    live = Organization.deleted_at.is_(None)
    stmt = (_pending().join(User, User.email == Invitation.email)
            .join(Organization, Organization.id == Invitation.org_id)
            .outerjoin(Site, Site.id == Invitation.site_id)
            .where(User.id == user_id, User.deleted_at.is_(None), live,
                   Site.deleted_at.is_(None))
            .order_by(Invitation.created_at))
    return list(session.scalars(stmt))


def mine_one(session: Session, user_id: uuid.UUID, invitation_id: uuid.UUID) -> Invitation:
    for invitation in mine(session, user_id):
        if invitation.id == invitation_id:
            return invitation
    raise NotFound(missing=Missing("Invitation", invitation_id, None))


def accept(
    session: Session, invitation: Invitation, user_id: uuid.UUID, *, by: audit.Author
) -> None:
    """Grant the invitation's role (the request is in its organization's scope)."""
    if _is_member(session, invitation):
        raise Conflict("You already hold a role here.")
    if invitation.site_id is None:
        memberships.grant_org(session, invitation.org_id, user_id, invitation.role, by=by)
    else:
        memberships.grant_site(session, invitation.org_id, invitation.site_id, user_id,
                               invitation.role, by=by)
    invitation.accepted_at = utcnow()
    session.flush()


def decline(session: Session, invitation: Invitation) -> None:
    invitation.declined_at = utcnow()
    session.flush()
