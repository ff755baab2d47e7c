"""Prometheus metrics at /metrics: off unless `METRICS_TOKEN` is set, then only for its
bearer; after traffic, requests by route template and status, denials, events by
outcome, rate-limit refusals and the database pool, as a scraper reads them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app import create_app
from tests.support.events import event, ok, send
from tests.support.http import assert_problem, if_match
from tests.support.keys import create_ingest_key

pytestmark = pytest.mark.portable

TOKEN = "metrics-token-for-the-tests-0123456789abcdef"
SCRAPE = {"Authorization": f"Bearer {TOKEN}"}
ORG_ROUTE = "/v1/orgs/<uuid:org_id>"


@pytest.fixture
def metered(app: Any) -> Iterator[Any]:
    """The suite's app with metrics on, and login limited to 2 a minute per address."""
    settings = app.extensions["settings"].with_overrides({
        "metrics_token": TOKEN, "ratelimit_enabled": True,
        "ratelimit_storage_uri": "memory://", "ratelimit_per_ip": "2 per minute",
    })
    other = create_app(settings)
    other.config["TESTING"] = True
    yield other
    other.extensions["actor_cache"].close()
    other.extensions["mailer"].close()
    other.extensions["db.engine"].dispose()


def scrape(client: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape: (name, sorted labels) -> value."""
    response = client.get("/metrics", headers=SCRAPE)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_are_off_unless_a_token_is_configured(client):
    assert_problem(client.get("/metrics"), 404)
    assert_problem(client.get("/metrics", headers=SCRAPE), 404)


def test_metrics_need_the_token(metered):
    client = metered.test_client()
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": TOKEN},
                    {"Authorization": f"Bearer {TOKEN}x"}):
        response = client.get("/metrics", headers=headers)
        assert_problem(response, 401)
        assert "tenant_api" not in response.get_data(as_text=True)


def test_requests_are_counted_by_route_template_and_status(metered, tenant):
    client = metered.test_client()
    before = scrape(client)
    for _ in range(3):
        assert client.get(tenant.org_path, headers=tenant["viewer"].headers).status_code == 200
    viewer_patch = if_match(tenant["viewer"].headers, '"x"')
    assert_problem(client.patch(tenant.org_path, json={"name": "x"}, headers=viewer_patch), 403)
    assert_problem(client.get("/no/such/route"), 404)
    after = scrape(client)
    text = client.get("/metrics", headers=SCRAPE).get_data(as_text=True)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    ok_get = {"method": "GET", "route": ORG_ROUTE, "status": "200"}
    assert delta("tenant_api_http_requests_total", **ok_get) == 3
    assert delta("tenant_api_http_request_duration_seconds_count", **ok_get) == 3
    assert delta("tenant_api_http_request_duration_seconds_bucket", **ok_get, le="+Inf") == 3
    assert delta("tenant_api_http_request_duration_seconds_sum", **ok_get) > 0
    assert delta("tenant_api_http_requests_total", method="PATCH", route=ORG_ROUTE,
                 status="403") == 1
    assert delta("tenant_api_http_requests_total", method="GET", route="<unmatched>",
                 status="404") == 1
    assert delta("tenant_api_authz_denials_total", action="update",
                 resource_type="Organization") == 1
    # Templates, never paths: no id and no unknown path becomes a label.
    assert str(tenant.org.id) not in text and "/no/such/route" not in text


def test_lookups_of_ids_the_path_does_not_hold_count_as_denials(metered, tenant):
    client = metered.test_client()
    before = scrape(client)
    path = f"{tenant.org_path}/sites/00000000-0000-4000-8000-000000000000"
    assert_problem(client.get(path, headers=tenant["org_admin"].headers), 404)
    after = scrape(client)
    labels = {"action": "lookup", "resource_type": "Site"}
    assert (value(after, "tenant_api_authz_denials_total", **labels)
            - value(before, "tenant_api_authz_denials_total", **labels)) == 1


def test_events_are_counted_by_outcome(metered, tenant):
    client = metered.test_client()
    key = create_ingest_key(client, tenant)
    before = scrape(client)
    first, second = event(), event()
    ok(send(client, key, [first, second, {"name": "no id"}]))
    ok(send(client, key, [first]))  # a retry: a duplicate
    after = scrape(client)
    for outcome, expected in (("accepted", 2), ("duplicate", 1), ("rejected", 1)):
        assert (value(after, "tenant_api_events_total", outcome=outcome)
                - value(before, "tenant_api_events_total", outcome=outcome)) == expected


def test_rate_limit_refusals_are_counted(metered):
    client = metered.test_client()
    before = scrape(client)
    answers = [client.post("/v1/auth/login", json={"email": "nobody@example.com",
                                                   "password": "wrong password here"}).status_code
               for _ in range(4)]
    assert answers.count(429) == 2, answers
    after = scrape(client)
    assert (value(after, "tenant_api_ratelimit_refusals_total", limit="login:ip")
            - value(before, "tenant_api_ratelimit_refusals_total", limit="login:ip")) == 2
    assert (value(after, "tenant_api_http_requests_total", method="POST",
                  route="/v1/auth/login", status="429")
            - value(before, "tenant_api_http_requests_total", method="POST",
                    route="/v1/auth/login", status="429")) == 2


def test_the_database_pool_is_measured(metered, tenant):
    client = metered.test_client()
    assert client.get(tenant.org_path, headers=tenant["viewer"].headers).status_code == 200
    idle = scrape(client)
    if metered.extensions["db.engine"].dialect.name == "postgresql":
        size = metered.extensions["settings"].database_pool_size
        assert value(idle, "tenant_api_db_pool_size") == size
    with metered.extensions["db.engine"].connect(), \
            metered.extensions["db.engine"].connect():
        busy = scrape(client)
    after = scrape(client)
    in_use = "tenant_api_db_pool_checked_out"
    assert value(busy, in_use) - value(idle, in_use) == 2
    assert value(after, in_use) == value(idle, in_use)


def test_a_multiprocess_directory_named_later_changes_nothing(metered, monkeypatch, tmp_path):
    """prometheus-client chose its mode when imported: a variable set afterwards (running
    gunicorn.conf.py in-process does) must not make the scrape read files nobody wrote."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    client = metered.test_client()
    before = scrape(client)
    assert client.get("/healthz").status_code == 200
    after = scrape(client)
    labels = {"method": "GET", "route": "/healthz", "status": "200"}
    assert (value(after, "tenant_api_http_requests_total", **labels)
            - value(before, "tenant_api_http_requests_total", **labels)) == 1
    assert list(tmp_path.iterdir()) == []
