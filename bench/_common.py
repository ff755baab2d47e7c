"""What every benchmark needs: a throwaway PostgreSQL database (created, migrated,
dropped) and timing helpers."""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, make_url, text

from app.migrate import upgrade

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@contextmanager
def throwaway_database(prefix: str = "bench") -> Iterator[str]:
    configured = os.environ.get("DATABASE_URL", "")
    base = make_url(configured if configured.startswith("postgresql") else DEFAULT_PG)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    """Milliseconds taken by each of `runs` calls of `fn`."""
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def pct(samples: list[float], q: int) -> float:
    """The q-th percentile of `samples`."""
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]
