"""The rate limiter's Redis failing: reached through a TCP proxy on loopback (the machine's
Redis itself is never stopped), which refuses connections, or is cut (connections accepted,
nothing answered: only a timeout shows it).

What each limit does then is decided in README (Operating it) and proven here: login and
password reset fail closed (503 problem+json with `Retry-After`), event ingestion and
refresh fail open (stored, or a new token pair: 200). Never a 500, never a wait past the
short socket timeout (once the outage is known, not even that), one
`ratelimit.storage_unavailable` WARNING per process rather than one per request, and
`ratelimit.storage_recovered` once Redis answers again.
The limiter's clock is injected: the retry delay passes without the test sleeping."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from app import create_app
from tests.support import PASSWORD, Tenant
from tests.support.clock import Clock
from tests.support.events import event
from tests.support.http import assert_problem
from tests.support.keys import create_ingest_key
from tests.support.proxy import Proxy

REDIS_DB = 10  # this module's counters, emptied before each test
TIMEOUT = 1  # RATELIMIT_STORAGE_TIMEOUT_SECONDS
RETRY = 5  # RATELIMIT_STORAGE_RETRY_SECONDS


@pytest.fixture
def road() -> Iterator[Proxy]:
    redis.Redis.from_url(f"redis://127.0.0.1:6379/{REDIS_DB}").flushdb()
    proxy = Proxy(("127.0.0.1", 6379))
    proxy.resume()
    yield proxy
    proxy.refuse()


@pytest.fixture
def limited(app: Any, database_url: str, road: Proxy, tmp_path: Any) -> Iterator[Any]:
    """An app whose counters live in Redis behind `road`, with a clock the test moves."""
    base = app.extensions["settings"]
    other = create_app({
        "database_url": database_url,
        "instance_path": str(tmp_path / "instance"),
        "jwt_keys": base.jwt_keys,
        "log_level": "WARNING",
        "ratelimit_enabled": True,
        "ratelimit_storage_uri": f"redis://127.0.0.1:{road.port}/{REDIS_DB}",
        "ratelimit_storage_timeout_seconds": TIMEOUT,
        "ratelimit_storage_retry_seconds": RETRY,
        "ratelimit_per_ip": "1000 per minute",
        "s3_endpoint_url": base.s3_endpoint_url,
        "smtp_port": base.smtp_port,
    })
    other.config["TESTING"] = True
    other.extensions["ratelimit.health"].clock = Clock()
    yield other
    other.extensions["actor_cache"].close()
    other.extensions["mailer"].close()
    other.extensions["db.engine"].dispose()


def timed(call: Any) -> tuple[Any, float]:
    start = time.monotonic()
    response = call()
    return response, time.monotonic() - start


def events_of(logs: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in logs.records if r.getMessage() == name]


@pytest.mark.parametrize("fault", ["refuse", "cut"])
def test_redis_down_fails_login_closed_and_ingestion_open(
        limited, client, tenant: Tenant, road: Proxy, fault: str,
        caplog: pytest.LogCaptureFixture):
    api = limited.test_client()
    key = create_ingest_key(client, tenant)
    email = f"{uuid.uuid4().hex}@example.com"

    def login() -> Any:
        return api.post("/v1/auth/login", json={"email": email, "password": "wrong password!"})

    def reset() -> Any:
        return api.post("/v1/auth/password/reset", json={"email": email})

    def ingest() -> Any:
        return api.post("/v1/events/batch", json={"events": [event(), event()]},
                        headers=key.headers)

    def refresh() -> Any:
        r = api.post("/v1/auth/refresh", json={"refresh_token": tokens[-1]})
        if r.status_code == 200:
            tokens.append(r.get_json()["refresh_token"])
        return r

    signed_in = api.post("/v1/auth/login", json={"email": tenant["member"].email,
                                                 "password": PASSWORD})
    tokens = [signed_in.get_json()["refresh_token"]]
    assert login().status_code == 401
    assert ingest().get_json()["accepted"] == 2
    caplog.set_level(logging.WARNING)
    getattr(road, fault)()

    # The first request meets the fault: refused at once, or after one socket timeout.
    first, took = timed(login)
    assert_problem(first, 503)
    assert first.headers["Retry-After"].isdigit()
    assert took < TIMEOUT + 1, took
    # Then the outage is known: no request waits for Redis any more.
    answers = [timed(call) for call in (login, reset, ingest, refresh, login, ingest)]
    assert max(took for _, took in answers) < TIMEOUT, answers  # none waited for one
    statuses = [response.status_code for response, _ in answers]
    assert statuses == [503, 503, 200, 200, 503, 200], statuses
    for response, _ in answers:
        if response.status_code == 503:
            assert_problem(response, 503)
            assert 1 <= int(response.headers["Retry-After"]) <= RETRY
        elif "accepted" in response.get_json():
            assert response.get_json()["accepted"] == 2  # stored, not merely answered
    assert len(events_of(caplog, "ratelimit.storage_unavailable")) == 1
    assert not [r for r in caplog.records if "rate-limit storage" in r.getMessage()]

    # Redis reachable again: once the retry delay has passed, the counters count again.
    road.resume()
    limited.extensions["ratelimit.health"].clock.now += RETRY + 1
    recovered = login()
    assert recovered.status_code == 401, recovered.get_json()
    assert ingest().status_code == 200
    assert len(events_of(caplog, "ratelimit.storage_recovered")) == 1
    assert len(events_of(caplog, "ratelimit.storage_unavailable")) == 1
