"""flask-smorest setup: blueprints, the OpenAPI document, and secure-by-default auth.

Every operation requires a bearer token unless its view is marked `@public(blp)`: the
check runs before any view, so a new endpoint cannot forget it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, Response, g, request, send_from_directory
from flask_smorest import Api as SmorestApi
from flask_smorest import Blueprint

from app import errors
from app.auth.current import authenticate
from schemas.common import ProblemSchema

F = TypeVar("F", bound=Callable[..., Any])

# Endpoints that are not MethodViews of ours: the OpenAPI document and its UI.
PUBLIC_ENDPOINTS = {
    "static",
    "api-docs.openapi_json",
    "api-docs.openapi_swagger_ui",
    "swagger_ui_assets",
}
BODY_METHODS = {"POST", "PUT", "PATCH"}


class Api(SmorestApi):
    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error: Any) -> Response:  # type: ignore[override]
        return errors.handle_http_exception(error)


def public(blp: Blueprint) -> Callable[[F], F]:
    """Mark a view as callable without credentials (and document it so)."""

    def mark(func: F) -> F:
        func._public = True  # type: ignore[attr-defined]
        return blp.doc(security=[])(func)

    return mark


def _handler(app: Flask) -> Any:
    view = app.view_functions.get(request.endpoint or "")
    view_class = getattr(view, "view_class", None)
    if view_class is None:
        return view
    method = request.method.lower()
    return getattr(view_class, "get" if method == "head" else method, None)


def _is_public(app: Flask) -> bool:
    if request.endpoint is None or request.endpoint in PUBLIC_ENDPOINTS:
        return True
    handler = _handler(app)
    return handler is None or getattr(handler, "_public", False)


def _swagger_asset(filename: str) -> Response:
    from swagger_ui_bundle import swagger_ui_path

    return send_from_directory(swagger_ui_path, filename, max_age=86400)


def init_app(app: Flask) -> Api:
    from app.api import assets, audit, auth, keys, members, ops, orgs, sites

    api = Api(
        app,
        spec_kwargs={
            "info": {"description": "Multi-tenant REST API authorized by Oso/Polar policies."},
            "security": [{"bearerAuth": []}],
        },
    )
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    app.extensions["api"] = api
    app.add_url_rule("/docs/assets/<path:filename>", "swagger_ui_assets", _swagger_asset)
    blueprints = (
        ops.blp, auth.blp, auth.wellknown, orgs.blp, sites.blp, members.blp, keys.blp,
        assets.blp, audit.blp,
    )
    for blueprint in blueprints:
        api.register_blueprint(blueprint)

    @app.before_request
    def _guard() -> None:
        g.actor = None
        if not _is_public(app):
            ingest = getattr(_handler(app), "_accepts_ingest_keys", False)
            g.actor = authenticate(ingest_keys=ingest)
        if request.method in BODY_METHODS and request.content_length:
            mimetype = request.mimetype
            if not (mimetype == "application/json" or mimetype.endswith("+json")):
                raise errors.ApiError.of(415, "Send the body as application/json.")

    return api
