"""The Flask application factory."""

from __future__ import annotations

from typing import Any

import click
from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin
from sqlalchemy import make_url

from app import db, errors, observability, pipeline
from app.auth.invalidation import ActorCache
from app.auth.keys import KeyStore
from app.auth.tokens import TokenService
from app.authz import AuthzEngine
from app.config import Settings
from app.mail import Mailer
from app.proxy import TrustedProxies
from app.storage import Storage


class NoCookieSession(SessionInterface):
    """The API keeps no Flask session (its callers send bearer credentials; the OAuth
    consent page signs its own cookie: api/oauth.py). Flask's default would build a signing
    serializer and read the cookie header on every request, for nothing; `flask.session`
    is Flask's NullSession, which refuses writes."""

    def open_session(self, app: Flask, request: Request) -> None:
        return None  # Flask then uses make_null_session()

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        return None


def create_app(config: Settings | dict[str, Any] | None = None) -> Flask:
    """Build the app from the environment, optionally overridden by `config`."""
    settings = config if isinstance(config, Settings) else Settings.from_env()
    if isinstance(config, dict):
        settings = settings.with_overrides(config)
    settings.check()
    observability.configure_logging(settings.log_level)

    app = Flask(__name__, instance_path=settings.instance_path)
    app.session_interface = NoCookieSession()
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
        # The Authorize button's OAuth flow comes back here (register it on your client).
        OPENAPI_SWAGGER_UI_CONFIG={"oauth2RedirectUrl": settings.public_base_url.rstrip("/")
                                   + "/docs/assets/oauth2-redirect.html"},
    )
    app.extensions["settings"] = settings

    db.init_app(app, settings.database_url, settings.database_pool_size,
                settings.database_statement_timeout_ms)
    _init_authz(app, settings)
    app.extensions["actor_cache"] = ActorCache(
        _listen_conninfo(settings.database_url), settings.auth_cache_ttl_seconds
    )
    # A command line may start before the key file exists (`flask keys add` creates it).
    keys = KeyStore(settings, allow_missing=click.get_current_context(silent=True) is not None)
    app.extensions["keys"] = keys
    app.extensions["tokens"] = TokenService(settings, keys)
    errors.register(app)
    # The bucket itself is provisioned: by the operator, or by `flask demo` locally.
    app.extensions["storage"] = Storage(settings)
    app.extensions["mailer"] = Mailer(settings, app.extensions["db.sessionmaker"])

    from app import api, cli, metrics, pipeline, ratelimit, tracing
    from app.auth import oauth

    tracing.init_app(app, settings)  # off unless TRACING_EXPORTER is set
    oauth.init_app(app)
    api.init_app(app)
    metrics.init_app(app)
    ratelimit.init_app(app)
    cli.init_app(app)
    pipeline.init_app(app)
    if settings.trusted_proxy_hops > 0:
        app.wsgi_app = TrustedProxies(  # type: ignore[method-assign]
            app.wsgi_app, settings.trusted_proxy_hops, settings.trusted_proxy_peers
        )
    return app


def _listen_conninfo(database_url: str) -> str | None:
    """libpq connection string for the cache's LISTEN connection (PostgreSQL only)."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        return None
    return db.conninfo(database_url)


def _init_authz(app: Flask, settings: Settings) -> None:
    """The policy engine; every refusal it makes is noted for the pipeline's audit step."""
    engine = AuthzEngine(settings.policy_dir, session=db.session)
    engine.on_denial = pipeline.note_denial
    app.extensions["authz"] = engine
