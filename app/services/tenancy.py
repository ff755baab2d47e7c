"""Organizations and sites. Lookups are scoped by the ids in the URL and hide deleted rows."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, and_, bindparam, select
from sqlalchemy.orm import Session

from app.auth import invalidation
from app.auth.invalidation import ActorCache
from app.db import scoped_org, utcnow
from app.errors import Missing, NotFound
from app.models import Organization, OrgMembership, Site
from app.services import audit
from app.services.lookups import one_or_missing


def create_org(
    session: Session, org_id: uuid.UUID, creator_id: uuid.UUID, name: str
) -> Organization:
    """Create an organization; its creator becomes its first org_admin. The session must
    be scoped to `org_id` already (UnitOfWork.enter): row-level security checks the rows."""
    org = Organization(id=org_id, name=name)
    session.add(org)
    session.flush()
    session.add(OrgMembership(org_id=org.id, user_id=creator_id, role="org_admin"))
    session.flush()
    invalidation.user_changed(session, creator_id)
    return org


def get_org(session: Session, org_id: uuid.UUID, *, lock: bool = False) -> Organization:
    stmt = select(Organization).where(Organization.id == org_id, Organization.deleted_at.is_(None))
    if lock:
        stmt = stmt.with_for_update()
    return one_or_missing(session, stmt, Organization, org_id, org_id)


def live_orgs() -> Select[tuple[Organization]]:
    return select(Organization).where(Organization.deleted_at.is_(None))


def update(entity: object, changes: dict[str, Any]) -> None:
    for name, value in changes.items():
        setattr(entity, name, value)


def soft_delete(session: Session, entity: Organization | Site, *, by: audit.Author) -> None:
    """Hide an organization or site; every grant on it stops counting at once."""
    before = audit.snapshot(entity)
    entity.deleted_at = utcnow()
    invalidation.everyone_changed(session)
    action = "organization.deleted" if isinstance(entity, Organization) else "site.deleted"
    audit.change(session, by, action, entity, before=before, after=audit.snapshot(entity))


def create_site(session: Session, org: Organization, name: str, domain: str | None) -> Site:
    site = Site(org_id=org.id, name=name, domain=domain)
    session.add(site)
    session.flush()
    return site


# Built once, with its values bound per call: every site route starts with it, and a
# statement built per request costs more than its SQL (SQLAlchemy memoizes a statement's
# cache key on the object).
_SITE_OF_ORG = (
    select(Organization, Site)
    .outerjoin(Site, and_(Site.id == bindparam("site_id"), Site.org_id == Organization.id,
                          Site.deleted_at.is_(None)))
    .where(Organization.id == bindparam("org_id"), Organization.deleted_at.is_(None))
)


def get_site(session: Session, org_id: uuid.UUID, site_id: uuid.UUID) -> Site:
    """A live site of a live organization, or 404 naming the one that is missing. One
    query for both (every site route starts here), which loads the organization too."""
    found = session.execute(_SITE_OF_ORG, {"org_id": org_id, "site_id": site_id}).first()
    if found is None:
        raise NotFound(missing=Missing("Organization", org_id, org_id))
    if found.Site is None:
        raise NotFound(missing=Missing("Site", site_id, org_id))
    site: Site = found.Site
    return site


def site_ref(
    session: Session, cache: ActorCache, org_id: uuid.UUID, site_id: uuid.UUID
) -> Site:
    """A live site of a live organization as its ids only (a Site in no session), or 404
    as `get_site`: for routes that need nothing else of it. Read once per process, then
    remembered live by `cache` until a deletion (see app/auth/invalidation.py). What is
    remembered counts only in a session scoped to the site's own organization: row-level
    security, the second wall, still decides whether a request may see the site."""
    if scoped_org(session) != org_id or not cache.site_is_live(org_id, site_id):
        generation = cache.generation
        get_site(session, org_id, site_id)
        cache.note_live_site(org_id, site_id, generation)
    return Site(id=site_id, org_id=org_id)


def live_sites(org_id: uuid.UUID) -> Select[tuple[Site]]:
    return select(Site).where(Site.org_id == org_id, Site.deleted_at.is_(None))
