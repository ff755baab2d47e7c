"""Login sessions: refresh-token rotation with reuse detection, revocation, passwords.

A session is one login. Its refresh tokens form a chain: each refresh spends the
presented token (an atomic `UPDATE ... WHERE used_at IS NULL`) and issues the next one.
A spent token presented again means it was copied: the whole session is revoked.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, select, update
from sqlalchemy.orm import Session

from app.auth import invalidation
from app.auth.passwords import hash_password, verify_password
from app.auth.secrets import digest, new_secret
from app.auth.throttle import Throttle
from app.db import rowcount, utcnow
from app.errors import BadRequest, Unauthorized
from app.models import AuditEvent, AuthSession, RefreshToken, User
from app.services import audit

SESSION_ENDED = "The session has ended; sign in again."
log = logging.getLogger("app.auth.sessions")


@dataclass(frozen=True)
class Lifetimes:
    idle: timedelta
    absolute: timedelta


class RefreshReuse(Exception):
    """A spent refresh token was presented again."""

    def __init__(self, session_id: uuid.UUID, user_id: uuid.UUID) -> None:
        self.session_id = session_id
        self.user_id = user_id


def open_session(
    session: Session, user: User, lifetimes: Lifetimes, user_agent: str, ip: str
) -> tuple[AuthSession, str]:
    now = utcnow()
    auth_session = AuthSession(
        user_id=user.id,
        last_used_at=now,
        expires_at=now + lifetimes.absolute,
        user_agent=user_agent[:512],
        ip=ip[:64],
    )
    session.add(auth_session)
    session.flush()
    return auth_session, _issue_refresh(session, auth_session.id)


def _issue_refresh(session: Session, session_id: uuid.UUID) -> str:
    token = new_secret()
    session.add(RefreshToken(session_id=session_id, token_hash=digest(token)))
    session.flush()
    return token


def refresh(
    session: Session, token: str, lifetimes: Lifetimes, client_id: uuid.UUID | None = None
) -> tuple[AuthSession, str]:
    """Spend `token` and return its session with the next refresh token. Only a token of
    a session opened by `client_id` counts (None: a login's; an OAuth client's session
    refreshes at `/oauth/token` only, a login's at `/v1/auth/refresh` only).

    Raises RefreshReuse when the token was already spent, Unauthorized when it is
    unknown or its session is over (revoked, idle for too long, or past its lifetime)."""
    now = utcnow()
    token_hash = digest(token)
    of_client = select(AuthSession.id).where(
        AuthSession.client_id.is_(None) if client_id is None
        else AuthSession.client_id == client_id
    )
    spent = session.execute(
        update(RefreshToken)
        .where(RefreshToken.token_hash == token_hash, RefreshToken.used_at.is_(None),
               RefreshToken.session_id.in_(of_client))
        .values(used_at=now)
        .returning(RefreshToken.session_id)
    ).first()
    if spent is None:
        known = session.execute(
            select(RefreshToken.session_id, AuthSession.user_id)
            .join(AuthSession, AuthSession.id == RefreshToken.session_id)
            .where(RefreshToken.token_hash == token_hash,
                   RefreshToken.session_id.in_(of_client))
        ).first()
        if known is not None:
            raise RefreshReuse(known.session_id, known.user_id)
        raise Unauthorized("The refresh token is invalid.")
    auth_session = session.get(AuthSession, spent.session_id, with_for_update=True)
    if auth_session is None or not _live(session, auth_session, now, lifetimes.idle):
        raise Unauthorized(SESSION_ENDED)
    auth_session.last_used_at = now
    return auth_session, _issue_refresh(session, auth_session.id)


def _live(session: Session, auth_session: AuthSession, now: datetime, idle: timedelta) -> bool:
    user = session.get(User, auth_session.user_id)
    return (
        auth_session.revoked_at is None
        and auth_session.expires_at > now
        and auth_session.last_used_at + idle > now
        and user is not None
        and user.deleted_at is None
    )


def revoke_reused(session: Session, reuse: RefreshReuse, request_id: str | None) -> None:
    """Revoke the session whose token was replayed, and record it. The request itself
    fails: call it with a session apart from the request's (UnitOfWork.apart)."""
    log.warning(
        "refresh token reused: session revoked",
        extra={"fields": {"session_id": str(reuse.session_id), "user_id": str(reuse.user_id)}},
    )
    _revoke(session, AuthSession.id == reuse.session_id, reuse.user_id)
    session.add(
        AuditEvent(
            org_id=None,
            event="auth.refresh_reuse",
            actor_type="user",
            actor_id=reuse.user_id,
            action="refresh",
            resource_type="AuthSession",
            resource_id=str(reuse.session_id),
            request_id=request_id,
            data={},
        )
    )


def _revoke(session: Session, which: ColumnElement[bool], user_id: uuid.UUID) -> int:
    result = session.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None), which)
        .values(revoked_at=utcnow())
    )
    invalidation.user_changed(session, user_id)
    return rowcount(result)


def _revoked(
    session: Session, by: audit.Author, user_id: uuid.UUID, count: int,
    session_id: uuid.UUID | None,
) -> None:
    """Audit a revocation that ended sessions (an account's own: no organization's)."""
    if count:
        audit.change(
            session, by, "account.sessions_revoked", User(id=user_id), org_id=None,
            before=None,
            after={"revoked": count, "session_id": str(session_id) if session_id else None},
        )


def revoke(
    session: Session, user_id: uuid.UUID, session_id: uuid.UUID | None, *, by: audit.Author
) -> bool:
    """Revoke one of the user's sessions; False when it has no such live session (None
    names none: an actor made outside a login)."""
    count = _revoke(session, AuthSession.id == session_id, user_id)
    _revoked(session, by, user_id, count, session_id)
    return count > 0


def revoke_all(
    session: Session, user_id: uuid.UUID, keep: uuid.UUID | None = None, *, by: audit.Author
) -> int:
    """Revoke every session of the user, except `keep`."""
    count = end_sessions(session, user_id, keep)
    _revoked(session, by, user_id, count, None)
    return count


def end_sessions(session: Session, user_id: uuid.UUID, keep: uuid.UUID | None) -> int:
    """Revoke every session of the user except `keep`, unaudited: the caller records why."""
    which = AuthSession.id != keep if keep is not None else AuthSession.revoked_at.is_(None)
    return _revoke(session, which, user_id)


def live_sessions(user_id: uuid.UUID) -> Select[tuple[AuthSession]]:
    return select(AuthSession).where(
        AuthSession.user_id == user_id,
        AuthSession.revoked_at.is_(None),
        AuthSession.expires_at > utcnow(),
    )


def change_password(
    session: Session, user_id: uuid.UUID, current: str, new: str, keep: uuid.UUID | None,
    client: str = "", throttle: Throttle | None = None, *, by: audit.Author,
) -> None:
    """Set a new password and end every other session of the user. Wrong current
    passwords count against the account as failed sign-ins do (app/auth/throttle.py): a
    stolen session cannot guess its way to the password faster than a login could."""
    user = session.get(User, user_id)
    if user is not None and throttle is not None:
        throttle.before(user.email, client)
    if user is None or not verify_password(user.password_hash, current):
        if user is not None and throttle is not None:
            throttle.failed(user.email, client)
        raise BadRequest(
            "The current password is wrong.", errors={"current_password": ["Wrong password."]}
        )
    if current == new:
        raise BadRequest(
            "Choose a new password.", errors={"new_password": ["Same as the current one."]}
        )
    user.password_hash = hash_password(new)
    ended = end_sessions(session, user_id, keep)
    password_set(session, by, user, "account.password_changed", ended)


def password_set(
    session: Session, by: audit.Author, user: User, action: str, sessions_ended: int
) -> None:
    """Audit a new password (an account's own change: no organization's). Neither hash
    is recorded: only that it changed, and how many sessions it ended."""
    audit.change(session, by, action, user, org_id=None, before=None,
                 after={"sessions_revoked": sessions_ended})
