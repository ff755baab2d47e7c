"""What `/readyz` checks: each dependency the configuration uses, side by side, each
within `READINESS_TIMEOUT_SECONDS`. A check that has not answered by then counts as failed
(its thread is left to finish on its own: the probe itself must not hang)."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait

from sqlalchemy import Engine, text

Check = Callable[[], bool]


def database(engine: Engine, timeout_ms: int) -> Check:
    def check() -> bool:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text(f"SET LOCAL statement_timeout = {int(timeout_ms)}"))
            conn.execute(text("SELECT 1"))
        return True

    return check


def failures(checks: dict[str, Check], timeout: float) -> dict[str, str]:
    """name -> `unavailable` or `timeout`, for the checks that did not answer True."""
    if not checks:
        return {}
    pool = ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="readyz")
    # Each check in a copy of the request's context: its spans (tracing) join the request's.
    futures = {name: pool.submit(contextvars.copy_context().run, check)
               for name, check in checks.items()}
    wait(futures.values(), timeout=timeout)
    pool.shutdown(wait=False)
    failed = {}
    for name, future in futures.items():
        if not future.done():
            failed[name] = "timeout"
        elif future.exception() is not None or future.result() is not True:
            failed[name] = "unavailable"
    return failed
