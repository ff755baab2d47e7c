"""Small pieces every blueprint uses."""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from sqlalchemy import Select

from app import db
from app.auth.current import actor
from app.models import User
from app.pagination import Page, paginate


def settings() -> Any:
    return current_app.extensions["settings"]


def page(
    stmt: Select[Any], model: type, args: dict[str, Any], sortable: dict[str, Any],
    values: dict[str, Any] | None = None,
) -> Page:
    """One page of `stmt` (with `values` for its named bind parameters); cursors are bound
    to this list (the request path)."""
    return paginate(
        db.session(),
        stmt,
        model=model,
        sort=args["sort"],
        sortable=sortable,
        limit=args["limit"],
        cursor=args["cursor"],
        secret=settings().secret_key,
        scope=request.path,
        params=values,
    )


def own_account() -> User:
    """The caller's own account, as the policy's `Account`: people-only operations are
    authorized on it (`manage`), so a key gets a 403 from the policy, not from Python."""
    return User(id=actor().id)
