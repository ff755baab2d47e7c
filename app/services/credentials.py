"""API keys and ingest keys: create (secret shown once), list, revoke, authenticate."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Select, select, text, update
from sqlalchemy.orm import Session

from app.auth import invalidation
from app.auth.secrets import (
    API_KEY_PREFIX,
    INGEST_KEY_PREFIX,
    digest,
    format_key,
    matches,
    new_secret,
)
from app.authz.actors import ApiClientActor, IngestClientActor
from app.db import utcnow
from app.models import ApiKey, IngestKey, OAuthClient, Organization, Site
from app.services import audit
from app.services.lookups import one_or_missing

TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often
Key = TypeVar("Key", ApiKey, IngestKey)


def _mint(
    session: Session, model: type[Key], prefix: str, by: audit.Author, **fields: Any
) -> tuple[Key, str]:
    """Store a new key with only the hash of its secret; the secret is returned once."""
    secret = new_secret()
    key = model(id=uuid.uuid4(), secret_hash=digest(secret), created_by=by.actor_id, **fields)
    session.add(key)
    session.flush()
    action = "api_key.created" if model is ApiKey else "ingest_key.created"
    audit.change(session, by, action, key, before=None, after=audit.snapshot(key))
    return key, format_key(prefix, key.id, secret)


def proposed_api_key(org: Organization, site: Site | None, role: str) -> ApiKey:
    """A key with `role` on `org` or one of its sites, not saved: what creating one is
    authorized on (the policy caps its role by its creator's)."""
    return ApiKey(org_id=org.id, site_id=site.id if site else None, role=role)


def proposed_ingest_key(site: Site) -> IngestKey:
    """An ingest key of `site`, not saved: what creating one is authorized on."""
    return IngestKey(org_id=site.org_id, site_id=site.id)


def create_api_key(
    session: Session,
    proposed: ApiKey,
    *,
    name: str,
    expires_at: datetime | None,
    by: audit.Author,
) -> tuple[ApiKey, str]:
    """Store the `proposed` key (see proposed_api_key) with a new secret; `by` creates it."""
    return _mint(
        session, ApiKey, API_KEY_PREFIX, by, org_id=proposed.org_id, site_id=proposed.site_id,
        name=name, role=proposed.role, expires_at=expires_at,
    )


def create_ingest_key(
    session: Session, site: Site, *, name: str, allowed_origins: list[str], by: audit.Author
) -> tuple[IngestKey, str]:
    return _mint(
        session, IngestKey, INGEST_KEY_PREFIX, by, org_id=site.org_id, site_id=site.id,
        name=name, allowed_origins=allowed_origins,
    )


def api_keys(org_id: uuid.UUID) -> Select[tuple[ApiKey]]:
    return select(ApiKey).where(ApiKey.org_id == org_id, ApiKey.revoked_at.is_(None))


def ingest_keys(site: Site) -> Select[tuple[IngestKey]]:
    return select(IngestKey).where(
        IngestKey.org_id == site.org_id,
        IngestKey.site_id == site.id,
        IngestKey.revoked_at.is_(None),
    )


def get_api_key(session: Session, org_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey:
    stmt = api_keys(org_id).where(ApiKey.id == key_id)
    return one_or_missing(session, stmt, ApiKey, key_id, org_id)


def get_ingest_key(session: Session, site: Site, key_id: uuid.UUID) -> IngestKey:
    stmt = ingest_keys(site).where(IngestKey.id == key_id)
    return one_or_missing(session, stmt, IngestKey, key_id, site.org_id)


def revoke(session: Session, key: ApiKey | IngestKey, *, by: audit.Author) -> None:
    before = audit.snapshot(key)
    key.revoked_at = utcnow()
    invalidation.user_changed(session, key.id)
    action = "api_key.revoked" if isinstance(key, ApiKey) else "ingest_key.revoked"
    audit.change(session, by, action, key, before=before, after=audit.snapshot(key))


@dataclass(frozen=True)
class KeyMatch:
    """A live key whose secret matched: the actor it stands for, and what `touch` needs."""

    actor: ApiClientActor | IngestClientActor
    model: type[ApiKey] | type[IngestKey]
    key_id: uuid.UUID
    org_id: uuid.UUID
    last_used_at: datetime | None


def api_client(session: Session, key_id: uuid.UUID, secret: str) -> KeyMatch | None:
    """The actor of a live API key whose secret matches, else None."""
    row = _live_key(session, ApiKey, key_id, "app_api_key")
    if row is None or not matches(secret, row.secret_hash):
        return None
    if row.expires_at is not None and row.expires_at <= utcnow():
        return None
    actor = api_key_actor(row)
    return KeyMatch(actor, ApiKey, row.id, row.org_id, row.last_used_at)


def ingest_client(session: Session, key_id: uuid.UUID, secret: str) -> KeyMatch | None:
    """The actor of a live ingest key whose secret matches, else None."""
    row = _live_key(session, IngestKey, key_id, "app_ingest_key")
    if row is None or not matches(secret, row.secret_hash):
        return None
    actor = ingest_key_actor(row)
    return KeyMatch(actor, IngestKey, row.id, row.org_id, row.last_used_at)


def api_key_actor(row: ApiKey) -> ApiClientActor:
    """The actor a key acts as: its one role, on its organization or on its site."""
    if row.site_id is None:
        return ApiClientActor(id=row.id, org_roles={row.org_id: row.role},
                              expires_at=row.expires_at)
    return ApiClientActor(
        id=row.id,
        site_roles={row.site_id: row.role},
        site_orgs={row.site_id: row.org_id},
        expires_at=row.expires_at,
    )


def oauth_client_actor(row: OAuthClient, scope: str) -> ApiClientActor | None:
    """The actor of an OAuth client's client credentials token: the client's own role,
    like an API key's, within the token's scope; None for a client without a role."""
    if row.role is None:
        return None
    scopes = tuple(scope.split())
    if row.site_id is None:
        return ApiClientActor(id=row.id, org_roles={row.org_id: row.role}, scopes=scopes)
    return ApiClientActor(id=row.id, site_roles={row.site_id: row.role},
                          site_orgs={row.site_id: row.org_id}, scopes=scopes)


def ingest_key_actor(row: IngestKey) -> IngestClientActor:
    return IngestClientActor(
        id=row.id, site_id=row.site_id, site_orgs={row.site_id: row.org_id},
        allowed_origins=tuple(row.allowed_origins or ()),
    )


def touch_due(match: KeyMatch, now: datetime) -> bool:
    """`last_used_at` is written at most every TOUCH_EVERY."""
    return match.last_used_at is None or now - match.last_used_at > TOUCH_EVERY


def touch(session: Session, match: KeyMatch, now: datetime) -> None:
    """Record the key's use (in the key's organization's scope)."""
    model = match.model
    session.execute(update(model).where(model.id == match.key_id).values(last_used_at=now))


def _live_key(session: Session, model: type[Key], key_id: uuid.UUID, function: str) -> Key | None:
    """A key that is not revoked, of a live organization and site. Before the request
    knows its organization: on PostgreSQL through a SECURITY DEFINER function that finds
    this one key whatever row-level security would hide."""
    if session.get_bind().dialect.name == "postgresql":
        by_function = select(model).from_statement(
            text(f"SELECT * FROM {function}(:key_id)")  # noqa: S608 - a constant name
        ).params(key_id=key_id)
        return session.scalars(by_function).one_or_none()
    site_live = Site.deleted_at.is_(None)
    stmt = (
        select(model)
        .join(Organization, Organization.id == model.org_id)
        .outerjoin(Site, Site.id == model.site_id)
        .where(model.id == key_id, model.revoked_at.is_(None),
               Organization.deleted_at.is_(None), site_live)
    )
    return session.scalars(stmt).one_or_none()
