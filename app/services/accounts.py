"""Addresses proven by mail: verification, password reset, and registration that tells no
one whether an address already has an account.

The mailed secrets are single use and expire; only their SHA-256 is stored
(`AccountToken`). Spending one is an atomic `UPDATE ... WHERE used_at IS NULL`.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from urllib.parse import urlencode

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import mail
from app.auth import invalidation
from app.auth.passwords import hash_password
from app.auth.secrets import digest, new_secret
from app.config import Settings
from app.db import utcnow
from app.errors import BadRequest
from app.models import AccountToken, User
from app.services import audit, sessions

VERIFY, RESET = "verify", "reset"
INVALID_TOKEN = "The link is invalid, expired or already used."  # noqa: S105 - a message


def link(settings: Settings, page: str, **query: str) -> str:
    return f"{settings.public_url.rstrip('/')}/{page}?{urlencode(query)}"


def _issue(session: Session, user: User, purpose: str, ttl_seconds: int) -> tuple[str, str]:
    """A new token for `user`; (secret, expiry as text). Earlier unspent ones of the same
    purpose stop working: only the latest mail's link does."""
    now = utcnow()
    session.execute(
        update(AccountToken)
        .where(AccountToken.user_id == user.id, AccountToken.purpose == purpose,
               AccountToken.used_at.is_(None))
        .values(used_at=now)
    )
    secret = new_secret()
    expires = now + timedelta(seconds=ttl_seconds)
    session.add(AccountToken(user_id=user.id, purpose=purpose, token_hash=digest(secret),
                             expires_at=expires))
    return secret, expires.strftime("%Y-%m-%d %H:%M UTC")


def _spend(session: Session, token: str, purpose: str) -> User:
    """The live account whose unspent, unexpired `purpose` token this is; spent now."""
    now = utcnow()
    user_id = session.execute(
        update(AccountToken)
        .where(AccountToken.token_hash == digest(token), AccountToken.purpose == purpose,
               AccountToken.used_at.is_(None), AccountToken.expires_at > now)
        .values(used_at=now)
        .returning(AccountToken.user_id)
    ).scalar()
    user = session.get(User, user_id) if user_id is not None else None
    if user is None or user.deleted_at is not None:
        raise BadRequest(INVALID_TOKEN, errors={"token": [INVALID_TOKEN]})
    return user


def register(
    session: Session, settings: Settings, email: str, password: str, display_name: str
) -> None:
    """Create an unverified account and mail it a verification link. A taken address
    gets a warning mail instead; the caller sees the same either way, and both paths
    hash the password (the slow part), so timing tells nothing either."""
    password_hash = hash_password(password)
    taken = session.scalar(select(User.id).where(User.email == email))
    if taken is None:
        user = User(id=uuid.uuid4(), email=email, password_hash=password_hash,
                    display_name=display_name)
        if _created(session, user):
            send_verification(session, settings, user)
            return
    mail.enqueue(session, email, "already_registered", link=link(settings, "reset-password"))


def _created(session: Session, user: User) -> bool:
    """Insert `user`; False when a concurrent registration took the address first."""
    try:
        with session.begin_nested():
            session.add(user)
    except IntegrityError:
        return False
    return True


def send_verification(session: Session, settings: Settings, user: User) -> None:
    """Mail `user` a new verification link (nothing when already verified)."""
    if user.email_verified_at is not None:
        return
    secret, expires = _issue(session, user, VERIFY, settings.verify_token_ttl_seconds)
    mail.enqueue(session, user.email, "verify", link=link(settings, "verify", token=secret),
                 expires=expires)


def verify(session: Session, token: str) -> User:
    user = _spend(session, token, VERIFY)
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
        invalidation.user_changed(session, user.id)  # cached actors: now verified
    return user


def request_reset(session: Session, settings: Settings, email: str) -> None:
    """Mail a reset link when an account uses `email`; the caller answers the same when
    none does."""
    user = session.scalar(select(User).where(User.email == email, User.deleted_at.is_(None)))
    if user is None:
        return
    secret, expires = _issue(session, user, RESET, settings.reset_token_ttl_seconds)
    mail.enqueue(session, user.email, "reset",
                 link=link(settings, "reset-password", token=secret), expires=expires)


def complete_reset(
    session: Session, token: str, new_password: str, *, request_id: str | None
) -> None:
    """Set the password, end every session. The link reached the address: it is
    verified too. Audited as the account's own change (the link proved who asks)."""
    user = _spend(session, token, RESET)
    user.password_hash = hash_password(new_password)
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
    ended = sessions.end_sessions(session, user.id, None)
    sessions.password_set(session, audit.Author("user", user.id, request_id), user,
                          "account.password_reset", ended)
