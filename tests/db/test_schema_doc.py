"""docs/schema.sql is the schema the migrations build today (PostgreSQL), like
docs/openapi.yaml is the API's."""

from __future__ import annotations

from pathlib import Path

from app import schema_doc
from tests.support import throwaway_database

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "schema.sql"


def test_the_committed_schema_is_what_the_migrations_build():
    with throwaway_database("schema") as url:
        dumped = schema_doc.dump(url)
    assert SCHEMA.exists(), "docs/schema.sql missing: run `flask docs schema`"
    assert dumped == SCHEMA.read_text(), "docs/schema.sql is stale: run `flask docs schema`"
    for expected in ("CREATE POLICY", "ENABLE ROW LEVEL SECURITY", "FORCE ROW LEVEL SECURITY",
                     "GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.galleries TO",
                     "CREATE FUNCTION public.app_api_key", "CREATE UNIQUE INDEX",
                     "PRIMARY KEY", "FOREIGN KEY"):
        assert expected in dumped, expected


def test_the_dump_is_stable_and_free_of_run_to_run_noise():
    with throwaway_database("schema") as url:
        first = schema_doc.dump(url)
        second = schema_doc.dump(url)
    assert first == second
    assert "\\restrict" not in first and "Dumped by" not in first
    assert "events_20" not in first  # dated partitions depend on the day
