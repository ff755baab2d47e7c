"""OpenTelemetry tracing: off unless TRACING_EXPORTER is set; then requests (by route
template), SQL statements and calls to the bucket are spans of one trace, and the
request's span carries its request id."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest

from app import create_app, tracing
from app.config import ConfigError

pytestmark = pytest.mark.portable


def test_tracing_is_off_by_default(app):
    assert app.extensions["settings"].tracing_exporter == ""
    assert "tracing" not in app.extensions
    assert not getattr(app, "_is_instrumented_by_opentelemetry", False)


def test_an_unknown_exporter_is_refused(app):
    settings = app.extensions["settings"].with_overrides({"tracing_exporter": "zipkin"})
    with pytest.raises(ConfigError, match="TRACING_EXPORTER"):
        create_app(settings)


def test_without_the_packages_the_app_says_so(app, monkeypatch):
    monkeypatch.setitem(sys.modules, "opentelemetry.instrumentation.flask", None)
    settings = app.extensions["settings"].with_overrides({"tracing_exporter": "console"})
    with pytest.raises(ConfigError, match=r"tenant-api\[tracing\]"):
        create_app(settings)


@pytest.fixture
def traced(app: Any) -> Iterator[tuple[Any, Any]]:
    """An app tracing to the console, with every span also kept in memory."""
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    other = create_app(app.extensions["settings"].with_overrides({"tracing_exporter": "console"}))
    other.config["TESTING"] = True
    kept = InMemorySpanExporter()
    other.extensions["tracing"].add_span_processor(SimpleSpanProcessor(kept))
    try:
        yield other, kept
    finally:
        tracing.shutdown(other)
        other.extensions["actor_cache"].close()
        other.extensions["mailer"].close()
        other.extensions["db.engine"].dispose()


def test_a_request_its_sql_and_its_storage_calls_are_one_trace(traced, tenant):
    app, kept = traced
    client = app.test_client()
    viewer = tenant["viewer"]
    r = client.get(tenant.org_path, headers={**viewer.headers, "X-Request-ID": "rid-traced"})
    assert r.status_code == 200
    r = client.get("/readyz", headers={"X-Request-ID": "rid-ready"})
    assert r.status_code == 200, r.get_data(as_text=True)

    spans = kept.get_finished_spans()
    servers = {s.attributes.get(tracing.REQUEST_ID_ATTRIBUTE): s for s in spans
               if s.kind.name == "SERVER"}
    org = servers["rid-traced"]
    assert org.name == "GET /v1/orgs/<uuid:org_id>"
    assert org.attributes.get("http.route", org.attributes.get("url.template")) in (
        "/v1/orgs/<uuid:org_id>", None)
    trace_id = org.context.trace_id
    sql = [s for s in spans if s.context.trace_id == trace_id and s.kind.name == "CLIENT"
           and s.attributes.get("db.system", s.attributes.get("db.system.name"))]
    assert sql, [s.name for s in spans]
    for span in sql:  # statements, never their values
        statement = str(span.attributes.get("db.statement", span.attributes.get(
            "db.query.text", "")))
        assert str(tenant.org.id) not in statement and viewer.email not in statement

    ready = servers["rid-ready"]
    storage = [s for s in spans if s.context.trace_id == ready.context.trace_id
               and s.attributes.get("rpc.service") == "S3"]
    assert [s.attributes.get("rpc.method") for s in storage] == ["HeadBucket"], [
        (s.name, dict(s.attributes)) for s in spans if s.context.trace_id == ready.context.trace_id]
