"""Reading events: filtered lists and counts per name per hour or day."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, literal_column, select
from sqlalchemy.orm import Session

from app.authz import authorized
from app.models import Event, Site


def filtered(site: Site, args: dict[str, Any]) -> Select[Any]:
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


def stats(session: Session, site: Site, args: dict[str, Any], actor: Any) -> list[dict[str, Any]]:
    bucket = _bucket(session.get_bind().dialect.name, args["interval"]).label("bucket")
    stmt = (
        select(bucket, Event.name, func.count().label("count"))
        .where(
            Event.org_id == site.org_id,
            Event.site_id == site.id,
            Event.ts >= args["since"],
            Event.ts < args["until"],
        )
        .group_by(bucket, Event.name)
        .order_by(bucket, Event.name)
    )
    if args.get("name"):
        stmt = stmt.where(Event.name == args["name"])
    rows = session.execute(authorized(stmt, actor, "read", Event))
    return [{"bucket": _as_datetime(b), "name": name, "count": count} for b, name, count in rows]


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(value).replace(tzinfo=UTC)
