"""Users and their login sessions."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Entity, UTCDateTime, utcnow
from app.models.resource import Resource


class User(Entity):
    __tablename__ = "users"
    # Not a tenant's row: a person may belong to several organizations. The policy calls it
    # `Account`, since `User` names the signed-in actor there.
    __resource__ = Resource(
        fields=("id",), name="Account", tenant=False,
        sample=lambda place: User(email=f"{uuid.uuid4().hex}@sample.test", password_hash="-"),  # noqa: S106 - a sample, never stored as a credential
        # The policy compares its id with the actor's: every request on one's own account
        # (GET /v1/me, sessions) asks the same question, answered once per actor.
        decided_by=("id",),
    )

    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    # Set when the owner of the address followed a verification link (app/services/
    # accounts.py): until then it signs in but cannot accept invitations (invitations.polar).
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuthSession(Entity):
    """One login: access tokens carry its id as `sid`, so revoking it revokes them."""

    __tablename__ = "auth_sessions"
    __table_args__ = (Index("ix_auth_sessions_user_id_created_at", "user_id", "created_at"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    user_agent: Mapped[str] = mapped_column(String(512), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    # A session an OAuth client opened for the person (app/models/oauth.py), with the
    # scope that caps what its tokens may do (policies/scopes.polar); None: a login.
    client_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("oauth_clients.id", ondelete="CASCADE"), index=True
    )
    scope: Mapped[str | None] = mapped_column(String(200))


class RefreshToken(Entity):
    """One link of a session's refresh chain. Only the SHA-256 of the token is stored.

    Spending it sets `used_at` atomically; presenting a spent token again is reuse, and
    revokes the whole session (every token of the chain shares `session_id`).
    """

    __tablename__ = "refresh_tokens"

    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("auth_sessions.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AccountToken(Entity):
    """A single-use, expiring secret mailed to an account's address: verify the address
    (`verify`) or set a new password (`reset`). Only the SHA-256 of the secret is stored."""

    __tablename__ = "account_tokens"
    __table_args__ = (Index("ix_account_tokens_user_id_purpose", "user_id", "purpose"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
