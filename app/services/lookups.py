"""Lookups by the ids a request names."""

from __future__ import annotations

import uuid
from typing import TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import Session

from app.errors import Missing, NotFound

Row = TypeVar("Row")


def one_or_missing(
    session: Session, stmt: Select[tuple[Row]], model: type[Row], key: object,
    org_id: uuid.UUID | None,
) -> Row:
    """The one row `stmt` selects, or NotFound naming what was asked for: what is missing
    and what is hidden answer alike, and both are audited as refusals."""
    row = session.scalar(stmt)
    if row is None:
        raise NotFound(missing=Missing(model.__name__, key, org_id))
    return row
