"""Reading events: filtered lists and counts per name per hour or day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal_column, or_, select
from sqlalchemy.orm import Session

from app.models import Event, Site
from app.pagination import Page, invalid_cursor, seal, unseal


def filtered(site: Site, args: dict[str, Any]) -> Select[tuple[Event]]:
    stmt = select(Event).where(Event.org_id == site.org_id, Event.site_id == site.id)
    if args.get("name"):
        stmt = stmt.where(Event.name == args["name"])
    if args.get("distinct_id"):
        stmt = stmt.where(Event.distinct_id == args["distinct_id"])
    if args.get("since"):
        stmt = stmt.where(Event.ts >= args["since"])
    if args.get("until"):
        stmt = stmt.where(Event.ts < args["until"])
    return stmt


def _bucket(dialect: str, interval: str) -> Any:
    if dialect == "postgresql":
        return func.date_trunc(interval, Event.ts, literal_column("'UTC'"))
    pattern = "%Y-%m-%d %H:00:00" if interval == "hour" else "%Y-%m-%d 00:00:00"
    return func.strftime(pattern, Event.ts)


STEPS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}


def stats(
    session: Session, site: Site, args: dict[str, Any], read_filter: ColumnElement[bool], *,
    secret: str, scope: str,
) -> Page:
    """Counts per (bucket, name) over the window of the events that pass `read_filter` (the
    policy's), one page in (bucket, name) order; the cursor (signed for `scope`, the list's
    path) holds the last row's bucket and name."""
    interval = args["interval"]
    bucket = _bucket(session.get_bind().dialect.name, interval).label("bucket")
    stmt = select(bucket, Event.name, func.count().label("count")).where(
        Event.org_id == site.org_id,
        Event.site_id == site.id,
        Event.ts >= args["since"],
        Event.ts < args["until"],
    )
    if args.get("name"):
        stmt = stmt.where(Event.name == args["name"])
    if args.get("cursor"):
        after, after_name = _after(secret, scope, interval, args["cursor"])
        # Past (after, after_name): a later bucket, or a later name in the same one. Said
        # of `ts` rather than of the bucket expression, so the index on `ts` still serves.
        stmt = stmt.where(
            Event.ts >= after, or_(Event.ts >= after + STEPS[interval], Event.name > after_name)
        )
    stmt = stmt.group_by(bucket, Event.name)
    page = stmt.where(read_filter).order_by(bucket, Event.name)
    limit = args["limit"]
    rows = [
        {"bucket": _as_datetime(b), "name": name, "count": count}
        for b, name, count in session.execute(page.limit(limit + 1))
    ]
    if len(rows) <= limit:
        return Page(rows, None)
    last = rows[limit - 1]
    cursor = seal(secret, scope, ["stats", interval, last["bucket"].isoformat(), last["name"]])
    return Page(rows[:limit], cursor)


def _after(secret: str, scope: str, interval: str, cursor: str) -> tuple[datetime, str]:
    """The (bucket, name) a stats cursor resumes after; refused for another interval."""
    try:
        kind, cursor_interval, bucket, name = unseal(secret, scope, cursor)
        after = datetime.fromisoformat(bucket)
    except (ValueError, TypeError) as exc:
        raise invalid_cursor() from exc
    if (kind, cursor_interval) != ("stats", interval) or not isinstance(name, str) \
            or after.tzinfo is None:
        raise invalid_cursor()
    return after, name


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(value).replace(tzinfo=UTC)
