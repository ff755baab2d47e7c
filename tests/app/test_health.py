"""app/health.py on an injected clock: what is known is trusted for `ttl` seconds, a probe
answers past it, and each change is logged once (not once per failing request)."""

from __future__ import annotations

import logging

import pytest

from app.health import Health

pytestmark = pytest.mark.portable


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "app.health"]


def test_a_failure_is_trusted_for_ttl_then_probed_again(caplog):
    caplog.set_level(logging.WARNING)
    clock = Clock()
    health = Health("storage", 5, clock)
    probes: list[bool] = []

    def probe(answer: bool):
        def ask() -> bool:
            probes.append(answer)
            return answer
        return ask

    assert health.known() is None  # nothing told yet: the first use probes
    assert health.check(probe(True)) is True and probes == [True]
    assert health.check(probe(False)) is True and probes == [True]  # trusted for 5 s
    health.record(False, "head failed")
    for _ in range(3):
        health.record(False, "head failed")
    assert health.check(probe(True)) is False and probes == [True]
    clock.now += 2
    assert health.retry_after() == 3
    clock.now += 3.5
    assert health.known() is None
    assert health.check(probe(True)) is True and probes == [True, True]
    assert logged(caplog) == ["storage.unavailable", "storage.recovered"]
    record = next(r for r in caplog.records if r.getMessage() == "storage.recovered")
    assert record.levelno == logging.WARNING
    assert record.fields == {"event": "storage.recovered", "down_seconds": 5.5}  # type: ignore[attr-defined]


def test_event_names_are_stable():
    assert Health("ratelimit.storage", 5).event("unavailable") == "ratelimit.storage_unavailable"
    assert Health("storage", 5).event("recovered") == "storage.recovered"
    assert Health("storage", 5).retry_after() == 1  # never told: come back soon
