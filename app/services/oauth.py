"""The OAuth 2.1 authorization server's work over a session: authorization codes (single
use, 60 s, bound to client, redirect URI, PKCE challenge, scope and person), the login
sessions clients open for people, and the audit of every issuance and refusal.

Tokens for a person are a login session of the client (`AuthSession.client_id`): its
refresh chain rotates and a replayed refresh token revokes it, as `/v1/auth/refresh` does
(app/services/sessions.py); revoking the client or the session cuts every token off.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.auth import invalidation
from app.auth.secrets import digest, new_secret
from app.db import utcnow
from app.models import AuditEvent, AuthSession, OAuthClient, OAuthCode, RefreshToken, User
from app.models.oauth import CODE_TTL_SECONDS, SCOPES


def scope_list(scope: str | None) -> list[str]:
    return [s for s in (scope or "").split(" ") if s]


def allowed_scope(client: OAuthClient, requested: str | None) -> str | None:
    """The scope granted for `requested`, in the server's order: all of it when the client
    may ask for each of its scopes, else None (`invalid_scope`); none requested: every
    scope the client may ask for."""
    wanted = set(scope_list(requested)) if requested else set(client.scopes)
    if not wanted <= set(client.scopes):
        return None
    return " ".join(s for s in SCOPES if s in wanted)


def new_code(
    session: Session, client: OAuthClient, user_id: uuid.UUID, code: str, *,
    redirect_uri: str, scope: str, code_challenge: str, nonce: str | None = None,
) -> None:
    """Store an authorization code: only its hash."""
    session.add(OAuthCode(
        org_id=client.org_id, client_id=client.id, user_id=user_id, code_hash=digest(code),
        redirect_uri=redirect_uri, scope=scope, code_challenge=code_challenge, nonce=nonce,
        expires_at=utcnow() + timedelta(seconds=CODE_TTL_SECONDS),
    ))
    session.flush()


def find_code(session: Session, client: OAuthClient, code: str) -> OAuthCode | None:
    """The code, if it was issued to `client` (spent or not: see `spend_code`)."""
    return session.scalar(select(OAuthCode).where(
        OAuthCode.code_hash == digest(code), OAuthCode.client_id == client.id))


class CodeReplayed(Exception):
    """A spent code was presented again: what its first exchange issued is revoked."""

    def __init__(self, code: OAuthCode) -> None:
        self.code = code


def spend_code(session: Session, code: OAuthCode) -> bool:
    """Mark the code used, atomically (two exchanges racing: one wins). False when it was
    already spent or has expired."""
    now = utcnow()
    spent = session.execute(
        update(OAuthCode)
        .where(OAuthCode.id == code.id, OAuthCode.used_at.is_(None), OAuthCode.expires_at > now)
        .values(used_at=now)
        .returning(OAuthCode.id)
    ).first()
    return spent is not None


def revoke_replayed(session: Session, code: OAuthCode, request_id: str | None) -> None:
    """A second use of a code: revoke the session its first use opened (RFC 6749 4.1.2),
    and record it. Called in a session apart: the request itself fails."""
    if code.session_id is not None:
        session.execute(update(AuthSession).where(
            AuthSession.id == code.session_id, AuthSession.revoked_at.is_(None),
        ).values(revoked_at=utcnow()))
        invalidation.user_changed(session, code.user_id)
    session.add(event(code.org_id, "oauth.code_reuse", code.client_id, "exchange",
                      "AuthSession", code.session_id, request_id))


@dataclass(frozen=True)
class Grantee:
    """Whom a token is issued to: a person's session with a client, and the refresh token
    that continues it; for client credentials, no session (`session_id` is None)."""

    user_id: uuid.UUID | None
    session_id: uuid.UUID | None
    refresh_token: str | None
    scope: str

    def get_user_id(self) -> uuid.UUID | None:  # authlib's user protocol
        return self.user_id


def open_session(
    session: Session, client: OAuthClient, code: OAuthCode, *, idle_absolute: timedelta,
    user_agent: str, ip: str,
) -> Grantee:
    """The person's session with the client, opened by exchanging `code`."""
    now = utcnow()
    user = session.get(User, code.user_id)
    if user is None or user.deleted_at is not None:
        raise LookupError("the person is gone")
    auth_session = AuthSession(
        user_id=code.user_id, last_used_at=now, expires_at=now + idle_absolute,
        user_agent=user_agent[:512], ip=ip[:64], client_id=client.id, scope=code.scope,
    )
    session.add(auth_session)
    session.flush()
    code.session_id = auth_session.id
    refresh = new_secret()
    session.add(RefreshToken(session_id=auth_session.id, token_hash=digest(refresh)))
    session.flush()
    return Grantee(code.user_id, auth_session.id, refresh, code.scope)


@dataclass(frozen=True)
class RefreshCredential:
    """A refresh token presented at the token endpoint, found but not spent yet."""

    token: str
    client_id: uuid.UUID
    user_id: uuid.UUID
    session_id: uuid.UUID
    scope: str

    def check_client(self, client: Any) -> bool:  # authlib's token protocol
        return bool(client.id == self.client_id)

    def get_scope(self) -> str:
        return self.scope


def find_refresh(session: Session, token: str) -> tuple[RefreshCredential, bool] | None:
    """A refresh token a client's session issued: (it, whether it was already spent)."""
    row = session.execute(
        select(RefreshToken.used_at, AuthSession.id, AuthSession.user_id,
               AuthSession.client_id, AuthSession.scope)
        .join(AuthSession, AuthSession.id == RefreshToken.session_id)
        .where(RefreshToken.token_hash == digest(token), AuthSession.client_id.is_not(None))
    ).first()
    if row is None or row.client_id is None:
        return None
    credential = RefreshCredential(token, row.client_id, row.user_id, row.id, row.scope or "")
    return credential, row.used_at is not None


def event(org_id: uuid.UUID | None, name: str, client_id: uuid.UUID | None, action: str,
          resource_type: str, resource_id: object, request_id: str | None,
          **data: Any) -> AuditEvent:
    """An audit row about a client (never a secret, code or token)."""
    return AuditEvent(
        org_id=org_id, event=name, actor_type="oauth_client", actor_id=client_id,
        action=action, resource_type=resource_type,
        resource_id=None if resource_id is None else str(resource_id),
        request_id=request_id, data=data,
    )


def revoke_session(session: Session, session_id: uuid.UUID, client: OAuthClient) -> bool:
    """End one of the client's sessions (RFC 7009): its access and refresh tokens stop."""
    users = session.scalars(
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.client_id == client.id,
               AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .returning(AuthSession.user_id)
    ).all()
    for user_id in users:
        invalidation.user_changed(session, user_id)
    return bool(users)


def session_live(session: Session, session_id: uuid.UUID) -> AuthSession | None:
    auth_session = session.get(AuthSession, session_id)
    if (auth_session is None or auth_session.revoked_at is not None
            or auth_session.expires_at <= utcnow()):
        return None
    return auth_session
