"""Timing helpers every benchmark uses (the database comes from tests.support)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


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
