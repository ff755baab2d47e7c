"""Small pieces every blueprint uses."""

from __future__ import annotations

from typing import Any, TypeVar

from flask import current_app, g, request, url_for
from sqlalchemy import Select

from app import db
from app.auth.current import actor
from app.config import Settings
from app.models import User
from app.pagination import Page, paginate
from app.services import audit
from app.storage import Storage

Item = TypeVar("Item")
# What a creating view returns: the body, 201, and `Location` naming what it created.
Created = tuple[Any, int, dict[str, str]]


def created(body: Any, endpoint: str, **ids: Any) -> Created:
    """A 201 whose `Location` is the URL of the new resource (`endpoint` is its view)."""
    return body, 201, {"Location": url_for(endpoint, **ids)}


def settings() -> Settings:
    return current_app.extensions["settings"]


def storage() -> Storage:
    return current_app.extensions["storage"]


def page(
    stmt: Select[tuple[Item]], args: dict[str, Any], values: dict[str, Any] | None = None,
    *, whole_rows: bool = False,
) -> Page[Item]:
    """One page of `stmt` in the order `args` chose (a SortKey: see `list_args`), with
    `values` for its named bind parameters; cursors are bound to this list (its path).
    `whole_rows`: see `paginate`."""
    return paginate(
        db.session(),
        stmt,
        sort=args["sort"],
        limit=args["limit"],
        cursor=args["cursor"],
        secret=settings().secret_key,
        scope=request.path,
        params=values,
        whole_rows=whole_rows,
    )


def author() -> audit.Author:
    """The caller and this request, as the services that change things audit them."""
    who = actor()
    return audit.Author(who.kind, who.id, g.get("request_id"))


def own_account() -> User:
    """The caller's own account, as the policy's `Account`: people-only operations are
    authorized on it (`manage`), so a key gets a 403 from the policy, not from Python."""
    return User(id=actor().id)
