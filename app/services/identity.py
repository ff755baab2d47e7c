"""Accounts, logins and the actor behind an access token."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, Uuid, bindparam, null, select, text, union_all
from sqlalchemy.orm import Session

from app.auth.passwords import hash_password, needs_rehash, verify_password
from app.auth.throttle import Throttle
from app.authz.actors import Principal, UserActor
from app.db import utcnow
from app.errors import Unauthorized
from app.models import AuthSession, Organization, OrgMembership, Site, SiteMembership, User

INVALID_LOGIN = "Invalid email or password."


@dataclass(frozen=True)
class Grant:
    org_id: uuid.UUID
    site_id: uuid.UUID | None
    role: str


def sign_in(
    session: Session, email: str, password: str, client: str, throttle: Throttle | None
) -> User:
    """The one way to sign in with a password (the API's login, any sign-in page): the
    failed-password throttle (app/auth/throttle.py) applies before and after the check."""
    if throttle is not None:
        throttle.before(email, client)
    try:
        return check_password(session, email, password)
    except Unauthorized:
        if throttle is not None:
            throttle.failed(email, client)
        raise


def account(session: Session, user_id: uuid.UUID) -> User:
    """The live account of a signed-in person."""
    user = session.get(User, user_id)
    if user is None or user.deleted_at is not None:
        raise Unauthorized("The session of this access token has ended.")
    return user


def check_password(session: Session, email: str, password: str) -> User:
    """The user with these credentials. Unknown email and wrong password cost and answer
    the same; the hash is upgraded when the hashing parameters changed."""
    user = session.scalar(select(User).where(User.email == email, User.deleted_at.is_(None)))
    if not verify_password(user.password_hash if user else None, password) or user is None:
        raise Unauthorized(INVALID_LOGIN)
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def load_actor(
    session: Session, user_id: uuid.UUID, session_id: uuid.UUID,
    client_id: uuid.UUID | None = None, scope: str | None = None,
) -> UserActor | None:
    """The actor for a verified access token, or None when its session or user is gone. A
    token an OAuth client obtained (`client_id`) names a session of that client, and acts
    within its `scope`; a login's token names a login session."""
    of_client = (AuthSession.client_id.is_(None) if client_id is None
                 else AuthSession.client_id == client_id)
    row = session.execute(
        select(User.id, User.email, User.email_verified_at)
        .join(AuthSession, AuthSession.user_id == User.id)
        .where(
            AuthSession.id == session_id,
            AuthSession.user_id == user_id,
            of_client,
            AuthSession.revoked_at.is_(None),
            AuthSession.expires_at > utcnow(),
            User.deleted_at.is_(None),
        )
    ).first()
    if row is None:
        return None
    scopes = None if client_id is None else tuple((scope or "").split())
    return _actor(session, row.id, row.email, row.email_verified_at is not None, session_id,
                  scopes)


def actor_for(session: Session, user: User) -> UserActor:
    """The actor of a user outside any login (CLI, tests)."""
    return _actor(session, user.id, user.email, user.email_verified_at is not None, None)


def _actor(
    session: Session, user_id: uuid.UUID, email: str, verified: bool,
    session_id: uuid.UUID | None, scopes: tuple[str, ...] | None = None,
) -> UserActor:
    grants = list_grants(session, user_id)
    return UserActor(
        id=user_id,
        email=email,
        verified=verified,
        session_id=session_id,
        scopes=scopes,
        org_roles={g.org_id: g.role for g in grants if g.site_id is None},
        site_roles={g.site_id: g.role for g in grants if g.site_id is not None},
        site_orgs={g.site_id: g.org_id for g in grants if g.site_id is not None},
    )


# Built once (a statement per request costs more than its SQL); what GET /v1/me shows.
_PROFILE = select(User.id, User.email, User.display_name, User.created_at,
                  User.email_verified_at).where(User.id == bindparam("user_id"),
                                                User.deleted_at.is_(None))


def profile(session: Session, user_id: uuid.UUID) -> Row[Any] | None:
    """The live account's id, email, display_name, created_at and email_verified_at; None
    when it is gone or deleted."""
    return session.execute(_PROFILE, {"user_id": user_id}).first()


def grants_of(actor: Principal) -> list[Grant]:
    """The grants `actor` was resolved with (`list_grants` when it was loaded; a change
    drops the cached actor: app/auth/invalidation.py), in `list_grants`' order: those on
    organizations, then those on sites. What the request's decisions were made on, with
    no query."""
    return [*(Grant(org_id, None, role) for org_id, role in actor.org_roles.items()),
            *(Grant(actor.site_orgs[site_id], site_id, role)
              for site_id, role in actor.site_roles.items())]


def list_grants(session: Session, user_id: uuid.UUID) -> list[Grant]:
    """Every role the user holds on a live organization or site, in one query. On
    PostgreSQL through `app_user_grants`, which crosses organizations for this user only
    (row-level security hides other organizations' rows from everything else)."""
    if session.get_bind().dialect.name == "postgresql":
        rows = session.execute(
            text("SELECT org_id, site_id, role FROM app_user_grants(:user_id)"),
            {"user_id": user_id},
        )
        return [Grant(org_id, site_id, role) for org_id, site_id, role in rows]
    on_orgs = (
        select(OrgMembership.org_id, null().cast(Uuid).label("site_id"), OrgMembership.role)
        .join(Organization, Organization.id == OrgMembership.org_id)
        .where(OrgMembership.user_id == user_id, Organization.deleted_at.is_(None))
    )
    on_sites = (
        select(SiteMembership.org_id, SiteMembership.site_id, SiteMembership.role)
        .join(Site, Site.id == SiteMembership.site_id)
        .join(Organization, Organization.id == Site.org_id)
        .where(
            SiteMembership.user_id == user_id,
            Site.deleted_at.is_(None),
            Organization.deleted_at.is_(None),
        )
    )
    rows = session.execute(union_all(on_orgs, on_sites))
    return [Grant(org_id, site_id, role) for org_id, site_id, role in rows]
