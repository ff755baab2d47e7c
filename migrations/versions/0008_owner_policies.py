"""owner policies, an append-only audit log, row-level security on event partitions

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

PostgreSQL only. The tables' owner is no superuser and has no BYPASSRLS (README), so the
FORCE ROW LEVEL SECURITY of 0006 applies to it as well: with no organization in scope it
saw no row, and neither did the SECURITY DEFINER functions of 0006, which run as the
owner (no grants, no API or ingest key found), nor the admin commands (`seed-demo`
failed, `assets purge` purged nothing). Each tenant table now has `owner_maintenance`, a
policy for its owner alone that passes every row (see app/rls.py for why that grants the
owner nothing it did not have). FORCE stays; the runtime role gets no such policy.

The runtime role may no longer UPDATE or DELETE audit rows: the log is evidence.

Every partition of `events` forces row-level security with the parent's policies, for a
role that would address a partition directly (app/services/partitions.py).
"""

from collections.abc import Sequence

from alembic import op

from app.rls import app_role, owner_policy, protect, unprotect
from app.services.partitions import partitions

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every table whose row-level security is forced: the TENANT_TABLES of 0006, and 0007's
# idempotency_keys (`flask idempotency purge` runs as the owner too).
FORCED_TABLES = (
    "organizations", "sites", "org_memberships", "site_memberships", "api_keys",
    "ingest_keys", "assets", "galleries", "gallery_items", "events", "audit_events",
    "idempotency_keys",
)


def _if_app_role(statement: str) -> str:
    role = app_role()
    return f"""
        DO $$ BEGIN
          IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
            {statement.format(role=role)};
          END IF;
        END $$;
    """


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    for table in FORCED_TABLES:
        op.execute(owner_policy(conn, table))
    for partition in partitions(conn):
        protect(conn, partition)
    op.execute(_if_app_role("REVOKE UPDATE, DELETE ON audit_events FROM {role}"))


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    op.execute(_if_app_role("GRANT UPDATE, DELETE ON audit_events TO {role}"))
    for partition in partitions(conn):
        unprotect(conn, partition)
    for table in FORCED_TABLES:
        op.execute(f"DROP POLICY owner_maintenance ON {table}")
