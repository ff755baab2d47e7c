"""Operating the database: the runtime role's statement timeout, and event retention
(`flask events retention` detaches and drops old monthly partitions). PostgreSQL only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from app.db import make_engine, owner_sessionmaker
from app.services.partitions import create_month_partitions, partitions, retention_cutoff
from tests.support import World


def test_the_runtime_roles_statements_are_cancelled_past_the_timeout(app, app_role_url):
    with app.extensions["db.engine"].connect() as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "25s"
    quick = make_engine(app_role_url, 1, statement_timeout_ms=100)
    try:
        with pytest.raises(OperationalError, match="statement timeout"), quick.connect() as conn:
            conn.execute(text("SELECT pg_sleep(2)"))
    finally:
        quick.dispose()


def test_the_owners_admin_sessions_have_no_timeout(app):
    with owner_sessionmaker(app)() as session:
        assert session.execute(text("SHOW statement_timeout")).scalar() == "0"


def test_the_cutoff_keeps_the_current_month_and_the_months_before_it():
    now = datetime(2026, 3, 15, tzinfo=UTC)
    assert retention_cutoff(now, 1) == datetime(2026, 2, 1, tzinfo=UTC)
    assert retention_cutoff(now, 3) == datetime(2025, 12, 1, tzinfo=UTC)


def insert_event(conn: Any, site: Any, ts: datetime) -> None:
    conn.execute(text(
        "INSERT INTO events (site_id, ts, event_id, org_id, name, received_at, distinct_id,"
        " properties) VALUES (:site, :ts, :id, :org, 'page.view', now(), 'v', '{}')"
    ), {"site": site.id, "ts": ts, "id": uuid.uuid4(), "org": site.org_id})


def test_retention_detaches_and_drops_the_old_months_only(app, world: World):
    """Months of 2001 (made here) go, and rows that old in the DEFAULT partition; the
    migration's months around today stay, with their rows."""
    site = world.site(world.org())
    recent = datetime.now(UTC).replace(day=1, hour=12)
    with owner_sessionmaker(app)() as session, session.begin():
        conn = session.connection()
        made = create_month_partitions(conn, datetime(2001, 2, 1, tzinfo=UTC), months_back=1,
                                       months_ahead=1)
        assert made == ["events_2001_01", "events_2001_02", "events_2001_03"]
        insert_event(conn, site, datetime(2001, 2, 3, tzinfo=UTC))
        insert_event(conn, site, datetime(1999, 6, 1, tzinfo=UTC))  # DEFAULT partition
        insert_event(conn, site, recent)
        before = set(partitions(conn))

    runner = app.test_cli_runner()
    off = runner.invoke(args=["events", "retention"])  # EVENTS_RETENTION_MONTHS=0: keep all
    assert off.exit_code == 0 and "retention is off" in off.output, off.output
    result = runner.invoke(args=["events", "retention", "--months", "24"])
    assert result.exit_code == 0, result.output
    assert "events_2001_01, events_2001_02, events_2001_03" in result.output
    assert "1 row(s) deleted" in result.output

    with owner_sessionmaker(app)() as session:
        conn = session.connection()
        after = set(partitions(conn))
        assert before - after == {"events_2001_01", "events_2001_02", "events_2001_03"}
        assert conn.execute(text("SELECT to_regclass('events_2001_02')")).scalar() is None
        kept = conn.execute(text("SELECT ts FROM events WHERE site_id = :s"),
                            {"s": site.id}).scalars().all()
        assert kept == [recent]
    again = runner.invoke(args=["events", "retention", "--months", "24"])
    assert "no partition" in again.output and "0 row(s)" in again.output
