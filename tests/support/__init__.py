"""Builders for test data: real rows through the app's own services, real tokens."""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import groupby
from typing import Any

import psycopg
from argon2 import PasswordHasher
from psycopg import sql
from sqlalchemy import URL, make_url

from app.auth import passwords
from app.db import conninfo, owner_sessionmaker, utcnow
from app.models import (
    AuthSession,
    Base,
    Organization,
    OrgMembership,
    Site,
    SiteMembership,
    User,
)
from app.schema_doc import migrated

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
# The two roles of README's production section: the tables' owner (migrations, admin
# commands), no superuser and no BYPASSRLS; and what the app connects as, which owns nothing.
OWNER_ROLE = "tenant_api_owner"
APP_ROLE = "tenant_api_app"


def server_url() -> URL:
    """The PostgreSQL server of `DATABASE_URL` (default: the local one), as its administrator."""
    configured = os.environ.get("DATABASE_URL", "")
    return make_url(configured if configured.startswith("postgresql") else DEFAULT_PG)


def as_role(url: str, role: str) -> str:
    """The same database as another role (local test servers trust their loopback)."""
    return make_url(url).set(username=role, password=None).render_as_string(hide_password=False)


def as_administrator(url: str) -> str:
    """The same database as the server's administrator, e.g. to COPY rows in bulk (COPY
    FROM refuses tables whose row-level security applies to the caller, as it does to the
    owner)."""
    base = server_url()
    return make_url(url).set(username=base.username, password=base.password).render_as_string(
        hide_password=False
    )


@contextmanager
def throwaway_database(prefix: str, durable: bool = True) -> Iterator[str]:
    """A new PostgreSQL database on the server of `DATABASE_URL`, owned and migrated by
    OWNER_ROLE as README's production section does it, with APP_ROLE granted; dropped
    afterwards. Yields the owner's URL. Tests and benchmarks use it.

    Not `durable` (the test suite): its sessions commit without waiting for the WAL to
    reach the disk (`synchronous_commit = off`; ~3.5 ms less per commit here). What a
    commit means to other sessions is unchanged; only a crash of the server could lose
    the last commits, of a database dropped at the end anyway. Benchmarks keep the
    server's durability, as production has it."""
    server = server_url().render_as_string(hide_password=False)
    with migrated(server, OWNER_ROLE, APP_ROLE, prefix) as url:
        if not durable:
            with psycopg.connect(conninfo(as_administrator(url)), autocommit=True) as conn:
                conn.execute(sql.SQL("ALTER DATABASE {} SET synchronous_commit = off").format(
                    sql.Identifier(make_url(url).database)))
        yield url



PASSWORD = "correct horse battery staple"

# argon2id at the production cost (64 MiB, 3 passes, 4 lanes) spends ~0.2 s of CPU per hash
# or check on this machine, about a tenth of the suite's CPU. The suite hashes at the
# cheapest cost instead (tests/conftest.py `password_cost`); the hashes verify the same way,
# only faster. Tests marked `production_passwords` keep the production cost.
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def password_hash() -> str:
    """PASSWORD's hash at the cost the test runs with: hashed once per cost."""
    return _hashed_by(passwords._hasher)


@functools.cache
def _hashed_by(hasher: PasswordHasher) -> str:
    return hasher.hash(PASSWORD)


@dataclass
class Person:
    user: User
    token: str

    @property
    def id(self) -> uuid.UUID:
        return self.user.id

    @property
    def email(self) -> str:
        return self.user.email

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Tenant:
    """An organization with one site and one person per role."""

    org: Organization
    site: Site
    people: dict[str, Person] = field(default_factory=dict)

    def __getitem__(self, role: str) -> Person:
        return self.people[role]

    @property
    def org_path(self) -> str:
        return f"/v1/orgs/{self.org.id}"

    @property
    def site_path(self) -> str:
        return f"/v1/orgs/{self.org.id}/sites/{self.site.id}"


class World:
    """Creates users, organizations, sites and grants directly in the database."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.maker = owner_sessionmaker(app)  # the owner writes any organization's rows
        self._pending: list[Any] | None = None

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Write every row saved inside the block in one transaction. Ids are assigned
        when rows are handed over, so tokens and grants can refer to unwritten rows."""
        self._pending = []
        try:
            yield
            rows, self._pending = self._pending, None
            order = {table: i for i, table in enumerate(Base.metadata.sorted_tables)}
            with self.maker() as session, session.begin():
                # Without relationship()s the unit of work does not order by foreign key.
                by_table = sorted(rows, key=lambda row: order[row.__table__])
                for _, group in groupby(by_table, key=lambda row: row.__table__):
                    session.add_all(list(group))
                    session.flush()
            self._written()
        finally:
            self._pending = None

    def _save(self, *rows: Any) -> None:
        if self._pending is not None:
            for row in rows:
                if getattr(row, "id", False) is None:
                    row.id = uuid.uuid4()
            self._pending.extend(rows)
            return
        with self.maker() as session, session.begin():
            session.add_all(rows)
        self._written()

    def _written(self) -> None:
        # Written behind the app's back: drop the actors it may have cached.
        self.app.extensions["actor_cache"].invalidate("*")

    def user(self, email: str | None = None, *, verified: bool = True) -> Person:
        """A person signed in; its address verified unless told otherwise."""
        user = User(
            email=email or f"u-{uuid.uuid4().hex[:10]}@example.com",
            password_hash=password_hash(),
            display_name="Test User",
            email_verified_at=utcnow() if verified else None,
        )
        self._save(user)
        return Person(user, self.token_for(user))

    def token_for(self, user: User) -> str:
        auth_session = AuthSession(user_id=user.id, expires_at=utcnow() + timedelta(days=1))
        self._save(auth_session)
        token, _ = self.app.extensions["tokens"].issue_access_token(user.id, auth_session.id)
        return token

    def org(self, name: str = "Acme") -> Organization:
        org = Organization(name=name)
        self._save(org)
        return org

    def site(self, org: Organization, name: str = "Main site") -> Site:
        site = Site(org_id=org.id, name=name)
        self._save(site)
        return site

    def grant_org(self, person: Person, org: Organization, role: str) -> None:
        self._save(OrgMembership(org_id=org.id, user_id=person.id, role=role))

    def grant_site(self, person: Person, site: Site, role: str) -> None:
        self._save(
            SiteMembership(org_id=site.org_id, site_id=site.id, user_id=person.id, role=role)
        )

    def tenant(self, name: str = "Acme") -> Tenant:
        """org_admin, site_admin, member and viewer on the org; site_* roles on the site only;
        and an outsider with no role at all."""
        with self.batch():
            return self._tenant(name)

    def _tenant(self, name: str) -> Tenant:
        org = self.org(name)
        site = self.site(org)
        tenant = Tenant(org, site)
        for role in ("org_admin", "site_admin", "member", "viewer"):
            tenant.people[role] = person = self.user()
            self.grant_org(person, org, role)
        for role in ("site_admin", "member", "viewer"):
            tenant.people[f"site_{role}"] = person = self.user()
            self.grant_site(person, site, role)
        tenant.people["outsider"] = self.user()
        return tenant
