"""Migrations: 0008 down and up again returns the catalog to what it was, and the migrated
schema is exactly what the models declare."""

from __future__ import annotations

import re
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from app.migrate import downgrade, upgrade
from app.models import Base
from tests.support import APP_ROLE, throwaway_database


def catalog(url: str) -> dict[str, Any]:
    engine = create_engine(url)
    with engine.connect() as conn:
        state = {
            "policies": set(conn.execute(text(
                "SELECT tablename, policyname, roles::text FROM pg_policies"
            )).all()),
            "forced": set(conn.execute(text(
                "SELECT relname FROM pg_class WHERE relforcerowsecurity"
            )).scalars()),
            "audit": conn.execute(text(
                "SELECT has_table_privilege(:r, 'audit_events', 'UPDATE'),"
                " has_table_privilege(:r, 'audit_events', 'DELETE')"
            ), {"r": APP_ROLE}).one(),
        }
    engine.dispose()
    return state


def test_0008_downgrades_and_upgrades_cleanly():
    with throwaway_database("mig") as url:
        head = catalog(url)
        downgrade(url, "0007")
        before = catalog(url)
        upgrade(url)
        assert catalog(url) == head

    assert not any(name == "owner_maintenance" for _, name, _ in before["policies"])
    assert before["audit"] == (True, True)
    assert not any(table.startswith("events_") for table in before["forced"])
    assert head["audit"] == (False, False)
    assert {table for table, name, _ in head["policies"] if name == "owner_maintenance"} == (
        head["forced"])


# Monthly partitions of `events` are made by the migrations and `flask events partitions`,
# not declared as models.
PARTITION = re.compile(r"events_(\d{4}_\d{2}|default)$")


def _declared(name: str | None, kind: str, _parent: Any) -> bool:
    return not (kind in ("table", "index") and name and PARTITION.match(name))


@pytest.mark.portable
def test_the_migrations_build_exactly_the_models(database_url):
    """alembic's autogenerate comparison between the migrated database and the models finds
    nothing: a column, index or constraint added on one side only fails here."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_name": _declared}
            )
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()
