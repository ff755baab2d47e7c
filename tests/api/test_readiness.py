"""`/readyz`: every dependency the configuration uses answers in time, or the probe says
which one does not (503 problem+json, `errors` naming it); `/healthz` only says the process
is up."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from app import create_app
from tests.support.http import assert_problem

REDIS = "redis://127.0.0.1:6379/15"


@pytest.fixture
def make_app(app: Any, database_url: str, tmp_path: Any) -> Iterator[Callable[..., Any]]:
    built: list[Any] = []

    def build(**overrides: Any) -> Any:
        base = app.extensions["settings"]
        other = create_app({
            "database_url": base.database_url,
            "instance_path": str(tmp_path / f"instance-{len(built)}"),
            "jwt_keys": base.jwt_keys,
            "log_level": "CRITICAL",
            "s3_endpoint_url": base.s3_endpoint_url,
            "ratelimit_storage_uri": REDIS,
            # Long enough for a new app's first connections on a loaded machine; the tests
            # of a dependency that never answers set 1 s.
            "readiness_timeout_seconds": 5,
            **overrides,
        })
        built.append(other)
        return other

    yield build
    for other in built:
        other.extensions["actor_cache"].close()
        other.extensions["db.engine"].dispose()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


def not_ready(app: Any, *names: str) -> dict[str, list[str]]:
    started = time.monotonic()
    r = app.test_client().get("/readyz")
    elapsed = time.monotonic() - started
    body = assert_problem(r, 503, errors=names)
    assert r.headers["Retry-After"].isdigit()
    limit = app.extensions["settings"].readiness_timeout_seconds + 2
    assert elapsed < limit, f"the probe took {elapsed:.1f} s"
    for name in names:
        assert name in body["detail"]
    return body["errors"]


def test_ready_when_database_counters_and_bucket_answer(make_app):
    r = make_app().test_client().get("/readyz")
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json() == {"status": "ready"}
    assert "Retry-After" not in r.headers


def test_a_missing_bucket_is_named(make_app):
    assert not_ready(make_app(s3_bucket="no-such-bucket-here"), "storage") == {
        "storage": ["unavailable"]
    }


def test_an_unreachable_redis_is_named(make_app):
    assert not_ready(make_app(ratelimit_storage_uri="redis://127.0.0.1:1/0"), "ratelimit") == {
        "ratelimit": ["unavailable"]
    }


def test_counters_in_the_process_need_no_check(make_app):
    assert make_app(ratelimit_storage_uri="memory://").test_client().get(
        "/readyz").status_code == 200


def test_a_storage_that_never_answers_fails_within_the_timeout(make_app, silent_port):
    errors = not_ready(make_app(s3_endpoint_url=f"http://127.0.0.1:{silent_port}",
                                readiness_timeout_seconds=1), "storage")
    assert errors["storage"][0] in ("timeout", "unavailable")


def test_a_redis_that_never_answers_fails_within_the_timeout(make_app, silent_port):
    app = make_app(ratelimit_storage_uri=f"redis://127.0.0.1:{silent_port}/0",
                   readiness_timeout_seconds=1)
    assert not_ready(app, "ratelimit")["ratelimit"][0] in ("timeout", "unavailable")


def test_an_unreachable_database_is_named(make_app, is_postgres):
    if not is_postgres:
        pytest.skip("the SQLite file is always there")
    app = make_app(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert not_ready(app, "database") == {"database": ["unavailable"]}
    assert app.test_client().get("/healthz").status_code == 200
