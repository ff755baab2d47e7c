"""accounts: verified addresses, single-use account tokens, invitations, the mail outbox

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04

`invitations` is tenant data: forced row-level security like the tables of 0006, with the
owner's policy of 0008. An invitee is in no organization yet, so its own pending
invitations are reached through `app_my_invitations()`, a SECURITY DEFINER function that
returns only those addressed to the signed-in person's verified address (`app.user_id`).
`account_tokens` and `outbox` belong to accounts, not to a tenant (like `users`).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db
from app.rls import app_role, owner_policy

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT_ORG = "NULLIF(current_setting('app.org_id', true), '')::uuid"
MY_INVITATIONS = """
CREATE FUNCTION app_my_invitations()
RETURNS SETOF invitations
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
  SELECT i.* FROM invitations i
  JOIN users u ON u.email = i.email
  JOIN organizations o ON o.id = i.org_id
  LEFT JOIN sites s ON s.id = i.site_id
  WHERE u.id = NULLIF(current_setting('app.user_id', true), '')::uuid
    AND u.email_verified_at IS NOT NULL AND u.deleted_at IS NULL
    AND i.accepted_at IS NULL AND i.declined_at IS NULL AND i.revoked_at IS NULL
    AND i.expires_at > now() AND o.deleted_at IS NULL AND s.deleted_at IS NULL
$$;
"""


def _timestamps() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.db.UTCDateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.add_column(
        "users", sa.Column("email_verified_at", app.db.UTCDateTime(timezone=True), nullable=True)
    )
    op.create_table(
        "outbox",
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=True),
        sa.Column("body_html", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("sent_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("given_up_at", app.db.UTCDateTime(timezone=True), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_index("ix_outbox_pending", "outbox", ["sent_at", "next_attempt_at"])
    op.create_table(
        "account_tokens",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", app.db.UTCDateTime(timezone=True), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_account_tokens_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_account_tokens_token_hash")),
    )
    op.create_index("ix_account_tokens_user_id_purpose", "account_tokens", ["user_id", "purpose"])
    op.create_table(
        "invitations",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("site_id", sa.Uuid(), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("invited_by", sa.Uuid(), nullable=True),
        sa.Column("expires_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("declined_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", app.db.UTCDateTime(timezone=True), nullable=True),
        *_timestamps(),
        sa.CheckConstraint("role IN ('viewer', 'member', 'site_admin', 'org_admin')",
                           name=op.f("ck_invitations_role")),
        sa.ForeignKeyConstraint(["invited_by"], ["users.id"],
                                name=op.f("fk_invitations_invited_by_users"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"],
                                name=op.f("fk_invitations_org_id_organizations"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["site_id", "org_id"], ["sites.id", "sites.org_id"],
                                name="fk_invitations_site_org", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
    )
    op.create_index("ix_invitations_email", "invitations", ["email"])
    op.create_index("ix_invitations_org_id_created_at", "invitations",
                    ["org_id", "created_at", "id"])
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE invitations ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE invitations FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON invitations "
        f"USING (org_id = {CURRENT_ORG}) WITH CHECK (org_id = {CURRENT_ORG})"
    )
    op.execute(owner_policy(conn, "invitations"))
    op.execute(MY_INVITATIONS)
    op.execute("REVOKE EXECUTE ON FUNCTION app_my_invitations() FROM PUBLIC")
    role = app_role()
    op.execute(f"""
        DO $$ BEGIN
          IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
            GRANT SELECT, INSERT, UPDATE, DELETE ON invitations, account_tokens, outbox
              TO {role};
            GRANT EXECUTE ON FUNCTION app_my_invitations() TO {role};
          END IF;
        END $$;
    """)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION app_my_invitations()")
    op.drop_table("invitations")
    op.drop_table("account_tokens")
    op.drop_table("outbox")
    op.drop_column("users", "email_verified_at")
