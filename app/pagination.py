"""Keyset pagination with signed, scoped cursors.

A cursor holds the sort key and the last row's (value, id), and an HMAC over that and
the list it belongs to (the request path), so a cursor can be neither forged nor replayed
against another tenant's list. Ordering always ends on `id`, so pages are stable under
concurrent inserts and deletes: no row is skipped or repeated.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar
from weakref import WeakKeyDictionary

from sqlalchemy import Select, bindparam, tuple_
from sqlalchemy.orm import Session

from app.errors import BadRequest

Item = TypeVar("Item")


@dataclass(frozen=True)
class Page(Generic[Item]):
    items: list[Item]
    next_cursor: str | None


@dataclass(frozen=True)
class SortKey:
    """A list's order, as its `sort` argument chose it (schemas/common.py `list_args`
    declares the sortable columns once): the name cursors carry, the column, the
    direction. Rows with equal values are ordered by the model's id."""

    name: str
    column: Any
    descending: bool

    @property
    def id_column(self) -> Any:
        return self.column.class_.id

    @property
    def label(self) -> str:
        return f"-{self.name}" if self.descending else self.name


def _sign(secret: str, scope: str, payload: bytes) -> str:
    mac = hmac.new(secret.encode(), scope.encode() + b"\0" + payload, hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()[:16]).decode().rstrip("=")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def seal(secret: str, scope: str, values: list[Any]) -> str:
    """An opaque cursor holding `values` (JSON), signed for the list `scope`."""
    # UTF-8, not \u escapes: a value of 255 four-byte characters (a file name) stays
    # within schemas.common.CURSOR_MAX_LENGTH, and the next page's URL within app/uri.py's.
    payload = json.dumps(values, separators=(",", ":"), ensure_ascii=False).encode()
    return f"{_b64(payload)}.{_sign(secret, scope, payload)}"


def unseal(secret: str, scope: str, cursor: str) -> list[Any]:
    """The values `seal` put in `cursor` for `scope`; 400 when forged, altered or another
    list's."""
    try:
        body, mac = cursor.split(".", 1)
        payload = _unb64(body)
        if hmac.compare_digest(mac, _sign(secret, scope, payload)):
            values = json.loads(payload)
            if isinstance(values, list):
                return values
    except (ValueError, TypeError):
        pass
    raise invalid_cursor()


def invalid_cursor() -> BadRequest:
    return BadRequest("The cursor is invalid.", errors={"cursor": ["Invalid cursor."]})


def encode_cursor(secret: str, scope: str, sort: str, value: Any, row_id: uuid.UUID) -> str:
    raw = value.isoformat() if isinstance(value, datetime) else value
    return seal(secret, scope, [sort, raw, str(row_id)])


def decode_cursor(secret: str, scope: str, sort: str, cursor: str) -> tuple[Any, uuid.UUID]:
    values = unseal(secret, scope, cursor)
    try:
        cursor_sort, value, row_id = values
        row_uuid = uuid.UUID(row_id)
    except (ValueError, TypeError, AttributeError) as exc:
        raise invalid_cursor() from exc
    if cursor_sort != sort:
        raise BadRequest(
            "The cursor belongs to another sort order.", errors={"cursor": ["Sort mismatch."]}
        )
    return value, row_uuid


def paginate(
    session: Session,
    stmt: Select[tuple[Item]],
    *,
    sort: SortKey,
    limit: int,
    cursor: str | None,
    secret: str,
    scope: str,
    params: dict[str, Any] | None = None,
    whole_rows: bool = False,
) -> Page[Any]:
    """Run `stmt` for one page in `sort` order, ties broken by id.

    `params` are the values of the named bind parameters of `stmt`, when it is a statement
    built once and reused (see `galleries.listing`): its page statement is then reused too.
    The items are the model's objects; with `whole_rows`, the rows themselves: the model's
    object first, then the columns `stmt` adds (a gallery's cover, say).
    """
    column = sort.column
    values = {**(params or {}), "page_size": limit + 1}
    if cursor:
        raw_value, values["after_id"] = decode_cursor(secret, scope, sort.label, cursor)
        values["after_value"] = _parse_value(column, raw_value)
    page_stmt = _page_statement(stmt, column, sort.id_column, sort.descending, bool(cursor))
    result = session.execute(page_stmt, values)
    rows: list[Any] = list(result if whole_rows else result.scalars())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last: Any = rows[-1][0] if whole_rows else rows[-1]  # its sort value and id, by name
        next_cursor = encode_cursor(
            secret, scope, sort.label, getattr(last, column.key), last.id
        )
    return Page(rows, next_cursor)


_page_statements: WeakKeyDictionary[Select[Any], dict[tuple[Any, ...], Select[Any]]] = (
    WeakKeyDictionary()
)
_page_statements_lock = threading.Lock()


def _page_statement(
    stmt: Select[tuple[Item]], column: Any, id_column: Any, descending: bool, after: bool
) -> Select[tuple[Item]]:
    """`stmt` ordered, limited and (`after`) past the cursor, all values bound by name.

    Remembered for as long as `stmt` lives: a statement reused across requests then costs
    SQLAlchemy neither building nor cache-key work (about a third of a page's time)."""
    key = (column, descending, after)
    with _page_statements_lock:
        found = _page_statements.get(stmt, {}).get(key)
    if found is not None:
        return found
    page_stmt = stmt
    if after:
        # A row-value comparison, not `col < v OR (col = v AND id < last)`: PostgreSQL uses
        # it as an index condition on (..., col, id), so a deep page costs what the first
        # does; the OR form is only a filter, which scans every row before the cursor.
        keys = tuple_(column, id_column)
        last = tuple_(bindparam("after_value", type_=column.type),
                      bindparam("after_id", type_=id_column.type))
        page_stmt = page_stmt.where(keys < last if descending else keys > last)
    order = (column.desc(), id_column.desc()) if descending else (column.asc(), id_column.asc())
    page_stmt = page_stmt.order_by(*order).limit(bindparam("page_size"))
    with _page_statements_lock:
        _page_statements.setdefault(stmt, {})[key] = page_stmt
    return page_stmt


def _parse_value(column: Any, raw: Any) -> Any:
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        python_type = type(raw)
    if python_type is datetime:
        if not isinstance(raw, str):
            raise ValueError("timestamp expected")
        return datetime.fromisoformat(raw)
    if python_type is uuid.UUID:
        return uuid.UUID(raw)
    if not isinstance(raw, python_type):
        raise ValueError("cursor value of the wrong type")
    return raw
