"""OAuth clients of an organization: register (secret shown once), list, change, rotate
the secret, revoke. Revoking a client ends every session it opened, at once."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, select, text, update
from sqlalchemy.orm import Session

from app.auth import invalidation
from app.auth.secrets import digest, new_secret
from app.db import utcnow
from app.models import AuthSession, OAuthClient, Organization, Site
from app.services.lookups import one_or_missing


def proposed(org: Organization, site: Site | None, role: str | None) -> OAuthClient:
    """A client of `org` holding `role` (None: no role of its own) on `org` or one of its
    sites, not saved: what registering one is authorized on (the policy caps the role)."""
    return OAuthClient(org_id=org.id, site_id=site.id if site else None, role=role)


def create(
    session: Session, client: OAuthClient, *, name: str, client_type: str,
    redirect_uris: list[str], scopes: list[str], created_by: uuid.UUID,
) -> tuple[OAuthClient, str | None]:
    """Store the `proposed` client; a confidential one's secret is returned once."""
    secret = new_secret() if client_type == "confidential" else None
    client.id = uuid.uuid4()
    client.name = name
    client.client_type = client_type
    client.secret_hash = digest(secret) if secret else None
    client.redirect_uris = redirect_uris
    client.scopes = scopes
    client.created_by = created_by
    session.add(client)
    session.flush()
    return client, secret


def clients(org_id: uuid.UUID) -> Select[tuple[OAuthClient]]:
    return select(OAuthClient).where(OAuthClient.org_id == org_id,
                                     OAuthClient.revoked_at.is_(None))


def get(session: Session, org_id: uuid.UUID, client_id: uuid.UUID) -> OAuthClient:
    stmt = clients(org_id).where(OAuthClient.id == client_id)
    return one_or_missing(session, stmt, OAuthClient, client_id, org_id)


def update_client(session: Session, client: OAuthClient, changes: dict[str, Any]) -> None:
    for name in ("name", "redirect_uris"):
        if name in changes:
            setattr(client, name, changes[name])
    session.flush()


def rotate_secret(session: Session, client: OAuthClient) -> str:
    """A new secret for a confidential client; the old one stops working at once (tokens
    already issued live out their short lifetime; revoke the client to cut them off)."""
    secret = new_secret()
    client.secret_hash = digest(secret)
    return secret


def revoke(session: Session, client: OAuthClient) -> None:
    """The client stops working, and so does every token it obtained: its sessions end
    (the people's access tokens carry them as `sid`), its own tokens with it."""
    now = utcnow()
    client.revoked_at = now
    users = session.scalars(
        update(AuthSession)
        .where(AuthSession.client_id == client.id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now)
        .returning(AuthSession.user_id)
    ).all()
    for user_id in set(users):
        invalidation.user_changed(session, user_id)
    invalidation.user_changed(session, client.id)


def live(session: Session, client_id: uuid.UUID) -> OAuthClient | None:
    """A live client (not revoked, of a live organization and site) whatever the request's
    scope: on PostgreSQL through `app_oauth_client`, which finds this one client only."""
    if session.get_bind().dialect.name == "postgresql":
        by_function = select(OAuthClient).from_statement(
            text("SELECT * FROM app_oauth_client(:client_id)")
        ).params(client_id=client_id)
        return session.scalars(by_function).one_or_none()
    stmt = (
        select(OAuthClient)
        .join(Organization, Organization.id == OAuthClient.org_id)
        .outerjoin(Site, Site.id == OAuthClient.site_id)
        .where(OAuthClient.id == client_id, OAuthClient.revoked_at.is_(None),
               Organization.deleted_at.is_(None), Site.deleted_at.is_(None))
    )
    return session.scalars(stmt).one_or_none()
