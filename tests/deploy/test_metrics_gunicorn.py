"""Metrics under gunicorn with two workers: whichever worker answers the scrape, it
reports the sum of both (prometheus-client's multiprocess mode, set up by
gunicorn.conf.py), and a worker that dies takes its live gauges with it (`child_exit`)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support import Tenant
from tests.support.nodes import Node, empty_limits, node_env, start_node

pytestmark = pytest.mark.slow  # a gunicorn start, a worker restart

TOKEN = "metrics-token-for-the-gunicorn-test-0123456789"
POOL_SIZE = 3
ORG_ROUTE = "/v1/orgs/<uuid:org_id>"


@pytest.fixture(scope="module")
def node(app: Any, database_url: str, s3_endpoint: str,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    if not database_url.startswith("postgresql"):
        pytest.skip("a production node runs on PostgreSQL")
    empty_limits()
    home = tmp_path_factory.mktemp("metrics-node")
    metrics_dir = home / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_99999999.db").write_bytes(b"stale")  # emptied at start
    env = node_env(app, database_url, s3_endpoint, home, WEB_CONCURRENCY="2",
                   METRICS_TOKEN=TOKEN, DATABASE_POOL_SIZE=str(POOL_SIZE),
                   PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    started = start_node(env, home / "node.log")
    try:
        yield started
    finally:
        started.stop()


def scrape(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = requests.get(f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"},
                     timeout=10)
    assert r.status_code == 200, r.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text) for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def workers(master: int) -> set[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return {int(pid) for pid in children}


def both_apps_started(base: str) -> None:
    """The node answers once one worker has started the app; a worker sets its pool's size
    as it starts, so the sum reaches both pools once the other has too (a few seconds on a
    busy machine, during which the first could serve every request below)."""
    deadline = time.monotonic() + 30
    while (size := value(scrape(base), "tenant_api_db_pool_size")) < 2 * POOL_SIZE:
        assert time.monotonic() < deadline, f"pool size {size}: a worker never started"
        time.sleep(0.1)


def test_a_scrape_adds_up_both_workers(node: Node, world: Any) -> None:
    tenant: Tenant = world.tenant("Metered")
    headers = tenant["viewer"].headers
    assert len(workers(node.process.pid)) == 2
    both_apps_started(node.url)
    before = scrape(node.url)
    sent = 60

    def read(_: int) -> int:
        return requests.get(f"{node.url}{tenant.org_path}", headers=headers,
                            timeout=10).status_code

    with ThreadPoolExecutor(8) as pool:  # concurrent: both workers serve
        assert set(pool.map(read, range(sent))) == {200}
    assert requests.get(f"{node.url}/metrics", timeout=10).status_code == 401

    labels = {"method": "GET", "route": ORG_ROUTE, "status": "200"}
    totals = set()
    for _ in range(4):  # whichever worker answers, the same sums
        after = scrape(node.url)
        totals.add(value(after, "tenant_api_http_requests_total", **labels)
                   - value(before, "tenant_api_http_requests_total", **labels))
        assert (value(after, "tenant_api_http_request_duration_seconds_count", **labels)
                - value(before, "tenant_api_http_request_duration_seconds_count",
                        **labels)) == sent
    assert totals == {sent}
    # Each worker's pool is counted once: two workers of POOL_SIZE each.
    assert value(after, "tenant_api_db_pool_size") == 2 * POOL_SIZE
    assert value(after, "tenant_api_db_pool_checked_out") == 0


def test_a_dead_workers_live_gauges_go_with_it(node: Node) -> None:
    metrics_dir = node.log.parent / "metrics"
    assert not (metrics_dir / "counter_99999999.db").exists()
    master = node.process.pid
    old = workers(master)
    assert {p.name for p in metrics_dir.glob("gauge_livesum_*.db")} == {
        f"gauge_livesum_{pid}.db" for pid in old}
    before = scrape(node.url)
    victim = sorted(old)[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while True:  # gunicorn starts a replacement, whose app sets its pool's size
        now = workers(master)
        if len(now) == 2 and victim not in now and all(
                (metrics_dir / f"gauge_livesum_{pid}.db").exists() for pid in now):
            break
        assert time.monotonic() < deadline, node.log.read_text()[-3000:]
        time.sleep(0.2)  # polling a worker that is starting
    # The victim's live gauges are gone (child_exit), else three pools would be summed.
    assert not (metrics_dir / f"gauge_livesum_{victim}.db").exists()
    deadline = time.monotonic() + 10
    while (size := value(after := scrape(node.url), "tenant_api_db_pool_size")) != 2 * POOL_SIZE:
        assert size < 2 * POOL_SIZE, size  # never the dead worker's pool on top
        assert time.monotonic() < deadline, size
        time.sleep(0.1)  # the replacement made its file a moment before setting it
    # Counters keep what the dead worker counted.
    route = {"method": "GET", "route": "/readyz", "status": "200"}
    assert (value(after, "tenant_api_http_requests_total", **route)
            >= value(before, "tenant_api_http_requests_total", **route))
