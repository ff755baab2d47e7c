"""Analytics events. Written in bulk by app/services/ingest.py, read through the ORM.

On PostgreSQL the table is range-partitioned by month on `ts` (see the migration and
`flask events partitions`); its key (site_id, ts, event_id) makes a retried event a
duplicate and serves the per-site time-ordered reads.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow
from app.models.resource import Resource
from app.models.tenancy import in_one_site

JSON_DOCUMENT = JSON().with_variant(JSONB(), "postgresql")


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        in_one_site("events"),
        Index("ix_events_site_name_ts", "site_id", "name", "ts"),
        Index("ix_events_site_distinct_ts", "site_id", "distinct_id", "ts"),
    )
    __resource__ = Resource(
        fields=(), relations={"site": ("Site", "site_id")},
        sample=lambda place: Event(
            org_id=place.org.id, site_id=place.site.id, ts=utcnow(), name="sample",
            received_at=utcnow(), distinct_id="sample", properties={},
        ),
    )

    site_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    # Exposed as `event_id`; named `id` here so keyset pagination breaks ties on it.
    id: Mapped[uuid.UUID] = mapped_column("event_id", primary_key=True)
    org_id: Mapped[uuid.UUID]
    name: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    distinct_id: Mapped[str] = mapped_column(String(200))
    properties: Mapped[dict[str, Any]] = mapped_column(JSON_DOCUMENT)

