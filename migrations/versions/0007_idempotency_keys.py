"""idempotency keys

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

import os
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("org_id", sa.Uuid(), nullable=True),
        sa.Column("scope", sa.String(length=36), nullable=False),
        sa.Column("principal", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("route", sa.String(length=255), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("content_type", sa.String(length=127), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("location", sa.String(length=2048), nullable=True),
        sa.Column("expires_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
    )
    op.create_index(
        "uq_idempotency_keys_scope", "idempotency_keys",
        ["scope", "principal", "method", "route", "key"], unique=True,
    )
    op.create_index("ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"])
    if op.get_bind().dialect.name == "postgresql":
        # Tenant rows follow the organization in scope; rows of no organization (routes
        # without one, e.g. POST /v1/orgs) are visible only when no organization is.
        op.execute("ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE idempotency_keys FORCE ROW LEVEL SECURITY")
        current = "NULLIF(current_setting('app.org_id', true), '')::uuid"
        op.execute(
            "CREATE POLICY tenant_isolation ON idempotency_keys "
            f"USING (org_id IS NOT DISTINCT FROM {current}) "
            f"WITH CHECK (org_id IS NOT DISTINCT FROM {current})"
        )
        role = os.environ.get("APP_DB_ROLE", "tenant_api_app")
        op.execute(f"""
            DO $$ BEGIN
              IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                GRANT SELECT, INSERT, UPDATE, DELETE ON idempotency_keys TO {role};
              END IF;
            END $$;
        """)


def downgrade() -> None:
    op.drop_table("idempotency_keys")
