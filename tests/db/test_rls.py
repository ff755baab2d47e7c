"""PostgreSQL row-level security: the second wall behind the app's own tenant filters."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from app.db import make_engine, make_sessionmaker, set_scope
from tests.support import APP_ROLE


@pytest.fixture
def owner(app, database_url):
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def runtime(app_role_url):
    engine = make_engine(app_role_url, pool_size=1)
    yield engine
    engine.dispose()


@pytest.fixture
def two_orgs(world):
    a, b = world.tenant("Alpha"), world.tenant("Beta")
    return a, b


def tenant_tables(conn) -> set[str]:
    """Every table with an org_id column, and organizations itself (partitions excluded)."""
    rows = conn.execute(text("""
        SELECT c.relname FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
        WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND (c.relname = 'organizations' OR EXISTS (
                SELECT 1 FROM pg_attribute a
                WHERE a.attrelid = c.oid AND a.attname = 'org_id' AND NOT a.attisdropped))
    """))
    return {name for (name,) in rows}


def test_every_tenant_table_forces_rls_with_a_policy(owner):
    with owner.connect() as conn:
        tables = tenant_tables(conn)
        assert {"organizations", "sites", "events", "assets", "galleries"} <= tables
        for table in tables:
            enabled, forced = conn.execute(
                text("SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = :t"),
                {"t": table},
            ).one()
            policies = conn.execute(
                text("SELECT count(*) FROM pg_policies WHERE tablename = :t"), {"t": table}
            ).scalar()
            assert (enabled, forced, policies > 0) == (True, True, True), table


def test_the_runtime_role_cannot_escape_rls(owner):
    with owner.connect() as conn:
        superuser, bypass = conn.execute(
            text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = :r"), {"r": APP_ROLE}
        ).one()
        owned = conn.execute(
            text("SELECT count(*) FROM pg_tables WHERE tableowner = :r"), {"r": APP_ROLE}
        ).scalar()
    assert (superuser, bypass, owned) == (False, False, 0)


def _site_orgs(conn) -> set[uuid.UUID]:
    return {row[0] for row in conn.execute(text("SELECT org_id FROM sites"))}


def test_raw_sql_under_one_org_sees_only_that_org(runtime, two_orgs):
    a, b = two_orgs
    with runtime.begin() as conn:
        conn.execute(text("SELECT set_config('app.org_id', :o, true)"), {"o": str(a.org.id)})
        assert _site_orgs(conn) == {a.org.id}
        assert conn.execute(text("SELECT count(*) FROM org_memberships WHERE org_id = :b"),
                            {"b": b.org.id}).scalar() == 0


def test_no_org_set_sees_nothing(runtime, two_orgs):
    with runtime.begin() as conn:
        for table in ("organizations", "sites", "org_memberships", "site_memberships"):
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 0, table


def test_the_setting_does_not_leak_through_the_pool(runtime, two_orgs):
    a, _ = two_orgs
    maker = make_sessionmaker(runtime)  # pool of one connection: the next user gets it
    with maker() as session:
        set_scope(session, org_id=a.org.id)
        assert _site_orgs(session.connection()) == {a.org.id}
        session.commit()
        # Same session, same pooled connection, new transaction: scope re-applied.
        assert _site_orgs(session.connection()) == {a.org.id}
    with runtime.begin() as conn:  # a different user of the same connection
        assert conn.execute(text("SELECT current_setting('app.org_id', true)")).scalar() == ""
        assert _site_orgs(conn) == set()


def test_a_row_cannot_be_moved_to_another_org(runtime, two_orgs):
    a, b = two_orgs
    with pytest.raises(DBAPIError, match="row-level security"), runtime.begin() as conn:
        conn.execute(text("SELECT set_config('app.org_id', :o, true)"), {"o": str(a.org.id)})
        conn.execute(text("UPDATE sites SET org_id = :b WHERE id = :s"),
                     {"b": b.org.id, "s": a.site.id})


def test_a_row_cannot_be_written_into_another_org(runtime, two_orgs):
    a, b = two_orgs
    with pytest.raises(DBAPIError, match="row-level security"), runtime.begin() as conn:
        conn.execute(text("SELECT set_config('app.org_id', :o, true)"), {"o": str(a.org.id)})
        conn.execute(text("INSERT INTO sites (id, org_id, name, created_at, updated_at) "
                          "VALUES (:i, :b, 'x', now(), now())"), {"i": uuid.uuid4(), "b": b.org.id})


def test_a_member_reads_its_organizations_and_nothing_else(runtime, two_orgs):
    a, _ = two_orgs
    with runtime.begin() as conn:
        conn.execute(text("SELECT set_config('app.user_id', :u, true)"), {"u": str(a["viewer"].id)})
        orgs = {row[0] for row in conn.execute(text("SELECT id FROM organizations"))}
        assert orgs == {a.org.id}
        assert _site_orgs(conn) == set()  # membership shows the organization row only
