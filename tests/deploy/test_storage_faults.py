"""The file storage failing: a moto S3 server of this test's own, a real process over
HTTP on loopback, stopped mid-test and started again (empty, as a storage that lost its
state would come back).

While it is down, starting an upload, completing one and asking for a download URL answer
503 problem+json with `Retry-After`, quickly; nothing is marked ready; `/readyz` names the
storage; `storage.unavailable` is logged once, not per request; gallery listings still
answer (with cover URLs that work once storage is back). Once it is back (after the
health state's TTL, moved on an injected clock), uploads work again; an asset whose bytes
the storage lost is refused (409, still pending), and completes once uploaded again."""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from app import create_app
from tests.support import Tenant, World
from tests.support.clock import Clock
from tests.support.galleries import new_gallery
from tests.support.http import assert_problem
from tests.support.nodes import free_port
from tests.support.uploads import (
    PNG,
    complete,
    download_url,
    send,
    start,
    started,
    stored,
)

TTL = 5  # S3_HEALTH_TTL_SECONDS


class Moto:
    """`moto_server` in a process of its own, on a port that outlives its restarts."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1",
                 "-p", str(self.port)], stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/moto-api/", timeout=1).ok:
                    return
            assert self.process.poll() is None, self.log.read_text()[-2000:]
            assert time.monotonic() < deadline, "moto_server did not start within 30 s"
            time.sleep(0.1)  # a server starting: no expiry is being waited on

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def moto(tmp_path: Path) -> Iterator[Moto]:
    server = Moto(tmp_path / "moto.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def stored_app(app: Any, moto: Moto, tmp_path: Path) -> Iterator[Any]:
    """An app whose storage is `moto`, with a health clock the test moves."""
    base = app.extensions["settings"]
    other = create_app({
        "database_url": base.database_url,
        "migration_database_url": base.migration_database_url,
        "instance_path": str(tmp_path / "instance"),
        "jwt_keys": base.jwt_keys,
        "ratelimit_enabled": False,
        "s3_endpoint_url": moto.url,
        "s3_health_ttl_seconds": TTL,
        "readiness_timeout_seconds": 1,
        "log_level": "WARNING",
    })
    other.config["TESTING"] = True
    other.extensions["storage"].ensure_bucket()
    other.extensions["storage"].health.clock = Clock()
    yield other
    other.extensions["actor_cache"].close()
    other.extensions["mailer"].close()
    other.extensions["db.engine"].dispose()


def later(app: Any) -> None:
    """Past the health state's TTL: what it knew is stale, the next use probes."""
    app.extensions["storage"].health.clock.now += TTL + 1


def timed(call: Any) -> tuple[Any, float]:
    start_at = time.monotonic()
    response = call()
    return response, time.monotonic() - start_at


def named(logs: pytest.LogCaptureFixture, message: str) -> int:
    return len([r for r in logs.records if r.getMessage() == message])


def test_storage_down_is_503_and_nothing_unverified_is_ready(
        stored_app, moto: Moto, world: World, tenant: Tenant,
        caplog: pytest.LogCaptureFixture):
    api = stored_app.test_client()
    member = tenant["member"]
    ready = started(api, tenant, member)
    send(ready["upload"], PNG)
    ready_id = ready["asset"]["id"]
    assert complete(api, tenant, member, ready_id).status_code == 200
    pending = started(api, tenant, member)
    send(pending["upload"], PNG)
    pending_id = pending["asset"]["id"]
    new_gallery(world, tenant.site, member, cover=uuid.UUID(ready_id))

    caplog.set_level(logging.WARNING)
    moto.stop()
    later(stored_app)
    calls = {
        "upload": lambda: start(api, tenant, member),
        "complete": lambda: complete(api, tenant, member, pending_id),
        "download": lambda: download_url(api, tenant, member, ready_id),
    }
    for name, call in [*calls.items(), *calls.items()]:
        response, took = timed(call)
        body = assert_problem(response, 503)
        assert "storage" in body["detail"].lower(), name
        assert moto.url.split("//")[1] not in response.get_data(as_text=True)
        assert 1 <= int(response.headers["Retry-After"]) <= TTL, name
        assert took < 3, (name, took)  # one probe at most, with a short timeout
    assert stored(world, pending_id).status == "pending"
    # Listings still answer: their cover URLs work again once storage is back.
    listing = api.get(f"{tenant.site_path}/galleries", headers=member.headers)
    assert listing.status_code == 200 and listing.get_json()["items"][0]["cover_url"]
    not_ready = assert_problem(api.get("/readyz"), 503, errors=["storage"])
    assert not_ready["errors"] == {"storage": ["unavailable"]}
    assert named(caplog, "storage.unavailable") == 1
    assert not [r for r in caplog.records if "File storage is unavailable" in r.getMessage()]

    # Back, empty: uploads work again once the TTL has passed; the lost object is not
    # taken for verified; uploaded again, the same asset completes.
    moto.start()
    stored_app.extensions["storage"].ensure_bucket()
    later(stored_app)
    assert start(api, tenant, member).status_code == 201
    assert named(caplog, "storage.recovered") == 1
    missing = assert_problem(complete(api, tenant, member, pending_id), 409)
    assert missing["type"].endswith("/upload-missing")
    assert stored(world, pending_id).status == "pending"
    send(pending["upload"], PNG)
    done = complete(api, tenant, member, pending_id)
    assert done.status_code == 200 and done.get_json()["status"] == "ready"
    assert download_url(api, tenant, member, ready_id).status_code == 200
    assert named(caplog, "storage.unavailable") == 1
