"""Responses remembered per Idempotency-Key, so a retried POST replays instead of redoing."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Entity, UTCDateTime


class IdempotencyRecord(Entity):
    __tablename__ = "idempotency_keys"
    __table_args__ = (
        # One record per (organization or none, principal, method, route, key).
        Index(
            "uq_idempotency_keys_scope", "scope", "principal", "method", "route", "key",
            unique=True,
        ),
        Index("ix_idempotency_keys_expires_at", "expires_at"),
    )

    org_id: Mapped[uuid.UUID | None]  # row-level security; None for unscoped routes
    scope: Mapped[str] = mapped_column(String(36))  # str(org_id) or "": unique with NULLs
    principal: Mapped[str] = mapped_column(String(64))  # "<kind>:<id>" of the caller
    method: Mapped[str] = mapped_column(String(8))
    route: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None] = mapped_column(Integer)  # None while in flight
    content_type: Mapped[str | None] = mapped_column(String(127))
    body: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(String(2048))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
