"""OpenTelemetry tracing: off unless `TRACING_EXPORTER` names an exporter.

`otlp` sends spans over OTLP/HTTP to `OTEL_EXPORTER_OTLP_ENDPOINT` (the exporter reads
the standard `OTEL_EXPORTER_OTLP_*` variables itself); `console` prints them (a
developer's machine). The packages are an optional extra (`pip install
'tenant-api[tracing]'`); with tracing off nothing of OpenTelemetry is imported, and with
it on but the packages missing the app refuses to start, saying so.

What is traced: each request (Flask: a span named after its route template), each SQL
statement of the app's engines (SQLAlchemy; statements only, never their parameters),
and each call to the bucket (botocore; presigning makes no call). The request's id is
the span's `app.request_id` attribute (pipeline step 9, app/observability.py), so a
trace and the log lines of one request find each other.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app

from app.config import ConfigError, Settings

EXPORTERS = ("otlp", "console")
SERVICE_NAME = "tenant-api"
REQUEST_ID_ATTRIBUTE = "app.request_id"


def init_app(app: Flask, settings: Settings) -> None:
    """Instrument `app` when an exporter is configured (before the pipeline's hooks are
    registered: the request's span must exist when they run)."""
    if not settings.tracing_exporter:
        return
    if settings.tracing_exporter not in EXPORTERS:
        raise ConfigError(f"TRACING_EXPORTER must be empty or one of {', '.join(EXPORTERS)}")
    try:
        from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
        from opentelemetry.instrumentation.flask import FlaskInstrumentor
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise ConfigError("TRACING_EXPORTER is set but the OpenTelemetry packages are "
                          "missing: pip install 'tenant-api[tracing]'") from exc
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
    provider.add_span_processor(BatchSpanProcessor(_exporter(settings.tracing_exporter)))
    FlaskInstrumentor().instrument_app(app, tracer_provider=provider)
    # Process-wide, once: a gunicorn worker has one app (and one runtime engine).
    SQLAlchemyInstrumentor().instrument(engine=app.extensions["db.engine"],
                                        tracer_provider=provider)
    BotocoreInstrumentor().instrument(tracer_provider=provider)
    app.extensions["tracing"] = provider


def _exporter(name: str) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def tag_request(request_id: str) -> None:
    """Put the request id on the request's span (nothing when tracing is off)."""
    if "tracing" not in current_app.extensions:
        return
    from opentelemetry import trace

    trace.get_current_span().set_attribute(REQUEST_ID_ATTRIBUTE, request_id)


def shutdown(app: Flask) -> None:
    """Flush the spans and undo the instrumentation (tests; a process's end)."""
    provider = app.extensions.pop("tracing", None)
    if provider is None:
        return
    from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    FlaskInstrumentor().uninstrument_app(app)
    SQLAlchemyInstrumentor().uninstrument()
    BotocoreInstrumentor().uninstrument()
    provider.shutdown()
