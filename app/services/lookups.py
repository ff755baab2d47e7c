"""Lookups by the ids a request names."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from app.errors import Missing, NotFound


def one_or_missing(
    session: Session, stmt: Any, model: type, key: object, org_id: uuid.UUID | None
) -> Any:
    """The one row `stmt` selects, or NotFound naming what was asked for: what is missing
    and what is hidden answer alike, and both are audited as refusals."""
    row = session.scalar(stmt)
    if row is None:
        raise NotFound(missing=Missing(model.__name__, key, org_id))
    return row
