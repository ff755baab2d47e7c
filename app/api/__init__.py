"""flask-smorest setup: blueprints, the OpenAPI document, and secure-by-default auth.

Every operation requires a bearer token unless its view is marked `@public(blp)`: the
check runs before any view, so a new endpoint cannot forget it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import flask_smorest
import orjson
from flask import Flask, Response, g, request, send_from_directory
from flask_smorest import Api as SmorestApi
from flask_smorest.exceptions import NotModified
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import NotFound
from werkzeug.http import quote_etag

from app import db, errors
from app.api import paths
from app.auth.current import authenticate
from app.authz import engine as authz_engine
from app.models import Organization
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


class ArgumentsParser(FlaskParser):
    """How every blueprint reads its arguments (`@blp.arguments`)."""

    # Invalid input is a 400 (webargs' default is 422); flask-smorest documents this status
    # on every operation with arguments.
    DEFAULT_VALIDATION_STATUS = 400
    # webargs ignores unknown query parameters (EXCLUDE for that location) whatever the
    # schema says; let the schemas' own `unknown` (RAISE) decide, as for bodies: a
    # misspelt filter is a 400, not a silently unfiltered list.
    DEFAULT_UNKNOWN_BY_LOCATION = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": None, "querystring": None,
    }

    def _raw_load_json(self, req: Any) -> Any:
        """Bodies are read with orjson, which refuses what is not valid Unicode: the standard
        library accepts a lone surrogate escape (`"\\ud83d"`) that no database can store
        (a 500 at the INSERT), and NaN or Infinity. Either is a 400 (not valid JSON)."""
        if not is_json_request(req):
            return core.missing
        return orjson.loads(req.get_data(cache=True).decode())  # UnicodeDecodeError: a 400 too


class Blueprint(flask_smorest.Blueprint):
    """Every blueprint of the API: flask-smorest's, reading arguments with ArgumentsParser,
    and answering 304 with the ETag it matched (RFC 9110 15.4.5 requires it; flask-smorest's
    NotModified carries none)."""

    ARGUMENTS_PARSER = ArgumentsParser()

    def _check_not_modified(self, etag: str) -> None:
        try:
            super()._check_not_modified(etag)
        except NotModified as exc:
            exc.data = {"headers": {"ETag": quote_etag(etag)}}  # see errors.handle_http_exception
            raise


class Api(SmorestApi):
    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error: Any) -> Response:  # type: ignore[override]
        return errors.handle_http_exception(error)

    def _register_responses(self) -> None:
        """flask-smorest documents its error responses (`default`, 400, 412, ...) with
        DEFAULT_RESPONSE_CONTENT_TYPE; they are served as application/problem+json."""
        self.DEFAULT_RESPONSE_CONTENT_TYPE = errors.PROBLEM_JSON
        try:
            super()._register_responses()
        finally:
            del self.DEFAULT_RESPONSE_CONTENT_TYPE  # success responses stay application/json
        lazy = self.spec.components.responses_lazy  # apispec keeps them here until used
        lazy["BAD_REQUEST"]["description"] = (
            "Invalid input: `errors` names each offending field (of the body, the query, the "
            "path or a header) with its messages."
        )
        lazy["UNPROCESSABLE_ENTITY"]["description"] = (
            "This `Idempotency-Key` was already used with another payload."
        )


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


def _scope_rows(actor: Any) -> None:
    """Row-level security's scope (app/db.py): the organization in the path when the
    policy lets the actor `access` it, else none; a key's own organization on routes
    without one.

    An organization the actor may not access is answered 404 at once (row-level security
    would hide all of it anyway), and the probe is audited as an `access` denial (rate
    limited per actor: probing ids must not flood the log).
    """
    path_org = (request.view_args or {}).get("org_id")
    org_id = actor.home_org_id() if path_org is None else path_org
    if path_org is not None:
        authz = authz_engine()
        org = Organization(id=path_org)
        if not authz.is_allowed(actor, "access", org):
            org_id = None
            authz.deny(actor, "access", org, probe=True)
            if authz.enforce:  # off only in the test proving row-level security alone
                raise errors.NotFound()
    db.set_scope(db.session(), org_id=org_id, user_id=actor.person_id)


def _document_idempotency(api: Api) -> None:
    """Every authenticated POST accepts `Idempotency-Key` (app/idempotency.py): a malformed
    one is a 400, one reused with another payload the API's only 422."""
    from app.idempotency import DOC_PARAMETER

    for operations in api.spec._paths.values():  # apispec keeps registered paths here
        post = operations.get("post")
        if post is not None and post.get("security") != []:
            post.setdefault("parameters", []).append(DOC_PARAMETER)
            post["responses"]["422"] = api.spec.components.get_ref(
                "response", "UNPROCESSABLE_ENTITY"
            )


OPERATIONS = ("get", "put", "post", "patch", "delete")


def _document_validation(api: Api) -> None:
    """Every operation that takes input (a body, query or header arguments, ids in its
    path) documents its 400; `@blp.arguments` documents it for bodies and queries only."""
    bad_request = api.spec.components.get_ref("response", "BAD_REQUEST")
    for operations in api.spec._paths.values():
        in_path = any(p.get("in") == "path" for p in operations.get("parameters", []))
        for method in OPERATIONS:
            operation = operations.get(method)
            if operation is None:
                continue
            takes_input = in_path or "requestBody" in operation or any(
                isinstance(p, dict) and p.get("in") in ("query", "header")
                for p in operation.get("parameters", [])
            )
            if takes_input:
                operation["responses"].setdefault("400", bad_request)


def init_app(app: Flask) -> Api:
    from app.api import (
        assets,
        audit,
        auth,
        events,
        galleries,
        keys,
        members,
        ops,
        orgs,
        sites,
    )

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
        assets.blp, galleries.blp, events.blp, audit.blp,
    )
    for blueprint in blueprints:
        api.register_blueprint(blueprint)
    _document_idempotency(api)
    _document_validation(api)

    @app.before_request
    def _guard() -> None:
        g.actor = None
        if isinstance(request.routing_exception, NotFound):  # no route: malformed ids?
            malformed = paths.malformed(app, request)
            if malformed:
                raise errors.BadRequest("A path parameter is invalid.", errors=malformed)
        if not _is_public(app):
            ingest = getattr(_handler(app), "_accepts_ingest_keys", False)
            g.actor = authenticate(ingest_keys=ingest)
            _scope_rows(g.actor)
        if request.method in BODY_METHODS and request.content_length:
            mimetype = request.mimetype
            if not (mimetype == "application/json" or mimetype.endswith("+json")):
                raise errors.ApiError.of(415, "Send the body as application/json.")

    return api
