"""Migration 0008 down and up again, as the owner: the catalog returns to what it was."""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, text

from app.migrate import downgrade, upgrade
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
