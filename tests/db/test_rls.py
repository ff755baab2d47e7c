"""PostgreSQL row-level security: the second wall behind the app's own tenant filters."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from app.db import UnitOfWork, make_engine, make_sessionmaker, owner_sessionmaker
from app.services.partitions import create_month_partitions
from app.services.partitions import partitions as event_partitions
from tests.support import APP_ROLE, OWNER_ROLE


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
    unit = UnitOfWork(make_sessionmaker(runtime))  # pool of one connection: reused next
    unit.scope(org_id=a.org.id, user_id=None)
    assert _site_orgs(unit.session.connection()) == {a.org.id}
    unit.commit()
    # Same session, same pooled connection, new transaction: scope re-applied.
    assert _site_orgs(unit.session.connection()) == {a.org.id}
    unit.close()
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


# -- the owner: no superuser, no BYPASSRLS, rows through its own policy only ---------------------


def test_the_owner_is_the_readme_role_and_cannot_bypass_rls(app, owner):
    """The suite migrates and administers as README's owner, not as a superuser."""
    with owner.connect() as conn:
        me, superuser, bypass = conn.execute(text(
            "SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        )).one()
        assert (me, superuser, bypass) == (OWNER_ROLE, False, False)
        assert conn.execute(text(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner <> :r"
        ), {"r": OWNER_ROLE}).scalar() == 0
    with owner_sessionmaker(app)() as session:  # what the admin commands connect as
        assert session.scalar(text("SELECT current_user")) == OWNER_ROLE


def test_every_forced_table_has_an_owner_policy_for_its_owner_alone(owner):
    with owner.connect() as conn:
        forced = conn.execute(text("""
            SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
            WHERE c.relkind IN ('r', 'p') AND c.relforcerowsecurity
        """)).all()
        assert {"organizations", "audit_events", "idempotency_keys", "events_default"} <= {
            table for table, _ in forced}
        for table, table_owner in forced:
            policies = dict(conn.execute(text(
                "SELECT policyname, roles::text FROM pg_policies WHERE tablename = :t"
            ), {"t": table}).all())
            assert policies.get("owner_maintenance") == f"{{{table_owner}}}", table
            # Every other policy names no role in particular: the owner's is the only one.
            assert {r for name, r in policies.items() if name != "owner_maintenance"} <= {
                "{public}"}, table


def test_the_runtime_role_is_no_member_of_the_owner(owner):
    """A policy `TO owner` applies to the owner's members too."""
    with owner.connect() as conn:
        assert conn.execute(text("SELECT pg_has_role(:a, :o, 'MEMBER')"),
                            {"a": APP_ROLE, "o": OWNER_ROLE}).scalar() is False


def test_the_owner_sees_every_organization_without_a_scope(owner, two_orgs):
    a, b = two_orgs
    with owner.connect() as conn:
        assert _site_orgs(conn) == {a.org.id, b.org.id}


def test_definer_functions_find_grants_and_keys_for_the_runtime_role(runtime, two_orgs):
    """They run as the owner under forced RLS: its policy is what lets them see rows."""
    a, _ = two_orgs
    with runtime.begin() as conn:
        grants = conn.execute(text("SELECT org_id, site_id, role FROM app_user_grants(:u)"),
                              {"u": a["site_member"].id}).all()
        assert grants == [(a.org.id, a.site.id, "member")]
        conn.execute(text("SELECT set_config('app.user_id', :u, true)"), {"u": str(a["viewer"].id)})
        assert conn.execute(text("SELECT app_user_is_member(:o)"), {"o": a.org.id}).scalar()


# -- the audit log is append-only for the runtime role -------------------------------------------


def _audit_row(conn, org_id) -> uuid.UUID:
    row_id = uuid.uuid4()
    conn.execute(text(
        "INSERT INTO audit_events (id, org_id, event, actor_type, action, resource_type, data,"
        " created_at, updated_at) VALUES (:i, :o, 'authz.denied', 'user', 'read', 'Site', '{}',"
        " now(), now())"), {"i": row_id, "o": org_id})
    return row_id


def test_the_runtime_role_appends_audit_records_but_cannot_change_them(app, runtime):
    org_id = uuid.uuid4()  # audit records have no foreign key: the log outlives its subjects
    with runtime.begin() as conn:
        conn.execute(text("SELECT set_config('app.org_id', :o, true)"), {"o": str(org_id)})
        row_id = _audit_row(conn, org_id)
    for statement in ("UPDATE audit_events SET action = 'nothing' WHERE id = :i",
                      "DELETE FROM audit_events WHERE id = :i"):
        with pytest.raises(DBAPIError, match="permission denied"), runtime.begin() as conn:
            conn.execute(text("SELECT set_config('app.org_id', :o, true)"), {"o": str(org_id)})
            conn.execute(text(statement), {"i": row_id})
    with runtime.begin() as conn:
        conn.execute(text("SELECT set_config('app.org_id', :o, true)"), {"o": str(org_id)})
        assert conn.execute(text("SELECT action FROM audit_events WHERE id = :i"),
                            {"i": row_id}).scalar() == "read"


# -- partitions of events ------------------------------------------------------------------------


@pytest.fixture
def partitions(owner):
    """Every partition of events: the migration's, and one `flask events partitions` makes
    (a month far ahead, dropped afterwards)."""
    with owner.begin() as conn:
        made = create_month_partitions(conn, datetime(2041, 5, 1, tzinfo=UTC), months_ahead=0)
        assert made == ["events_2041_05"]
        names = event_partitions(conn)
    yield names
    with owner.begin() as conn:
        conn.execute(text("DROP TABLE events_2041_05"))


PARTITION_STATEMENTS = (
    "SELECT count(*) FROM {p}",
    "INSERT INTO {p} (site_id, ts, event_id, org_id, name, received_at, distinct_id, properties)"
    " VALUES (gen_random_uuid(), '2041-05-02', gen_random_uuid(), gen_random_uuid(), 'x', now(),"
    " 'x', '{{}}')",
    "UPDATE {p} SET name = 'y'",
    "DELETE FROM {p}",
)


def test_the_runtime_role_cannot_address_a_partition(runtime, partitions):
    assert {"events_default", "events_2041_05"} <= set(partitions)
    for partition in partitions:
        for statement in PARTITION_STATEMENTS:
            with pytest.raises(DBAPIError, match="permission denied"), runtime.begin() as conn:
                conn.execute(text(statement.format(p=partition)))


def test_a_partition_granted_directly_still_shows_one_organization(owner, runtime, two_orgs,
                                                                   partitions):
    """Defense in depth: a broad grant (`GRANT ... ON ALL TABLES`) reaches the partitions,
    whose own row-level security still holds: the migration's (DEFAULT) and a new one."""
    a, b = two_orgs
    checked = {"events_default": "1999-01-02", "events_2041_05": "2041-05-02"}
    with owner.begin() as conn:
        for partition, day in checked.items():
            for org in (a, b):
                conn.execute(text(
                    "INSERT INTO events (site_id, ts, event_id, org_id, name, received_at,"
                    " distinct_id, properties) VALUES (:s, :ts, gen_random_uuid(), :o,"
                    " 'x', now(), 'x', '{}')"), {"s": org.site.id, "o": org.org.id, "ts": day})
            conn.execute(text(f"GRANT SELECT ON {partition} TO {APP_ROLE}"))
    try:
        for partition in checked:
            query = text(f"SELECT org_id FROM {partition}")
            with runtime.begin() as conn:
                assert conn.execute(query).scalars().all() == [], partition
                conn.execute(text("SELECT set_config('app.org_id', :o, true)"),
                             {"o": str(a.org.id)})
                assert conn.execute(query).scalars().all() == [a.org.id], partition
    finally:
        with owner.begin() as conn:
            conn.execute(text(f"REVOKE SELECT ON events_default FROM {APP_ROLE}"))


# -- the scope travels with BEGIN (db._set_scope) ------------------------------------------------


def test_the_scope_is_the_transactions_first_statement_and_follows_enter(runtime):
    """The scope is set as the transaction begins (with its BEGIN, in one query), so the
    first statement already runs in it, inside that transaction; moved inside an open
    transaction (`enter`), it applies at once."""
    unit = UnitOfWork(make_sessionmaker(runtime))
    org, user, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    unit.scope(org_id=org, user_id=user)
    shown = text("SELECT current_setting('app.org_id'), current_setting('app.user_id'), "
                 "now() = statement_timestamp()")
    seen_org, seen_user, first = unit.session.execute(shown).one()
    assert (seen_org, seen_user) == (str(org), str(user))
    assert not first, "the statement runs in the transaction the scope began"
    unit.enter(other)
    assert unit.session.execute(shown).one()[:2] == (str(other), str(user))
    unit.close()
    unit = UnitOfWork(make_sessionmaker(runtime))
    unit.scope(org_id=None, user_id=user)  # a person outside any organization
    assert unit.session.execute(shown).one()[:2] == ("", str(user))
    unit.close()


def test_a_connection_lost_before_the_scope_is_a_dbapi_error_and_leaves_the_pool(
    runtime, app_role_url
):
    """The scope is the first thing a transaction sends: a connection that died in the pool
    fails there as SQLAlchemy fails (OperationalError: a 503), and is not reused."""
    unit = UnitOfWork(make_sessionmaker(runtime))
    unit.scope(org_id=uuid.uuid4(), user_id=None)
    pid = unit.session.execute(text("SELECT pg_backend_pid()")).scalar()
    unit.close()
    killer = create_engine(app_role_url)  # a role may end its own backends
    with killer.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    killer.dispose()
    unit = UnitOfWork(make_sessionmaker(runtime))
    unit.scope(org_id=uuid.uuid4(), user_id=None)
    with pytest.raises(DBAPIError) as raised:
        for _ in range(50):  # until the server's termination has reached the socket
            unit.session.execute(text("SELECT 1"))
            unit.close()
            unit.scope(org_id=uuid.uuid4(), user_id=None)
    assert type(raised.value).__name__ == "OperationalError"
    assert raised.value.connection_invalidated
    unit.close()
    unit = UnitOfWork(make_sessionmaker(runtime))
    unit.scope(org_id=uuid.uuid4(), user_id=None)
    assert unit.session.execute(text("SELECT pg_backend_pid()")).scalar() != pid
    unit.close()
