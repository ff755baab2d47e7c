"""Two nodes: two gunicorn masters on two ports, in production mode, sharing this run's
PostgreSQL database, Redis and S3. What one node changes, the other honours: a revoked
session, a removed role and a revoked key are refused there within a second (the actor
cache hears PostgreSQL's NOTIFY); rate limits are counted once for both (Redis); an
`Idempotency-Key` replays on the other node."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from tests.support import Tenant
from tests.support.keys import api_keys_path, create_api_key
from tests.support.nodes import Node, empty_limits, node_env, start_node

PROPAGATION_SECONDS = 1.0

pytestmark = pytest.mark.slow  # ~15 s: two gunicorn starts


@pytest.fixture(scope="module")
def nodes(app: Any, database_url: str, s3_endpoint: str,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """Base URLs of two running nodes, started once for this module."""
    if not database_url.startswith("postgresql"):
        pytest.skip("nodes share a PostgreSQL database")
    home = tmp_path_factory.mktemp("nodes")
    env = node_env(app, database_url, s3_endpoint, home, RATELIMIT_PER_IP="6 per minute")
    started: list[Node] = []
    try:
        for name in ("a", "b"):
            started.append(start_node(env, home / f"node-{name}.log"))
        yield started[0].url, started[1].url
    finally:
        for node in started:
            node.stop()


def until_refused(check: Callable[[], int], refused: int) -> float:
    """Seconds until `check()` answers `refused`; fails past the propagation bound."""
    start = time.monotonic()
    while (status := check()) != refused:
        assert status == 200, status
        assert time.monotonic() - start < PROPAGATION_SECONDS, "not refused within 1 s"
        time.sleep(0.02)
    return time.monotonic() - start


def get(base: str, path: str, headers: dict[str, str]) -> int:
    return requests.get(base + path, headers=headers, timeout=10).status_code


def test_what_one_node_revokes_the_other_refuses_within_a_second(nodes, client, world):
    a, b = nodes
    tenant: Tenant = world.tenant("TwoNodes")
    member, admin = tenant["member"], tenant["org_admin"]
    galleries = f"{tenant.site_path}/galleries"

    # A removed role: the member reads on b (cached there), the admin removes it on a.
    for _ in range(2):
        assert get(b, galleries, member.headers) == 200
    r = requests.delete(f"{a}{tenant.org_path}/members/{member.id}", headers=admin.headers,
                        timeout=10)
    assert r.status_code == 204, r.text
    until_refused(lambda: get(b, galleries, member.headers), 404)

    # A revoked key.
    key = create_api_key(client, tenant, role="viewer")
    for _ in range(2):
        assert get(b, tenant.org_path, key.headers) == 200
    r = requests.delete(f"{a}{api_keys_path(tenant)}/{key.id}", headers=admin.headers,
                        timeout=10)
    assert r.status_code == 204, r.text
    until_refused(lambda: get(b, tenant.org_path, key.headers), 401)

    # A session ended: the admin signs out on a; its token stops working on b.
    for _ in range(2):
        assert get(b, "/v1/me", admin.headers) == 200
    r = requests.post(f"{a}/v1/auth/logout", headers=admin.headers, timeout=10)
    assert r.status_code == 204, r.text
    until_refused(lambda: get(b, "/v1/me", admin.headers), 401)


def test_rate_limits_are_counted_once_for_both_nodes(nodes):
    a, b = nodes
    empty_limits()
    def login(node: str) -> int:  # a new address each time: only the per-address limit counts
        body = {"email": f"{uuid.uuid4().hex}@example.com", "password": "not the password!"}
        return requests.post(f"{node}/v1/auth/login", json=body, timeout=10).status_code

    statuses = [login(node) for node in (a, b, a, b, a, b, a, b)]
    # 6 per minute per address in all: the 7th is refused whichever node takes it.
    assert statuses == [401] * 6 + [429] * 2


def test_an_idempotency_key_replays_on_the_other_node(nodes, app, tenant):
    a, b = nodes
    headers = {**tenant["member"].headers, "Idempotency-Key": str(uuid.uuid4())}
    path = f"{tenant.site_path}/galleries"
    first = requests.post(a + path, json={"title": "Once"}, headers=headers, timeout=10)
    again = requests.post(b + path, json={"title": "Once"}, headers=headers, timeout=10)
    assert first.status_code == again.status_code == 201, (first.text, again.text)
    assert first.json() == again.json()
    listed = requests.get(b + path, headers=tenant["member"].headers, timeout=10).json()
    assert [g["title"] for g in listed["items"]] == ["Once"]
