"""The Flask application factory."""

from __future__ import annotations

import logging
from typing import Any

import click
from flask import Flask, Response, g, request
from sqlalchemy import make_url

from app import db, errors, observability
from app.auth.invalidation import ActorCache
from app.auth.keys import KeyStore
from app.auth.tokens import TokenService
from app.authz import AuthzEngine
from app.config import Settings
from app.ratelimit import consume
from app.services import audit
from app.storage import Storage


def create_app(config: Settings | dict[str, Any] | None = None) -> Flask:
    """Build the app from the environment, optionally overridden by `config`."""
    settings = config if isinstance(config, Settings) else Settings.from_env()
    if isinstance(config, dict):
        settings = settings.with_overrides(config)
    settings.check()
    observability.configure_logging(settings.log_level)

    app = Flask(__name__, instance_path=settings.instance_path)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_content_length,
        API_TITLE="Tenant API",
        API_VERSION="1.0.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL="/docs/assets/",  # served from swagger-ui-bundle: works offline
    )
    app.extensions["settings"] = settings

    observability.init_app(app)
    db.init_app(app, settings.database_url, settings.database_pool_size)
    _init_authz(app, settings)
    app.extensions["actor_cache"] = ActorCache(
        _listen_conninfo(settings.database_url), settings.auth_cache_ttl_seconds
    )
    # A command line may start before the key file exists (`flask keys add` creates it).
    keys = KeyStore(settings, allow_missing=click.get_current_context(silent=True) is not None)
    app.extensions["keys"] = keys
    app.extensions["tokens"] = TokenService(settings, keys)
    errors.register(app)
    _init_storage(app, settings)

    from app import api, cli, idempotency, ratelimit

    api.init_app(app)
    ratelimit.init_app(app)  # after the blueprints: it applies the limits their views declare
    cli.init_app(app)
    _init_unit_of_work(app)
    idempotency.init_app(app)  # after the unit of work: its record commits with the request
    return app


def _listen_conninfo(database_url: str) -> str | None:
    """libpq connection string for the cache's LISTEN connection (PostgreSQL only)."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        return None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _init_storage(app: Flask, settings: Settings) -> None:
    storage = Storage(settings)
    app.extensions["storage"] = storage
    if settings.s3_create_bucket:
        try:
            storage.ensure_bucket()
        except Exception:  # the API still serves everything but files; /readyz says so
            logging.getLogger("app.storage").warning("bucket check failed", exc_info=True)


def _init_authz(app: Flask, settings: Settings) -> None:
    """The policy engine, with every refusal going to the audit log (written by
    _write_denials, after the request's own transaction)."""
    engine = AuthzEngine(settings.policy_dir, session=db.session)

    def record(actor: Any, action: str, resource: Any, visible: bool, probe: bool) -> None:
        if probe and consume(settings.audit_probe_limit, "audit-probes", str(actor.id), 1):
            return  # this actor's probes fill no more of the log this minute
        g.setdefault("denials", []).append(
            audit.denial(actor, action, resource, g.get("request_id"))
        )

    engine.on_denial = record
    app.extensions["authz"] = engine

    @app.errorhandler(errors.NotFound)
    def _not_found(exc: errors.NotFound) -> Response:
        """A lookup by a path id found nothing: a refusal too (another tenant's id looks
        exactly like one that exists nowhere), unless the policy already recorded one."""
        actor = g.get("actor")
        if exc.missing is not None and actor is not None and not g.get("denials"):
            g.setdefault("denials", []).append(audit.refusal(
                actor, exc.missing, request.method, str(request.url_rule), g.get("request_id")
            ))
        return errors.render(exc)


def _init_unit_of_work(app: Flask) -> None:
    """Commit the request's transaction when the view succeeded; write denials after it."""

    @app.after_request
    def _commit(response: Response) -> Response:
        session = g.get("db_session")
        if session is not None and response.status_code < 400:
            session.commit()
        return response

    @app.teardown_request
    def _write_denials(exc: BaseException | None) -> None:
        denials = g.pop("denials", None)
        if not denials:
            return
        db.end_request_session(exc)  # release SQLite's write lock before a second writer
        with db.separate_session() as session:
            audit.write(session, denials)
