"""Timing helpers the benchmarks share (the database comes from tests.support)."""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import psycopg

from app.db import conninfo
from tests.support import as_administrator


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


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, from /proc (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_of(pids: Iterable[int]) -> dict[int, float]:
    """Each process's CPU seconds so far; `cpu_since` of it later: what they spent since."""
    return {pid: cpu_seconds(pid) for pid in pids}


def cpu_since(before: dict[int, float]) -> float:
    """The CPU seconds the processes of `before` (`cpu_of`'s) spent since it was read. A
    process gone since (an autovacuum worker that ended) counts 0, not minus its past:
    what it spent before it went is lost to /proc."""
    return sum(max(cpu_seconds(pid) - spent, 0.0) for pid, spent in before.items())


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (a gunicorn master's workers), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[1]) == pid:
                    found.append(int(entry.name))
    return sorted(found)


def postgres_pids(owner_url: str) -> tuple[list[int], list[int]]:
    """(client backends of the bench database, the server's background processes).

    Asked as the server's administrator: to any other role, `pg_stat_activity` shows the
    sessions of other roles (the app's) with a NULL `backend_type`, so they were taken
    for background processes and left out of a phase in which they were born."""
    with psycopg.connect(conninfo(as_administrator(owner_url))) as conn:
        rows = conn.execute(
            "SELECT pid, backend_type = 'client backend' AND datname = current_database()"
            " AND pid <> pg_backend_pid() FROM pg_stat_activity"
            " WHERE backend_type <> 'client backend' OR datname = current_database()"
        ).fetchall()
    return [p for p, ours in rows if ours], [p for p, ours in rows if not ours]
