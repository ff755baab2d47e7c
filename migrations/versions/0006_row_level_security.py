"""row-level security: every tenant table answers only for the current organization

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25

PostgreSQL only. The app connects as APP_DB_ROLE (default tenant_api_app), which owns no
table, is no superuser and has no BYPASSRLS; migrations run as the owner. Per transaction
the app sets `app.org_id` (app/db.py); a query that forgot its tenant filter still sees
only that organization, and with no organization set it sees nothing.

Requests that are not scoped to one organization use a narrow path: the SECURITY DEFINER
functions below return only what one actor owns (its grants, one key by id), and an
organization row is also visible to the signed-in user (`app.user_id`) who is a member of
it, which is what `GET /v1/orgs` lists. Nothing else crosses organizations.
"""

import os
from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Table -> the column naming its organization.
TENANT_TABLES = {
    "organizations": "id",
    "sites": "org_id",
    "org_memberships": "org_id",
    "site_memberships": "org_id",
    "api_keys": "org_id",
    "ingest_keys": "org_id",
    "assets": "org_id",
    "galleries": "org_id",
    "gallery_items": "org_id",
    "events": "org_id",
    "audit_events": "org_id",
}
# Not tenant data: accounts and their login sessions.
OTHER_TABLES = ("users", "auth_sessions", "refresh_tokens")
CURRENT_ORG = "NULLIF(current_setting('app.org_id', true), '')::uuid"

FUNCTIONS = """
CREATE FUNCTION app_user_grants(p_user uuid)
RETURNS TABLE (org_id uuid, site_id uuid, role varchar)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
  SELECT m.org_id, NULL::uuid, m.role
  FROM org_memberships m JOIN organizations o ON o.id = m.org_id
  WHERE m.user_id = p_user AND o.deleted_at IS NULL
  UNION ALL
  SELECT m.org_id, m.site_id, m.role
  FROM site_memberships m
  JOIN sites s ON s.id = m.site_id
  JOIN organizations o ON o.id = s.org_id
  WHERE m.user_id = p_user AND s.deleted_at IS NULL AND o.deleted_at IS NULL
$$;

CREATE FUNCTION app_user_is_member(p_org uuid)
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
  SELECT EXISTS (
    SELECT 1 FROM org_memberships m
    WHERE m.org_id = p_org AND m.user_id = NULLIF(current_setting('app.user_id', true), '')::uuid
  )
$$;

CREATE FUNCTION app_api_key(p_key uuid)
RETURNS SETOF api_keys
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
  SELECT k.* FROM api_keys k
  JOIN organizations o ON o.id = k.org_id
  LEFT JOIN sites s ON s.id = k.site_id
  WHERE k.id = p_key AND k.revoked_at IS NULL AND o.deleted_at IS NULL
    AND s.deleted_at IS NULL
$$;

CREATE FUNCTION app_ingest_key(p_key uuid)
RETURNS SETOF ingest_keys
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
  SELECT k.* FROM ingest_keys k
  JOIN sites s ON s.id = k.site_id
  JOIN organizations o ON o.id = k.org_id
  WHERE k.id = p_key AND k.revoked_at IS NULL AND s.deleted_at IS NULL
    AND o.deleted_at IS NULL
$$;
"""
FUNCTION_SIGNATURES = (
    "app_user_grants(uuid)",
    "app_user_is_member(uuid)",
    "app_api_key(uuid)",
    "app_ingest_key(uuid)",
)


def _app_role() -> str:
    role = os.environ.get("APP_DB_ROLE", "tenant_api_app")
    if not role.replace("_", "").isalnum():
        raise ValueError("APP_DB_ROLE must be a plain identifier")
    return role


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(FUNCTIONS)
    for table, column in TENANT_TABLES.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            f"USING ({column} = {CURRENT_ORG}) WITH CHECK ({column} = {CURRENT_ORG})"
        )
    # The signed-in user sees (only reads) the organizations it is a member of.
    op.execute(
        "CREATE POLICY member_reads ON organizations FOR SELECT USING (app_user_is_member(id))"
    )
    # The audit log is append-only for the app: a denial is recorded under the
    # organization it concerns, which is rarely the caller's; reading stays scoped.
    op.execute("CREATE POLICY audit_append ON audit_events FOR INSERT WITH CHECK (true)")
    role = _app_role()
    op.execute(f"""
        DO $$ BEGIN
          IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
            GRANT USAGE ON SCHEMA public TO {role};
            GRANT SELECT, INSERT, UPDATE, DELETE ON
              {", ".join([*TENANT_TABLES, *OTHER_TABLES])} TO {role};
            GRANT EXECUTE ON FUNCTION {", ".join(FUNCTION_SIGNATURES)} TO {role};
          ELSE
            RAISE WARNING 'role {role} does not exist: create it, then grant (see README)';
          END IF;
        END $$;
    """)
    # Functions are callable by PUBLIC by default; only the app role needs them.
    op.execute(f"REVOKE EXECUTE ON FUNCTION {', '.join(FUNCTION_SIGNATURES)} FROM PUBLIC")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP POLICY audit_append ON audit_events")
    op.execute("DROP POLICY member_reads ON organizations")
    for table in TENANT_TABLES:
        op.execute(f"DROP POLICY tenant_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    op.execute(f"DROP FUNCTION {', '.join(FUNCTION_SIGNATURES)}")
