"""OAuth 2.1 clients of an organization and their authorization codes.

A client is a third-party application registered by an organization's org_admin:
`public` (a single-page or native app: no secret, PKCE required) or `confidential` (a
server: a secret shown once, only its SHA-256 kept, like an API key's). It may also hold
one role on its organization or on one of its sites, which the client credentials grant
acts with (capped like an API key's role). Tokens it obtains for a person are login
sessions (`AuthSession.client_id`): refresh rotation, reuse detection and revocation are
those of `/v1/auth/refresh`.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Entity, UTCDateTime
from app.models.resource import Resource
from app.models.tenancy import ORG_ROLES, _role_check, in_one_site

CLIENT_TYPES = ("public", "confidential")
# Ceilings a delegated token may carry (policies/scopes.polar says what each allows).
SCOPES = ("read", "write", "admin", "events:write")
CODE_TTL_SECONDS = 60


class OAuthClient(Entity):
    __tablename__ = "oauth_clients"
    __table_args__ = (
        in_one_site("oauth_clients"),
        Index("ix_oauth_clients_org_id_created_at", "org_id", "created_at", "id"),
        _role_check(ORG_ROLES),
        CheckConstraint("client_type IN ('public', 'confidential')", name="client_type"),
    )
    __resource__ = Resource(
        fields=("id", "role", "site_id"),
        relations={"organization": ("Organization", "org_id"), "site": ("Site", "site_id")},
        sample=lambda place: OAuthClient(
            org_id=place.org.id, name="sample", client_type="confidential",
            secret_hash="-", redirect_uris=["https://app.sample.test/callback"],  # noqa: S106 - a sample, never stored as a credential
            scopes=["read"], role=None, created_by=place.created_by,
        ),
        path_param="oauth_client_id",
    )

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    site_id: Mapped[uuid.UUID | None]  # the role's site; None: the organization (or no role)
    name: Mapped[str] = mapped_column(String(200))
    client_type: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str | None] = mapped_column(String(64))  # None: a public client
    # Exact strings compared with the request's `redirect_uri` (no prefix, no pattern).
    redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)  # what it may ask for
    # For the client credentials grant: None, a client that only acts for people.
    role: Mapped[str | None] = mapped_column(String(32))
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OAuthCode(Entity):
    """An authorization code: single use, short-lived, bound to its client, redirect URI,
    PKCE challenge (S256), scope and person. Only the SHA-256 of the code is stored;
    `session_id` is the login session its exchange opened (revoked if it is replayed)."""

    __tablename__ = "oauth_codes"
    __table_args__ = (Index("ix_oauth_codes_client_id", "client_id"),)

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("oauth_clients.id", ondelete="CASCADE")
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    redirect_uri: Mapped[str] = mapped_column(String(1000))
    scope: Mapped[str] = mapped_column(String(200))
    code_challenge: Mapped[str] = mapped_column(String(128))
    nonce: Mapped[str | None] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    session_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("auth_sessions.id", ondelete="SET NULL")
    )
