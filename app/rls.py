"""PostgreSQL row-level security statements shared by the migrations and the partition
maintenance (`flask events partitions`).

Two policies guard a tenant table, both permissive (a row passes when one of them does):
- `tenant_isolation`, for everyone: the rows of the organization in scope (`app.org_id`,
  set per transaction by app/db.py); none when no organization is;
- `owner_maintenance`, for the table's owner only: every row. The owner is no superuser
  and has no BYPASSRLS (README), and FORCE ROW LEVEL SECURITY applies to it too; the
  SECURITY DEFINER functions of migration 0006 run as the owner, and the admin commands
  connect as it. The owner could switch row-level security off on its own tables anyway,
  so the policy grants it nothing new; it makes that right visible in `pg_policies`.
The runtime role (APP_DB_ROLE) owns nothing and must not be a member of the owner role.
"""

from __future__ import annotations

import os

from sqlalchemy import Connection, text

CURRENT_ORG = "NULLIF(current_setting('app.org_id', true), '')::uuid"


def app_role() -> str:
    """The role the app connects as, which the migrations grant the tables to."""
    role = os.environ.get("APP_DB_ROLE", "tenant_api_app")
    if not role.replace("_", "").isalnum():
        raise ValueError("APP_DB_ROLE must be a plain identifier")
    return role


def owner_policy(conn: Connection, table: str) -> str:
    """CREATE POLICY owner_maintenance for the role that owns `table` (a plain name)."""
    owner = conn.execute(
        text("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = to_regclass(:t)"),
        {"t": table},
    ).scalar_one()
    role = conn.dialect.identifier_preparer.quote(owner)
    return (f"CREATE POLICY owner_maintenance ON {table} TO {role} "
            "USING (true) WITH CHECK (true)")


def protect(conn: Connection, table: str, column: str = "org_id") -> None:
    """Force row-level security on `table` with both policies (idempotent)."""
    conn.execute(text(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY"))
    conn.execute(text(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY"))
    conn.execute(text(f"DROP POLICY IF EXISTS tenant_isolation ON {table}"))
    conn.execute(text(
        f"CREATE POLICY tenant_isolation ON {table} "
        f"USING ({column} = {CURRENT_ORG}) WITH CHECK ({column} = {CURRENT_ORG})"
    ))
    conn.execute(text(f"DROP POLICY IF EXISTS owner_maintenance ON {table}"))
    conn.execute(text(owner_policy(conn, table)))


def unprotect(conn: Connection, table: str) -> None:
    """Undo protect()."""
    conn.execute(text(f"DROP POLICY IF EXISTS owner_maintenance ON {table}"))
    conn.execute(text(f"DROP POLICY IF EXISTS tenant_isolation ON {table}"))
    conn.execute(text(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY"))
    conn.execute(text(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY"))
