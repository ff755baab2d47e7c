"""Monthly partitions of the events table (PostgreSQL).

A month's partition must exist before its first event arrives, or the event lands in the
DEFAULT partition (which then blocks creating that month's partition until it is
emptied). `flask events partitions` creates the months ahead; run it from cron.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text


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
        created.append(name)
    return created
