"""Monthly partitions of the events table (PostgreSQL).

A month's partition must exist before its first event arrives, or the event lands in the
DEFAULT partition (which then blocks creating that month's partition until it is
emptied). `flask events partitions` creates the months ahead; run it from cron.
`flask events retention` detaches and drops the months older than EVENTS_RETENTION_MONTHS
(and deletes rows that old from the DEFAULT partition).

Each partition forces row-level security with the same policies as `events` (app/rls.py).
Queries through `events` apply only the parent's policies; a partition's own are for
whoever addresses it directly, which the runtime role cannot (it is granted `events`, not
its partitions) unless a broad grant such as `GRANT ... ON ALL TABLES` gives it them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import Connection, text

from app.rls import protect

MONTHLY = re.compile(r"events_(\d{4})_(\d{2})")  # the names create_month_partitions gives


def _month(year: int, month: int) -> tuple[int, int]:
    return year + (month - 1) // 12, (month - 1) % 12 + 1


def create_month_partitions(
    conn: Connection, around: datetime, months_back: int = 0, months_ahead: int = 3
) -> list[str]:
    """Create the monthly partitions from `months_back` before `around` to `months_ahead`
    after it; returns the names of those created now."""
    created = []
    for offset in range(-months_back, months_ahead + 1):
        year, month = _month(around.year, around.month + offset)
        next_year, next_month = _month(year, month + 1)
        name = f"events_{year:04d}_{month:02d}"
        exists = conn.execute(text("SELECT to_regclass(:n)"), {"n": name}).scalar()
        if exists:
            continue
        # Names and bounds are computed from integers above, never from input.
        conn.execute(text(
            f"CREATE TABLE {name} PARTITION OF events FOR VALUES "
            f"FROM ('{year:04d}-{month:02d}-01 00:00:00+00') "
            f"TO ('{next_year:04d}-{next_month:02d}-01 00:00:00+00')"
        ))
        protect(conn, name)
        created.append(name)
    return created


def partitions(conn: Connection) -> list[str]:
    """The names of the partitions of `events`, the DEFAULT one included."""
    return list(conn.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'events'::regclass ORDER BY c.relname"
    )).scalars())


def retention_cutoff(now: datetime, months: int) -> datetime:
    """The start of the month `months` before `now`'s: what ended before it goes. The
    current month and the `months` before it are kept whole."""
    year, month = _month(now.year, now.month - months)
    return datetime(year, month, 1, tzinfo=UTC)


def drop_before(conn: Connection, cutoff: datetime) -> tuple[list[str], int]:
    """Detach and drop every monthly partition that ended by `cutoff`, and delete the rows
    before it from the DEFAULT partition; returns the dropped names and the rows deleted.
    DETACH takes a brief exclusive lock on `events`: ingestion waits for it."""
    dropped = []
    for name in partitions(conn):
        match = MONTHLY.fullmatch(name)  # also what makes `name` safe to interpolate
        if match is None:
            continue
        end_year, end_month = _month(int(match[1]), int(match[2]) + 1)
        if datetime(end_year, end_month, 1, tzinfo=UTC) <= cutoff:
            conn.execute(text(f"ALTER TABLE events DETACH PARTITION {name}"))
            conn.execute(text(f"DROP TABLE {name}"))
            dropped.append(name)
    deleted = conn.execute(
        text("DELETE FROM events_default WHERE ts < :cutoff"), {"cutoff": cutoff}
    ).rowcount
    return dropped, deleted
