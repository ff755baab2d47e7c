"""oauth: clients of an organization, authorization codes, sessions opened by a client

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05

`oauth_clients` and `oauth_codes` are tenant data: forced row-level security with the
policies of 0006/0008 (app/rls.py). The token endpoint knows no organization until it has
found the client: `app_oauth_client(id)`, a SECURITY DEFINER function like `app_api_key`,
returns that one live client; the request then enters the client's organization.
`auth_sessions` gains the client that opened a session and the scope capping its tokens.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db
from app.rls import app_role, protect, unprotect

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OAUTH_CLIENT = """
CREATE FUNCTION app_oauth_client(p_client uuid)
RETURNS SETOF oauth_clients
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
  SELECT c.* FROM oauth_clients c
  JOIN organizations o ON o.id = c.org_id
  LEFT JOIN sites s ON s.id = c.site_id
  WHERE c.id = p_client AND c.revoked_at IS NULL AND o.deleted_at IS NULL
    AND s.deleted_at IS NULL
$$;
"""


def _timestamps() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.db.UTCDateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "oauth_clients",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("site_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("client_type", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=True),
        sa.Column("redirect_uris", sa.JSON(), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("revoked_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", app.db.UTCDateTime(timezone=True), nullable=True),
        *_timestamps(),
        sa.CheckConstraint("role IN ('viewer', 'member', 'site_admin', 'org_admin')",
                           name=op.f("ck_oauth_clients_role")),
        sa.CheckConstraint("client_type IN ('public', 'confidential')",
                           name=op.f("ck_oauth_clients_client_type")),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"],
                                name=op.f("fk_oauth_clients_created_by_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"],
                                name=op.f("fk_oauth_clients_org_id_organizations"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["site_id", "org_id"], ["sites.id", "sites.org_id"],
                                name="fk_oauth_clients_site_org", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_clients")),
    )
    op.create_index("ix_oauth_clients_org_id_created_at", "oauth_clients",
                    ["org_id", "created_at", "id"])
    with op.batch_alter_table("auth_sessions") as batch:
        batch.add_column(sa.Column("client_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("scope", sa.String(length=200), nullable=True))
        batch.create_foreign_key("fk_auth_sessions_client_id_oauth_clients", "oauth_clients",
                                 ["client_id"], ["id"], ondelete="CASCADE")
        batch.create_index("ix_auth_sessions_client_id", ["client_id"])
    op.create_table(
        "oauth_codes",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("redirect_uri", sa.String(length=1000), nullable=False),
        sa.Column("scope", sa.String(length=200), nullable=False),
        sa.Column("code_challenge", sa.String(length=128), nullable=False),
        sa.Column("nonce", sa.String(length=200), nullable=True),
        sa.Column("expires_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("session_id", sa.Uuid(), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"],
                                name=op.f("fk_oauth_codes_org_id_organizations"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["client_id"], ["oauth_clients.id"],
                                name=op.f("fk_oauth_codes_client_id_oauth_clients"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_oauth_codes_user_id_users"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["session_id"], ["auth_sessions.id"],
                                name=op.f("fk_oauth_codes_session_id_auth_sessions"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_oauth_codes_code_hash")),
    )
    op.create_index("ix_oauth_codes_client_id", "oauth_codes", ["client_id"])
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    for table in ("oauth_clients", "oauth_codes"):
        protect(conn, table)
    op.execute(OAUTH_CLIENT)
    op.execute("REVOKE EXECUTE ON FUNCTION app_oauth_client(uuid) FROM PUBLIC")
    role = app_role()
    op.execute(f"""
        DO $$ BEGIN
          IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
            GRANT SELECT, INSERT, UPDATE, DELETE ON oauth_clients, oauth_codes TO {role};
            GRANT EXECUTE ON FUNCTION app_oauth_client(uuid) TO {role};
          END IF;
        END $$;
    """)


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        op.execute("DROP FUNCTION app_oauth_client(uuid)")
        for table in ("oauth_codes", "oauth_clients"):
            unprotect(conn, table)
    op.drop_table("oauth_codes")
    with op.batch_alter_table("auth_sessions") as batch:
        batch.drop_index("ix_auth_sessions_client_id")
        batch.drop_constraint("fk_auth_sessions_client_id_oauth_clients", type_="foreignkey")
        batch.drop_column("scope")
        batch.drop_column("client_id")
    op.drop_index("ix_oauth_clients_org_id_created_at", table_name="oauth_clients")
    op.drop_table("oauth_clients")
