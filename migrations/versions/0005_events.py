"""events: month-partitioned on PostgreSQL

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import app.db
from app.models.events import JSON_DOCUMENT

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = """
    site_id uuid NOT NULL,
    ts timestamptz NOT NULL,
    event_id uuid NOT NULL,
    org_id uuid NOT NULL,
    name varchar(128) NOT NULL,
    received_at timestamptz NOT NULL,
    distinct_id varchar(200) NOT NULL,
    properties jsonb NOT NULL,
    CONSTRAINT pk_events PRIMARY KEY (site_id, ts, event_id),
    CONSTRAINT fk_events_site_org FOREIGN KEY (site_id, org_id)
        REFERENCES sites (id, org_id) ON DELETE CASCADE
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE TABLE events ({COLUMNS}) PARTITION BY RANGE (ts)")
        # Rows outside every monthly partition land here rather than fail.
        op.execute("CREATE TABLE events_default PARTITION OF events DEFAULT")
        from app.services.partitions import create_month_partitions

        create_month_partitions(op.get_bind(), datetime.now(UTC), months_back=3, months_ahead=3)
    else:
        op.create_table(
            "events",
            sa.Column("site_id", sa.Uuid(), nullable=False),
            sa.Column("ts", app.db.UTCDateTime(timezone=True), nullable=False),
            sa.Column("event_id", sa.Uuid(), nullable=False),
            sa.Column("org_id", sa.Uuid(), nullable=False),
            sa.Column("name", sa.String(length=128), nullable=False),
            sa.Column("received_at", app.db.UTCDateTime(timezone=True), nullable=False),
            sa.Column("distinct_id", sa.String(length=200), nullable=False),
            sa.Column("properties", JSON_DOCUMENT, nullable=False),
            sa.PrimaryKeyConstraint("site_id", "ts", "event_id", name="pk_events"),
            sa.ForeignKeyConstraint(
                ["site_id", "org_id"], ["sites.id", "sites.org_id"],
                name="fk_events_site_org", ondelete="CASCADE",
            ),
        )
    op.create_index("ix_events_site_name_ts", "events", ["site_id", "name", "ts"])
    op.create_index("ix_events_site_distinct_ts", "events", ["site_id", "distinct_id", "ts"])


def downgrade() -> None:
    op.drop_table("events")  # drops the partitions with it
